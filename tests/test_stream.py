"""Streaming: the incremental log-mel, the causal crnn_stream model, its chunk + state export
(float parity with the whole-sequence model, the full-integer attempts), ``iad_tf.inference.Stream``
and ``predict --stream`` on a tone song with known activity, run with TensorFlow unimportable.

The exported model is a hand-wired crnn_stream tone detector (tests/stream_detector.py), so
the true activity of every song is known."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from iad_tf.audio import logmel
from iad_tf.audio_stream import IncrementalLogMel
from iad_tf.cli.main import cli
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.inference.live import LiveDecider
from iad_tf.postprocess import decide
from tests.detector_model import write_song
from tests.records_factory import make_records
from tests.stream_detector import CHUNK_FRAMES, MEL_STATS, build_stream_detector, model_config

REPO = Path(__file__).resolve().parents[1]
CFG = FeatureConfig()
#: The song of the live test: (start, end) seconds per instrument.
ACTIVITY = {"Flute": [(1.0, 3.5), (5.0, 6.0)], "ElectricBass": [(2.5, 6.0)]}
SONG_S = 8.0


def pushed_in_blocks(push: Any, y: np.ndarray, seed: int) -> list[np.ndarray]:
    """``push`` ``y`` in random blocks of 1..3000 samples (also the sizes of edge cases)."""
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < y.size:
        k = int(rng.choice([1, 511, 512, 513, int(rng.integers(1, 3000))]))
        out.append(push(y[i : i + k]))
        i += k
    return out


# ---------------------------------------------------------------- numpy only


@pytest.mark.parametrize("n", [0, 1, 1023, 1024, 1025, 2048, 3 * 22050 + 17])
def test_incremental_logmel_equals_logmel(n: int) -> None:
    y = np.random.default_rng(n).normal(0, 0.1, n).astype(np.float32)
    inc = IncrementalLogMel(CFG)
    frames = pushed_in_blocks(inc.push, y, seed=n)
    assert inc.frames_out == sum(f.shape[0] for f in frames)  # nothing held back needlessly...
    # ... each frame comes out as soon as its n_fft/2 samples of look-ahead have arrived
    assert inc.frames_out == (0 if n + 1024 < 2048 else 1 + (n + 1024 - 2048) // 512)
    got = np.concatenate([*frames, inc.flush()])
    ref = logmel(y, CFG)
    assert got.shape == ref.shape == (CFG.n_frames_for(n), CFG.n_mels)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    with pytest.raises(ValueError, match="flushed"):
        inc.push(y[:10])


def test_live_decisions_equal_offline_decide() -> None:
    rng = np.random.default_rng(0)
    probs = rng.random((300, 4)).astype(np.float32)
    probs[100:180, 1] = 0.9  # a long run among the noise
    thr = np.array([0.5, 0.6, 0.4, 0.7])
    for window in (1, 5):
        live = LiveDecider(["a", "b", "c", "d"], thr, window, CFG.frame_seconds)
        events, t = [], 0
        while t < probs.shape[0]:
            k = int(rng.integers(1, 40))
            events += live.update(probs[t : t + k], now_s=(t + k) * CFG.frame_seconds)
            t += k
        events += live.finish(now_s=probs.shape[0] * CFG.frame_seconds)
        offline = decide(probs, thr, window)
        np.testing.assert_array_equal(np.concatenate(live.decisions), offline)
        starts = [e for e in events if e.kind == "starts"]
        stops = [e for e in events if e.kind == "stops"]
        n_runs = int((np.diff(np.vstack([np.zeros((1, 4)), offline]), axis=0) == 1).sum())
        assert len(starts) == len(stops) == n_runs
        # a decision waits for window // 2 later frames: latency >= that
        assert all(e.latency_s >= (window // 2) * CFG.frame_seconds - 1e-9 for e in events[:-4])


# ---------------------------------------------------------------- the Keras model


def test_crnn_stream_is_causal_and_its_chunks_equal_the_whole_sequence() -> None:
    import keras

    from iad_tf.training.config import ModelConfig
    from iad_tf.training.models import build_crnn_stream_step, build_model, stream_state_names

    keras.utils.set_random_seed(1)
    cfg = ModelConfig(conv_blocks=((4, 4), (8, 4)), gru_units=8)
    model = build_model("crnn_stream", cfg)
    rng = np.random.default_rng(1)
    for layer in model.layers:  # non-trivial batch-norm statistics
        if layer.name.endswith("_bn"):
            layer.set_weights(
                [w + rng.random(w.shape).astype(np.float32) for w in layer.get_weights()]
            )
    x = rng.normal(0, 1, (1, 100, 128)).astype(np.float32)
    whole = np.asarray(model(x))
    changed = x.copy()
    changed[:, 60:] += 5.0
    after = np.asarray(model(changed))
    np.testing.assert_array_equal(after[:, :60], whole[:, :60])  # no look-ahead at all
    assert np.abs(after[:, 60:] - whole[:, 60:]).max() > 1e-3

    step = build_crnn_stream_step(cfg, None, CHUNK_FRAMES)
    for layer in step.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    names = stream_state_names(cfg)
    assert names == ("conv0", "conv1", "gru")
    states = [np.zeros(tuple(t.shape), np.float32) for t in step.inputs[1:]]
    xp = np.concatenate([x, np.zeros((1, 12, 128), np.float32)], axis=1)  # 7 chunks of 16
    out = []
    for s in range(0, xp.shape[1], CHUNK_FRAMES):
        res = step([xp[:, s : s + CHUNK_FRAMES], *states])
        out.append(np.asarray(res["logits"]))
        states = [np.asarray(res[n]) for n in names]
    np.testing.assert_allclose(np.concatenate(out, axis=1)[:, :100], whole, atol=1e-5)


# ---------------------------------------------------------------- export (the CLI)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A crnn_stream run (the hand-wired detector) exported by ``iad-tf export``."""
    from iad_tf.training.config import TrainConfig, run_config_dict

    tmp = tmp_path_factory.mktemp("stream")
    records = make_records(tmp / "records", n_frames=300)
    run = tmp / "run"
    run.mkdir()
    config = run_config_dict(
        "crnn_stream", model_config(), TrainConfig(), CFG, AAM_CLASSES, records, MEL_STATS, None
    )
    (run / "config.json").write_text(json.dumps(config))
    model = build_stream_detector()
    model.save(run / "model.keras")
    res = CliRunner().invoke(
        cli,
        [
            "export",
            "--run",
            str(run),
            "--out",
            str(tmp / "out"),
            "--window-frames",
            "64",
            "--name",
            "m",
            "--quantize",  # dynamic: the offline part skips the slow int8 attempt; the stream
            "dynamic",  # part still tries full-integer int8 (it does unless --quantize none)
        ],
    )
    return {
        "tmp": tmp,
        "records": records,
        "out": tmp / "out",
        "output": res.output,
        "code": res.exit_code,
        "model": model,
    }


