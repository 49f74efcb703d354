"""The log-mel front end block by block: bounded memory for recordings of any length.

:class:`FileLogmel` decodes a file in blocks (soundfile), mixes each block down to mono,
resamples it with a streaming soxr resampler of the same quality as
:func:`iad_tf.audio.resample`, and cuts log-mel frames from a buffer that keeps the
``n_fft - hop_length`` samples two neighbouring blocks share. The frames are those of
``logmel(load_audio(path, sr), cfg)`` (same samples, the same zero padding at the song's
two ends, the frame maths of :func:`iad_tf.audio.logmel_frames`), while memory holds a few
blocks whatever the recording's length. TF-free.

mp3 note: python-soundfile's ``read`` (and ``blocks``) asks libsndfile for the position
before every read and seeks after it, and on mp3 each such seek restarts mpg123's decoder:
the samples after it drift by float rounding and whole mp3 frames can come back as silence
(measured on the sample track 1941: 1152-sample gaps of zeros in its fade-out). Blocks are
therefore read with libsndfile's ``sf_readf_float`` straight into a buffer, with no seek:
the samples equal one whole-file read exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.audio import RESAMPLE_QUALITY, AudioError, decode, logmel_frames
from iad_tf.config import FeatureConfig

#: Samples per channel read at a time (~6 s at 44.1 kHz; a few MB per block).
BLOCK_SAMPLES: int = 1 << 18
#: Log-mel frames computed per call (~24 s at the defaults; the samples they span, float64,
#: take 4 MB). Fewer, larger calls: many small matrix products are slow when numpy's BLAS
#: runs threads on a busy machine (measured: 800 calls of ~10 frames took 21 s, not 1 s).
FRAMES_PER_BLOCK: int = 1024


def read_blocks(
    path: str | Path, block_samples: int = BLOCK_SAMPLES
) -> tuple[int, Iterator[np.ndarray]]:
    """(sample rate, iterator of mono float32 blocks (<= block_samples,)) of ``path``.

    The blocks' concatenation equals the whole-file decode of :func:`iad_tf.audio.load_audio`
    before resampling. A file libsndfile cannot open goes through the same librosa fallback
    (decoded whole: that fallback cannot stream). Raises :class:`AudioError` naming the file
    when it is missing or undecodable (at once), or empty or holding NaN/inf (while iterating).
    """
    import soundfile as sf

    from iad_tf import storage

    path = storage.to_path(path)
    try:
        if not path.is_file():
            raise AudioError(f"{path}: no such file")
    except storage.StorageError as exc:
        raise AudioError(str(exc)) from None
    if block_samples < 1:
        raise ValueError(f"block_samples must be >= 1, got {block_samples}")
    fh = None
    try:
        if storage.is_remote(path):  # streamed from the store: no local copy
            fh = storage.open_file(path)
            handle = sf.SoundFile(fh)
        else:
            handle = sf.SoundFile(str(path))
    except Exception:  # noqa: BLE001 - libsndfile cannot open it: load_audio's fallback
        if fh is not None:
            fh.close()
        y, sr = decode(path)
        return sr, _checked(
            path, (y[i : i + block_samples] for i in range(0, y.shape[0], block_samples))
        )
    return int(handle.samplerate), _checked(path, _soundfile_blocks(path, handle, block_samples, fh))


def _soundfile_blocks(
    path: Path, handle: Any, block_samples: int, fh: Any = None
) -> Iterator[np.ndarray]:
    """Mono blocks of an open ``soundfile.SoundFile``; closes it (and ``fh``, the store's file
    object it reads from) at the end."""
    with handle, contextlib.nullcontext() if fh is None else fh:
        # a whole-file read stops at the header's length (mp3: mpg123's count): so do we
        remaining = handle.frames if handle.seekable() else None
        buf = np.empty((block_samples, handle.channels), dtype=np.float32)  # (samples, channels)
        while remaining is None or remaining > 0:
            n = block_samples if remaining is None else min(block_samples, remaining)
            got = _read_into(path, handle, buf[:n])
            if got == 0:
                return
            if remaining is not None:
                remaining -= got
            yield buf[:got].mean(axis=1)  # (got,) float32, as the whole-file decode mixes down


def _read_into(path: Path, handle: Any, out: np.ndarray) -> int:
    """Read up to ``out.shape[0]`` samples into ``out`` (n, channels) float32; return how many.

    Calls libsndfile's ``sf_readf_float`` directly: python-soundfile's ``read`` brackets every
    call with a position query and a seek, and on mp3 those seeks reset mpg123 (see above).
    """
    import soundfile as sf

    got = int(
        sf._snd.sf_readf_float(handle._file, sf._ffi.cast("float *", out.ctypes.data), out.shape[0])
    )
    if sf._snd.sf_error(handle._file):
        reason = sf._ffi.string(sf._snd.sf_strerror(handle._file)).decode("utf-8", "replace")
        raise AudioError(f"{path}: cannot decode audio ({reason})")
    return got


def _checked(path: Path, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """``blocks``, raising :class:`AudioError` on NaN/inf samples or when there are none."""
    total = 0
    for y in blocks:
        if not np.all(np.isfinite(y)):
            raise AudioError(f"{path}: audio holds NaN or infinite samples")
        total += y.shape[0]
        if y.shape[0]:
            yield y
    if total == 0:
        raise AudioError(f"{path}: audio is empty")


def resample_blocks(
    blocks: Iterable[np.ndarray], orig_sr: int, target_sr: int
) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``orig_sr`` -> blocks at ``target_sr`` (soxr stream, the quality
    of :func:`iad_tf.audio.resample`: the concatenation equals resampling the whole)."""
    if orig_sr == target_sr:
        yield from blocks
        return
    import soxr

    stream = soxr.ResampleStream(orig_sr, target_sr, 1, dtype="float32", quality=RESAMPLE_QUALITY)
    for y in blocks:
        out = stream.resample_chunk(np.ascontiguousarray(y, dtype=np.float32))
        if out.shape[0]:
            yield out
    tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)  # flush
    if tail.shape[0]:
        yield tail


