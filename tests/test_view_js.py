"""The page's JavaScript against the Python it ports, on the same inputs, in node: predict's
post-processing (thresholds, median window, presence gate, instruments, segments), the
window cut and cross-fade, the log-mel front end (for log-mel models), and the embedded
metadata reader. Skipped, saying why, where node is not installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.inference.predict import song_instruments
from iad_tf.inference.segments import to_segments
from iad_tf.inference.windows import stitch, window_starts
from iad_tf.postprocess import Presence, decide_song
from iad_tf.view.assets import static_dir

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (Node.js) is not installed")
RUNNER = Path(__file__).parent / "view" / "run_js.mjs"


def run_js(module: str, call: str, args: list[Any], typed: dict[int, str] | None = None) -> Any:
    payload = {"static": str(static_dir()), "module": module, "call": call, "args": args,
               "typed": {str(k): v for k, v in (typed or {}).items()}}
    out = subprocess.run([NODE, str(RUNNER)], input=json.dumps(payload), capture_output=True,
                         text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _meta(thresholds: np.ndarray, median_window: int, presence: dict[str, Any] | None) -> dict[str, Any]:
    return {"classes": list(AAM_CLASSES), "thresholds": [float(t) for t in thresholds],
            "median_window": median_window, "feature_config": FeatureConfig().to_dict(),
            "presence": presence or {}}


def _song_probs(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Probabilities (frames, 31) float32 with runs, bursts and borderline classes."""
    base = rng.uniform(0.0, 0.6, size=(1, 31))
    walk = np.cumsum(rng.normal(0, 0.03, size=(frames, 31)), axis=0)
    return np.clip(base + walk + rng.normal(0, 0.08, size=(frames, 31)), 0, 1).astype(np.float32)


BASS = [["DoubleBassArco", "DoubleBassPizz", "ElectricBass", "OrganBass"]]


@pytest.mark.parametrize(
    ("median_window", "presence"),
    [(1, None), (5, None), (5, {"threshold": 0.5, "seconds": 1.0, "one_of": BASS}),
     (9, {"threshold": 0.62, "seconds": 3.0})],
)
def test_decisions_instruments_and_segments_equal_predicts(
    median_window: int, presence: dict[str, Any] | None
) -> None:
    rng = np.random.default_rng(median_window)
    frames = 3000
    probs = _song_probs(rng, frames)
    thresholds = rng.uniform(0.3, 0.7, size=31).astype(np.float32)
    meta = _meta(thresholds, median_window, presence)
    cfg = FeatureConfig()
    duration = frames * cfg.frame_seconds - 0.01
    gate = Presence.from_dict(presence, AAM_CLASSES)
    dec, present = decide_song(probs, thresholds, median_window, gate, cfg.frame_seconds)
    want_inst = song_instruments(AAM_CLASSES, probs, dec, gate, cfg.frame_seconds)
    want_segs = [s.to_dict() for s in to_segments(dec, probs, AAM_CLASSES, cfg.frame_seconds, duration)]

    got = run_js("postprocess.js", "decideSong", [probs.ravel().tolist(), frames, meta, duration],
                 {0: "Float32Array"})
    np.testing.assert_array_equal(np.asarray(got["decisions"], np.uint8).reshape(frames, 31), dec)
    assert got["present"] == present.tolist()
    assert 3 <= len(want_inst) < 31 and len(want_segs) > 10  # the case is not trivial
    assert [i["instrument"] for i in got["instruments"]] == [i["instrument"] for i in want_inst]
    for g, w in zip(got["instruments"], want_inst, strict=True):
        assert g["seconds_active"] == w["seconds_active"]
        assert abs(g["confidence"] - w["confidence"]) <= 1e-4
    assert [(s["instrument"], s["start_s"], s["end_s"]) for s in got["segments"]] == [
        (s["instrument"], s["start_s"], s["end_s"]) for s in want_segs
    ]
    assert np.allclose([s["confidence"] for s in got["segments"]],
                       [s["confidence"] for s in want_segs], atol=1e-4)


def test_presence_one_of_keeps_the_best_bass() -> None:
    frames = 200
    probs = np.zeros((frames, 31), np.float32)
    for name, p in (("ElectricBass", 0.9), ("DoubleBassPizz", 0.95), ("Drums", 0.8)):
        probs[:, AAM_CLASSES.index(name)] = p
    meta = _meta(np.full(31, 0.5), 1, {"threshold": 0.5, "seconds": 1.0, "one_of": BASS})
    got = run_js("postprocess.js", "decideSong", [probs.ravel().tolist(), frames, meta, None],
                 {0: "Float32Array"})
    assert sorted(i["instrument"] for i in got["instruments"]) == ["DoubleBassPizz", "Drums"]


