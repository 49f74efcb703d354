"""Reusable click option decorators and error handling shared by the commands."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from iad_tf.cli.paths import StoragePath

F = TypeVar("F", bound=Callable[..., Any])


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def workers_option(f: F) -> F:
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=default_workers,
        show_default="all cores",
        help="Worker processes.",
    )(f)


def seed_option(f: F) -> F:
    return click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")(f)


def records_option(f: F) -> F:
    return click.option(
        "--records",
        "records_dir",
        type=StoragePath(file_okay=False, as_str=True),
        required=True,
        help="Records directory written by build-records (a path or a URL).",
    )(f)


# ------------------------------------------------------------------ training recipe
#: (option name, click type, help) of the TrainConfig fields a command line may override;
#: the dest of ``--batch-size`` is ``batch_size`` = the TrainConfig field name.
_RECIPE_OPTIONS: tuple[tuple[str, Any, str], ...] = (
    ("--epochs", click.IntRange(min=1), "Training epochs."),
    ("--batch-size", click.IntRange(min=1), "Batch size."),
    ("--steps-per-epoch", click.IntRange(min=0),
     "Optimizer steps per epoch (0: one pass over the training windows)."),
    ("--learning-rate", click.FloatRange(min=0, min_open=True), "Adam learning rate."),
    ("--lr-schedule", click.Choice(["constant", "cosine"]),
     "Learning rate: constant, or a cosine decay to 0 over epochs x steps per epoch."),
    (
        "--batching",
        click.Choice(["tracks", "windows"]),
        "Whole padded tracks or random fixed windows.",
    ),
    (
        "--window-seconds",
        click.FloatRange(min=0, min_open=True),
        "Window length for --batching windows.",
    ),
    (
        "--class-weighting",
        click.Choice(["none", "pos_weight"]),
        "Per-class positive weight neg/pos in the loss.",
    ),
    ("--rare-threshold", click.IntRange(min=1), "Instruments in fewer train tracks are rare."),
    (
        "--oversample-factor",
        click.FloatRange(min=1),
        "Draw tracks with a rare instrument this many times as often.",
    ),
    (
        "--mix-prob",
        click.FloatRange(0, 1),
        "Probability of mixing a training window with another track's (windows only).",
    ),
    ("--eq-tilt-db", click.FloatRange(min=0), "Timbre augmentation: random spectral tilt up to +-this many dB."),
    ("--gain-db", click.FloatRange(min=0), "Timbre augmentation: random gain up to +-this many dB."),
    ("--mel-shift-bins", click.IntRange(min=0), "Timbre augmentation: random shift up to +-this many mel bins."),
    ("--aux-pitch-weight", click.FloatRange(min=0),
     "Weight of an auxiliary multi-pitch head's loss (needs records built with --labels onsets+pitch; 0: no head)."),
    ("--aux-role-weight", click.FloatRange(min=0),
     "Weight of an auxiliary song-role head's loss (melody / chords / arpeggio / bass / drums per frame; "
     "needs records built with --labels onsets+roles; 0: no head; not with --aux-pitch-weight)."),
    ("--distill-weight", click.FloatRange(0, 1),
     "Knowledge distillation: weight of the teachers' mean probability in the targets (needs --teacher; 0: none)."),
    ("--patience", click.IntRange(min=1), "Early stopping patience."),
    ("--checkpoint", click.Choice(["best", "last"]),
     "Keep the weights of the best epoch (by val F1 macro) or of the last one."),
    ("--seed", int, "Random seed."),
)
RECIPE_FIELDS: tuple[str, ...] = (
    *(name[2:].replace("-", "_") for name, _, _ in _RECIPE_OPTIONS),
    "augment",
    "ema",
)


def teacher_option(text: str) -> Callable[[F], F]:
    """``--teacher`` (repeatable, existing folders) of ``fit`` and ``cv``: distillation."""
    return click.option(
        "--teacher", "teachers", type=click.Path(exists=True, file_okay=False, path_type=Path),
        multiple=True, help=f"Distillation: {text} Weighted by --distill-weight.",
    )


def recipe_options(f: F) -> F:
    """--model, --config and the TrainConfig overrides shared by ``fit`` and ``cv``."""
    from iad_tf.training.config import MODEL_NAMES, RunConfig

    defaults = RunConfig().train
    f = click.option(
        "--ema/--no-ema",
        default=None,
        help="Average the weights (EMA) and keep the average. [default: off]",
    )(f)
    f = click.option(
        "--augment/--no-augment",
        default=None,
        help="SpecAugment time/frequency masking. [default: on]",
    )(f)
    for name, kind, text in reversed(_RECIPE_OPTIONS):
        field = name[2:].replace("-", "_")
        f = click.option(
            name, field, type=kind, help=f"{text} [default: {getattr(defaults, field)}]"
        )(f)
    f = click.option(
        "--config",
        "config_file",
        type=StoragePath(dir_okay=False),
        help="TOML file with [model], [train] and [feature] tables; options override it.",
    )(f)
    return click.option(
        "--model", "model_name", type=click.Choice(MODEL_NAMES), default="crnn", show_default=True
    )(f)


def recipe_config(config_file: Path | None, overrides: dict[str, Any]) -> Any:
    """The RunConfig of the TOML file (or defaults) with the recipe options that were given;
    ``click.ClickException`` naming the file and key on a bad value."""
    import dataclasses

    from iad_tf.training.config import RunConfig, load_toml, with_overrides

    try:
        cfg = load_toml(config_file) if config_file else RunConfig()
        train = with_overrides(cfg.train, **{k: overrides.get(k) for k in RECIPE_FIELDS})
        return dataclasses.replace(cfg, train=train)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def check_writable(path: str | Path, option: str = "--out") -> None:
    """Fail at once, before any work, when ``path`` (a folder, maybe not there yet) cannot be
    created or written: its nearest existing ancestor must be a folder we can write into.
    Creates nothing. A URL: its scheme must be installed and its bucket reachable."""
    from iad_tf import storage

    if storage.is_remote(path) or isinstance(path, str) and storage.is_url(path):
        try:
            storage.check_bucket(storage.to_path(path))
        except storage.StorageError as exc:
            raise click.ClickException(f"{option} {exc}") from None
        return
    target = Path(path).expanduser().absolute()
    probe = next((p for p in (target, *target.parents) if p.exists()), None)
    try:
        if probe is None or not probe.is_dir():
            raise NotADirectoryError(f"{probe} is not a folder")
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise click.ClickException(
            f"{option} {path}: cannot write there ({exc.strerror or exc})"
        ) from None
