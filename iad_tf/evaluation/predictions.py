"""Per-track model outputs kept for reporting and re-plotting (``predictions.npz``). TF-free."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iad_tf.fileio import write_npz

PREDICTIONS_FILE = "predictions.npz"


@dataclass(frozen=True)
class TrackPrediction:
    """One track: ``probs`` float32 (frames, C) sigmoid outputs, ``labels`` uint8 (frames, C)."""

    track_id: str
    probs: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.probs.shape != self.labels.shape or self.probs.ndim != 2:
            raise ValueError(
                f"track {self.track_id}: probs {self.probs.shape} and labels "
                f"{self.labels.shape} must be equal (frames, classes) shapes"
            )

    @property
    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        return self.probs, self.labels


def concat(tracks: Sequence[TrackPrediction]) -> tuple[np.ndarray, np.ndarray]:
    """All frames of all tracks: (probs (N, C), labels (N, C))."""
    if not tracks:
        raise ValueError("no tracks")
    return (np.concatenate([t.probs for t in tracks]), np.concatenate([t.labels for t in tracks]))


def save_predictions(path: str | Path, tracks: Sequence[TrackPrediction], classes: Sequence[str]) -> Path:
    """Write tracks to one compressed npz (probs as float16) atomically."""
    arrays: dict[str, np.ndarray] = {
        "track_ids": np.array([t.track_id for t in tracks]),
        "classes": np.array(list(classes)),
    }
    for i, t in enumerate(tracks):
        arrays[f"probs_{i}"] = t.probs.astype(np.float16)
        arrays[f"labels_{i}"] = t.labels.astype(np.uint8)
    return write_npz(path, **arrays)


def load_predictions(path: str | Path) -> tuple[list[TrackPrediction], list[str]]:
    """Inverse of :func:`save_predictions`: (tracks, classes)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved predictions (run `iad-tf evaluate` first)")
    with np.load(path) as z:
        ids = [str(s) for s in z["track_ids"]]
        classes = [str(s) for s in z["classes"]]
        tracks = [
            TrackPrediction(tid, z[f"probs_{i}"].astype(np.float32), z[f"labels_{i}"])
            for i, tid in enumerate(ids)
        ]
    return tracks, classes
