"""iad-tf predict: windows/stitching, segments, the CLI on generated audio, bad input, and
running with TensorFlow unimportable. The model is a hand-wired tone detector exported by
the real exporter (tests/detector_model.py), so the true activity of every song is known."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from iad_tf.cli.main import cli
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.inference.segments import Segment, runs, seconds_active, to_segments
from iad_tf.inference.windows import edge_weights, make_windows, silence_db, stitch, window_starts
from tests.detector_model import FEATURE, WINDOW_FRAMES, WRITE_SR, write_song

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def detector(detector_dir: Path) -> Path:
    return detector_dir / "detector.tflite"


def run_cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output + (
        str(res.exception) if res.exception and not isinstance(res.exception, SystemExit) else ""
    )


def overlap_s(segs: list[dict], instrument: str, a: float, b: float) -> float:
    return sum(
        max(0.0, min(b, s["end_s"]) - max(a, s["start_s"]))
        for s in segs
        if s["instrument"] == instrument
    )


# ---------------------------------------------------------------- windows, segments (numpy only)


@pytest.mark.parametrize("n_frames", [1, 30, 64, 65, 200, 1001])
def test_windows_cover_every_frame_and_stitch_back_exactly(n_frames: int) -> None:
    rng = np.random.default_rng(n_frames)
    mel = rng.normal(-50, 10, (n_frames, 128)).astype(np.float32)
    windows, starts = make_windows(mel, 64, 48, pad_value=-100.0)
    assert windows.shape == (len(starts), 64, 128)
    assert starts[0] == 0 and starts[-1] == max(0, n_frames - 64)
    assert np.all(np.diff(starts) <= 48)  # no gaps
    if n_frames < 64:
        np.testing.assert_array_equal(windows[0, n_frames:], -100.0)  # padded with silence
    # a 'model' that copies 3 mel bins out: stitching must give the frames back unchanged
    stitched = stitch(windows[..., :3], starts, n_frames, 48)
    np.testing.assert_allclose(stitched, mel[:, :3], rtol=1e-6)


def test_stitch_cross_fades_disagreeing_windows() -> None:
    starts = window_starts(100, 64, 36)  # [0, 36]: overlap frames 36..63
    probs = np.stack([np.zeros((64, 1)), np.ones((64, 1))]).astype(np.float32)
    out = stitch(probs, starts, 100, 36)[:, 0]
    assert np.all(out[:36] == 0) and np.all(out[64:] == 1)
    assert np.all(np.diff(out[36:64]) > 0)  # a monotone hand-over, not a jump
    assert edge_weights(64, 28)[0] < edge_weights(64, 28)[32] == 1.0


def test_silence_db_is_the_log_mel_of_zeros() -> None:
    from iad_tf.audio import logmel

    cfg = FeatureConfig()
    assert logmel(np.zeros(4096, np.float32), cfg).max() == pytest.approx(silence_db(cfg))


def test_segments_from_decisions_hand_example() -> None:
    assert runs(np.array([0, 1, 1, 0, 1])) == [(1, 3), (4, 5)]
    dec = np.zeros((6, 3), np.uint8)
    dec[1:3, 0] = 1
    dec[2:6, 2] = 1
    probs = np.where(dec, 0.8, 0.1).astype(np.float32)
    probs[2, 2] = 0.6
    segs = to_segments(dec, probs, ["a", "b", "c"], frame_seconds=0.5, duration_s=2.8)
    assert segs == [Segment("a", 0.5, 1.5, 0.8), Segment("c", 1.0, 2.8, pytest.approx(0.75))]
    assert seconds_active(segs) == {"c": 1.8, "a": 1.0}


# ---------------------------------------------------------------- predict end to end


def test_predict_finds_the_known_activity(detector: Path, tmp_path: Path) -> None:
    activity = {"Flute": [(1.0, 3.5), (5.0, 6.0)], "ElectricBass": [(2.5, 6.0)]}
    song = write_song(tmp_path / "song.wav", activity, 8.0)
    code, out = run_cli(
        "predict",
        str(song),
        "--model",
        str(detector),
        "--out",
        str(tmp_path / "out"),
        "--median-window",
        "5",
        "--plot",
    )
    assert code == 0, out
    assert "song.wav (0:08): " in out and "Flute" in out and "ElectricBass" in out
    res = json.loads((tmp_path / "out" / "song.json").read_text())
    segs = res["segments"]
    assert {s["instrument"] for s in segs} == {"Flute", "ElectricBass"}
    for name, spans in activity.items():
        truth = sum(b - a for a, b in spans)
        hit = sum(overlap_s(segs, name, a, b) for a, b in spans)
        predicted = sum(s["end_s"] - s["start_s"] for s in segs if s["instrument"] == name)
        assert hit > 0.95 * truth, (name, hit, truth)  # the activity is found ...
        assert predicted < truth + 0.3, (name, predicted, truth)  # ... and little else
        assert all(s["confidence"] > 0.5 for s in segs if s["instrument"] == name)
    # frame probabilities: one row per frame of the 22.05 kHz log-mel
    npz = np.load(tmp_path / "out" / "song.npz")
    n = FEATURE.n_frames_for(8 * FEATURE.sample_rate)
    assert npz["probs"].shape == (n, len(AAM_CLASSES)) and npz["decisions"].shape == (
        n,
        len(AAM_CLASSES),
    )
    assert list(npz["classes"]) == list(AAM_CLASSES)
    np.testing.assert_allclose(npz["times"][1], FEATURE.frame_seconds)
    flute = npz["probs"][:, AAM_CLASSES.index("Flute")]
    assert (
        flute[npz["times"] < 0.8].max() < 0.1
        and flute[(npz["times"] > 1.2) & (npz["times"] < 3.3)].min() > 0.9
    )
    png = tmp_path / "out" / "song.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_silence_gives_no_segments_and_short_audio_is_padded(
    detector: Path, tmp_path: Path
) -> None:
    sf.write(tmp_path / "silence.ogg", np.zeros(3 * WRITE_SR, np.float32), WRITE_SR)
    short_s = 0.6  # 26 frames < the 64-frame window
    write_song(tmp_path / "short.flac", {"Flute": [(0.1, 0.4)]}, short_s, stereo=False)
    code, out = run_cli(
        "predict",
        str(tmp_path),
        "--model",
        str(detector),
        "--out",
        str(tmp_path / "out"),
        "--format",
        "csv",
    )
    assert code == 0, out
    assert "silence.ogg (0:03): no instrument detected" in out
    assert (tmp_path / "out" / "silence.csv").read_text().splitlines() == [
        "instrument,start_s,end_s,confidence"
    ]
    assert np.load(tmp_path / "out" / "silence.npz")["probs"].max() < 0.01
    rows = (tmp_path / "out" / "short.csv").read_text().splitlines()[1:]
    assert rows and all(r.startswith("Flute,") for r in rows)
    start, end = map(float, rows[0].split(",")[1:3])
    assert start < 0.15 and 0.35 < end <= short_s
    n = FEATURE.n_frames_for(round(short_s * FEATURE.sample_rate))
    assert n < WINDOW_FRAMES and np.load(tmp_path / "out" / "short.npz")["probs"].shape[0] == n


def test_unreadable_and_missing_files_are_reported_and_skipped(
    detector: Path, tmp_path: Path
) -> None:
    songs = tmp_path / "songs"
    (songs / "sub").mkdir(parents=True)
    write_song(songs / "sub" / "good.wav", {"Flute": [(0.5, 1.5)]}, 2.0)
    (songs / "broken.flac").write_bytes(b"not audio at all" * 50)
    code, out = run_cli(
        "predict",
        str(songs),
        str(tmp_path / "nope.mp3"),
        "--model",
        str(detector),
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 1
    assert "broken.flac" in out and "nope.mp3: no such file or directory" in out
    assert "1 song(s) written" in out and "2 path(s) failed, 1 succeeded" in out
    assert "Traceback" not in out
    assert (tmp_path / "out" / "sub" / "good.json").is_file()  # the folder layout is mirrored


def _copy_model(detector: Path, dest: Path) -> Path:
    dest.mkdir()
    shutil.copy(detector, dest / "m.tflite")
    shutil.copy(detector.with_suffix(".json"), dest / "m.json")
    return dest / "m.tflite"


def _set_metadata(model: Path, md: dict | None) -> None:
    """Write ``md`` as the sidecar and embed it in ``model`` (``None``: remove the embedded copy)."""
    from iad_tf.inference.embedded import embed_metadata

    model.write_bytes(embed_metadata(model.read_bytes(), md))
    if md is not None:
        model.with_suffix(".json").write_text(json.dumps(md))


def test_bad_models_give_clear_messages(detector: Path, tmp_path: Path) -> None:
    song = write_song(tmp_path / "s.wav", {"Flute": [(0.0, 1.0)]}, 1.0)
    cases = {}
    cases["missing file"] = (tmp_path / "none.tflite", "model file not found")
    corrupt = _copy_model(detector, tmp_path / "corrupt")
    corrupt.write_bytes(b"\x00garbage" * 100)
    cases["corrupt"] = (corrupt, "not a valid TFLite model")
    no_meta = _copy_model(detector, tmp_path / "nometa")
    _set_metadata(no_meta, None)  # neither embedded nor a sidecar
    no_meta.with_suffix(".json").unlink()
    cases["no metadata"] = (no_meta, "model metadata not found")
    bad_json = _copy_model(detector, tmp_path / "badjson")
    _set_metadata(bad_json, None)  # an older export: sidecar only
    bad_json.with_suffix(".json").write_text("{ not json")
    cases["bad json"] = (bad_json, "not valid JSON")
    for key, value, msg in [
        ("window_frames", 128, "input mel is (1, 64, 128), metadata says (1, 128, 128)"),
        ("classes", list(AAM_CLASSES[:30]), "31 thresholds for 30 classes"),
    ]:
        p = _copy_model(detector, tmp_path / f"mismatch_{key}")
        md = json.loads(p.with_suffix(".json").read_text())
        md[key] = value
        _set_metadata(p, md)
        cases[key] = (p, msg)
    p = _copy_model(detector, tmp_path / "fewer_classes")
    md = json.loads(p.with_suffix(".json").read_text())
    md["classes"], md["thresholds"] = md["classes"][:30], md["thresholds"][:30]
    _set_metadata(p, md)
    cases["class count"] = (p, "metadata says (1, 64, 30) (30 classes)")
    for name, (model, msg) in cases.items():
        code, out = run_cli(
            "predict", str(song), "--model", str(model), "--out", str(tmp_path / "out")
        )
        assert code == 1, (name, out)
        assert msg in out and str(model.with_suffix("")) in out, (name, out)  # names the file
        assert "Traceback" not in out, name
    code, out = run_cli("predict", str(song), "--model", str(detector), "--median-window", "4")
    assert code == 2 and "must be an odd number" in out


def test_predict_runs_with_tensorflow_unimportable(detector: Path, tmp_path: Path) -> None:
    song = write_song(tmp_path / "s.wav", {"ElectricBass": [(0.5, 1.5)]}, 2.0)
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"
        "sys.modules['keras'] = None\n"
        "from iad_tf.cli.main import cli\n"
        f"cli(['predict', {str(song)!r}, '--model', {str(detector)!r}, '--out', {str(tmp_path / 'out')!r}, '--plot'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ElectricBass" in proc.stdout
    segs = json.loads((tmp_path / "out" / "s.json").read_text())["segments"]
    assert overlap_s(segs, "ElectricBass", 0.5, 1.5) > 0.9
    assert (tmp_path / "out" / "s.png").stat().st_size > 1000  # plots are TF-free too
