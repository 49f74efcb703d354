"""One-time reference for iad-tf's musicnn re-implementation: runs the ORIGINAL musicnn code.

Writes ``tests/data/musicnn_reference.npz``: a real AAM sample excerpt's musicnn input patches
and, for the MTT and MSD checkpoints, the original graph's taggram and mean/max-pooled
features. ``tests/test_musicnn.py`` feeds the same patches to :mod:`iad_tf.training.musicnn`
and requires a match within 1e-4.

The original code (musicnn 0.1.0: TF1 graph code, ``tf.compat.v1.layers``) runs under TF 2.21
only with ``tf_keras`` and ``TF_USE_LEGACY_KERAS=1``; it is not an iad-tf dependency. Setup::

    pip download musicnn==0.1.0 --no-deps -d /tmp/musicnn_pkg
    unzip -q -d /tmp/tfk /tmp/musicnn_pkg/musicnn-0.1.0-py3-none-any.whl
    pip install --no-deps --target /tmp/tfk "tf_keras>=2.21,<2.22"
    TF_USE_LEGACY_KERAS=1 PYTHONPATH=/tmp/tfk:. python bench/musicnn_reference.py \\
        --sample ../shared/aam-sample

The input is computed as musicnn's ``extractor.batch_data`` does (librosa at 16 kHz,
``melspectrogram(n_fft=512, hop_length=256, n_mels=96)``, ``log10(10000 S + 1)``), except that
the power is cast to float32, not float16: under numpy 2, ``10000 * x`` on a float16 array
overflows to inf and silently gives wrong tags. The patches are then rounded to float16 (the
precision musicnn was trained on, and half the fixture size); both models get those values.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

PATCH_FRAMES = 187  # musicnn's 3-second input (extractor: time_to_frames(3) + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=Path, required=True, help="AAM sample folder")
    parser.add_argument("--track", default="0080")
    parser.add_argument("--start", type=float, default=30.0, help="excerpt start (s)")
    parser.add_argument("--patches", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("tests/data/musicnn_reference.npz"))
    args = parser.parse_args()
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise SystemExit(
            "run with TF_USE_LEGACY_KERAS=1 (musicnn's tf.compat.v1.layers need tf_keras)"
        )

    import librosa
    import musicnn
    import tensorflow as tf
    from musicnn import configuration as mconfig
    from musicnn import models

    audio = args.sample / "audio-mixes-mp3" / f"{args.track}_mix.mp3"
    y, sr = librosa.load(str(audio), sr=mconfig.SR)
    start = int(round(args.start * sr))
    n_samples = (args.patches * PATCH_FRAMES - 1) * mconfig.FFT_HOP  # frames = 1 + n // hop
    excerpt = y[start : start + n_samples]
    power = librosa.feature.melspectrogram(
        y=excerpt, sr=sr, hop_length=mconfig.FFT_HOP, n_fft=mconfig.FFT_SIZE, n_mels=mconfig.N_MELS
    ).T  # (frames, 96)
    rep = np.log10(10000 * power.astype(np.float32) + 1)  # float32: see the module docstring
    patches = rep[: args.patches * PATCH_FRAMES].reshape(args.patches, PATCH_FRAMES, -1)
    patches16 = patches.astype(np.float16)  # (patches, 187, 96)

    out: dict[str, np.ndarray] = {"input": patches16}
    pkg = Path(musicnn.__file__).parent
    for name, labels in (("MTT_musicnn", mconfig.MTT_LABELS), ("MSD_musicnn", mconfig.MSD_LABELS)):
        tf.compat.v1.disable_eager_execution()
        tf.compat.v1.reset_default_graph()
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, mconfig.N_MELS])
            is_training = tf.compat.v1.placeholder(tf.bool)
            logits, *_, mean_pool, max_pool, _ = models.define_model(
                x, is_training, name, len(labels)
            )
            probs = tf.nn.sigmoid(logits)
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver().restore(sess, f"{pkg}/{name}/")
            tags, mean_, max_ = sess.run(
                [probs, mean_pool, max_pool],
                feed_dict={x: patches16.astype(np.float32), is_training: False},
            )
        key = name.split("_")[0].lower()
        out[f"{key}_taggram"] = tags.astype(np.float32)  # (patches, 50)
        out[f"{key}_mean_pool"] = mean_.astype(np.float32)  # (patches, 753)
        out[f"{key}_max_pool"] = max_.astype(np.float32)
        print(f"{name}: top tags of patch 0:", [labels[i] for i in np.argsort(-tags[0])[:5]])
    info = {
        "audio": f"audio-mixes-mp3/{audio.name}",
        "start_sample": start,
        "n_samples": n_samples,
        "sample_rate": sr,
        "versions": {
            "tensorflow": tf.__version__,
            "librosa": librosa.__version__,
            "numpy": np.__version__,
            "musicnn": "0.1.0",
        },
    }
    out["info"] = np.array(json.dumps(info))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp.npz")
    np.savez_compressed(tmp, **out)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB): {json.dumps(info)}")


if __name__ == "__main__":
    main()
