"""The evaluate and plot workflows behind ``iad-tf evaluate`` / ``iad-tf plot``.

Outputs in ``out_dir`` (default: the run directory): ``metrics.json``, ``predictions.npz``,
``confusion.csv`` and ``plots/``; tuned thresholds always go to ``run_dir/thresholds.json``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.evaluation.confusion import CONFUSION_FILE, write_pairs_csv
from iad_tf.evaluation.predictions import PREDICTIONS_FILE, load_predictions, save_predictions
from iad_tf.evaluation.report import SETTING_LABELS, build_report
from iad_tf.evaluation.thresholds import (
    DEFAULT_MEDIAN_WINDOW,
    THRESHOLDS_FILE,
    load_presence,
    load_thresholds,
    save_thresholds,
    tune_global_threshold,
    tune_thresholds,
)
from iad_tf.fileio import read_json, write_json
from iad_tf.fingerprint import check_labels, heard_tracks, trained_inputs
from iad_tf.postprocess import decide

METRICS_FILE = "metrics.json"
PLOTS_DIR = "plots"


@dataclass
class EvaluateResult:
    report: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_median_window(window: int) -> int:
    if window < 1 or window % 2 == 0:
        raise ValueError(f"median window must be an odd number of frames >= 1, got {window}")
    return window


def evaluate_run(
    run_dir: str | Path,
    records_dir: str | Path,
    split: str = "test",
    median_window: int | None = None,
    tune: bool | None = None,
    out_dir: str | Path | None = None,
    threshold_mode: str = "per-class",
    plots: bool = True,
    max_rolls: int = 12,
    chunk_frames: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda s: None,
    overwrite_thresholds: bool = False,
) -> EvaluateResult:
    """Predict ``split``, optionally tune thresholds on ``val``, score and write everything.

    ``tune`` None: tune when the run has no thresholds.json, else score with it (a note says
    so). Tuning never replaces an existing thresholds.json (it may be a cv decoder copied
    there, presence gate and all, that export ships) unless ``overwrite_thresholds``.
    ``median_window`` None: the one of an existing thresholds.json, else the default (5).
    Raises ``ValueError`` naming the problem (no model, incompatible records, empty split).
    """
    from iad_tf.evaluation.inference import (
        check_records,
        load_model,
        open_run,
        predict_split,
        split_track_ids,
    )

    run = open_run(run_dir)
    manifest = check_records(run, records_dir)
    split_track_ids(manifest, records_dir, split)  # fail early
    inputs = trained_inputs(run.config)
    check_labels(inputs, manifest, f"records {records_dir}")
    out = Path(out_dir) if out_dir is not None else run.run_dir
    saved = load_thresholds(run.run_dir, run.classes)
    result = EvaluateResult(report={})
    if saved is not None:
        path = run.run_dir / THRESHOLDS_FILE
        if tune and not overwrite_thresholds:
            gate = " and a presence gate" if load_presence(run.run_dir, run.classes) else ""
            raise ValueError(
                f"{path} exists (thresholds{gate} tuned earlier or copied from a cv decoder); "
                "it is left as it is: --no-tune scores with it, --tune --overwrite re-tunes it "
                "on val and replaces it")
        if tune is None:
            result.notes.append(f"scoring with the run's {path} (--tune --overwrite re-tunes it)")
    tune = saved is None if tune is None else tune
    if median_window is None:
        median_window = saved[1] if saved is not None and not tune else DEFAULT_MEDIAN_WINDOW
    check_median_window(median_window)
    heard = heard_tracks(inputs, manifest, split)
    if heard:
        result.notes.append(
            f"{len(heard)} of {len(manifest['splits'][split])} {split} tracks come "
            f"from songs the run trained on ({', '.join(heard[:5])}"
            f"{', ...' if len(heard) > 5 else ''}): their scores are optimistic"
        )
    model = load_model(run)
    val_tracks = None
    tuned: np.ndarray | None = None
    tuning: dict[str, Any] | None = None
    if tune:
        try:
            val_tracks = predict_split(run, records_dir, "val", model, chunk_frames, progress)
        except ValueError as exc:
            result.notes.append(f"thresholds not tuned: {exc}")
        if val_tracks is not None:
            tuner = tune_global_threshold if threshold_mode == "global" else tune_thresholds
            t = tuner([v.pair for v in val_tracks], median_window)
            tuned = t.thresholds
            present = t.support > 0
            tuning = {
                "split": "val", "n_tracks": len(val_tracks), "median_window": median_window,
                "mode": threshold_mode,
                "f1_macro_flat": float(t.f1_flat[present].mean()) if present.any() else None,
                "f1_macro_tuned": float(t.f1_tuned[present].mean()) if present.any() else None,
            }
            result.files.append(save_thresholds(run.run_dir, run.classes, tuned, median_window))
            if split == "val":
                result.notes.append("thresholds were tuned on the evaluated split (val) itself: "
                                    "the tuned results are optimistic")
            log(f"tuned thresholds on val ({len(val_tracks)} tracks): macro F1 "
                f"{_f(tuning['f1_macro_flat'])} at 0.5 -> {_f(tuning['f1_macro_tuned'])}")
    elif saved is not None:
        tuned = saved[0]
        tuning = {"from": str(run.run_dir / THRESHOLDS_FILE), "median_window": saved[1]}
    tracks = (val_tracks if split == "val" and val_tracks is not None
              else predict_split(run, records_dir, split, model, chunk_frames, progress))
    meta = {"run": str(run.run_dir), "model_name": run.model_name, "records": str(records_dir),
            "split": split, "tuning": tuning}
    report = build_report(tracks, run.classes, run.feature.frame_seconds, median_window, tuned, meta=meta)
    result.report = report
    result.files.append(write_json(out / METRICS_FILE, report))
    result.files.append(save_predictions(out / PREDICTIONS_FILE, tracks, run.classes))
    pairs = [tuple(p) for p in report["confusion"]["top_pairs"]]
    result.files.append(write_pairs_csv(out / CONFUSION_FILE, pairs))
    if plots:
        result.files += draw_plots(run.run_dir, out, max_rolls=max_rolls)
    return result


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def draw_plots(run_dir: str | Path, out_dir: str | Path | None = None, max_rolls: int = 12) -> list[Path]:
    """Draw the pictures of an evaluated run from its saved outputs (no model, no TF).

    ``out_dir/plots/``: ``training_curves.png`` (if ``run_dir/history.csv``),
    ``f1_per_instrument.png``, ``confusion.png``, ``rolls/<track>.png`` (first ``max_rolls``).
    """
    from iad_tf import plots

    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    report = read_json(out / METRICS_FILE)
    pdir = out / PLOTS_DIR
    classes = report["classes"]
    head = report["headline"]
    res = report["results"][head]
    label = SETTING_LABELS[head]
    name = f"{report.get('model_name', '?')} {run_dir.name} [{report.get('split', '?')}]"
    files = []
    history = run_dir / "history.csv"
    if history.is_file():
        files.append(plots.training_curves(pdir / "training_curves.png", history,
                                           title=f"training history: {run_dir.name}"))
    per = res["per_class"]
    files.append(plots.f1_bars(
        pdir / "f1_per_instrument.png", classes, [per[c]["f1"] for c in classes],
        [per[c]["support"] for c in classes],
        baseline=[report["results"]["flat"]["per_class"][c]["f1"] for c in classes] if head != "flat" else None,
        label=f"F1 ({label})", title=f"per-instrument F1: {name}"))
    files.append(plots.confusion_heatmap(
        pdir / "confusion.png", np.asarray(report["confusion"]["matrix"]), classes,
        title=f"missed (true) vs wrongly predicted: {name}"))
    tracks, _ = load_predictions(out / PREDICTIONS_FILE)
    thr = np.asarray(res["thresholds"])
    for t in tracks[:max_rolls]:
        pred = decide(t.probs, thr, res["median_window"])
        files.append(plots.piano_roll(
            pdir / "rolls" / f"{_safe(t.track_id)}.png", classes, report["frame_seconds"], pred,
            t.labels, title=f"track {t.track_id}: truth vs prediction ({label}), {name}"))
    return files


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
