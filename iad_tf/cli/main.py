"""``iad-tf``: the command group. Commands live one per module and load lazily, so
``iad-tf --help`` is instant and TensorFlow is imported only inside the commands that need it.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from typing import Any

import click

from iad_tf import __version__
from iad_tf.cli.errors import error_boundary

#: Commands that run TensorFlow: it is imported quietly before their module loads.
TF_COMMANDS: frozenset[str] = frozenset({"fit", "cv", "evaluate", "export", "demo"})

#: command name -> "module:function" (each module defines one click command).
COMMANDS: dict[str, str] = {
    "build-records": "iad_tf.cli.build_records:build_records",
    "fit": "iad_tf.cli.fit:fit",
    "cv": "iad_tf.cli.cv:cv",
    "evaluate": "iad_tf.cli.evaluate:evaluate",
    "plot": "iad_tf.cli.evaluate:plot",
    "compare": "iad_tf.cli.evaluate:compare",
    "export": "iad_tf.cli.export:export",
    "predict": "iad_tf.cli.predict:predict",
    "synth": "iad_tf.cli.synth:synth",
    "remix": "iad_tf.cli.synth:remix",
    "bank": "iad_tf.cli.bank:bank",
    "demo": "iad_tf.cli.demo:demo",
    "view": "iad_tf.cli.view:view",
}

#: command -> the parameters naming its output folder (the first one given is locked while
#: the command runs: a second writer into that folder refuses; iad_tf.locks).
OUTPUT_FOLDERS: dict[str, tuple[str, ...]] = {
    "build-records": ("out_dir",),
    "fit": ("run_dir",),
    "cv": ("run_dir",),
    "evaluate": ("out_dir", "run_dir"),
    "export": ("out_dir",),
    "synth": ("out",),
    "remix": ("out",),
    "bank": ("out",),
    "view": ("export_dir",),  # only with --export DIR (serving writes nothing)
}


#: Top-level module -> the pip extra that installs it. The base install (``pip install
#: iad-tf``) holds what ``predict`` needs; a command that reaches for a module of an extra
#: says which extra to install instead of raising ModuleNotFoundError.
EXTRA_FOR_MODULE: dict[str, str] = {
    **dict.fromkeys(
        (
            "tensorflow",
            "keras",
            "librosa",
            "sklearn",
            "tensorflow_io",
            "tensorboard",
            "pretty_midi",
            "mido",
            "google_crc32c",
            "threadpoolctl",
            "numba",
            "scipy",
        ),
        "train",
    ),
    "matplotlib": "plot",
    "apache_beam": "beam",
    "pytest": "test",
}


def _naming_missing_extra(callback: Callable[..., Any], cmd_name: str) -> Callable[..., Any]:
    """Wrap a command body: a missing module of an extra becomes a one-line error naming
    the extra to install."""
    if getattr(callback, "_names_extra", False):
        return callback

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except ModuleNotFoundError as exc:
            top = (exc.name or "").split(".")[0]
            if top not in EXTRA_FOR_MODULE:
                raise
            extra = EXTRA_FOR_MODULE[top]
            raise click.ClickException(
                f"`iad-tf {cmd_name}` needs {top}, which this install lacks: "
                f"pip install 'iad-tf[{extra}]'"
            ) from None

    run._names_extra = True  # type: ignore[attr-defined]
    return run


def _after_quiet_tensorflow(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command body so TensorFlow is imported quietly before it runs (not on --help)."""
    if getattr(callback, "_quiet_tf", False):
        return callback

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        from iad_tf._tfio import tensorflow

        tensorflow()
        return callback(*args, **kwargs)

    run._quiet_tf = True  # type: ignore[attr-defined]
    return run


def _locking_output(command: click.Command, cmd_name: str) -> Callable[..., Any]:
    """Wrap a command body: check its output folder is writable (one line, before any work)
    and hold the folder's lock while the body runs."""
    callback = command.callback
    assert callback is not None
    if getattr(callback, "_locks_output", False) or cmd_name not in OUTPUT_FOLDERS:
        return callback
    options = {p.name: (p.opts[0] if p.opts else p.name) for p in command.params}

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        from iad_tf.cli.options import check_writable
        from iad_tf.locks import output_lock

        name = next((n for n in OUTPUT_FOLDERS[cmd_name] if kwargs.get(n) is not None), None)
        folder = None if name is None else str(kwargs[name])
        # A URL output is locked by a lock object in the store (iad_tf.locks_remote);
        # multiworker fit runs one command per host (only the chief writes).
        if folder is None or kwargs.get("strategy_name") == "multiworker":
            return callback(*args, **kwargs)
        check_writable(folder, str(options.get(name, name)))
        with output_lock(folder, cmd_name):
            return callback(*args, **kwargs)

    run._locks_output = True  # type: ignore[attr-defined]
    return run


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attr = COMMANDS[cmd_name].split(":")
        # TensorFlow's C++ start-up chatter (no CUDA here, oneDNN notes) is noise for a CLI
        # user: quieted when a command is loaded (not at import), unless the user chose a level.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("iad_tf"):
                return None  # command not built yet in this checkout
            raise
        command: click.Command = getattr(module, attr)
        if cmd_name in TF_COMMANDS and command.callback is not None:
            command.callback = _after_quiet_tensorflow(command.callback)
        if command.callback is not None:
            command.callback = _locking_output(command, cmd_name)
            command.callback = error_boundary(
                _naming_missing_extra(command.callback, cmd_name)
            )
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iad-tf")
def cli() -> None:
    """Instrument activation detection: which instruments play in every ~23 ms frame."""
