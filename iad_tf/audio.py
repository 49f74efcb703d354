"""Audio decoding and the log-mel front end. No TensorFlow here: predict imports this.

``logmel`` is the single feature function used by build-records, predict, synth checks and
the tests' references.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from iad_tf.config import FeatureConfig

AUDIO_EXTENSIONS: tuple[str, ...] = (".mp3", ".flac", ".wav", ".ogg")


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode any mp3/flac/wav/ogg to mono float32 at ``sample_rate``: array (samples,).

    soundfile decodes (libsndfile handles mp3 too); librosa's loader is the fallback.
    Raises :class:`AudioError` for a missing, undecodable or empty file.
    """
    import librosa
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
        y = data.mean(axis=1)
    except Exception as sf_error:  # noqa: BLE001 - fall back to librosa/audioread
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, sr = librosa.load(str(path), sr=None, mono=True)
        except Exception as exc:  # noqa: BLE001
            raise AudioError(f"{path}: cannot decode audio ({sf_error}; {exc})") from exc
    if y.size == 0:
        raise AudioError(f"{path}: audio is empty")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path}: audio holds NaN or infinite samples")
    if sr != sample_rate:
        y = librosa.resample(y, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)


def logmel(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel spectrogram of mono audio ``y`` (samples,) -> float32 (frames, n_mels) in dB."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        power=cfg.power,
    )  # (n_mels, frames)
    db = librosa.power_to_db(mel, ref=cfg.ref, amin=cfg.amin, top_db=cfg.top_db)
    return np.ascontiguousarray(db.T, dtype=np.float32)  # (frames, n_mels)


def file_logmel(path: str | Path, cfg: FeatureConfig) -> tuple[np.ndarray, float]:
    """Decode ``path`` and return (log-mel (frames, n_mels), duration in seconds)."""
    y = load_audio(path, cfg.sample_rate)
    return logmel(y, cfg), y.shape[0] / cfg.sample_rate
