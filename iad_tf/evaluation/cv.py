"""``iad-tf cv``: song-level K-fold cross-validation of a training recipe.

For each fold (:mod:`iad_tf.evaluation.folds`): re-split the records (held-out real songs ->
val, their remixes left out, the rest -> train; fold statistics recomputed), train with the
given recipe keeping the LAST weights (no epoch is chosen on the held-out songs), and predict
the held-out songs: their out-of-fold (OOF) probabilities. Then the pooled OOF predictions of
every real song are scored and the post-processing (thresholds, song-level presence gating)
is tuned on them (:mod:`iad_tf.evaluation.cv_report`).

Run directory::

    cv.json                 the recipe, folds and records (a rerun must match to resume)
    fold-1/records/         the fold's records (removed when the fold is done; never uploaded)
    fold-1/run/             the fold's training run (fit's run directory)
    fold-1/oof.npz          the fold's held-out predictions (predictions.npz format)
    oof.npz                 every real song's OOF predictions
    report.json, report.md  scores per fold and pooled, tuning, songs' instrument counts
    decoder.json            the post-processing tuned on all OOF predictions (for export)

An interrupted run resumes: finished folds are kept, an unfinished fold's training resumes.
A URL run dir is uploaded after every epoch and every fold (``sync``, :data:`LOCAL_ONLY` kept
local), so the rerun may be on another machine.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iad_tf.config import FeatureConfig
from iad_tf.evaluation.folds import fold_split_map, song_folds
from iad_tf.evaluation.inference import MODEL_FILE, open_run, predict_split
from iad_tf.evaluation.predictions import TrackPrediction, load_predictions, save_predictions
from iad_tf.fileio import read_json, write_json, write_text
from iad_tf.fingerprint import INPUTS_KEY, as_named_now, describe_diff, records_fingerprint
from iad_tf.locks import LOCK_NAME
from iad_tf.training.config import ModelConfig, TrainConfig

log = logging.getLogger(__name__)

CV_JSON = "cv.json"
OOF_FILE = "oof.npz"
#: Run-dir paths never uploaded from a staged URL run dir (derived again when needed).
LOCAL_ONLY: tuple[str, ...] = ("fold-*/records/*",)


@dataclass(frozen=True)
class CVResult:
    run_dir: Path
    report: dict[str, Any] | None  # None: stopped after a fold (``stop_after``), no report yet
    tracks: list[TrackPrediction]


def _fold_dir(run_dir: Path, i: int) -> Path:
    return run_dir / f"fold-{i + 1}"


def _check_run_dir(run_dir: Path, settings: dict[str, Any], local_records: Path) -> None:
    path = run_dir / CV_JSON
    if (run_dir / "report.json").is_file():
        raise ValueError(
            f"{run_dir}: already holds a finished cross-validation; choose a new --run-dir"
        )
    if path.is_file():
        old = as_named_now(read_json(path), settings["records_dir"], local_records)
        diff = describe_diff({k: old[k] for k in settings if k in old}, settings)
        if diff:
            raise ValueError(
                f"{run_dir}: holds an unfinished cross-validation with different settings: "
                f"{'; '.join(diff)}; rerun with the same settings and records to resume, or "
                "choose a new --run-dir"
            )
    elif run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise ValueError(f"{run_dir}: exists and is not empty; choose a new --run-dir")


def fold_teachers(teachers: Sequence[str | Path], fold_songs: list[list[str]]) -> list[list[Path]]:
    """Per fold, the run directories of that fold in each teacher cv run; ``ValueError`` naming
    the teacher when its folds differ from ``fold_songs`` or a fold's model is missing."""
    out: list[list[Path]] = [[] for _ in fold_songs]
    for t in teachers:
        path = Path(t) / CV_JSON
        if not path.is_file():
            raise ValueError(f"teacher {t}: no {CV_JSON} (not a cv run directory)")
        if read_json(path).get("folds") != fold_songs:
            raise ValueError(f"teacher {t}: its song folds differ from this run's; a teacher must "
                             "not have seen the songs its student is scored on")
        for i, runs in enumerate(out):
            run = _fold_dir(Path(t), i) / "run"
            if not (run / MODEL_FILE).is_file():
                raise ValueError(f"teacher {t}: fold {i + 1} has no finished model ({run})")
            runs.append(run)
    return out


def cv_train_config(train_cfg: TrainConfig) -> TrainConfig:
    """The recipe as cross-validation trains it: last weights, no early stopping."""
    return dataclasses.replace(train_cfg, checkpoint="last", patience=train_cfg.epochs + 1)


