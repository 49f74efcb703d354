"""Feed a waveform model (log-mel in the graph): song samples -> windows of audio ->
per-frame probabilities, cut and stitched exactly as the two-step path cuts log-mel. TF-free.

Window ``i`` covers frames ``starts[i] .. starts[i] + W - 1`` (the same
:func:`~iad_tf.inference.windows.window_starts` as for log-mel); its audio is samples
``starts[i] * hop - n_fft // 2`` onwards, ``(W - 1) * hop + n_fft`` of them, with zeros outside
the song: the centring padding of :func:`iad_tf.audio.logmel`. So every real frame sees the
same samples as in the two-step path. Only a song shorter than one window differs slightly:
there the two-step path pads the log-mel with silence frames, while the frames after the
song's end here still see its last samples.

:func:`iter_audio_windows` cuts the same windows from sample blocks as they are decoded
(``predict`` reads files through :func:`iad_tf.audio_blocks.read_blocks`), so memory holds
about one window of audio and the probabilities, whatever the song's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from iad_tf.config import FeatureConfig
from iad_tf.inference.litert import LiteRTModel
from iad_tf.inference.metadata import OUTPUT_NAME
from iad_tf.inference.variants import window_samples
from iad_tf.inference.windows import Stitcher, stitch, window_starts


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


def iter_audio_windows(
    blocks: Iterable[np.ndarray], cfg: FeatureConfig, window: int, hop: int
) -> Iterator[tuple[int, np.ndarray, int]]:
    """Mono sample blocks at ``cfg.sample_rate`` -> ``(start frame, audio float32
    (window_samples,), real frames)`` for exactly the windows and samples of
    :func:`padded_song` + :func:`run_audio_windows`, each as soon as its samples have arrived.
    Holds about one window of samples. After the iteration the song's length is known; the
    windows then say how many of their frames are real (``real frames``)."""
    half, step = cfg.n_fft // 2, cfg.hop_length
    length = window_samples(window, cfg)
    parts: list[np.ndarray] = [np.zeros(half, dtype=np.float32)]  # padded song from buf_start
    buf_start, buf_len, n_samples, next_start = 0, half, 0, 0

    def cut(start: int) -> np.ndarray:
        nonlocal parts
        buf = np.concatenate(parts) if len(parts) > 1 else parts[0]
        parts = [buf]
        x = buf[start * step - buf_start :][:length]
        return x if x.shape[0] == length else np.pad(x, (0, length - x.shape[0]))

    for y in blocks:
        parts.append(np.asarray(y, dtype=np.float32))
        buf_len += y.shape[0]
        n_samples += y.shape[0]
        known = cfg.n_frames_for(n_samples)  # the song has at least this many frames
        while next_start + window < known and next_start * step + length <= buf_start + buf_len:
            yield next_start, cut(next_start), window
            next_start += hop
        # later windows (the last one too: it starts at or after known - window) need none
        # of the samples before this
        drop = min(next_start, max(0, known - window)) * step - buf_start
        if drop > 0 and len(parts) == 1 and parts[0].shape[0] > drop:
            parts, buf_start, buf_len = [parts[0][drop:]], buf_start + drop, buf_len - drop
    if n_samples == 0:
        raise ValueError("audio must be mono and non-empty, got no samples")
    n_frames = cfg.n_frames_for(n_samples)
    while next_start + window < n_frames:
        yield next_start, cut(next_start), window
        next_start += hop
    last = max(0, n_frames - window)
    yield last, cut(last), min(window, n_frames - last)


def waveform_probabilities_blocks(model: LiteRTModel, blocks: Iterable[np.ndarray]) -> np.ndarray:
    """:func:`waveform_probabilities` of a song given as sample blocks (bounded memory)."""
    md = model.metadata
    name = model.variant.input_name
    stitcher = Stitcher(md.window_frames, md.hop_frames)
    for start, x, real in iter_audio_windows(
        blocks, md.feature_config, md.window_frames, md.hop_frames
    ):
        probs = np.asarray(model.runner(**{name: x[None]})[OUTPUT_NAME][0], dtype=np.float32)
        stitcher.add(start, probs[:real])
    return stitcher.finish()
