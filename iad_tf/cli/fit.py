"""``iad-tf fit``: train a model on a records directory (thin wrapper over training.fit)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from iad_tf.cli.options import check_writable, records_option
from iad_tf.training.config import MODEL_NAMES, RunConfig, load_toml, with_overrides

_DEFAULT = RunConfig()




@click.command("fit")
@click.option(
    "--model", "model_name", type=click.Choice(MODEL_NAMES), default="crnn", show_default=True
)
@records_option
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output directory (rerun with the same arguments to resume an interrupted run).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file with [model], [train] and [feature] tables; options below override it.",
)
@click.option("--epochs", type=click.IntRange(min=1), help=f"[default: {_DEFAULT.train.epochs}]")
@click.option(
    "--batch-size", type=click.IntRange(min=1), help=f"[default: {_DEFAULT.train.batch_size}]"
)
@click.option(
    "--learning-rate",
    type=click.FloatRange(min=0, min_open=True),
    help=f"Adam learning rate. [default: {_DEFAULT.train.learning_rate}]",
)
@click.option(
    "--batching",
    type=click.Choice(["tracks", "windows"]),
    help=f"Whole padded tracks or random fixed windows. [default: {_DEFAULT.train.batching}]",
)
@click.option(
    "--window-seconds",
    type=click.FloatRange(min=0, min_open=True),
    help=f"Window length for --batching windows. [default: {_DEFAULT.train.window_seconds}]",
)
@click.option(
    "--class-weighting",
    type=click.Choice(["none", "pos_weight"]),
    help=f"Per-class positive weight neg/pos in the loss. [default: {_DEFAULT.train.class_weighting}]",
)
@click.option(
    "--rare-threshold",
    type=click.IntRange(min=1),
    help=f"Instruments in fewer train tracks are rare. [default: {_DEFAULT.train.rare_threshold}]",
)
@click.option(
    "--oversample-factor",
    type=click.FloatRange(min=1),
    help=f"Draw tracks with a rare instrument this many times as often. [default: {_DEFAULT.train.oversample_factor}]",
)
@click.option(
    "--augment/--no-augment", default=None, help="SpecAugment time/frequency masking. [default: on]"
)
@click.option(
    "--mix-prob",
    type=click.FloatRange(0, 1),
    help="Probability of mixing a training window with another track's (windows only). "
    f"[default: {_DEFAULT.train.mix_prob}]",
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    help=f"Early stopping patience. [default: {_DEFAULT.train.patience}]",
)
@click.option("--seed", type=int, help=f"Random seed. [default: {_DEFAULT.train.seed}]")
@click.option(
    "--strategy",
    "strategy_name",
    type=click.Choice(["default", "mirrored", "multiworker"]),
    default="default",
    show_default=True,
    help="tf.distribute: one device, all local GPUs (mirrored), or the hosts in TF_CONFIG "
    "(multiworker; run the same command on every host).",
)
def fit(
    model_name: str,
    records_dir: str,
    run_dir: Path,
    config_file: Path | None,
    epochs: int | None,
    batch_size: int | None,
    learning_rate: float | None,
    batching: str | None,
    window_seconds: float | None,
    class_weighting: str | None,
    rare_threshold: int | None,
    oversample_factor: float | None,
    augment: bool | None,
    mix_prob: float | None,
    patience: int | None,
    seed: int | None,
    strategy_name: str,
) -> None:
    """Train MODEL on the records' train split; validation metrics every epoch."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = load_toml(config_file) if config_file else RunConfig()
        train_cfg = with_overrides(
            cfg.train,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            batching=batching,
            window_seconds=window_seconds,
            class_weighting=class_weighting,
            rare_threshold=rare_threshold,
            oversample_factor=oversample_factor,
            augment=augment,
            mix_prob=mix_prob,
            patience=patience,
            seed=seed,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc

    check_writable(run_dir, "--run-dir")
    from iad_tf.training.callbacks import EpochLine, TrainingDiverged
    from iad_tf.training.distribute import make_strategy
    from iad_tf.training.fit import fit as fit_lib

    # Keras' live progress bar on a terminal; one plain line per epoch elsewhere (CI logs,
    # ``> log.txt``): no carriage-return updates or ANSI escapes.
    live = sys.stdout.isatty()
    try:
        strategy = make_strategy(strategy_name)  # first: multiworker configures the TF runtime
        result = fit_lib(
            records_dir, run_dir, model_name, train_cfg, cfg.model, cfg.feature,
            strategy=strategy, verbose=1 if live else 0,
            extra_callbacks=None if live else [EpochLine(train_cfg.epochs, click.echo)],
        )
    except (ValueError, FileNotFoundError, TrainingDiverged) as exc:
        raise click.ClickException(str(exc)) from exc
    best = result.best
    click.echo(
        f"{result.epochs_run} epochs; best epoch {result.best_epoch}: "
        + ", ".join(f"{k}={best[k]:.4f}" for k in best if k.startswith("val_"))
        + f"\nrun directory: {result.run_dir}"
    )