@pytest.mark.parametrize("frames", [1, 100, 256, 257, 1000, 1234])
def test_windows_and_cross_fade_equal_python(frames: int) -> None:
    window, hop = 256, 192
    starts = window_starts(frames, window, hop)
    assert run_js("windows.js", "windowStarts", [frames, window, hop]) == starts.tolist()
    rng = np.random.default_rng(frames)
    wins = rng.uniform(0, 1, size=(len(starts), window, 3)).astype(np.float32)
    reals = [min(window, frames - int(s)) for s in starts]
    want = stitch(wins, starts, frames, hop)
    got = run_js("windows.js", "Stitcher",
                 [window, hop, 3, starts.tolist(), [w.ravel().tolist() for w in wins], reals])
    np.testing.assert_allclose(np.asarray(got, np.float32).reshape(frames, 3), want, atol=1e-6)


def test_js_logmel_equals_logmel_on_real_audio(aam_sample: Path) -> None:
    from iad_tf.audio import load_audio, logmel

    cfg = FeatureConfig()
    y = load_audio(aam_sample / "audio-mixes-mp3" / "0080_mix.mp3", cfg.sample_rate)
    y = y[30 * cfg.sample_rate : 34 * cfg.sample_rate]  # 4 s of the song
    want = logmel(y, cfg)  # (frames, 128)
    padded = np.pad(y.astype(np.float64), cfg.n_fft // 2)
    got = run_js("logmel.js", "LogMel.frames", [cfg.to_dict(), padded.tolist(), want.shape[0]],
                 {1: "Float64Array"})
    got = np.asarray(got, np.float32).reshape(want.shape)
    loud = want > want.max(axis=1, keepdims=True) - 100.0  # bins within 100 dB of the frame's peak
    assert np.abs(got - want)[loud].max() < 1e-3
    assert np.abs(got - want).max() < 0.05


def test_embedded_metadata_read_in_js_equals_python(detector_dir: Path) -> None:
    from iad_tf.inference.embedded import read_embedded_file

    for name in ("detector.tflite", "detector_waveform.tflite"):
        data = (detector_dir / name).read_bytes()
        got = run_js("tflite_meta.js", "readEmbedded", [list(data)], {0: "Uint8Array"})
        assert got == read_embedded_file(detector_dir / name)


def test_js_resampler_is_close_to_soxr_hq(aam_sample: Path) -> None:
    """44.1 -> 22.05 kHz as predict resamples (soxr HQ): the log-mel agrees within 0.3 dB in
    the top band on average (the browser's own resampler: up to 7 dB lower there)."""
    from iad_tf.audio import decode, logmel, resample

    y, sr = decode(aam_sample / "audio-mixes-mp3" / "0080_mix.mp3")
    assert sr == 44100
    y = y[40 * sr : 44 * sr]
    got = np.asarray(run_js("resample.js", "Resampler.run", [sr, 22050, y.tolist()],
                            {2: "Float32Array"}), np.float32)
    want = resample(y, sr, 22050)
    assert got.shape == want.shape
    cfg = FeatureConfig()
    a, b = logmel(want, cfg)[4:-4], logmel(got, cfg)[4:-4]  # (frames, 128), song edges aside
    per_bin = np.abs(a - b).mean(axis=0)
    assert per_bin[:110].max() < 0.01 and per_bin.max() < 0.3


def test_sample_rate_and_length_are_read_from_the_headers(aam_sample: Path, tmp_path: Path) -> None:
    """The rate a file decodes at, and its length before decoding (the page refuses to decode
    more than 30 minutes of compressed audio at once), from mp3 and FLAC headers."""
    import soundfile as sf

    mp3 = aam_sample / "audio-mixes-mp3" / "0080_mix.mp3"  # 129.8 s
    head = mp3.read_bytes()[: 1 << 16]
    assert run_js("audio.js", "sniffRate", [list(head)], {0: "Uint8Array"}) == 44100
    secs = run_js("audio.js", "estimateSeconds", [list(head), mp3.stat().st_size], {0: "Uint8Array"})
    assert abs(secs - sf.info(str(mp3)).duration) < 0.05 * 129.8
    flac = tmp_path / "x.flac"
    sf.write(flac, np.zeros((48000 * 7, 2), np.float32), 48000)
    head = flac.read_bytes()[: 1 << 16]
    assert run_js("audio.js", "sniffRate", [list(head)], {0: "Uint8Array"}) == 48000
    assert run_js("audio.js", "estimateSeconds", [list(head), flac.stat().st_size],
                  {0: "Uint8Array"}) == 7.0
