"""fit under tf.distribute: MirroredStrategy over two logical CPUs matches one device, a run
checkpointed under one strategy resumes under another, and a two-worker
MultiWorkerMirroredStrategy fit on localhost completes with the workers in sync.

TensorFlow's device setup is per process, so every fit here runs in a subprocess.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iad_tf.cli.main import cli
from iad_tf.config import AAM_CLASSES, FeatureConfig
from iad_tf.data.build import assemble_manifest, track_summary
from iad_tf.data.records import record_schema
from iad_tf.training.distribute import StrategyError, read_tf_config
from tests.records_factory import synth_track
from tfrecords_tools.reader import write_manifest
from tfrecords_tools.writer import ShardedWriter

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
N_FRAMES = 48
TRACKS = {  # classes active in each track; 8 train tracks = 2 full batches of 4
    "train": [[0, 8], [8, 9], [0, 9, 22], [22, 8], [1, 8], [0, 22], [9], [1, 9]],
    "val": [[0, 8], [9, 22]],
}


def equal_length_records(out: Path, seed: int = 0) -> Path:
    """Records whose tracks all have N_FRAMES frames (no padding, so every replica's masked
    mean weighs frames as the global one does); manifest from build-records' own assembly."""
    rng = np.random.default_rng(seed)
    cfg = FeatureConfig()
    schema = record_schema(cfg)
    summaries, shards, k = [], {}, 0
    for split, rows in TRACKS.items():
        with ShardedWriter(out, split, 2, schema) as writer:
            for classes in rows:
                k += 1
                mel, labels = synth_track(rng, classes, N_FRAMES)
                rec = {"track_id": f"{k:04d}", "source_id": f"{k:04d}", "split": split,
                       "n_frames": N_FRAMES, "mel": mel, "labels": labels}
                writer.write(rec)
                summaries.append(track_summary({**rec, "audio": "", "duration_s": N_FRAMES * cfg.frame_seconds}))
            shards.update(writer.close())
    write_manifest(out, assemble_manifest(summaries, shards, [], cfg, AAM_CLASSES, "onsets"))
    return out


# A deterministic input pipeline (whole tracks, shuffle buffer 1, no augmentation or
# resampling) so that both strategies see the same batches; see iad_tf.training.distribute.
COMMON = textwrap.dedent(
    """
    import json, sys
    from iad_tf.training.config import ModelConfig, TrainConfig
    MODEL = ModelConfig(dropout=0.0, mlp_units=(16,))
    def train_cfg(epochs):
        return TrainConfig(epochs=epochs, batch_size=4, batching="tracks", augment=False,
                           oversample_factor=1.0, shuffle_buffer=1, learning_rate=1e-2, patience=50)
    def losses(run):
        rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows], [r["val_loss"] for r in rows]
    """
)

MIRRORED = COMMON + textwrap.dedent(
    """
    from pathlib import Path
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from iad_tf.training.distribute import make_strategy
    from iad_tf.training.fit import fit
    records, tmp = Path(sys.argv[1]), Path(sys.argv[2])
    out = {}
    for name in ("default", "mirrored"):
        strategy = make_strategy(name)
        fit(records, tmp / name, "mlp", train_cfg(3), MODEL, strategy=strategy, verbose=0)
        out[name] = {"replicas": strategy.num_replicas_in_sync, "loss": losses(tmp / name)}

    # Checkpoints across strategies: model.keras written under mirrored loads without one.
    model = keras.models.load_model(tmp / "mirrored" / "model.keras")
    x = np.random.default_rng(0).normal(-60, 10, (1, 40, 128)).astype("float32")
    with make_strategy("mirrored").scope():
        again = keras.models.load_model(tmp / "mirrored" / "model.keras")
    out["load"] = float(np.max(np.abs(np.asarray(model(x)) - np.asarray(again(x)))))

    # A run "killed" after epoch 1 under mirrored resumes under the default strategy.
    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.saved = [w.copy() for w in self.model.get_weights()]
            raise KeyboardInterrupt
    class Start(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):  # runs after BackupAndRestore restored the weights
            self.weights = [w.copy() for w in self.model.get_weights()]
    crash, start = Crash(), Start()
    try:
        fit(records, tmp / "resume", "mlp", train_cfg(3), MODEL, strategy=make_strategy("mirrored"),
            verbose=0, extra_callbacks=[crash])
    except KeyboardInterrupt:
        pass
    res = fit(records, tmp / "resume", "mlp", train_cfg(3), MODEL, strategy=make_strategy("default"),
              verbose=0, extra_callbacks=[start])
    out["resume"] = {
        "resumed": res.resumed, "epochs": res.epochs_run,
        "restored_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(crash.saved, start.weights)),
    }
    print("RESULT " + json.dumps(out))
    """
)


