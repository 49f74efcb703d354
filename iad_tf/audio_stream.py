"""Incremental log-mel: audio pushed in blocks of any size -> exactly the frames of
:func:`iad_tf.audio.logmel` on the whole signal, as soon as each one can be computed.

``logmel`` centres its frames (librosa ``center=True``): the signal gets ``n_fft // 2`` zeros
on both sides and frame ``t`` covers padded samples ``[t * hop, t * hop + n_fft)``, i.e. the
real samples up to ``t * hop + n_fft // 2``. So frame ``t`` is ready once that many samples
have arrived: a look-ahead of ``n_fft // 2`` samples (46 ms at the defaults) beyond the
frame's centre, the front end's part of the algorithmic latency. :meth:`IncrementalLogMel.flush`
adds the trailing zeros at the end of the stream, giving the last frames. The per-frame maths
(window, power spectrum, mel, dB) is :func:`iad_tf.audio.frames_logmel`. TF-free.
"""

from __future__ import annotations

import numpy as np

from iad_tf.audio import frames_logmel
from iad_tf.config import FeatureConfig


def frame_lookahead_samples(cfg: FeatureConfig) -> int:
    """Samples after a frame's centre that frame needs (``n_fft // 2``: centred frames)."""
    return cfg.n_fft // 2


class IncrementalLogMel:
    """Streaming log-mel of one mono signal at ``cfg.sample_rate``.

    ``push(samples)`` returns the frames (n, n_mels) completed by these samples (n may be 0);
    ``flush()`` ends the stream and returns the rest. Memory stays bounded: only the samples
    of the next, incomplete frame are kept.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        """Start a new signal."""
        self._buf = np.zeros(self.cfg.n_fft // 2, dtype=np.float64)  # the centre padding
        self.samples_in = 0  # real samples pushed
        self.frames_out = 0  # frames returned
        self._done = False

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append mono ``samples`` (n,) and return the newly complete frames float32 (k, n_mels)."""
        if self._done:
            raise ValueError("the stream was flushed; call reset() to start a new one")
        y = np.asarray(samples, dtype=np.float64)
        if y.ndim != 1:
            raise ValueError(f"push expects mono samples (n,), got shape {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("pushed samples hold NaN or infinite values")
        self._buf = np.concatenate([self._buf, y])
        self.samples_in += y.size
        return self._frames(limit=None)

    def flush(self) -> np.ndarray:
        """End of the signal: the trailing centre padding, and the frames it completes
        (``logmel`` yields ``1 + samples // hop`` frames in all)."""
        if self._done:
            return np.zeros((0, self.cfg.n_mels), np.float32)
        self._buf = np.concatenate([self._buf, np.zeros(self.cfg.n_fft // 2)])
        out = self._frames(limit=self.cfg.n_frames_for(self.samples_in))
        self._done = True
        return out

    def _frames(self, limit: int | None) -> np.ndarray:
        n_fft, hop = self.cfg.n_fft, self.cfg.hop_length
        k = 0 if self._buf.size < n_fft else 1 + (self._buf.size - n_fft) // hop
        if limit is not None:
            k = min(k, limit - self.frames_out)
        if k <= 0:
            return np.zeros((0, self.cfg.n_mels), np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(self._buf, n_fft)[::hop][:k]  # (k, n_fft)
        out = frames_logmel(frames, self.cfg)  # (k, n_mels)
        self._buf = self._buf[k * hop :].copy()
        self.frames_out += k
        return out
