"""``iad-tf cv``: song-level K-fold cross-validation of a training recipe."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from iad_tf.cli.options import recipe_config, recipe_options, records_option, teacher_option
from iad_tf.cli.paths import OUT_DIR, staged


@click.command("cv")
@recipe_options
@records_option
@click.option(
    "--folds",
    type=click.IntRange(min=2),
    default=4,
    show_default=True,
    help="Song-level folds (remixes follow their source song).",
)
@click.option(
    "--run-dir",
    type=OUT_DIR,
    required=True,
    help="Output directory (a path or a URL): one training run per fold, out-of-fold predictions, report.json/.md "
    "and decoder.json (rerun the same command to resume; a URL is uploaded after every epoch "
    "and fold, so the rerun may be on another machine).",
)
@click.option(
    "--stop-after-fold",
    type=click.IntRange(min=1),
    default=None,
    help="Train folds 1..K only, then stop without a report (machine time); the same command "
    "without this option finishes the run, reusing those folds.",
)
@teacher_option("a finished cv run over the same song folds (repeat for several); fold k "
                "trains towards fold k's teachers' mean probability.")
def cv(
    model_name: str,
    records_dir: str,
    folds: int,
    run_dir: Any,
    stop_after_fold: int | None,
    teachers: tuple[Path, ...],
    config_file: Path | None,
    **overrides: Any,
) -> None:
    """Cross-validate a recipe over source songs: each fold trains on the other songs (and
    their remixes) for the given epochs, keeps its last weights and predicts its held-out
    real songs. Reports per-fold and pooled out-of-fold scores and the instruments predicted
    per song, and tunes thresholds and the song-level presence gate on the out-of-fold
    predictions (scored by cross-fitting: no song is scored with parameters tuned on it)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = recipe_config(config_file, overrides)

    from iad_tf.evaluation.cv import LOCAL_ONLY, run_cv
    from iad_tf.evaluation.cv_report import render_cv_report
    from iad_tf.training.callbacks import TrainingDiverged

    try:
        with staged(run_dir, skip=LOCAL_ONLY) as stage:
            result = run_cv(
                records_dir,  # a URL: a verified local copy is read, cv.json records the URL
                stage.local,
                folds,
                model_name,
                cfg.train,
                cfg.model,
                cfg.feature,
                verbose=2,
                echo=click.echo,
                sync=stage.sync,  # a URL run dir: uploaded every epoch and fold
                stop_after=stop_after_fold,
                teachers=teachers,
            )
    except (ValueError, FileNotFoundError, TrainingDiverged) as exc:
        raise click.ClickException(str(exc)) from exc
    if result.report is None:
        click.echo(f"stopped after fold {stop_after_fold} of {folds} ({len(result.tracks)} songs out of "
                   f"fold in {run_dir}/fold-*/oof.npz); rerun without --stop-after-fold to finish")
        return
    click.echo(render_cv_report(result.report))
    click.echo(f"report: {run_dir / 'report.md'}; decoder: {run_dir / 'decoder.json'}")
