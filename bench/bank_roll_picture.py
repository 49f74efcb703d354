"""The README picture: a real AAM song's instrument roll above a song rendered from the note bank.

Usage: ``python bench/bank_roll_picture.py --bank BANK [--aam-root DIR]``; writes
``docs/img/bank_roll.png`` (first 60 s of real song 2602; generated track s0001, seed 3).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SECONDS = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bank", type=Path, required=True, help="a bank written by `iad-tf bank`")
    ap.add_argument("--aam-root", type=Path, default=REPO.parent / "shared" / "aam-sample")
    ap.add_argument("--song", default="2602")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "bank_roll.png")
    args = ap.parse_args()

    import matplotlib.image as mpimg

    from iad_tf.aam.arff import read_onsets
    from iad_tf.aam.labels import onset_roll
    from iad_tf.config import AAM_CLASSES, FeatureConfig
    from iad_tf.plots import piano_roll
    from iad_tf.synth.corpus import SynthConfig, synthesize

    fc = FeatureConfig()
    times = fc.frame_times(int(SECONDS / fc.frame_seconds))
    real = onset_roll(read_onsets(args.aam_root / "annotations" / f"{args.song}_onsets.arff"), times, AAM_CLASSES)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cfg = SynthConfig(tracks=1, seed=args.seed, duration=SECONDS, sample_rate=22050, voices=f"bank:{args.bank}")
        synthesize(out / "gen", cfg, workers=1)
        gen = onset_roll(read_onsets(out / "gen" / "annotations" / "s0001_onsets.arff"), times, AAM_CLASSES)
        a = piano_roll(out / "a.png", AAM_CLASSES, fc.frame_seconds, real, figsize=(12, 2.6),
                       title=f"real AAM song {args.song} (first 60 s): instrument roll from its onsets ARFF")
        b = piano_roll(out / "b.png", AAM_CLASSES, fc.frame_seconds, gen, figsize=(12, 2.6),
                       title=f"generated from the note bank (synth --voices bank:{args.bank} --seed {args.seed}, track s0001)")
        ia, ib = mpimg.imread(a), mpimg.imread(b)
        w = min(ia.shape[1], ib.shape[1])
        mpimg.imsave(args.out, np.concatenate([ia[:, :w], ib[:, :w]], axis=0))
    print(args.out)


if __name__ == "__main__":
    main()
