"""Issue 21 item 4: a run, a cv run and an export record what they consumed, and every
consumer checks it: resume refusals name the differing field, cv resumed on rebuilt records
refuses, evaluate on other labels refuses and warns on a test split the run trained on, and
export of an unfinished run says so and records epochs done vs asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from iad_tf.cli.errors import EXIT_DATA
from iad_tf.cli.main import cli
from iad_tf.fingerprint import INPUTS_KEY, describe_diff
from tests.records_factory import make_records, save_untrained_run


def relabel(records: Path, labels: str) -> None:
    """Records rebuilt under the same path with another --labels (the manifest says so)."""
    path = records / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["labels"] = labels
    path.write_text(json.dumps(manifest, indent=2))


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_records(tmp_path_factory.mktemp("fp") / "rec")


@pytest.fixture
def run(records: Path, tmp_path: Path) -> Path:
    """An untrained tiny MLP saved as fit saves it, stopped after 2 of 20 epochs."""
    run = save_untrained_run(records, tmp_path / "run", epochs=20)
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    return run


def test_describe_diff_names_the_leaf_that_differs() -> None:
    old = {"train": {"epochs": 20, "seed": 0}, "inputs": {"labels": "onsets"}}
    new = {"train": {"epochs": 30, "seed": 0, "added": 1}, "inputs": {"labels": "segments"}}
    assert describe_diff(old, new) == ["train.epochs (20 -> 30)", "inputs.labels (onsets -> segments)"]


def test_fit_resume_refusal_names_the_field(run: Path, records: Path) -> None:
    from iad_tf.training.fit import _prepare_run_dir

    (run / "model.keras").unlink()
    (run / "backup").mkdir()
    config = json.loads((run / "config.json").read_text())
    other = {**config, "train": {**config["train"], "epochs": 30}}
    with pytest.raises(ValueError, match=r"train\.epochs \(20 -> 30\)"):
        _prepare_run_dir(run, other)
    relabel_inputs = {**config, INPUTS_KEY: {**config[INPUTS_KEY], "labels": "segments"}}
    with pytest.raises(ValueError, match=r"inputs\.labels \(onsets -> segments\)"):
        _prepare_run_dir(run, relabel_inputs)


def test_cv_resumed_on_rebuilt_records_refuses_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import iad_tf.training.fit as fit_module
    from iad_tf.evaluation.cv import run_cv
    from iad_tf.training.config import ModelConfig, TrainConfig

    rec = make_records(tmp_path / "rec")
    calls: list[Any] = []

    def interrupted(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "fit", interrupted)
    args = (rec, tmp_path / "cv", 2, "mlp", TrainConfig(epochs=1), ModelConfig(mlp_units=(8,)))
    with pytest.raises(KeyboardInterrupt):
        run_cv(*args, echo=lambda s: None)
    assert len(calls) == 1 and (tmp_path / "cv" / "cv.json").is_file()
    relabel(rec, "segments")
    with pytest.raises(ValueError, match=r"inputs\.labels \(onsets -> segments\)"):
        run_cv(*args, echo=lambda s: None)
    assert len(calls) == 1  # refused before any training


def test_evaluate_refuses_records_of_other_labels(run: Path, tmp_path: Path) -> None:
    other = make_records(tmp_path / "seg")
    relabel(other, "segments")
    res = CliRunner().invoke(cli, ["evaluate", "--run", str(run), "--records", str(other),
                                   "--split", "test", "--no-tune", "--no-plots"])
    assert res.exit_code in (1, EXIT_DATA), res.output  # evaluate refuses it itself (1)
    assert "holds 'segments' labels but the run was trained on 'onsets' labels" in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_evaluate_warns_when_the_test_split_holds_training_songs(
    run: Path, records: Path, tmp_path: Path
) -> None:
    clean = CliRunner().invoke(cli, ["evaluate", "--run", str(run), "--records", str(records),
                                     "--split", "test", "--no-tune", "--no-plots"])
    assert clean.exit_code == 0 and "trained on" not in clean.stderr, clean.output
    # ids 0001.. again: test tracks 0003 and 0004 are songs of the run's train split
    leaky = make_records(
        tmp_path / "leaky", tracks={"train": [[0, 8]], "val": [[0, 8]], "test": [[8, 9], [0, 9]]}
    )
    res = CliRunner().invoke(cli, ["evaluate", "--run", str(run), "--records", str(leaky),
                                   "--split", "test", "--no-tune", "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "2 of 2 test tracks come from songs the run trained on (0003, 0004)" in res.stderr


def test_export_of_an_unfinished_run_says_so_and_records_epochs(
    run: Path, records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import iad_tf.export.run as export_run_module

    (run / "backup").mkdir()  # fit's resume state: the run stopped after 2 of 20 epochs
    seen: dict[str, Any] = {}

    def capture(model: Any, out_dir: Any, **kwargs: Any) -> None:
        seen.update(kwargs["info"])

    monkeypatch.setattr(export_run_module, "export_model", capture)
    said: list[str] = []
    export_run_module.export_run(run, tmp_path / "exp", records, progress=said.append)
    notes = [s for s in said if "unfinished" in s]
    assert len(notes) == 1 and "2 of 20 epochs" in notes[0]
    assert seen["model"]["epochs_done"] == 2 and seen["model"]["epochs_asked"] == 20
    assert seen["model"]["finished"] is False
    assert seen["training_data"][INPUTS_KEY]["labels"] == "onsets"