def _run(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 85) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout,
        env=env or ENV, cwd=REPO,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_mirrored_two_cpus_matches_default_and_checkpoints_cross(tmp_path: Path) -> None:
    records = equal_length_records(tmp_path / "recs")
    out = _run(MIRRORED, str(records), str(tmp_path))
    assert out["default"]["replicas"] == 1 and out["mirrored"]["replicas"] == 2
    (train_d, val_d), (train_m, val_m) = out["default"]["loss"], out["mirrored"]["loss"]
    assert len(train_d) == len(train_m) == 3
    assert train_d[-1] < train_d[0]  # it learns
    np.testing.assert_allclose(train_m, train_d, rtol=1e-4)  # same trajectory, float order aside
    np.testing.assert_allclose(val_m, val_d, rtol=1e-4)
    assert out["load"] == 0.0
    r = out["resume"]
    assert r["resumed"] and r["epochs"] == 3
    assert r["restored_diff"] == 0.0  # the default-strategy run starts from the mirrored checkpoint


WORKER = COMMON + textwrap.dedent(
    """
    from click.testing import CliRunner
    from iad_tf.cli.main import cli
    records, run, toml = sys.argv[1:4]
    res = CliRunner().invoke(cli, ["fit", "--model", "mlp", "--records", records, "--run-dir", run,
                                   "--config", toml, "--epochs", "2", "--batch-size", "4",
                                   "--batching", "tracks", "--no-augment", "--oversample-factor", "1",
                                   "--learning-rate", "0.01", "--strategy", "multiworker"])
    if res.exit_code:
        print(res.output, res.exception, file=sys.stderr)
        raise SystemExit(1)
    print("RESULT " + json.dumps({"output": res.output}))
    """
)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multiworker_two_processes_on_localhost(tmp_path: Path) -> None:
    records = equal_length_records(tmp_path / "recs")
    toml = tmp_path / "tiny.toml"
    toml.write_text("[model]\nmlp_units = [16]\ndropout = 0.0\n\n[train]\nshuffle_buffer = 1\n")
    run = tmp_path / "run"
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(records), str(run), str(toml)],
            env={**ENV, "TF_CONFIG": json.dumps(tf_config)}, cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    try:
        outs = [p.communicate(timeout=85) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "run directory: " + str(run) in outs[0][0]
    assert "run directory: " + str(run / "workers" / "1") in outs[1][0]
    assert (run / "model.keras").is_file() and not (run / "backup").exists()
    chief = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    other = [json.loads(ln) for ln in (run / "workers" / "1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in chief] == [1, 2]
    assert all(np.isfinite(r["loss"]) for r in chief)
    # Weights stay in sync: both workers score the same validation set with the same numbers,
    # and the logged training loss is the mean over both workers' replicas.
    for a, b in zip(chief, other, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)
        assert a["val_f1_macro"] == pytest.approx(b["val_f1_macro"], rel=1e-6)


def test_tf_config_checks() -> None:
    with pytest.raises(StrategyError, match="needs TF_CONFIG"):
        read_tf_config({})
    with pytest.raises(StrategyError, match="not valid JSON"):
        read_tf_config({"TF_CONFIG": "{"})
    with pytest.raises(StrategyError, match="cluster.worker"):
        read_tf_config({"TF_CONFIG": json.dumps({"cluster": {}, "task": {"type": "worker", "index": 0}})})
    bad_index = {"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}
    with pytest.raises(StrategyError, match="task index 1"):
        read_tf_config({"TF_CONFIG": json.dumps(bad_index)})
    good = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert read_tf_config({"TF_CONFIG": json.dumps(good)}) == good


def test_cli_multiworker_without_tf_config_is_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    records = equal_length_records(tmp_path / "recs")
    res = CliRunner().invoke(
        cli, ["fit", "--records", str(records), "--run-dir", str(tmp_path / "r"), "--strategy", "multiworker"]
    )
    assert res.exit_code == 1 and "needs TF_CONFIG" in res.output
    assert not (tmp_path / "r").exists()
