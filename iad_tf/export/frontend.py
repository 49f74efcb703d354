"""THE log-mel front end as one Keras layer: waveform -> (frames, n_mels) dB, in the graph.

:class:`LogMel` computes exactly :func:`iad_tf.audio.logmel` (librosa's Slaney mel, periodic
Hann, power 2, ``10 log10(max(amin, S)) - 10 log10(ref)``) for the frames of one window of
audio that already carries its centring context: ``samples = (frames - 1) * hop + n_fft``
samples, the first sample being ``n_fft // 2`` before the first frame's centre. Its ops all
convert to TFLite builtins: framing by reshape and slices (``n_fft`` a multiple of ``hop``),
``RFFT2D``, and the mel step as an ``UNSORTED_SEGMENT_SUM``: each FFT bin feeds at most two
Slaney filters, so the bins are scaled by two weight vectors and summed into their filters'
segments. No dense (bins, n_mels) matrix: dynamic-range quantisation quantises dense weight
matrices to 8 bits, which wrecks a power spectrum (48 dB error when probed), while vectors
of elementwise weights stay float.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from iad_tf.audio import _hann, mel_filterbank
from iad_tf.config import FeatureConfig


def samples_for(frames: int, cfg: FeatureConfig) -> int:
    """Samples of one window of ``frames`` frames with its centring context."""
    return (frames - 1) * cfg.hop_length + cfg.n_fft


def mel_segments(cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """The Slaney filterbank as a segment sum: (segment ids int32 (2 * bins,), weights
    float32 (2 * bins,)). Entry ``j * bins + k`` sends bin ``k`` to filter ``ids[...]`` (the
    ``j``-th filter, lowest first, that bin ``k`` feeds) with its weight; unused slots go to the
    extra segment ``n_mels`` with weight 0. Raises ``ValueError`` if a bin feeds > 2 filters."""
    fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, float(cfg.fmin), cfg.fmax)
    n_mels, bins = fb.shape
    ids = np.full((2, bins), n_mels, dtype=np.int32)
    weights = np.zeros((2, bins), dtype=np.float64)
    for k in range(bins):
        rows = np.flatnonzero(fb[:, k])
        if rows.size > 2:
            raise ValueError(f"FFT bin {k} feeds {rows.size} mel filters (at most 2 supported)")
        ids[: rows.size, k] = rows
        weights[: rows.size, k] = fb[rows, k]
    return ids.reshape(-1), weights.reshape(-1).astype(np.float32)


@keras.saving.register_keras_serializable(package="iad_tf")
class LogMel(layers.Layer):
    """Waveform window (batch, samples) float32 -> log-mel (batch, frames, n_mels) dB.

    ``samples`` must equal :func:`samples_for` ``(frames, cfg)`` for a whole number of frames;
    frame ``t`` is centred on sample ``n_fft // 2 + t * hop`` of the input.
    """

    def __init__(self, feature_config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cfg = FeatureConfig.from_dict(feature_config or {})
        cfg = self.cfg
        if cfg.n_fft % cfg.hop_length:
            raise ValueError(
                f"LogMel needs n_fft ({cfg.n_fft}) to be a multiple of hop_length ({cfg.hop_length})"
            )
        if cfg.top_db is not None:
            raise ValueError("LogMel: top_db clipping depends on the whole song (use top_db=None)")
        self._ids, self._weights = mel_segments(cfg)
        self._window = np.asarray(_hann(cfg.n_fft), dtype=np.float32)
        self._offset_db = float(10.0 * np.log10(max(cfg.amin, abs(cfg.ref))))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[Any, ...]:
        n = input_shape[-1]
        frames = None if n is None else (n - self.cfg.n_fft) // self.cfg.hop_length + 1
        return (input_shape[0], frames, self.cfg.n_mels)

    def call(self, audio: Any) -> Any:
        cfg = self.cfg
        hop, per = cfg.hop_length, cfg.n_fft // cfg.hop_length
        n = int(audio.shape[-1])
        if (n - cfg.n_fft) % hop or n < cfg.n_fft:
            raise ValueError(f"LogMel: {n} samples is not (frames - 1) * {hop} + {cfg.n_fft}")
        frames = (n - cfg.n_fft) // hop + 1
        blocks = ops.reshape(audio, (-1, frames + per - 1, hop))  # (B, frames + per - 1, hop)
        framed = ops.concatenate(
            [blocks[:, j : j + frames] for j in range(per)], axis=-1
        )  # (B, frames, n_fft)
        real, imag = ops.rfft(framed * self._window)  # (B, frames, bins) each
        power = real * real + imag * imag
        if cfg.power != 2.0:
            power = ops.power(power, cfg.power / 2.0)
        bins = cfg.n_fft // 2 + 1
        flat = ops.transpose(ops.reshape(power, (-1, bins)))  # (bins, B * frames)
        both = ops.concatenate([flat, flat], axis=0) * self._weights[:, None]  # (2 bins, B*frames)
        mel = ops.segment_sum(both, self._ids, num_segments=cfg.n_mels + 1)  # (n_mels + 1, B*F)
        mel = ops.reshape(ops.transpose(mel[: cfg.n_mels]), (-1, frames, cfg.n_mels))
        if cfg.compression == "log10_1p":  # musicnn's log10(1 + g S) (iad_tf.audio.compress)
            return ops.log(1.0 + cfg.log_gain * mel) / np.log(10.0)
        db = 10.0 * ops.log(ops.maximum(mel, cfg.amin)) / np.log(10.0)
        return db - self._offset_db

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "feature_config": self.cfg.to_dict()}