def test_export_writes_a_checked_stream_model(exported: dict[str, Any]) -> None:
    from iad_tf.export.data import read_tracks
    from iad_tf.export.serving import keras_probs
    from iad_tf.inference.stream import load_stream_model
    from tfrecords_tools.reader import read_manifest

    assert exported["code"] == 0, exported["output"]
    out = exported["out"]
    assert re.search(
        r"stream float32 \(chunked vs whole sequence\): max \|dp\| = \S+ \(bound 1e-05\) ok",
        exported["output"],
    )
    report = json.loads((out / "m_stream_export.json").read_text())
    parity = [c for c in report["checks"] if c["measure"] == "max |dp|"][0]
    assert parity["passed"] and parity["value"] <= 1e-5
    md = json.loads((out / "m_stream.json").read_text())
    assert md["window_frames"] == md["hop_frames"] == CHUNK_FRAMES
    assert md["stream"]["chunk_frames"] == CHUNK_FRAMES and md["stream"]["lookahead_frames"] == 0
    assert md["stream"]["states"] == {"conv0": [1, 2, 128, 1], "gru": [1, 31]}
    assert md["stream"]["algorithmic_latency_s"] == pytest.approx(
        (15 * 512 + 1024) / 22050, abs=1e-4
    )
    # every full-integer attempt is recorded; the kept file is the first one that passed
    attempts = md["quantization"]["attempts"]
    assert report["quantization_attempts"] == attempts and attempts[0]["mode"] == "int8"
    assert all(a["reason"] for a in attempts)
    kept = [a["mode"] for a in attempts if a["ok"]]
    for mode in ("int8", "int16x8"):
        assert (out / f"m_stream_{mode}.tflite").is_file() == (mode in kept)
    assert kept == ["int8"]  # the detector's decisions survive int8
    assert attempts[0]["bytes"] < 200_000
    q = json.loads((out / "m_stream_int8.json").read_text())
    assert q["quantization"]["mode"] == "int8" and q["stream"] == md["stream"]
    # the offline files are there as for every run
    assert (out / "m.tflite").is_file() and (out / "m_stream.tflite").is_file()
    # independent of the export's own check: chunk by chunk == whole sequence (Keras)
    records = exported["records"]
    _, mel, _ = read_tracks(records, "val", read_manifest(records))[0]
    got = load_stream_model(out / "m_stream.tflite").run_frames(mel)
    np.testing.assert_allclose(got, keras_probs(exported["model"], mel[None])[0], atol=1e-5)


