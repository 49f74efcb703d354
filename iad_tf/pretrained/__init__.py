"""Pretrained weights shipped with iad-tf (TF-free path resolution).

``musicnn_mtt.npz`` and ``musicnn_msd.npz``: musicnn's MagnaTagATune and Million Song Dataset
checkpoints (Pons and Serra 2019, musicnn 0.1.0, ISC license: ``LICENSE-musicnn.md``),
converted once by :mod:`iad_tf.pretrained.convert` into {checkpoint variable name: float32
array} without the optimizer slots. See ``README.md`` in this folder.
"""

from __future__ import annotations

from pathlib import Path

MUSICNN_WEIGHTS: tuple[str, ...] = ("mtt", "msd")
#: Checkpoint folder inside the musicnn wheel of each weights name.
MUSICNN_CHECKPOINTS: dict[str, str] = {"mtt": "MTT_musicnn", "msd": "MSD_musicnn"}


def musicnn_weights_path(name: str) -> Path:
    """Path of the converted musicnn weights ``name``; ValueError when unknown or missing."""
    if name not in MUSICNN_WEIGHTS:
        raise ValueError(
            f"unknown musicnn weights {name!r}; choose one of {', '.join(MUSICNN_WEIGHTS)}"
        )
    path = Path(__file__).with_name(f"musicnn_{name}.npz")
    if not path.is_file():
        raise ValueError(
            f"{path}: converted musicnn weights missing (python -m iad_tf.pretrained.convert)"
        )
    return path
