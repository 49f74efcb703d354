"""Audio decoding and the log-mel front end: THE feature function of iad-tf.

``logmel`` is used by build-records, predict, synth checks and the tests' references; it
computes whichever named feature configuration it is given (``cfg.compression`` picks the log
compression, :func:`compress`). For the default config it is
a numpy implementation of ``librosa.power_to_db(librosa.feature.melspectrogram(...), ref,
amin, top_db)`` with librosa's defaults (``center=True`` with constant padding, periodic Hann
window, Slaney mel scale and Slaney area normalisation), computed in float64 and equal to
librosa within 1e-4 dB (tests/test_audio.py checks it against librosa itself). It exists so
that ``iad-tf predict`` and the build workers start without importing librosa, scipy.signal
and numba (seconds per process); decoding is soundfile (libsndfile: wav/flac/ogg/mp3) with
``soxr`` resampling, exactly what ``librosa.resample(res_type="soxr_hq")`` runs, and librosa's
loader only as a fallback for files libsndfile cannot open. No TensorFlow here.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from iad_tf.config import FeatureConfig

AUDIO_EXTENSIONS: tuple[str, ...] = (".mp3", ".flac", ".wav", ".ogg")
#: soxr quality of every resampling (librosa's ``res_type="soxr_hq"``).
RESAMPLE_QUALITY = "HQ"


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling, soxr 'HQ' (librosa's ``res_type="soxr_hq"``)."""
    if orig_sr == target_sr:
        return y
    import soxr

    return soxr.resample(y, orig_sr, target_sr, quality=RESAMPLE_QUALITY)


def decode(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples (samples,) and their rate of a whole file; soundfile first,
    librosa/audioread as fallback. Raises :class:`AudioError` when neither can decode it."""
    import soundfile as sf

    from iad_tf import storage

    try:
        if storage.is_remote(path):  # streamed from the store into the decoder: no local copy
            with storage.open_file(path) as fh:
                data, sr = sf.read(fh, dtype="float32", always_2d=True)  # (samples, channels)
        else:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return data.mean(axis=1), int(sr)
    except Exception:  # noqa: BLE001 - libsndfile could not open it: try librosa
        try:
            import librosa

            if storage.is_remote(path):
                raise AudioError(_undecodable(path))  # librosa/audioread read local files only
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, sr = librosa.load(str(path), sr=None, mono=True)
            return y, int(sr)
        except Exception as exc:  # noqa: BLE001
            raise AudioError(_undecodable(path)) from exc


def _undecodable(path: Path) -> str:
    """Why a file that exists could not be decoded (libsndfile's own text says 'File does
    not exist' for some non-audio files, which misleads)."""
    if path.stat().st_size == 0:
        return f"{path}: cannot decode audio: empty file (0 bytes)"
    exts = "/".join(e.lstrip(".") for e in AUDIO_EXTENSIONS)
    return f"{path}: cannot decode audio: not an {exts} file, or corrupt"


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode any mp3/flac/wav/ogg to mono float32 at ``sample_rate``: array (samples,).

    Raises :class:`AudioError` for a missing, undecodable or empty file.
    """
    from iad_tf.storage import StorageError, to_path

    path = to_path(path)
    try:
        if not path.is_file():
            raise AudioError(f"{path}: no such file")
    except StorageError as exc:
        raise AudioError(str(exc)) from None
    y, sr = decode(path)
    if y.size == 0:
        raise AudioError(f"{path}: audio is empty")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path}: audio holds NaN or infinite samples")
    return np.ascontiguousarray(resample(y, sr, sample_rate), dtype=np.float32)


# ---------------------------------------------------------------------------- mel front end
_F_SP = 200.0 / 3  # Slaney mel scale: linear below 1 kHz ...
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0  # ... logarithmic above


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel of frequencies in Hz (librosa ``hz_to_mel(htk=False)``)."""
    hz = np.asarray(hz, dtype=np.float64)
    log_part = _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log_part, hz / _F_SP)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), _F_SP * mel)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """Slaney-normalised triangular filters, float64 (n_mels, 1 + n_fft // 2)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # (n_mels + 2,)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)  # (n_mels + 2, bins)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window (scipy ``get_window("hann", n, fftbins=True)``), float64 (n_fft,)."""
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    w.setflags(write=False)
    return w


