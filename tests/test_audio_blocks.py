"""The block-wise front end and windows (bounded memory in ``predict``) equal the whole-file
ones: every frame of a real mp3 and of odd synthetic files at 44.1/48 kHz, the windows and
their stitching for any block split, and the shipped model's probabilities end to end."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from iad_tf.audio import AudioError, decode, load_audio, logmel
from iad_tf.audio_blocks import FileLogmel, logmel_blocks, read_blocks
from iad_tf.config import FeatureConfig
from iad_tf.inference.windows import PAGE_FRAMES, Stitcher, iter_windows, make_windows, stitch

CFG = FeatureConfig()
MIX = "audio-mixes-mp3/1941_mix.mp3"  # 181 s, mono 44.1 kHz, a long fade-out at its end


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """Many small matrix products are slow when OpenBLAS runs threads on a busy machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        yield


def split(x: np.ndarray, size: int) -> list[np.ndarray]:
    return [x[i : i + size] for i in range(0, x.shape[0], size)]


# ---------------------------------------------------------------- real mp3 (the sample)


def test_mp3_blocks_are_the_whole_file_decode(aam_sample: Path) -> None:
    """Regression: python-soundfile's read() seeks around each call, which on mp3 restarts
    mpg123 and zeroes whole mp3 frames (1941's fade-out): block samples must be exact."""
    path = aam_sample / MIX
    whole, sr = decode(path)
    block_sr, blocks = read_blocks(path, 4097)
    got = np.concatenate(list(blocks))
    assert block_sr == sr == 44100
    np.testing.assert_array_equal(got, whole)


def test_blockwise_logmel_equals_whole_file_on_a_real_track(aam_sample: Path) -> None:
    path = aam_sample / MIX
    y = load_audio(path, CFG.sample_rate)
    ref = logmel(y, CFG)  # (frames, 128)
    # ~800 read blocks and 200 log-mel blocks, their boundaries nowhere near hop-aligned
    mel = FileLogmel(path, CFG, block_samples=10007, frames_per_block=37)
    blocks = list(mel)
    got = np.concatenate(blocks)
    assert len(blocks) >= 200
    assert got.shape == ref.shape == (CFG.n_frames_for(y.shape[0]), CFG.n_mels)
    assert mel.n_samples == y.shape[0] and mel.duration_s == pytest.approx(181.4455, abs=1e-3)
    assert np.abs(got - ref).max() <= 1e-3  # every frame, dB
    assert ref.std() > 5.0  # real music, not silence


# ---------------------------------------------------------------- synthetic files


