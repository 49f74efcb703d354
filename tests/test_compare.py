"""compare: the numbers of the given runs, side by side in the terminal and in Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from iad_tf.cli.main import cli
from iad_tf.evaluation.predictions import TrackPrediction
from iad_tf.evaluation.report import build_report
from iad_tf.fileio import write_json

CLASSES = ["Drums", "Piano", "Violin"]


def _run(root: Path, name: str, model: str, seed: int, n_train: int) -> tuple[Path, dict]:
    rng = np.random.default_rng(seed)
    labels = (rng.random((200, 3)) < 0.4).astype(np.uint8)
    probs = np.clip(labels * 0.4 + rng.random((200, 3)) * 0.6, 0, 1).astype(np.float32)
    rep = build_report([TrackPrediction("0001", probs, labels)], CLASSES, 0.05, median_window=3,
                       tuned_thresholds=np.array([0.4, 0.5, 0.6]),
                       meta={"run": str(root / name), "split": "test", "model_name": model})
    run = root / name
    records = root / f"records_{name}"
    records.mkdir(parents=True)
    (records / "manifest.json").write_text(json.dumps({"splits": {"train": [str(i) for i in range(n_train)]}}))
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model_name": model, "records_dir": str(records)}))
    (run / "history.csv").write_text("epoch,loss\n0,1.0\n1,0.5\n2,0.4\n")
    write_json(run / "metrics.json", rep)
    return run, rep


def test_compare_renders_each_runs_numbers(tmp_path: Path) -> None:
    mlp, rep_mlp = _run(tmp_path, "mlp_run", "mlp", 0, 8)
    crnn, rep_crnn = _run(tmp_path, "crnn_run", "crnn", 1, 4)
    md = tmp_path / "cmp.md"
    res = CliRunner().invoke(cli, ["compare", str(mlp), str(crnn), "--markdown", str(md)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    markdown = md.read_text()
    for name, model, rep, n_train in (("mlp_run", "mlp", rep_mlp, 8), ("crnn_run", "crnn", rep_crnn, 4)):
        head = rep["results"]["tuned_median"]
        numbers = [head["frame"]["f1_macro"], head["frame"]["f1_micro"], head["frame"]["hamming_loss"],
                   head["segment"]["f1"], head["segment"]["error_rate"]]
        row = next(line for line in lines if line.startswith(name))
        cells = row.split()
        assert cells[1:4] == [model, str(n_train), "3"]  # model, train tracks, epochs
        for v in numbers:
            assert f"{v:.3f}" in cells
        md_row = next(line for line in markdown.splitlines() if line.startswith(f"| {name} |"))
        for v in numbers:
            assert f" {v:.3f} " in md_row
        piano = rep["results"]["tuned_median"]["per_class"]["Piano"]["f1"]
        assert f"{piano:.3f}" in next(line for line in lines if line.startswith("Piano"))
    # the two runs really differ, so the table cannot be right by accident
    assert rep_mlp["results"]["tuned_median"]["frame"]["f1_macro"] != \
        rep_crnn["results"]["tuned_median"]["frame"]["f1_macro"]


def test_compare_flat_setting_and_missing_metrics(tmp_path: Path) -> None:
    run, rep = _run(tmp_path, "r", "mlp", 2, 3)
    res = CliRunner().invoke(cli, ["compare", str(run), "--setting", "flat"])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if line.startswith("r "))
    assert f"{rep['results']['flat']['frame']['f1_macro']:.3f}" in row.split()
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(cli, ["compare", str(run), str(empty)])
    assert res.exit_code == 1 and "no metrics.json" in res.output and "Traceback" not in res.output