def test_wrong_kind_of_model_gives_a_clear_message(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    out = exported["out"]
    song = write_song(tmp_path / "s.wav", {"Flute": [(0.2, 0.8)]}, 1.0)
    res = CliRunner().invoke(cli, ["predict", str(song), "--model", str(out / "m_stream.tflite")])
    assert res.exit_code == 1 and "a streaming model" in res.output and "--stream" in res.output
    res = CliRunner().invoke(
        cli, ["predict", str(song), "--stream", "--model", str(out / "m.tflite")]
    )
    assert res.exit_code == 1 and "m.tflite: not a streaming model" in res.output
    res = CliRunner().invoke(cli, ["predict", str(song), "--stream"])
    assert res.exit_code == 2 and "--stream needs --model" in res.output
    assert "Traceback" not in res.output


def test_a_crashing_or_broken_integer_file_does_not_take_the_export_down(tmp_path: Path) -> None:
    from iad_tf.export.stream import run_isolated

    bad = tmp_path / "x_stream_int8.tflite"
    bad.write_bytes(b"\x00not a model" * 64)
    with pytest.raises(RuntimeError, match=r"x_stream_int8.tflite: the LiteRT interpreter failed"):
        run_isolated(bad, [np.zeros((20, 128), np.float32)])


# ---------------------------------------------------------------- TF-free: Stream and predict --stream

LIVE_SCRIPT = """
import json, sys
sys.modules['tensorflow'] = None
sys.modules['keras'] = None
import numpy as np
from iad_tf.audio import load_audio, logmel
from iad_tf.inference import Stream
from tests.test_stream import pushed_in_blocks

model, song = sys.argv[1], sys.argv[2]
stream = Stream(model)
y = load_audio(song, 22050)
got = np.concatenate([*pushed_in_blocks(stream.push, y, seed=3), stream.flush()])
offline = stream.model.run_frames(logmel(y, stream.cfg))
print(json.dumps({"frames": got.shape[0], "offline_frames": offline.shape[0],
                  "max_diff": float(np.abs(got - offline).max())}))
sys.stdout.flush()
from iad_tf.cli.main import cli
cli(['predict', '--stream', song, '--model', model])
"""


@pytest.fixture(scope="module")
def live(exported: dict[str, Any]) -> dict[str, Any]:
    song = write_song(exported["tmp"] / "live.wav", ACTIVITY, SONG_S)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", LIVE_SCRIPT, str(exported["out"] / "m_stream.tflite"), str(song)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, rest = proc.stdout.split("\n", 1)
    return {"push": json.loads(first), "output": rest}


def test_stream_push_in_random_blocks_equals_the_offline_run(live: dict[str, Any]) -> None:
    push = live["push"]
    assert push["frames"] == push["offline_frames"] == CFG.n_frames_for(int(SONG_S * 22050))
    assert push["max_diff"] <= 1e-5


def test_predict_stream_prints_starts_and_stops_near_the_truth(live: dict[str, Any]) -> None:
    out = live["output"]
    pattern = r"^\s*([\d.]+) s  (\w+)\s+(starts|stops)\s+\(latency ([\d.]+) s\)$"
    events = [(m[2], m[3], float(m[1]), float(m[4])) for m in re.finditer(pattern, out, re.M)]
    truth = sorted(
        [(name, "starts", a) for name, spans in ACTIVITY.items() for a, _ in spans]
        + [(name, "stops", b) for name, spans in ACTIVITY.items() for _, b in spans],
        key=lambda e: (e[2], e[0]),
    )
    assert [(n, k) for n, k, _, _ in sorted(events, key=lambda e: (e[2], e[0]))] == [
        (n, k) for n, k, _ in truth
    ], out
    worst = (15 * 512 + 1024 + 1024) / 22050  # chunk wait + frame look-ahead + one pushed block
    for (name, kind, t, latency), (_, _, true_t) in zip(
        sorted(events, key=lambda e: (e[2], e[0])), truth, strict=True
    ):
        assert abs(t - true_t) <= 0.07, (name, kind, t, true_t)
        assert 0.0 < latency <= worst + 1e-6, (name, kind, latency)
    assert "algorithmic latency <= 0.395 s" in out
    assert "live.wav: 6 events in 8.0 s" in out
