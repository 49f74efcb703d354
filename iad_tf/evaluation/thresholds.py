"""Per-instrument decision thresholds tuned on the validation split (maximising frame F1).

A class keeps 0.5 unless another candidate threshold gives it a strictly higher F1 on the
validation frames (with the same median filter that will be applied afterwards), so tuning
never lowers any class's validation F1, nor the macro F1, against a flat 0.5. Classes with no
active frame in validation keep 0.5. TF-free.

``run_dir/thresholds.json``: ``{"classes": [...], "thresholds": [...], "median_window": k}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iad_tf.evaluation.io import read_json, write_json
from iad_tf.postprocess import decide

THRESHOLDS_FILE = "thresholds.json"
FLAT_THRESHOLD = 0.5
#: Default median window (frames, odd): 5 frames ~ 116 ms at 22050 Hz / hop 512.
DEFAULT_MEDIAN_WINDOW = 5
#: Candidate thresholds 0.01 ... 0.99 (0.5 included).
CANDIDATES: np.ndarray = np.round(np.arange(1, 100) / 100.0, 2)


@dataclass(frozen=True)
class Tuned:
    """Tuning result: ``thresholds`` (C,), validation F1 per class at 0.5 and tuned (C,)."""

    thresholds: np.ndarray
    f1_flat: np.ndarray
    f1_tuned: np.ndarray
    support: np.ndarray  # (C,) active validation frames per class
    median_window: int


def class_counts(
    tracks: Sequence[tuple[np.ndarray, np.ndarray]],
    thresholds: np.ndarray | float,
    median_window: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP, FN per class (C,) over tracks of (probs (frames, C), labels (frames, C))."""
    c = tracks[0][0].shape[1]
    tp = np.zeros(c, np.int64)
    fp = np.zeros(c, np.int64)
    fn = np.zeros(c, np.int64)
    for probs, labels in tracks:
        p = decide(probs, thresholds, median_window).astype(bool)
        t = labels.astype(bool)
        tp += (p & t).sum(axis=0)
        fp += (p & ~t).sum(axis=0)
        fn += (~p & t).sum(axis=0)
    return tp, fp, fn


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Per-class F1 (C,); 0 where the class is neither present nor predicted."""
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def tune_thresholds(
    tracks: Sequence[tuple[np.ndarray, np.ndarray]],
    median_window: int = 1,
    candidates: np.ndarray = CANDIDATES,
    progress: bool = False,
) -> Tuned:
    """Choose per-class thresholds maximising F1 over validation ``tracks``.

    ``tracks``: (probs float (frames, C), labels 0/1 (frames, C)) per track. Each candidate
    is applied to every class at once (the median filter works per class, so the classes
    stay independent); per class the best candidate wins only if strictly better than 0.5.
    """
    if not tracks:
        raise ValueError("no validation tracks to tune thresholds on")
    from tqdm import tqdm

    tp0, fp0, fn0 = class_counts(tracks, FLAT_THRESHOLD, median_window)
    f1_flat = f1_from_counts(tp0, fp0, fn0)
    support = tp0 + fn0
    scores = np.empty((len(candidates), f1_flat.size))  # (candidates, C)
    for k, thr in enumerate(tqdm(candidates, desc="tuning thresholds", disable=not progress, leave=False)):
        scores[k] = f1_from_counts(*class_counts(tracks, float(thr), median_window))
    best = scores.argmax(axis=0)  # (C,)
    best_f1 = scores[best, np.arange(f1_flat.size)]
    better = (best_f1 > f1_flat + 1e-12) & (support > 0)
    thresholds = np.where(better, candidates[best], FLAT_THRESHOLD).astype(np.float64)
    f1_tuned = np.where(better, best_f1, f1_flat)
    return Tuned(thresholds, f1_flat, f1_tuned, support, median_window)


def save_thresholds(
    run_dir: str | Path, classes: Sequence[str], thresholds: np.ndarray, median_window: int
) -> Path:
    """Write ``run_dir/thresholds.json`` atomically."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (len(classes),):
        raise ValueError(f"{len(classes)} classes but thresholds of shape {thresholds.shape}")
    return write_json(
        Path(run_dir) / THRESHOLDS_FILE,
        {"classes": list(classes), "thresholds": [round(float(t), 4) for t in thresholds],
         "median_window": int(median_window)},
    )


def load_thresholds(
    run_dir: str | Path, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, int] | None:
    """(thresholds (C,), median_window) from ``run_dir/thresholds.json``; None if absent.

    With ``classes`` given, the file's classes must match them exactly (else ``ValueError``).
    """
    path = Path(run_dir) / THRESHOLDS_FILE
    if not path.is_file():
        return None
    data = read_json(path)
    try:
        file_classes = list(data["classes"])
        thr = np.asarray(data["thresholds"], dtype=np.float64)
        window = int(data["median_window"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: expected keys classes, thresholds, median_window ({exc})") from exc
    if thr.shape != (len(file_classes),):
        raise ValueError(f"{path}: {len(file_classes)} classes but {thr.size} thresholds")
    if classes is not None and list(classes) != file_classes:
        raise ValueError(f"{path}: classes differ from the model's ({len(file_classes)} vs {len(classes)})")
    return thr, window
