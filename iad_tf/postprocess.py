"""Frame decisions from probabilities: per-class thresholds and median smoothing.

TF-free (numpy/scipy), shared by evaluate, export checks and predict.
"""

from __future__ import annotations

import numpy as np

from iad_tf.metrics import binarize

#: Longest median window accepted from a user (frames; 1001 frames ~ 23 s at the defaults).
#: Longer windows smooth away everything shorter than half a song and take seconds per track.
MAX_MEDIAN_WINDOW = 1001


def median_filter_decisions(decisions: np.ndarray, window: int) -> np.ndarray:
    """Median-filter binary decisions (frames, C) along time with an odd ``window`` (frames).

    ``window <= 1`` returns the input unchanged. For 0/1 data the median is a majority vote
    over the window; edges are padded by repeating the first/last frame.
    """
    if window <= 1:
        return decisions.astype(np.uint8)
    if window % 2 == 0:
        raise ValueError(f"median window must be odd, got {window}")
    from scipy.ndimage import median_filter

    return median_filter(decisions.astype(np.uint8), size=(window, 1), mode="nearest")


def decide(
    probs: np.ndarray, thresholds: np.ndarray | float = 0.5, median_window: int = 1
) -> np.ndarray:
    """uint8 decisions (frames, C) from probabilities (frames, C): threshold, then smooth."""
    return median_filter_decisions(binarize(probs, thresholds), median_window)
