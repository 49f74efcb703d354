"""Issue 11, TensorFlow side: corrupt shards are named (fit, evaluate, tfrecords-tools) and a
failed fit leaves no run directory; a corrupt model.keras says so; fit writes plain epoch
lines when its output is not a terminal; re-exports leave no stale quantised files; shipping
a default model keeps the previous one and prints both scores; tfrecords-tools is quiet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from iad_tf.cli.main import cli
from tests.records_factory import make_records, save_untrained_run

REPO = Path(__file__).resolve().parents[1]
TINY_TOML = "[model]\nconv_blocks = [[4, 4], [8, 4]]\ngru_units = 8\nmlp_units = [8]\n"


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in res.output, res.output
    return res.exit_code, res.output


def fit_tiny_mlp(rec: Path, run: Path, tmp_path: Path, *extra: str) -> tuple[int, str]:
    (tmp_path / "c.toml").write_text(TINY_TOML)
    return invoke(
        "fit",
        "--model",
        "mlp",
        "--records",
        str(rec),
        "--run-dir",
        str(run),
        "--config",
        str(tmp_path / "c.toml"),
        *extra,
    )


def evaluate_test_split(run: Path, records: Path, *extra: str) -> tuple[int, str]:
    return invoke(
        "evaluate",
        "--run",
        str(run),
        "--records",
        str(records),
        "--split",
        "test",
        "--no-tune",
        "--no-plots",
        *extra,
    )


def corrupt(shard: Path) -> None:
    """Flip bytes in the middle of a shard (a record's payload: its CRC no longer matches)."""
    data = bytearray(shard.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 16] = bytes(b ^ 0xFF for b in data[mid : mid + 16])
    shard.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(records, run dir) with an untrained tiny MLP saved as fit would (no training)."""
    tmp = tmp_path_factory.mktemp("run")
    records = make_records(tmp / "rec")
    return records, save_untrained_run(records, tmp / "run")


# ------------------------------------------------------------------- 6. corrupt shards
def test_fit_names_a_corrupt_shard_and_leaves_no_run_dir(tmp_path: Path) -> None:
    rec = make_records(tmp_path / "rec")
    corrupt(rec / "train-00001-of-00002.tfrecord")
    run = tmp_path / "run"
    code, out = fit_tiny_mlp(rec, run, tmp_path, "--epochs", "1")
    assert code == 1
    assert "train-00001-of-00002.tfrecord: corrupt shard" in out
    assert f"tfrecords-tools verify {rec}" in out
    assert not run.exists()


def test_failed_start_in_an_existing_folder_removes_only_run_files(tmp_path: Path) -> None:
    from iad_tf.training.config import ModelConfig, TrainConfig
    from iad_tf.training.fit import fit

    rec = make_records(tmp_path / "rec")
    corrupt(rec / "val-00000-of-00002.tfrecord")
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="val-00000-of-00002.tfrecord: corrupt shard"):
        fit(
            rec,
            run,
            "mlp",
            TrainConfig(epochs=1, window_seconds=1.0),
            ModelConfig(mlp_units=(8,)),
            verbose=0,
        )
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


@pytest.fixture
def run_copy(untrained_run: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of (records, run dir) that a test may damage."""
    return (
        shutil.copytree(untrained_run[0], tmp_path / "rec"),
        shutil.copytree(untrained_run[1], tmp_path / "run"),
    )


def test_evaluate_and_tfrecords_tools_name_a_corrupt_shard(
    run_copy: tuple[Path, Path], tmp_path: Path
) -> None:
    from tfrecords_tools.cli import cli as tools

    rec, run = run_copy
    corrupt(rec / "test-00000-of-00001.tfrecord")
    code, out = evaluate_test_split(run, rec, "--out", str(tmp_path / "ev"))
    assert code == 1 and "test-00000-of-00001.tfrecord: corrupt shard" in out
    assert f"tfrecords-tools verify {rec}" in out
    for command in ("inspect", "stats"):
        res = CliRunner().invoke(tools, [command, str(rec)])
        assert res.exit_code == 1 and "Traceback" not in res.output, res.output
        assert "test-00000-of-00001.tfrecord: corrupt shard" in res.output
        assert "tfrecords-tools verify" in res.output


# --------------------------------------------------------------- 9. corrupt model.keras
def test_corrupt_model_keras_is_reported_as_corrupt(run_copy: tuple[Path, Path]) -> None:
    rec, run = run_copy
    (run / "model.keras").write_bytes((run / "model.keras").read_bytes()[:500])  # truncated
    code, out = evaluate_test_split(run, rec)
    assert code == 1 and "model.keras: not a valid .keras model file" in out
    assert "File not found" not in out


# -------------------------------------------------------------- 9. plain epoch lines
def test_fit_writes_one_plain_line_per_epoch_when_not_a_terminal(tmp_path: Path) -> None:
    rec = make_records(tmp_path / "rec")
    code, out = fit_tiny_mlp(
        rec, tmp_path / "run", tmp_path, "--epochs", "2", "--window-seconds", "1"
    )
    assert code == 0
    assert "\r" not in out and "\x1b" not in out
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split(" - ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("val_f1_macro" in line and "loss" in line for line in lines)
    assert not any(line.startswith("Epoch ") for line in out.splitlines())


# ---------------------------------------------------------- 9. one export per folder
def test_reexport_leaves_no_stale_quantised_files(tmp_path: Path) -> None:
    from iad_tf.export.pipeline import _move_into, _other_quantized

    out = tmp_path / "export"
    out.mkdir()
    for f in (
        "model.tflite",
        "model.json",
        "model_int8.tflite",
        "model_int8.json",
        "other_int8.tflite",
        "notes.txt",
    ):
        (out / f).write_text("old")
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "model.tflite").write_text("new")  # a --quantize none export: float only
    (stage / "model.json").write_text("new")
    _move_into(stage, out, stale=_other_quantized(out, "model", None))
    assert sorted(p.name for p in out.iterdir()) == [
        "model.json",
        "model.tflite",
        "notes.txt",
        "other_int8.tflite",
    ]
    assert (out / "model.tflite").read_text() == "new"
    (out / "model_dynamic.tflite").write_text("old")
    (out / "model_int8.tflite").write_text("old")
    kept = out / "model_int8.tflite"
    assert _other_quantized(out, "model", kept) == [out / "model_dynamic.tflite"]


# ------------------------------------------------------------- 9. export --ship backup
def test_ship_keeps_the_previous_default_and_prints_both_scores(tmp_path: Path) -> None:
    from iad_tf.export.ship import PREVIOUS_DIR, ship_default
    from iad_tf.inference.default_model import DEFAULT_MODEL_NAME

    shipped = REPO / "saved_models" / DEFAULT_MODEL_NAME
    if not shipped.is_file():
        pytest.skip("no shipped default model in this checkout")
    src = tmp_path / "new"
    src.mkdir()
    new = src / "m.tflite"
    meta = json.loads(shipped.with_suffix(".json").read_text())
    mode = meta["quantization"]["mode"]
    meta["validation"][f"tflite_{mode}"]["f1_macro"] = 0.25  # the new one is worse
    from iad_tf.inference.embedded import embed_metadata

    new.write_bytes(embed_metadata(shipped.read_bytes(), meta))  # the file carries its metadata
    new.with_suffix(".json").write_text(json.dumps(meta))
    dest = tmp_path / "saved_models"
    dest.mkdir()
    shutil.copy(shipped, dest / DEFAULT_MODEL_NAME)
    shutil.copy(shipped.with_suffix(".json"), dest / shipped.with_suffix(".json").name)
    old_bytes = shipped.with_suffix(".json").read_bytes()
    lines: list[str] = []
    target = ship_default(new, dest, echo=lines.append)
    backups = sorted((dest / PREVIOUS_DIR).iterdir())
    assert [p.suffix for p in backups] == [".json", ".tflite"]
    assert backups[0].read_bytes() == old_bytes
    assert backups[1].read_bytes() == shipped.read_bytes()
    assert json.loads(target.with_suffix(".json").read_text())["model"]["shipped_from"]
    text = "\n".join(lines)
    old_f1 = json.loads(old_bytes)["validation"][f"tflite_{mode}"]["f1_macro"]
    assert f"previous default: f1_macro {old_f1:.3f}" in text
    assert "new default:      f1_macro 0.250" in text
    assert "warning: the new model scores lower on f1_macro" in text
    assert str(backups[1]) in text


# ----------------------------------------------------------- 9. quiet tfrecords-tools
def test_tfrecords_tools_prints_no_tensorflow_log_lines(tmp_path: Path) -> None:
    rec = make_records(tmp_path / "rec")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    res = subprocess.run(
        [sys.executable, "-c", "from tfrecords_tools.cli import cli; cli()", "inspect", str(rec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0 and "5 shard(s)" in res.stdout
    assert res.stderr.strip() == "", res.stderr
