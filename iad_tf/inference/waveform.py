"""Feed a waveform model (log-mel in the graph): song samples -> windows of audio ->
per-frame probabilities, cut and stitched exactly as the two-step path cuts log-mel. TF-free.

Window ``i`` covers frames ``starts[i] .. starts[i] + W - 1`` (the same
:func:`~iad_tf.inference.windows.window_starts` as for log-mel); its audio is samples
``starts[i] * hop - n_fft // 2`` onwards, ``(W - 1) * hop + n_fft`` of them, with zeros outside
the song: the centring padding of :func:`iad_tf.audio.logmel`. So every real frame sees the
same samples as in the two-step path. Only a song shorter than one window differs slightly:
there the two-step path pads the log-mel with silence frames, while the frames after the
song's end here still see its last samples.
"""

from __future__ import annotations

import numpy as np

from iad_tf.config import FeatureConfig
from iad_tf.inference.litert import LiteRTModel
from iad_tf.inference.metadata import OUTPUT_NAME
from iad_tf.inference.variants import window_samples
from iad_tf.inference.windows import stitch, window_starts


def padded_song(
    y: np.ndarray, cfg: FeatureConfig, window: int, hop: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Song ``y`` (samples,) at ``cfg.sample_rate`` -> (zero-padded song float32 whose
    window ``i`` is ``padded[starts[i] * hop_length :][:window_samples]``, starts int64 (N,)
    in frames, frames of the song) for windows of ``window`` frames every ``hop`` frames."""
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"audio must be mono and non-empty (samples,), got shape {y.shape}")
    n_frames = cfg.n_frames_for(y.shape[0])
    starts = window_starts(n_frames, window, hop)
    need = int(starts[-1]) * cfg.hop_length + window_samples(window, cfg)
    padded = np.zeros(max(need, y.shape[0] + cfg.n_fft // 2), dtype=np.float32)
    padded[cfg.n_fft // 2 : cfg.n_fft // 2 + y.shape[0]] = y
    return padded, starts, n_frames


def run_audio_windows(
    model: LiteRTModel, padded: np.ndarray, starts: np.ndarray, output: str = OUTPUT_NAME
) -> np.ndarray:
    """Output ``output`` of the windows at ``starts`` of a :func:`padded_song`: float32
    (N, window_frames, D) (``probs``: D = classes; ``mel``: D = n_mels)."""
    hop = model.metadata.feature_config.hop_length
    length = window_samples(model.metadata.window_frames, model.metadata.feature_config)
    name = model.variant.input_name
    out = []
    for s in starts:
        x = padded[None, int(s) * hop : int(s) * hop + length]  # (1, window_samples)
        out.append(np.asarray(model.runner(**{name: x})[output][0], dtype=np.float32))
    return np.stack(out)


def waveform_probabilities(model: LiteRTModel, y: np.ndarray) -> np.ndarray:
    """Per-frame probabilities float32 (frames, C) of mono audio ``y`` (samples,) at the
    model's sample rate, with a waveform model (``model.variant`` is ``waveform``)."""
    md = model.metadata
    padded, starts, n_frames = padded_song(y, md.feature_config, md.window_frames, md.hop_frames)
    return stitch(
        run_audio_windows(model, padded, starts), starts, n_frames, model.metadata.hop_frames
    )
