"""Cut a song's log-mel into the model's fixed windows and stitch the outputs back together.

Windows of ``W`` frames start every ``hop`` frames; the last one is aligned to the end of
the song, so only a song shorter than one window is padded (with the dB value of silence).
Overlapping outputs are cross-faded: each window's frames are weighted by a ramp that rises
over the overlap at both of its edges (a recurrent model is least sure near a window's edge),
and the weighted sum is normalised. TF-free.
"""

from __future__ import annotations

import numpy as np

from iad_tf.audio import compress
from iad_tf.config import FeatureConfig


def silence_db(cfg: FeatureConfig) -> float:
    """The log-mel value of digital silence under ``cfg`` (dB for the default config)."""
    return float(compress(np.zeros(1), cfg)[0])


def window_starts(n_frames: int, window: int, hop: int) -> np.ndarray:
    """Start frames int64 (N,) covering ``n_frames``; the last window ends at the last frame."""
    if window < 1 or not 1 <= hop <= window:
        raise ValueError(f"need 1 <= hop ({hop}) <= window ({window})")
    if n_frames <= window:
        return np.zeros(1, dtype=np.int64)
    starts = list(range(0, n_frames - window, hop))
    starts.append(n_frames - window)
    return np.asarray(starts, dtype=np.int64)


def make_windows(
    mel: np.ndarray, window: int, hop: int, pad_value: float
) -> tuple[np.ndarray, np.ndarray]:
    """(frames, n_mels) -> (windows (N, window, n_mels) float32, starts (N,)).

    A song shorter than ``window`` is padded at the end with ``pad_value``.
    """
    n, m = mel.shape
    if n == 0:
        raise ValueError("no frames to cut into windows")
    if n < window:
        mel = np.concatenate([mel, np.full((window - n, m), pad_value, dtype=mel.dtype)])
    starts = window_starts(n, window, hop)
    idx = starts[:, None] + np.arange(window)[None, :]  # (N, window)
    return np.ascontiguousarray(mel[idx], dtype=np.float32), starts


def edge_weights(window: int, overlap: int) -> np.ndarray:
    """Weights float32 (window,): ramp up over ``overlap`` frames at both edges, 1 inside."""
    w = np.ones(window, dtype=np.float32)
    r = min(max(overlap, 0), window // 2)
    if r > 0:
        ramp = (np.arange(r, dtype=np.float32) + 1.0) / (r + 1.0)
        w[:r] = ramp
        w[window - r :] = ramp[::-1]
    return w


def stitch(window_probs: np.ndarray, starts: np.ndarray, n_frames: int, hop: int) -> np.ndarray:
    """Window outputs (N, window, C) at ``starts`` -> per-frame probabilities (n_frames, C).

    Frames covered by several windows get the edge-weighted average; padding is cut off.
    """
    n_win, window, c = window_probs.shape
    total = max(n_frames, window)
    acc = np.zeros((total, c), dtype=np.float64)
    weight = np.zeros(total, dtype=np.float64)
    w = edge_weights(window, window - hop)
    for p, s in zip(window_probs, starts, strict=True):
        acc[s : s + window] += p * w[:, None]
        weight[s : s + window] += w
    return (acc[:n_frames] / weight[:n_frames, None]).astype(np.float32)
