"""Convert musicnn's TF1 checkpoints into the small ``.npz`` files shipped in this folder.

Run once (the result is committed)::

    pip download musicnn==0.1.0 --no-deps -d /tmp/musicnn && unzip -d /tmp/musicnn/x /tmp/musicnn/*.whl
    python -m iad_tf.pretrained.convert /tmp/musicnn/x/musicnn

Reads ``<musicnn>/MTT_musicnn/`` and ``<musicnn>/MSD_musicnn/`` with
``tf.compat.v1.train.NewCheckpointReader`` (``tf.train.load_checkpoint`` fails: the
``checkpoint`` files name the authors' paths), drops Adam's slots and power accumulators,
checks the rest against :data:`iad_tf.training.musicnn.LAYER_TABLE` (every variable used
exactly once, shapes checked, by building the whole tagger) and writes float32 arrays keyed by
the checkpoint's variable names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from iad_tf.pretrained import MUSICNN_CHECKPOINTS, musicnn_weights_path

#: Optimizer state in the checkpoints, not model weights.
OPTIMIZER_VARIABLES = ("beta1_power", "beta2_power")


def read_checkpoint(ckpt_dir: str | Path) -> dict[str, np.ndarray]:
    """Model variables of a musicnn checkpoint folder: {name: float32 array}."""
    import tensorflow as tf

    ckpt_dir = Path(ckpt_dir)
    if not (ckpt_dir / ".index").is_file():
        raise ValueError(f"{ckpt_dir}: no musicnn checkpoint (.index) here")
    reader = tf.compat.v1.train.NewCheckpointReader(f"{ckpt_dir}/")
    names = sorted(reader.get_variable_to_shape_map())
    return {
        n: np.asarray(reader.get_tensor(n), dtype=np.float32)
        for n in names
        if n not in OPTIMIZER_VARIABLES and not n.split("/")[-1].startswith("Adam")
    }


def convert(musicnn_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Convert both checkpoints; returns the written files (default: beside this module)."""
    from iad_tf.training.musicnn import assign_musicnn_weights, build_musicnn_tagger_bare

    written = []
    for name, folder in MUSICNN_CHECKPOINTS.items():
        arrays = read_checkpoint(Path(musicnn_dir) / folder)
        used = assign_musicnn_weights(build_musicnn_tagger_bare(), arrays, ("front", "mid", "back"))
        assert sorted(used) == sorted(arrays)  # every variable exactly once
        target = Path(out_dir) / f"musicnn_{name}.npz" if out_dir else _default_target(name)
        tmp = target.with_name(f".{target.name}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(target)
        written.append(target)
    return written


def _default_target(name: str) -> Path:
    try:
        return musicnn_weights_path(name)
    except ValueError:
        return Path(__file__).with_name(f"musicnn_{name}.npz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("musicnn_dir", help="the musicnn package folder (holds MTT_musicnn/)")
    parser.add_argument("--out", default=None, help="output folder [default: iad_tf/pretrained]")
    args = parser.parse_args()
    for path in convert(args.musicnn_dir, args.out):
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
