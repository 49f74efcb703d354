"""Frame decisions from probabilities: per-class thresholds and median smoothing.

TF-free (numpy only), shared by evaluate, export checks and predict.
"""

from __future__ import annotations

import numpy as np

from iad_tf.metrics import binarize


def median_filter_decisions(decisions: np.ndarray, window: int) -> np.ndarray:
    """Median-filter binary decisions (frames, C) along time with an odd ``window`` (frames).

    ``window <= 1`` returns the input unchanged. For 0/1 data the median is a majority vote
    over the window; edges are padded by repeating the first/last frame.
    """
    if window <= 1 or decisions.shape[0] == 0:
        return decisions.astype(np.uint8)
    if window % 2 == 0:
        raise ValueError(f"median window must be odd, got {window}")
    d = decisions.astype(np.int64)
    half = window // 2
    padded = np.concatenate([np.repeat(d[:1], half, axis=0), d, np.repeat(d[-1:], half, axis=0)])
    csum = np.concatenate([np.zeros((1, d.shape[1]), np.int64), np.cumsum(padded, axis=0)])
    votes = csum[window:] - csum[:-window]  # (frames, C): ones inside each window
    return (votes > half).astype(np.uint8)  # majority = median of 0/1 (no scipy: light install)


def decide(
    probs: np.ndarray, thresholds: np.ndarray | float = 0.5, median_window: int = 1
) -> np.ndarray:
    """uint8 decisions (frames, C) from probabilities (frames, C): threshold, then smooth."""
    return median_filter_decisions(binarize(probs, thresholds), median_window)
