"""Issue 21 item 6: predict with a waveform model decodes block by block, like the mel path.
iter_audio_windows cuts exactly padded_song's windows from blocks, holds flat memory over a
20-minute song, and predict never decodes the whole file yet gives the same probabilities."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from iad_tf.config import FeatureConfig
from iad_tf.inference.variants import window_samples
from iad_tf.inference.waveform import iter_audio_windows, padded_song, window_starts

CFG = FeatureConfig()


def in_blocks(y: np.ndarray, sizes: list[int]) -> Iterator[np.ndarray]:
    i, k = 0, 0
    while i < y.shape[0]:
        n = sizes[k % len(sizes)]
        yield y[i : i + n]
        i, k = i + n, k + 1


@pytest.mark.parametrize("n_samples", [1, 700, 2048, 512 * 7 + 3, 512 * 40, 512 * 101 + 77])
@pytest.mark.parametrize("sizes", [[100_000], [1, 513, 4000], [512]])
def test_block_windows_equal_the_whole_song_windows(n_samples: int, sizes: list[int]) -> None:
    window, hop = 8, 6
    y = np.random.default_rng(n_samples).standard_normal(n_samples).astype(np.float32)
    padded, starts, n_frames = padded_song(y, CFG, window, hop)
    length = window_samples(window, CFG)
    got = list(iter_audio_windows(in_blocks(y, sizes), CFG, window, hop))
    assert [s for s, _, _ in got] == list(starts) == list(window_starts(n_frames, window, hop))
    for s, x, real in got:
        np.testing.assert_array_equal(x, padded[s * CFG.hop_length :][:length])
        assert real == min(window, n_frames - s)


def test_a_twenty_minute_song_is_windowed_in_flat_memory() -> None:
    block = 1 << 18
    n_blocks = int(20 * 60 * CFG.sample_rate / block)  # 20 min: 106 MB of float32 at once

    def blocks() -> Iterator[np.ndarray]:
        for k in range(n_blocks):
            yield np.full(block, 0.001 * (k % 7), dtype=np.float32)

    tracemalloc.start()
    n = sum(1 for _ in iter_audio_windows(blocks(), CFG, 256, 192))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == len(window_starts(CFG.n_frames_for(n_blocks * block), 256, 192))
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MB"  # a few blocks, not the song


def test_waveform_predict_never_decodes_the_whole_file_and_matches_the_old_path(
    detector_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import iad_tf.audio as audio
    from iad_tf.inference.litert import load_model
    from iad_tf.inference.predict import predict_audio
    from iad_tf.inference.waveform import waveform_probabilities

    model = load_model(detector_dir / "detector_waveform.tflite")
    sr = 44100
    t = np.arange(int(sr * 9.3)) / sr
    song = tmp_path / "song.flac"
    sf.write(song, (0.3 * np.sin(2 * np.pi * 440 * t) * (t > 2)).astype(np.float32), sr)
    whole = waveform_probabilities(
        model, audio.load_audio(song, model.metadata.feature_config.sample_rate)
    )

    def no_whole_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded the whole file")

    monkeypatch.setattr(audio, "load_audio", no_whole_decode)
    monkeypatch.setattr(audio, "decode", no_whole_decode)
    pred = predict_audio(song, model)
    np.testing.assert_allclose(pred.probs, whole, atol=1e-6)
    assert pred.duration_s == pytest.approx(9.3, abs=1e-3)
