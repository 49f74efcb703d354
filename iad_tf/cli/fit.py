"""``iad-tf fit``: train a model on a records directory (thin wrapper over training.fit)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from iad_tf.cli.options import (
    check_writable,
    recipe_config,
    recipe_options,
    records_option,
    teacher_option,
)
from iad_tf.cli.paths import OUT_DIR, staged
from iad_tf.training.distribute import DEFAULT_PEER_TIMEOUT_S


@click.command("fit")
@recipe_options
@records_option
@click.option(
    "--run-dir",
    type=OUT_DIR,
    required=True,
    help="Output directory, a path or a URL (rerun with the same arguments to resume an "
    "interrupted run; a URL run is trained in a local folder and uploaded after every epoch).",
)
@click.option(
    "--strategy",
    "strategy_name",
    type=click.Choice(["default", "mirrored", "multiworker"]),
    default="default",
    show_default=True,
    help="tf.distribute: one device, all local GPUs (mirrored), or the hosts in TF_CONFIG "
    "(multiworker; run the same command on every host).",
)
@click.option(
    "--peer-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_PEER_TIMEOUT_S,
    show_default=True,
    help="multiworker: seconds to wait for every worker of TF_CONFIG before giving up.",
)
@teacher_option("a finished run directory (repeat for several) whose mean probability over "
                "the train split is part of the targets.")
def fit(
    model_name: str,
    records_dir: str,
    run_dir: Any,
    config_file: Path | None,
    strategy_name: str,
    peer_timeout: float,
    teachers: tuple[Path, ...],
    **overrides: Any,
) -> None:
    """Train MODEL on the records' train split; validation metrics every epoch."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = recipe_config(config_file, overrides)

    check_writable(run_dir, "--run-dir")
    from iad_tf.training.callbacks import EpochLine, TrainingDiverged
    from iad_tf.training.distribute import make_strategy, stop_on_signals
    from iad_tf.training.fit import fit as fit_lib

    # Keras' live progress bar on a terminal; one plain line per epoch elsewhere (CI logs,
    # ``> log.txt``): no carriage-return updates or ANSI escapes.
    live = sys.stdout.isatty()
    with staged(run_dir) as stage:
        import keras

        # a URL run dir: trained in a local folder, uploaded after every epoch (checkpoint)
        upload = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: stage.sync())
        try:
            with stop_on_signals():
                strategy = make_strategy(strategy_name, peer_timeout)  # first: configures TF
                # a URL: trained from a local copy checked against its sha256; config.json
                # records the URL
                result = fit_lib(
                    records_dir, stage.local, model_name, cfg.train, cfg.model, cfg.feature,
                    strategy=strategy, verbose=1 if live else 0,
                    extra_callbacks=([] if live else [EpochLine(cfg.train.epochs, click.echo)])
                    + [upload],
                    teachers=teachers,
                )
        except KeyboardInterrupt as exc:
            stage.sync()
            click.echo(f"stopped by {exc or 'SIGINT'}; rerun the same command to resume "
                       f"{run_dir}", err=True)
            raise SystemExit(143 if str(exc) == "SIGTERM" else 130) from None
        except (ValueError, FileNotFoundError, TrainingDiverged) as exc:
            raise click.ClickException(str(exc)) from exc
    best = result.best
    click.echo(
        f"{result.epochs_run} epochs; best epoch {result.best_epoch}: "
        + ", ".join(f"{k}={best[k]:.4f}" for k in best if k.startswith("val_"))
        + f"\nrun directory: {run_dir if stage.local != stage.dest else result.run_dir}"
    )
