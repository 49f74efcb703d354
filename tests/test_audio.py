"""The feature function against librosa itself, and decoding errors."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from iad_tf.audio import AudioError, file_logmel, load_audio, logmel, mel_filterbank
from iad_tf.config import FeatureConfig

CFG = FeatureConfig()


def librosa_logmel(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    s = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                       n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, power=cfg.power)
    return librosa.power_to_db(s, ref=cfg.ref, amin=cfg.amin, top_db=None).T


def test_filterbank_equals_librosa() -> None:
    ours = mel_filterbank(22050, 2048, 128, 0.0, None)
    np.testing.assert_allclose(ours, librosa.filters.mel(sr=22050, n_fft=2048, n_mels=128), atol=1e-7)


@pytest.mark.parametrize("n", [1, 300, 2048, 22050 * 3 + 17])
def test_logmel_equals_librosa(n: int) -> None:
    rng = np.random.default_rng(n)
    t = np.arange(n) / CFG.sample_rate
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)
    y[: n // 3] *= 1e-4  # a quiet stretch: low-energy bins must match too
    ours, ref = logmel(y, CFG), librosa_logmel(y, CFG)
    assert ours.shape == ref.shape == (1 + n // CFG.hop_length, 128)
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_logmel_power_1_and_fmax() -> None:
    cfg = FeatureConfig(power=1.0, fmin=30.0, fmax=8000.0, n_mels=64)
    y = np.random.default_rng(1).standard_normal(22050).astype(np.float32)
    np.testing.assert_allclose(logmel(y, cfg), librosa_logmel(y, cfg), atol=1e-3)


def test_load_audio_resamples_and_mixes_down(tmp_path: Path) -> None:
    sr = 44100
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 300 * t), 0.5 * np.sin(2 * np.pi * 700 * t)], axis=1) * 0.4
    path = tmp_path / "x.flac"
    sf.write(path, stereo.astype(np.float32), sr)
    y = load_audio(path, 22050)
    ref = librosa.load(path, sr=22050, mono=True, res_type="soxr_hq")[0]
    assert y.dtype == np.float32 and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-4)
    mel, seconds = file_logmel(path, CFG)
    assert seconds == pytest.approx(1.0, abs=1e-3) and mel.shape == (1 + len(y) // 512, 128)


def test_bad_audio_is_named(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav", 22050)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="garbage.mp3"):
        load_audio(garbage, 22050)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 22050)
    with pytest.raises(AudioError, match="empty"):
        load_audio(empty, 22050)