def logmel_blocks(
    blocks: Iterable[np.ndarray], cfg: FeatureConfig, frames_per_block: int = FRAMES_PER_BLOCK
) -> Iterator[np.ndarray]:
    """Mono sample blocks at ``cfg.sample_rate`` -> log-mel blocks float32 (frames, n_mels) dB.

    The concatenation equals :func:`iad_tf.audio.logmel` of the concatenated samples: the song
    is zero-padded by ``n_fft // 2`` at both ends (``center=True``) and every frame is cut
    from a buffer that holds the samples it spans, however the blocks fall. Frames are
    computed once at least ``frames_per_block`` of them are buffered (fewer, larger FFT and
    BLAS calls), so the buffer holds about ``frames_per_block * hop_length`` samples.
    """
    half, n_fft, hop = cfg.n_fft // 2, cfg.n_fft, cfg.hop_length
    need = (max(1, frames_per_block) - 1) * hop + n_fft  # samples holding frames_per_block frames
    pending: list[np.ndarray] = [np.zeros(half, dtype=np.float64)]  # padded song, next frame on
    pending_len = padded_len = half
    for y in blocks:
        pending.append(y)
        pending_len += y.shape[0]
        padded_len += y.shape[0]
        if pending_len >= need:
            buf = np.concatenate(pending, dtype=np.float64)
            n = 1 + (buf.shape[0] - n_fft) // hop  # whole frames in the buffer
            yield logmel_frames(buf[: (n - 1) * hop + n_fft], cfg)
            pending, pending_len = [buf[n * hop :]], buf.shape[0] - n * hop
    end_pad = half + max(0, n_fft - (padded_len + half))  # as logmel pads a very short song
    buf = np.concatenate([*pending, np.zeros(end_pad)], dtype=np.float64)
    if buf.shape[0] >= n_fft:
        yield logmel_frames(buf, cfg)


class FileLogmel:
    """The log-mel of an audio file, block by block: iterate for float32 (frames, n_mels) dB.

    The file is opened (and a missing or undecodable one reported as :class:`AudioError`)
    on construction; iterating decodes it once. After the iteration, ``n_samples`` is the
    song's length in samples at ``cfg.sample_rate`` and ``duration_s`` its seconds.
    """

    def __init__(
        self,
        path: str | Path,
        cfg: FeatureConfig,
        block_samples: int = BLOCK_SAMPLES,
        frames_per_block: int = FRAMES_PER_BLOCK,
    ) -> None:
        from iad_tf.storage import to_path

        self.path = to_path(path)
        self.cfg = cfg
        self.frames_per_block = frames_per_block
        self.n_samples = 0
        self._started = False
        self.sample_rate, self._blocks = read_blocks(self.path, block_samples)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.cfg.sample_rate

    def _counted(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for y in blocks:
            self.n_samples += y.shape[0]
            yield y

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError(f"{self.path}: FileLogmel decodes its file once; make a new one")
        self._started = True
        resampled = resample_blocks(self._blocks, self.sample_rate, self.cfg.sample_rate)
        return logmel_blocks(self._counted(resampled), self.cfg, self.frames_per_block)
