"""End to end: fit writes every artifact and lowers the loss, a killed run resumes, and bad
input fails before training with a clear message (library and CLI)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from iad_tf.cli.main import cli
from iad_tf.config import FeatureConfig
from iad_tf.training.config import ModelConfig, TrainConfig
from iad_tf.training.fit import fit
from tests.records_factory import make_records

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = ModelConfig(conv_blocks=((4, 4), (8, 4)), gru_units=8)
TRAIN = TrainConfig(
    epochs=2, batch_size=2, batching="windows", window_seconds=1.0, learning_rate=3e-3, augment=True
)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_records(tmp_path_factory.mktemp("recs"), n_frames=120, seed=0)


def read_history(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "history.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_fit_two_epochs_writes_every_artifact(records: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = fit(records, run, "crnn", TRAIN, TINY_MODEL, verbose=0)
    assert result.epochs_run == 2 and not result.resumed

    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model_name"] == "crnn" and cfg["train"]["epochs"] == 2
    assert cfg["feature_config"] == FeatureConfig().to_dict() and len(cfg["classes"]) == 31
    assert cfg["model"]["gru_units"] == 8 and len(cfg["pos_weight"]) == 31
    assert len(cfg["mel_stats"]["mean"]) == 128

    hist = read_history(run)
    assert [int(r["epoch"]) for r in hist] == [0, 1]
    assert float(hist[1]["loss"]) < float(hist[0]["loss"])
    assert {
        "val_f1_macro",
        "val_f1_micro",
        "val_f1_weighted",
        "val_hamming_loss",
        "val_jaccard_samples",
        "val_loss",
    } <= set(hist[0])

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0]["val_f1_macro"] == pytest.approx(float(hist[0]["val_f1_macro"]))

    model = keras.models.load_model(run / "model.keras")  # custom objects resolve by registration
    out = np.asarray(model(np.full((1, 50, 128), -60.0, np.float32)))
    assert out.shape == (1, 50, 31)
    assert any((run / "logs").rglob("events.out.tfevents.*"))
    assert not (run / "backup").exists()  # removed once the run finished
    assert result.best["val_f1_macro"] == max(float(r["val_f1_macro"]) for r in hist)


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import keras
    from iad_tf.training.config import ModelConfig, TrainConfig
    from iad_tf.training.fit import fit

    class KillAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # like a crash: no cleanup at all

    fit(sys.argv[1], sys.argv[2], "mlp", TrainConfig(epochs=3, batching="windows", window_seconds=1.0),
        ModelConfig(mlp_units=(16,)), verbose=0, extra_callbacks=[KillAfterFirstEpoch()])
    """
)