def write_song(path: Path, n: int, sr: int, channels: int = 2, seed: int = 0) -> None:
    """Chirp plus noise with a silent stretch, ``channels`` differing channels, ``n`` samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    y = 0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t) + 0.05 * rng.standard_normal(n)
    y[n // 3 : n // 2] = 0.0
    data = np.stack([y * (0.5 + 0.5 * c) for c in range(channels)], axis=1)
    sf.write(path, data.astype(np.float32), sr, subtype="FLOAT" if path.suffix == ".wav" else None)


@pytest.mark.parametrize(
    ("sr", "n", "block", "frames"),
    [
        (44100, 44100 * 2 + 13, 1000, 3),
        (48000, 48000 + 977, 4097, 1),
        (48000, 48000 * 3 + 1, 65536, 1024),
        (48000, 300, 7, 2),  # shorter than one FFT frame
        (22050, 22050 + 511, 333, 5),  # no resampling
        (44100, 1, 1, 1),  # one sample
    ],
)
def test_blockwise_logmel_equals_whole_file_on_odd_files(
    tmp_path: Path, sr: int, n: int, block: int, frames: int
) -> None:
    path = tmp_path / f"song_{sr}.wav"
    write_song(path, n, sr)
    y = load_audio(path, CFG.sample_rate)
    mel = FileLogmel(path, CFG, block_samples=block, frames_per_block=frames)
    got = np.concatenate(list(mel))
    ref = logmel(y, CFG)
    assert got.shape == ref.shape and mel.n_samples == y.shape[0]
    np.testing.assert_allclose(got, ref, atol=1e-3, rtol=0)
    with pytest.raises(RuntimeError, match="once"):  # not a silent second, empty pass
        list(mel)


def test_blockwise_flac_stereo_mixdown_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "song.flac"
    write_song(path, 44100 + 5, 44100, channels=2)
    whole, _ = decode(path)
    got = np.concatenate(list(read_blocks(path, 999)[1]))
    np.testing.assert_array_equal(got, whole)


def test_logmel_blocks_any_split_equals_logmel() -> None:
    y = np.random.default_rng(3).standard_normal(5 * 512 + 300).astype(np.float32)
    ref = logmel(y, CFG)
    for size in (1, 511, 512, 2048, 4000, 10**6):
        for frames in (1, 2, 4, 1024):
            got = np.concatenate(list(logmel_blocks(split(y, size), CFG, frames)))
            np.testing.assert_allclose(got, ref, atol=1e-3, rtol=0)


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="missing.wav: no such file"):
        FileLogmel(tmp_path / "missing.wav", CFG)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="garbage.mp3"):
        FileLogmel(garbage, CFG)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 22050)
    with pytest.raises(AudioError, match="empty.wav: audio is empty"):
        list(FileLogmel(empty, CFG))
    nan = tmp_path / "nan.wav"
    y = np.zeros(50_000, np.float32)
    y[40_000] = np.nan
    sf.write(nan, y, 22050, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: audio holds NaN"):
        list(FileLogmel(nan, CFG, block_samples=4096))


def test_memory_does_not_grow_with_length() -> None:
    """tracemalloc peak of the block-wise log-mel of 20 s vs 200 s of audio (generated block
    by block): the same few blocks, far below the 200 s song's float64 samples (35 MB)."""

    def song(seconds: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(0)
        for _ in range(seconds):
            yield rng.standard_normal(CFG.sample_rate).astype(np.float32)

    peaks = []
    for seconds in (20, 200):
        tracemalloc.start()
        frames = sum(b.shape[0] for b in logmel_blocks(song(seconds), CFG, 64))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert frames == CFG.n_frames_for(seconds * CFG.sample_rate)
    assert peaks[1] < 1.2 * peaks[0] and peaks[1] < 8e6, peaks


# ---------------------------------------------------------------- windows and stitching


@pytest.mark.parametrize("n_frames", [1, 63, 64, 65, 300, 1001])
def test_windows_cut_from_blocks_equal_the_whole_cut(n_frames: int) -> None:
    rng = np.random.default_rng(n_frames)
    mel = rng.normal(size=(n_frames, 5)).astype(np.float32)
    windows, starts = make_windows(mel, 64, 48, pad_value=-100.0)
    probs = rng.random((len(starts), 64, 3)).astype(np.float32)
    ref = stitch(probs, starts, n_frames, 48)
    for size in (1, 17, 64, 200, 5000):
        cut = list(iter_windows(split(mel, size), 64, 48, -100.0))
        assert [s for s, _, _ in cut] == starts.tolist()
        np.testing.assert_array_equal(np.stack([w for _, w, _ in cut]), windows)
        stitcher = Stitcher(64, 48)
        for (s, _, real), p in zip(cut, probs, strict=True):
            stitcher.add(s, p[:real])
        np.testing.assert_array_equal(stitcher.finish(), ref)


def test_long_song_stitched_from_blocks_gives_the_frames_back() -> None:
    """Several pages of finished frames: a 'model' copying 3 mel bins out gets them back."""
    n = 2 * PAGE_FRAMES + 777
    mel = np.random.default_rng(7).normal(-50, 10, (n, 8)).astype(np.float32)
    stitcher = Stitcher(256, 192)
    for start, window, real in iter_windows(split(mel, 5000), 256, 192, -100.0):
        stitcher.add(start, window[:real, :3])
    np.testing.assert_allclose(stitcher.finish(), mel[:, :3], rtol=1e-6)


def test_stitcher_refuses_out_of_order_and_uncovered_frames() -> None:
    stitcher = Stitcher(8, 4)
    stitcher.add(0, np.ones((8, 2), np.float32))
    stitcher.add(4, np.ones((8, 2), np.float32))
    with pytest.raises(ValueError, match="start order"):
        stitcher.add(2, np.ones((8, 2), np.float32))
    with pytest.raises(ValueError, match="not covered"):
        stitcher.add(20, np.ones((8, 2), np.float32))


# ---------------------------------------------------------------- end to end, shipped model


def test_predict_probabilities_equal_the_whole_file_path(aam_sample: Path) -> None:
    from iad_tf.inference.default_model import default_model_path
    from iad_tf.inference.litert import load_model
    from iad_tf.inference.predict import predict_audio, probabilities

    model = load_model(default_model_path(), threads=1)
    cfg = model.metadata.feature_config
    path = aam_sample / "audio-mixes-mp3/0080_mix.mp3"
    y = load_audio(path, cfg.sample_rate)
    whole = probabilities(model, logmel(y, cfg))  # the old path: whole song, then windows
    pred = predict_audio(path, model)
    np.testing.assert_allclose(pred.probs, whole, rtol=0, atol=1e-6)
    assert pred.duration_s == y.shape[0] / cfg.sample_rate
    small = probabilities(model, FileLogmel(path, cfg, block_samples=6001))
    np.testing.assert_allclose(small, whole, rtol=0, atol=1e-6)
    assert whole.max() > 0.5  # the model hears instruments in a real mix
