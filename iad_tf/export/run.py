"""Export a run directory (``fit --run-dir``): model, thresholds, records -> :func:`export_model`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from iad_tf.export.data import read_tracks, representative_windows
from iad_tf.export.pipeline import ExportResult, ExportSettings, export_model
from iad_tf.fingerprint import INPUTS_KEY, run_progress, trained_inputs
from iad_tf.inference.windows import silence_db
from iad_tf.storage import is_remote, local_records, records_name

DEFAULT_WINDOW_FRAMES = 256


def hop_for(window_frames: int) -> int:
    """Default hop: three quarters of the window (a quarter overlaps the next window)."""
    return max(1, (3 * window_frames) // 4)


def evaluate_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar part of evaluate's ``metrics.json``: split, sizes, tuning and the frame
    metrics (plus segment F1 / error rate) of each threshold setting."""
    keep = ("split", "n_tracks", "n_frames", "median_window", "headline", "tuning")
    out: dict[str, Any] = {k: metrics[k] for k in keep if k in metrics}
    results = {}
    for name, res in (metrics.get("results") or {}).items():
        if isinstance(res, dict):
            seg = res.get("segment") or {}
            results[name] = {
                "frame": res.get("frame"),
                "segment": {k: seg[k] for k in ("f1", "error_rate") if k in seg},
            }
    out["results"] = results
    return out


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    records_dir: str | Path | None = None,
    settings: ExportSettings | None = None,
    window_frames: int | None = None,
    progress: Any = None,
    stream: Any = None,
) -> ExportResult:
    """Export ``run_dir`` into ``out_dir``; ``ValueError`` naming the file for bad input.

    The window defaults to :data:`DEFAULT_WINDOW_FRAMES` (256 frames = 5.9 s at 22050 Hz /
    hop 512, about the 6 s training windows) and the hop to 3/4 of it. Thresholds and the
    median window come from ``thresholds.json`` (evaluate) when present, else 0.5 and 1.
    A ``crnn_stream`` run also gets its streaming export (:mod:`iad_tf.export.stream`, with
    ``stream`` settings: a :class:`~iad_tf.export.stream.StreamSettings`) in ``result.stream``.
    """
    from iad_tf.evaluation.inference import check_records, load_model, open_run
    from iad_tf.evaluation.thresholds import load_presence, load_thresholds
    from iad_tf.fileio import read_json

    say = progress or (lambda msg: None)
    run = open_run(run_dir)
    window = window_frames or DEFAULT_WINDOW_FRAMES
    settings = replace(
        settings or ExportSettings(), window_frames=window, hop_frames=hop_for(window)
    )
    # A URL (given, or recorded in config.json by a run trained from one) is read through its
    # verified local copy; the metadata names it as the URL.
    checked_on = str(records_dir or run.config.get("records_dir") or "")
    records_dir = _local_records(checked_on)
    if records_dir is None:
        raise ValueError(
            f"{run_dir}: records directory {checked_on!r} not found; pass --records DIR"
        )
    manifest = check_records(run, records_dir)
    # The metadata describes the records the model was trained on; --records may point
    # elsewhere just for the export checks.
    trained_on_name = str(run.config.get("records_dir") or checked_on)
    trained_on = records_dir if trained_on_name == checked_on else _local_records(trained_on_name)
    if trained_on is None or trained_on == records_dir:
        trained_on, trained_on_name, trained_manifest = records_dir, checked_on, manifest
    else:
        trained_manifest = check_records(run, trained_on)
    loaded = load_thresholds(run_dir, run.classes)
    thresholds, median_window = (
        loaded if loaded is not None else (np.full(len(run.classes), 0.5), 1)
    )

    say(f"reading validation and training records from {records_dir}")
    val = read_tracks(records_dir, "val", manifest, limit=settings.max_val_tracks)
    if not val:
        raise ValueError(f"records {records_dir}: no validation tracks for the export checks")
    pad = silence_db(run.feature)
    rep = None
    if settings.quantize == "int8":
        train = read_tracks(records_dir, "train", manifest, limit=16) or val
        rep = representative_windows(
            train, window, settings.hop_frames, pad, settings.representative_windows, settings.seed
        )
    model = load_model(run)
    metrics_path = Path(run_dir) / "metrics.json"
    progress_ = run_progress(run_dir, run.config)
    if not progress_["finished"]:
        say(
            f"note: {run_dir} is an unfinished run ({progress_['epochs_done']} of "
            f"{progress_['epochs_asked']} epochs; rerun its fit to finish it): exporting "
            "its best epoch so far, and the model metadata says so"
        )
    info = {
        "model": {
            "architecture": run.model_name,
            "run_dir": str(Path(run_dir).resolve()),
            "parameters": int(model.count_params()),
            "config": run.config.get("model", {}),
            **progress_,
            "thresholds_from": "thresholds.json"
            if loaded is not None
            else "default 0.5 (no thresholds.json)",
        },
        "training_data": {
            "records_dir": records_name(trained_on_name),
            "labels": trained_manifest.get("labels"),
            "tracks": {k: len(v) for k, v in trained_manifest.get("splits", {}).items()},
            "frames": trained_manifest.get("frames", {}),
            "train_tracks": list(trained_manifest.get("splits", {}).get("train", [])),
            "checked_on": records_name(checked_on),
            INPUTS_KEY: trained_inputs(run.config),
        },
        "validation": evaluate_summary(read_json(metrics_path)) if metrics_path.is_file() else None,
    }
    result = export_model(
        model,
        out_dir,
        feature=run.feature,
        classes=run.classes,
        val_tracks=val,
        representative=rep,
        thresholds=thresholds,
        median_window=median_window,
        presence=load_presence(run_dir, run.classes),
        settings=settings,
        info=info,
        progress=say,
    )
    if run.model_name == "crnn_stream":  # causal: also the chunk + state form for live audio
        from iad_tf.export.stream import StreamSettings, export_stream
        from iad_tf.training.config import ModelConfig

        result.stream = export_stream(
            model,
            out_dir,
            model_config=ModelConfig.from_dict(run.config.get("model", {})),
            mel_stats=run.config.get("mel_stats"),
            feature=run.feature,
            classes=run.classes,
            val_tracks=val,
            calibration_tracks=read_tracks(records_dir, "train", manifest, limit=16) or val,
            thresholds=thresholds,
            median_window=median_window,
            name=settings.name,
            settings=stream or StreamSettings(quantize=settings.quantize != "none"),
            info=info,
            progress=say,
        )
    return result


def _local_records(name: str) -> Path | None:
    """A local records folder for ``name`` (a URL: its verified local copy); None when
    ``name`` is empty or names no records folder. A URL whose copy fails raises the
    storage error (one line naming it)."""
    if not name:
        return None
    if is_remote(name):
        return local_records(name)
    return Path(name) if Path(name).is_dir() else None
