"""Runs side by side (``iad-tf compare RUN...``) from their ``metrics.json`` and ``config.json``.

TF-free. A run is a run directory (holding ``metrics.json``) or a ``metrics.json`` path.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iad_tf.evaluation.report import SETTING_LABELS, SETTINGS
from iad_tf.evaluation.tables import markdown_table, text_table
from iad_tf.fileio import read_json
from iad_tf.metrics import F1_MACRO, F1_MICRO, F1_WEIGHTED, HAMMING, JACCARD
from iad_tf.storage import StorageError, to_path

METRICS_FILE = "metrics.json"
HEADERS: tuple[str, ...] = (
    "Run", "Model", "Train tracks", "Epochs", "Split", "Decisions", "F1 macro", "F1 micro",
    "F1 weighted", "Hamming", "Jaccard", "Seg F1", "Seg ER", "mAP",
)


@dataclass(frozen=True)
class RunSummary:
    name: str
    metrics_path: Path
    report: dict[str, Any]
    config: dict[str, Any]
    train_tracks: int | None
    epochs: int | None


def _read_optional_json(path: Path) -> dict[str, Any]:
    try:
        return read_json(path)
    except (FileNotFoundError, ValueError, StorageError):  # gone, bad, or unreachable
        return {}


def load_run_summary(path: str | Path) -> RunSummary:
    """Read a run's evaluation; ``ValueError`` naming the path when it has no metrics.json."""
    path = Path(path)
    metrics_path = path if path.is_file() else path / METRICS_FILE
    if not metrics_path.is_file():
        raise ValueError(f"{path}: no {METRICS_FILE} (run `iad-tf evaluate --run {path}` first)")
    report = read_json(metrics_path)
    if "results" not in report or "headline" not in report:
        raise ValueError(f"{metrics_path}: not an iad-tf evaluation (no results/headline)")
    run_dir = metrics_path.parent
    config = _read_optional_json(run_dir / "config.json")
    if not config and report.get("run"):  # evaluated with --out elsewhere: the run it names
        config = _read_optional_json(Path(report["run"]) / "config.json")
        run_dir = Path(report["run"]) if config else run_dir
    train_tracks = None
    if config.get("records_dir"):
        manifest = _read_optional_json(to_path(config["records_dir"]) / "manifest.json")
        if "splits" in manifest:
            train_tracks = len(manifest["splits"].get("train", []))
    epochs = None
    history = run_dir / "history.csv"
    if history.is_file():
        with open(history, encoding="utf-8", newline="") as f:
            epochs = max(0, sum(1 for _ in csv.reader(f)) - 1)
    name = metrics_path.parent.name if metrics_path.name == METRICS_FILE else str(metrics_path)
    return RunSummary(name, metrics_path, report, config, train_tracks, epochs)


def summary_row(run: RunSummary, setting: str = "headline") -> list[Any]:
    """One table row; ``setting`` is "headline" or one of :data:`SETTINGS`."""
    rep = run.report
    name = rep["headline"] if setting == "headline" else setting
    res = rep["results"].get(name)
    label = SETTING_LABELS.get(name, name)
    if name.endswith("median") and res:
        label += f" ({res['median_window']})"
    head = [run.name, run.config.get("model_name", "?"), run.train_tracks, run.epochs,
            rep.get("split", "?"), label if res else f"{label}: not evaluated"]
    if not res:
        return head + [None] * (len(HEADERS) - len(head))
    f = res["frame"]
    return head + [f[F1_MACRO], f[F1_MICRO], f[F1_WEIGHTED], f[HAMMING], f[JACCARD],
                   res["segment"]["f1"], res["segment"]["error_rate"],
                   rep["ranking"]["average_precision_macro"]]


def compare_rows(runs: Sequence[RunSummary], setting: str = "headline") -> list[list[Any]]:
    if setting != "headline" and setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r} (choose headline or one of {', '.join(SETTINGS)})")
    return [summary_row(r, setting) for r in runs]


def render_compare(runs: Sequence[RunSummary], setting: str = "headline", markdown: bool = False) -> str:
    rows = compare_rows(runs, setting)
    if markdown:
        return markdown_table(HEADERS, rows)
    return text_table(HEADERS, rows)


def per_instrument_rows(runs: Sequence[RunSummary]) -> tuple[list[str], list[list[Any]]]:
    """Headline F1 per instrument (rows) for each run (columns), instruments with support."""
    headers = ["Instrument"] + [r.name for r in runs]
    classes: list[str] = []
    for r in runs:
        res = r.report["results"][r.report["headline"]]["per_class"]
        classes += [c for c, v in res.items() if v["support"] > 0 and c not in classes]
    rows = []
    for c in classes:
        row: list[Any] = [c]
        for r in runs:
            v = r.report["results"][r.report["headline"]]["per_class"].get(c)
            row.append(v["f1"] if v and v["support"] > 0 else None)
        rows.append(row)
    return headers, rows