def test_killed_run_resumes(records: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(records), str(run)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (run / "backup").is_dir()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1

    result = fit(
        records,
        run,
        "mlp",
        TrainConfig(epochs=3, batching="windows", window_seconds=1.0),
        ModelConfig(mlp_units=(16,)),
        verbose=0,
    )
    assert result.resumed
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # continued at epoch 2, nothing repeated
    assert [int(r["epoch"]) for r in read_history(run)] == [0, 1, 2]
    assert not (run / "backup").exists()


def test_bad_inputs_fail_before_training(records: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fit(tmp_path / "nope", tmp_path / "r1", "crnn", TRAIN)
    with pytest.raises(ValueError, match="unknown model 'lstm'"):
        fit(records, tmp_path / "r2", "lstm", TRAIN)
    other = make_records(
        tmp_path / "hop256",
        tracks={"train": [[0]], "val": [[0]]},
        n_frames=30,
        feature=FeatureConfig(hop_length=256),
    )
    with pytest.raises(ValueError, match="hop_length: expected 512"):
        fit(other, tmp_path / "r3", "crnn", TRAIN)
    empty_val = make_records(
        tmp_path / "noval", tracks={"train": [[0], [1]], "val": []}, n_frames=30
    )
    with pytest.raises(ValueError, match="split 'val' has no tracks"):
        fit(empty_val, tmp_path / "r4", "crnn", TRAIN)
    for name in ("r1", "r2", "r3", "r4"):
        assert not (tmp_path / name).exists()  # nothing written


def test_cli_bad_input_is_one_line_error(records: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        cli, ["fit", "--records", str(tmp_path / "missing"), "--run-dir", str(tmp_path / "run")]
    )
    assert res.exit_code == 1
    assert (
        "Error:" in res.output and "does not exist" in res.output and "Traceback" not in res.output
    )
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[train]\nepochz = 3\n")
    res = runner.invoke(
        cli,
        [
            "fit",
            "--records",
            str(records),
            "--run-dir",
            str(tmp_path / "run"),
            "--config",
            str(bad_toml),
        ],
    )
    assert res.exit_code == 1 and "unknown keys ['epochz']" in res.output


def test_cli_toml_and_overrides(records: Path, tmp_path: Path) -> None:
    toml = tmp_path / "cfg.toml"
    toml.write_text(
        '[model]\nmlp_units = [8]\n[train]\nepochs = 5\nbatching = "windows"\nwindow_seconds = 1.0\n'
    )
    run = tmp_path / "run"
    res = CliRunner().invoke(
        cli,
        [
            "fit",
            "--model",
            "mlp",
            "--records",
            str(records),
            "--run-dir",
            str(run),
            "--config",
            str(toml),
            "--epochs",
            "1",
            "--no-augment",
        ],
    )
    assert res.exit_code == 0, res.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["epochs"] == 1 and cfg["train"]["augment"] is False  # CLI beats TOML
    assert cfg["train"]["window_seconds"] == 1.0 and cfg["model"]["mlp_units"] == [
        8
    ]  # TOML beats defaults
    assert "best epoch 1" in res.output


def test_fit_separable_conv_model(records: Path, tmp_path: Path) -> None:
    """ModelConfig.conv_kind reaches the built model through fit and travels in config.json."""
    import dataclasses

    run = tmp_path / "sep"
    cfg = dataclasses.replace(TINY_MODEL, conv_kind="separable")
    fit(records, run, "crnn", dataclasses.replace(TRAIN, epochs=1), cfg, verbose=0)
    assert json.loads((run / "config.json").read_text())["model"]["conv_kind"] == "separable"
    assert np.isfinite(float(read_history(run)[0]["loss"]))
    model = keras.models.load_model(run / "model.keras")
    assert isinstance(model.get_layer("conv1_conv"), keras.layers.SeparableConv2D)


def test_unfinished_run_from_before_a_new_config_field_resumes(tmp_path: Path) -> None:
    """An unfinished run whose config.json predates a ModelConfig/TrainConfig field (so lacks
    it: the run used its default) resumes; a real difference still refuses."""
    from iad_tf.training.fit import _prepare_run_dir

    new = {"model_name": "crnn", "model": TINY_MODEL.to_dict(), "train": TRAIN.to_dict()}
    old = {**new, "model": {k: v for k, v in new["model"].items() if k != "conv_kind"},
           "train": {k: v for k, v in new["train"].items() if k != "steps_per_epoch"}}
    (tmp_path / "backup").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert _prepare_run_dir(tmp_path, new) is True
    changed = {**new, "model": {**new["model"], "gru_units": 16}}
    with pytest.raises(ValueError, match="model.gru_units"):
        _prepare_run_dir(tmp_path, changed)


def test_an_unfinished_run_that_named_the_local_copy_of_its_records_resumes(tmp_path: Path) -> None:
    """Before runs named the URL they were trained from, config.json held the local copy's
    folder (or a relative path): such an unfinished run still resumes; other records refuse."""
    from iad_tf.training.fit import _prepare_run_dir

    cache = tmp_path / "cache" / "records" / "0123"
    new = {"model_name": "crnn", "records_dir": "s3://b/rec"}
    (tmp_path / "run" / "backup").mkdir(parents=True)
    (tmp_path / "run" / "config.json").write_text(json.dumps({**new, "records_dir": str(cache)}))
    assert _prepare_run_dir(tmp_path / "run", new, cache) is True
    with pytest.raises(ValueError, match="records_dir"):
        _prepare_run_dir(tmp_path / "run", new, tmp_path / "elsewhere")


def test_cosine_schedule_decays_the_learning_rate_to_zero_over_the_run(records: Path, tmp_path: Path) -> None:
    """lr_schedule "cosine": the rate starts at learning_rate, is half of it midway and 0 at
    the run's last step (epochs x steps per epoch); the saved model keeps the schedule."""
    import dataclasses

    from iad_tf.training.optimizers import learning_rate

    cfg = dataclasses.replace(TRAIN, lr_schedule="cosine", steps_per_epoch=3, checkpoint="last")
    sched = learning_rate(cfg, total_steps=6)
    assert [float(sched(s)) for s in (0, 3, 6)] == pytest.approx([3e-3, 1.5e-3, 0.0], abs=1e-9)
    assert learning_rate(TRAIN, None) == TRAIN.learning_rate
    with pytest.raises(ValueError, match="total number of steps"):
        learning_rate(cfg, None)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")  # type: ignore[arg-type]

    run = tmp_path / "cos"
    fit(records, run, "crnn", cfg, TINY_MODEL, verbose=0)
    assert json.loads((run / "config.json").read_text())["train"]["lr_schedule"] == "cosine"
    model = keras.models.load_model(run / "model.keras")
    assert int(model.optimizer.iterations) == 6
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("target", ["pitch", "role"])
def test_aux_head_trains_and_the_saved_model_is_the_instrument_head(tmp_path: Path, target: str) -> None:
    """--aux-pitch-weight / --aux-role-weight on records with that roll: the loss holds the
    head's term, validation scores the instrument head, model.keras has the 31 class outputs
    only and no auxiliary layer; records without the roll are refused before training, naming
    the fix."""
    import dataclasses

    from tests.records_factory import make_records

    field = {"pitch": "pitch", "role": "roles"}[target]
    weight = f"aux_{target}_weight"
    recs = make_records(tmp_path / "recs", n_frames=120, seed=0, aux=(field,))
    cfg = dataclasses.replace(TRAIN, checkpoint="last", **{weight: 1.0})
    run = tmp_path / "aux"
    fit(recs, run, "crnn", cfg, TINY_MODEL, verbose=0)
    model = keras.models.load_model(run / "model.keras")
    assert model.output.shape[-1] == 31
    assert f"{field}_logits" not in [layer.name for layer in model.layers]
    hist = read_history(run)
    assert len(hist) == 2 and np.isfinite(float(hist[1]["val_map"])) and np.isfinite(float(hist[1]["val_loss"]))
    assert json.loads((run / "config.json").read_text())["train"][weight] == 1.0
    # the same run without the head: a smaller training loss (no auxiliary term), same records
    plain = tmp_path / "plain"
    fit(recs, plain, "crnn", dataclasses.replace(cfg, **{weight: 0.0}), TINY_MODEL, verbose=0)
    assert float(read_history(plain)[0]["loss"]) < float(hist[0]["loss"])

    no_roll = make_records(tmp_path / "noroll", n_frames=120, seed=0)
    with pytest.raises(ValueError, match=f"onsets\\+{field}"):
        fit(no_roll, tmp_path / "refused", "crnn", cfg, TINY_MODEL, verbose=0)
    assert not (tmp_path / "refused").exists()


def test_one_auxiliary_head_per_run() -> None:
    import dataclasses

    with pytest.raises(ValueError, match="not both"):
        dataclasses.replace(TRAIN, aux_pitch_weight=0.5, aux_role_weight=0.5)
