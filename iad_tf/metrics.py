"""Frame-level multi-label metrics on numpy arrays (masked). One implementation, used by the
training callback, evaluate and export checks.

Conventions: ``f1_macro`` averages over the classes that truly occur in the evaluated frames
(AAM songs use 4-10 of the 31 instruments; absent classes would only add zeros);
``jaccard_samples`` scores a frame with neither true nor predicted instruments as 1.
"""

from __future__ import annotations

import numpy as np

#: Names of the scalar metrics; callbacks log them as ``val_<name>``.
F1_MACRO = "f1_macro"
F1_MICRO = "f1_micro"
F1_WEIGHTED = "f1_weighted"
HAMMING = "hamming_loss"
JACCARD = "jaccard_samples"
METRIC_NAMES: tuple[str, ...] = (F1_MACRO, F1_MICRO, F1_WEIGHTED, HAMMING, JACCARD)
#: Threshold-free ranking score of probabilities: mean average precision over present classes.
MAP = "map"


def apply_mask(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Flatten (..., C) arrays to (N, C), keeping frames where ``mask`` (...) is true."""
    c = y_true.shape[-1]
    t = y_true.reshape(-1, c)
    p = y_pred.reshape(-1, c)
    if mask is not None:
        keep = np.asarray(mask).reshape(-1).astype(bool)
        t, p = t[keep], p[keep]
    return t.astype(np.uint8), p.astype(np.uint8)


def frame_metrics(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Scalar metrics of binary predictions ``y_pred`` against ``y_true``, both (..., C)."""
    from sklearn.metrics import f1_score, hamming_loss, jaccard_score

    t, p = apply_mask(y_true, y_pred, mask)
    if t.shape[0] == 0:
        raise ValueError("no frames to evaluate (empty split or everything masked)")
    present = np.flatnonzero(t.sum(axis=0) > 0)
    labels = present if present.size else np.arange(t.shape[1])
    return {
        F1_MACRO: float(f1_score(t, p, labels=labels, average="macro", zero_division=0)),
        F1_MICRO: float(f1_score(t, p, average="micro", zero_division=0)),
        F1_WEIGHTED: float(f1_score(t, p, average="weighted", zero_division=0)),
        HAMMING: float(hamming_loss(t, p)),
        JACCARD: float(jaccard_score(t, p, average="samples", zero_division=1.0)),
    }


def binarize(probs: np.ndarray, thresholds: np.ndarray | float = 0.5) -> np.ndarray:
    """Decisions uint8 (..., C) from probabilities (..., C) and per-class thresholds (C,)."""
    return (probs >= np.asarray(thresholds, dtype=probs.dtype)).astype(np.uint8)


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Per-class F1 (C,) from counts (any shape); 0 where the class is neither present nor
    predicted. The one F1 arithmetic of tuning, cv reports and ``predict --truth``."""
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def mean_average_precision(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean over the classes with at least one true frame of each class's average precision
    (frames x classes arrays; the same definition as the evaluation report's
    ``average_precision_macro``). NaN when no class occurs."""
    from sklearn.metrics import average_precision_score

    t = np.asarray(y_true).reshape(-1, np.shape(y_true)[-1])
    p = np.asarray(probs).reshape(-1, t.shape[1])
    present = np.flatnonzero(t.sum(axis=0) > 0)
    if present.size == 0:
        return float("nan")
    return float(np.mean([average_precision_score(t[:, i], p[:, i]) for i in present]))
