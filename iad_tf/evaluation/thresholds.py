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
from typing import Any

import numpy as np

from iad_tf.fileio import read_json, write_json
from iad_tf.metrics import f1_from_counts
from iad_tf.postprocess import decide, threshold_problem

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


def smoothed_probs(probs: np.ndarray, median_window: int) -> np.ndarray:
    """Median-filtered probabilities (frames, C) along time (``mode="nearest"``, odd window).

    A median filter commutes with thresholding (a monotone map), so
    ``smoothed_probs(p, w) >= t`` equals ``decide(p, t, w)`` for every ``t``: tuning can score
    all candidate thresholds from one filtered copy instead of filtering once per candidate.
    """
    p = np.asarray(probs, dtype=np.float32)
    if median_window <= 1:
        return p
    from scipy.ndimage import median_filter

    return median_filter(p, size=(median_window, 1), mode="nearest")


def candidate_counts(
    tracks: Sequence[tuple[np.ndarray, np.ndarray]], candidates: np.ndarray, median_window: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP, FN (candidates, C) of every candidate threshold at once (same as
    :func:`class_counts` per candidate, in O(N log N) per class)."""
    probs = np.concatenate([smoothed_probs(p, median_window) for p, _ in tracks])  # (N, C)
    labels = np.concatenate([lab for _, lab in tracks]).astype(bool)
    thr = np.asarray(candidates, dtype=np.float32)  # binarize compares in the probs' dtype
    c = probs.shape[1]
    tp = np.zeros((thr.size, c), np.int64)
    fp = np.zeros((thr.size, c), np.int64)
    for k in range(c):
        pos = np.sort(probs[labels[:, k], k])
        neg = np.sort(probs[~labels[:, k], k])
        tp[:, k] = pos.size - np.searchsorted(pos, thr, side="left")  # count of p >= t
        fp[:, k] = neg.size - np.searchsorted(neg, thr, side="left")
    fn = labels.sum(axis=0)[None, :] - tp
    return tp, fp, fn


def tune_global_threshold(
    tracks: Sequence[tuple[np.ndarray, np.ndarray]],
    median_window: int = 1,
    candidates: np.ndarray = CANDIDATES,
) -> Tuned:
    """One threshold for every class, maximising frame micro-F1 over all classes.

    The robust choice when validation holds few tracks: per-class thresholds tuned on a
    handful of songs fit those songs, and classes absent from them cannot be tuned at all
    (their false positives still count in micro-F1). 0.5 is kept unless strictly beaten.
    """
    if not tracks:
        raise ValueError("no validation tracks to tune thresholds on")
    cands = np.unique(np.append(np.asarray(candidates, dtype=np.float64), FLAT_THRESHOLD))
    tp, fp, fn = candidate_counts(tracks, cands, median_window)  # (candidates, C) each
    micro = f1_from_counts(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))  # (candidates,)
    flat = int(np.flatnonzero(cands == FLAT_THRESHOLD)[0])
    best = int(micro.argmax())
    chosen = best if micro[best] > micro[flat] + 1e-12 else flat
    per_class = f1_from_counts(tp, fp, fn)
    support = np.concatenate([lab for _, lab in tracks]).sum(axis=0).astype(np.int64)
    c = tp.shape[1]
    return Tuned(np.full(c, cands[chosen]), per_class[flat], per_class[chosen], support, median_window)


def tune_thresholds(
    tracks: Sequence[tuple[np.ndarray, np.ndarray]],
    median_window: int = 1,
    candidates: np.ndarray = CANDIDATES,
) -> Tuned:
    """Choose per-class thresholds maximising F1 over validation ``tracks``.

    ``tracks``: (probs float (frames, C), labels 0/1 (frames, C)) per track; the median
    filter (window ``median_window``) runs within each track, as in evaluation. Per class the
    best candidate wins only if strictly better than 0.5; absent classes keep 0.5.
    """
    if not tracks:
        raise ValueError("no validation tracks to tune thresholds on")
    cands = np.unique(np.append(np.asarray(candidates, dtype=np.float64), FLAT_THRESHOLD))
    scores = f1_from_counts(*candidate_counts(tracks, cands, median_window))  # (candidates, C)
    c = scores.shape[1]
    f1_flat = scores[int(np.flatnonzero(cands == FLAT_THRESHOLD)[0])]
    labels = np.concatenate([lab for _, lab in tracks])
    support = labels.sum(axis=0).astype(np.int64)
    best = scores.argmax(axis=0)  # (C,) first best: the lowest threshold among ties
    best_f1 = scores[best, np.arange(c)]
    better = (best_f1 > f1_flat + 1e-12) & (support > 0)
    thresholds = np.where(better, cands[best], FLAT_THRESHOLD).astype(np.float64)
    f1_tuned = np.where(better, best_f1, f1_flat)
    return Tuned(thresholds, f1_flat, f1_tuned, support, median_window)


def save_thresholds(
    run_dir: str | Path,
    classes: Sequence[str],
    thresholds: np.ndarray,
    median_window: int,
    presence: dict[str, Any] | None = None,
) -> Path:
    """Write ``run_dir/thresholds.json`` atomically (``presence``: the song-level gate)."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (len(classes),):
        raise ValueError(f"{len(classes)} classes but thresholds of shape {thresholds.shape}")
    return write_json(
        Path(run_dir) / THRESHOLDS_FILE,
        {"classes": list(classes), "thresholds": [round(float(t), 4) for t in thresholds],
         "median_window": int(median_window), **({"presence": presence} if presence else {})},
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
    bad = threshold_problem(file_classes, thr)
    if bad:
        raise ValueError(f"{path}: {bad}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"{path}: median_window must be an odd number >= 1, got {window}")
    return thr, window


def load_presence(run_dir: str | Path, classes: Sequence[str]) -> dict[str, Any] | None:
    """The song-level presence gate ({"threshold", "seconds"[, "one_of"]}) of
    ``run_dir/thresholds.json`` (``iad-tf cv`` writes it as decoder.json); None when absent."""
    from iad_tf.postprocess import Presence

    path = Path(run_dir) / THRESHOLDS_FILE
    if not path.is_file():
        return None
    try:
        gate = Presence.from_dict(read_json(path).get("presence"), classes)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return None if gate is None else gate.to_dict(classes)