def run_cv(
    records_dir: str | Path,
    run_dir: str | Path,
    folds: int,
    model_name: str,
    train_cfg: TrainConfig,
    model_cfg: ModelConfig | None = None,
    feature_cfg: FeatureConfig | None = None,
    verbose: int | str = "auto",
    echo: Callable[[str], None] = print,
    sync: Callable[[], object] | None = None,
    stop_after: int | None = None,
    teachers: Sequence[str | Path] = (),
) -> CVResult:
    """Cross-validate ``model_name`` with ``train_cfg`` over song-level folds of ``records_dir``
    (a local folder or a URL, read through its verified local copy). ``sync`` (a staged URL
    run dir's upload) is called after every epoch and every finished fold, so a run stopped
    on one machine resumes from the store on another.

    ``stop_after=k`` (1 <= k < ``folds``) trains folds 1..k only (those not finished yet) and
    returns without a report (``report`` None): the same call without it later finishes the
    run, reusing those folds. The fold assignment does not depend on it.

    ``teachers``: finished cv run directories over the same song folds (distillation,
    ``train_cfg.distill_weight``): fold k's student learns from fold k's teachers, which never
    saw fold k's songs."""
    if stop_after is not None and not 1 <= stop_after <= folds:
        raise ValueError(f"stop after fold {stop_after}: folds are numbered 1 to {folds}")
    import keras

    from iad_tf.data.resplit import resplit
    from iad_tf.storage import local_records, records_name
    from iad_tf.training.distill import require_both
    from iad_tf.training.fit import fit
    from iad_tf.training.models import check_model_name
    from iad_tf.training.records_info import open_records

    check_model_name(model_name)
    info = open_records(local_records(records_dir), expected_feature=feature_cfg, splits=())
    manifest = info.manifest
    fold_songs = song_folds(manifest, folds)
    run_dir = Path(run_dir)
    cfg = cv_train_config(train_cfg)
    require_both(teachers, cfg.distill_weight)
    teacher_runs = fold_teachers(teachers, fold_songs)
    settings = {
        "records_dir": records_name(records_dir),  # a URL as given, not its local copy
        "folds": fold_songs,
        "model_name": model_name,
        "model": (model_cfg or ModelConfig()).to_dict(),
        "train": cfg.to_dict(),
        INPUTS_KEY: records_fingerprint(info.records_dir),
        "teachers": [str(t) for t in teachers],
    }
    _check_run_dir(run_dir, settings, info.records_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CV_JSON, settings)
    sync = sync or (lambda: None)
    sync()
    per_epoch = [keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: sync())]

    all_tracks: list[TrackPrediction] = []
    fold_of: dict[str, int] = {}
    last = len(fold_songs) if stop_after is None else stop_after
    for i, held in enumerate(fold_songs[:last]):
        fdir = _fold_dir(run_dir, i)
        oof = fdir / OOF_FILE
        if not oof.is_file():
            echo(f"fold {i + 1}/{folds}: holding out {', '.join(held)}")
            recs = fdir / "records"
            if not (recs / "manifest.json").is_file():
                resplit(info.records_dir, recs, fold_split_map(manifest, held))
            fit(recs, fdir / "run", model_name, cfg, model_cfg, feature_cfg, verbose=verbose,
                extra_callbacks=per_epoch, teachers=teacher_runs[i])
            run = open_run(fdir / "run")
            preds = predict_split(run, recs, "val", progress=False)
            save_predictions(oof, preds, run.classes)
            shutil.rmtree(recs, ignore_errors=True)
            sync()  # the finished fold, before the next starts
            keras.backend.clear_session()
        tracks, classes = load_predictions(oof)
        for t in tracks:
            fold_of[t.track_id] = i
        all_tracks.extend(tracks)
    all_tracks.sort(key=lambda t: t.track_id)
    if last < len(fold_songs):
        return CVResult(run_dir, None, all_tracks)
    save_predictions(run_dir / OOF_FILE, all_tracks, classes)
    meta = {
        "model_name": model_name,
        "folds": fold_songs,
        "train": cfg.to_dict(),
        "records_dir": settings["records_dir"],
    }
    report = write_cv_report(run_dir, all_tracks, classes, fold_of, info.feature.frame_seconds, meta)
    return CVResult(run_dir, report, all_tracks)


def write_cv_report(
    run_dir: Path,
    tracks: list[TrackPrediction],
    classes: list[str],
    fold_of: dict[str, int],
    frame_seconds: float,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Score the OOF predictions, tune the decoder; write decoder.json, report.md, report.json
    (report.json last: it marks the run finished)."""
    from iad_tf.evaluation.cv_report import cv_report, render_cv_report

    report = cv_report(tracks, classes, fold_of, frame_seconds, meta=meta)
    write_json(run_dir / "decoder.json", report["decoder"])
    write_text(run_dir / "report.md", render_cv_report(report, markdown=True))
    write_json(run_dir / "report.json", report)
    return report


def rescore_cv(run_dir: str | Path) -> dict[str, Any]:
    """Re-score a finished cross-validation from its saved OOF predictions with this version's
    decision settings (no training); rewrites its report and decoder."""
    run_dir = Path(run_dir)
    settings = read_json(run_dir / CV_JSON)
    tracks: list[TrackPrediction] = []
    fold_of: dict[str, int] = {}
    classes: list[str] = []
    for i in range(len(settings["folds"])):
        fold_tracks, classes = load_predictions(_fold_dir(run_dir, i) / OOF_FILE)
        fold_of.update({t.track_id: i for t in fold_tracks})
        tracks.extend(fold_tracks)
    tracks.sort(key=lambda t: t.track_id)
    from iad_tf.training.config import read_run_config

    feature = FeatureConfig.from_dict(read_run_config(_fold_dir(run_dir, 0) / "run")["feature_config"])
    meta = {k: settings[k] for k in ("model_name", "folds", "train", "records_dir")}
    return write_cv_report(run_dir, tracks, classes, fold_of, feature.frame_seconds, meta)
