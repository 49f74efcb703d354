"""Reusable click option decorators and error handling shared by the commands."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def workers_option(f: F) -> F:
    return click.option(
        "--workers", type=click.IntRange(min=1), default=default_workers, show_default="all cores",
        help="Worker processes.",
    )(f)


def seed_option(f: F) -> F:
    return click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")(f)


def records_option(f: F) -> F:
    return click.option(
        "--records", "records_dir", type=click.Path(file_okay=False, path_type=str), required=True,
        help="Records directory written by build-records.",
    )(f)


def check_writable(path: str | Path, option: str = "--out") -> None:
    """Fail at once, before any work, when ``path`` (a folder, maybe not there yet) cannot be
    created or written: its nearest existing ancestor must be a folder we can write into.
    Creates nothing."""
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
