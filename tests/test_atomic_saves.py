"""Issue 21 item 3: every file a later command trusts is written to a temporary name and
renamed. fit killed (SIGKILL) in the middle of saving model.keras or its backup leaves the
previous good state, and the rerun resumes and finishes with one log row per epoch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from iad_tf.fileio import KILL_AT_SAVE_ENV, atomic_path, write_text
from tests.records_factory import make_records

REPO = Path(__file__).resolve().parents[1]
TINY_TOML = "[model]\nmlp_units = [8]\n"


def fit_cmd(rec: Path, run: Path, toml: Path) -> list[str]:
    return [sys.executable, "-m", "iad_tf", "fit", "--model", "mlp", "--records", str(rec),
            "--run-dir", str(run), "--config", str(toml), "--epochs", "3",
            "--checkpoint", "last", "--batch-size", "4"]


def epochs_logged(run: Path) -> list[int]:
    text = (run / "metrics.jsonl").read_text(encoding="utf-8")
    return [json.loads(line)["epoch"] for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "victim", ["latest.weights.h5:2", pytest.param("model.keras:2", marks=pytest.mark.slow)]
)
def test_fit_killed_mid_save_keeps_the_good_state_and_the_rerun_resumes(
    tmp_path: Path, victim: str
) -> None:
    rec = make_records(tmp_path / "rec")
    toml = tmp_path / "c.toml"
    toml.write_text(TINY_TOML)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    killed = subprocess.run(fit_cmd(rec, run, toml), env={**env, KILL_AT_SAVE_ENV: victim},
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    meta = json.loads((run / "backup" / "training_metadata.json").read_text())
    assert meta["epoch"] == 1  # the backup of epoch 1, whole
    import keras

    keras.saving.load_model(run / "model.keras", compile=False)  # whole, not a torn zip

    again = subprocess.run(fit_cmd(rec, run, toml), env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert epochs_logged(run) == [1, 2, 3]
    assert not (run / "backup").exists()
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]
    keras.saving.load_model(run / "model.keras", compile=False)


def test_an_atomic_write_that_fails_leaves_the_previous_file(tmp_path: Path) -> None:
    target = write_text(tmp_path / "thresholds.json", '{"old": true}')
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"new": ')
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["thresholds.json"]