def logmel(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel spectrogram of mono audio ``y`` (samples,) -> float32 (frames, n_mels), in dB
    for the default config (``compress`` of the mel power under ``cfg.compression``).

    frames = 1 + samples // hop_length; frame t is centred at t * hop_length / sample_rate s.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"logmel expects mono audio (samples,), got shape {y.shape}")
    padded = np.pad(y, cfg.n_fft // 2)  # center=True, constant (zero) padding
    if padded.shape[0] < cfg.n_fft:
        padded = np.pad(padded, (0, cfg.n_fft - padded.shape[0]))
    return logmel_frames(padded, cfg)


def logmel_frames(padded: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel float32 (T, n_mels) dB of every whole ``n_fft`` frame of ``padded`` (samples,)
    float64, frames ``hop_length`` apart from sample 0: T = 1 + (samples - n_fft) // hop_length.

    The frame maths of :func:`logmel` (which pads the song first); the block-wise front end
    (:mod:`iad_tf.audio_blocks`) calls it on overlapping stretches of the padded song.
    """
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft)[:: cfg.hop_length]  # (T, n_fft)
    out = np.empty((frames.shape[0], cfg.n_mels), dtype=np.float32)
    block = 1024  # frames per FFT block: bounded memory for long songs
    for s in range(0, frames.shape[0], block):
        out[s : s + block] = frames_logmel(frames[s : s + block], cfg)
    return out


def frames_logmel(frames: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel float32 (T, n_mels) of T already cut frames (T, n_fft) of (padded) audio:
    Hann window, power spectrum, Slaney mel, :func:`compress`. The per-frame half of
    :func:`logmel` (also used by the streaming front end)."""
    fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, float(cfg.fmin), cfg.fmax)
    frames = np.asarray(frames, dtype=np.float64)
    spec = np.fft.rfft(frames * _hann(cfg.n_fft), axis=1)  # (T, bins)
    mag = spec.real**2 + spec.imag**2
    if cfg.power != 2.0:
        mag = mag ** (cfg.power / 2.0)
    return compress(mag @ fb.T, cfg).astype(np.float32)


def compress(s: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Mel power ``s`` (any shape) -> the feature values of ``cfg.compression``.

    "db": librosa ``power_to_db`` with a scalar ``ref`` (no top_db clipping);
    "log10_1p": ``log10(1 + log_gain * s)`` (musicnn; computed in float64, never float16,
    whose ``10000 * s`` overflows).
    """
    s = np.asarray(s, dtype=np.float64)
    if cfg.compression == "log10_1p":
        return np.log10(1.0 + cfg.log_gain * s)
    if cfg.top_db is not None:
        raise ValueError("top_db clipping depends on the whole song; iad-tf features use top_db=None")
    return 10.0 * np.log10(np.maximum(cfg.amin, s)) - 10.0 * np.log10(max(cfg.amin, abs(cfg.ref)))


def decompress(x: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Inverse of :func:`compress` (above the ``amin`` floor of "db"): features -> mel power."""
    x = np.asarray(x, dtype=np.float64)
    if cfg.compression == "log10_1p":
        return (10.0**x - 1.0) / cfg.log_gain
    return 10.0 ** (x / 10.0) * max(cfg.amin, abs(cfg.ref))


def file_logmel(path: str | Path, cfg: FeatureConfig) -> tuple[np.ndarray, float]:
    """Decode ``path`` and return (log-mel (frames, n_mels), duration in seconds)."""
    y = load_audio(path, cfg.sample_rate)
    return logmel(y, cfg), y.shape[0] / cfg.sample_rate
