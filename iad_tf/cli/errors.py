"""The one error boundary of every ``iad-tf`` command: an error on the user's data, files or
disk becomes one line naming the path and the cause, with an exit code per kind.

:data:`EXIT_CODES` is the one table of exit codes (the README lists it). Set
``IAD_TF_TRACEBACK=1`` to see the full traceback instead of the one line.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

#: exit code -> what it means. 1 and 2 are click's (a refused option is 2).
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "a command refused its arguments, or some items of a batch failed (each named on stderr)",
    2: "usage error (unknown option, bad option value)",
    3: "bad input data (a corrupt, truncated or inconsistent file, named in the message)",
    4: "operating-system error on a path (disk full, read-only, permission, name too long)",
    5: "the output folder is locked by another running iad-tf command",
    130: "interrupted (Ctrl-C); rerun the same command to resume where that is supported",
}
EXIT_DATA, EXIT_OS, EXIT_LOCKED, EXIT_INTERRUPTED = 3, 4, 5, 130


class CommandFailed(click.ClickException):
    """A one-line error with its own exit code (printed by click as ``Error: <message>``)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _tf_error(exc: BaseException) -> CommandFailed | None:
    """TensorFlow's OpError (e.g. ResourceExhaustedError on a full disk) as one line."""
    tf_errors = sys.modules.get("tensorflow.python.framework.errors_impl")
    if tf_errors is None or not isinstance(exc, tf_errors.OpError):
        return None
    message = (exc.message or str(exc)).strip().splitlines()[0]
    full = "no space left" in message.lower()
    return CommandFailed(message, EXIT_OS if full else EXIT_DATA)


def as_command_error(exc: BaseException) -> CommandFailed | None:
    """The one-line error for ``exc``, or None for a bug (which keeps its traceback)."""
    from iad_tf.fileio import os_error_line
    from iad_tf.locks import LockHeld

    if isinstance(exc, LockHeld):
        return CommandFailed(str(exc), EXIT_LOCKED)
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return CommandFailed(os_error_line(exc) if exc.filename else str(exc), EXIT_DATA)
    if isinstance(exc, OSError):
        return CommandFailed(os_error_line(exc), EXIT_OS)
    if isinstance(exc, (ValueError, *_library_runtime_errors())):
        return CommandFailed(str(exc).strip().splitlines()[0] if str(exc).strip() else
                             type(exc).__name__, EXIT_DATA)
    return _tf_error(exc)


def _library_runtime_errors() -> tuple[type[BaseException], ...]:
    """iad-tf's errors that subclass RuntimeError (all about the user's data or models)."""
    names = {
        "iad_tf.training.callbacks": "TrainingDiverged",
        "iad_tf.export.tflite": "ConversionError",
        "iad_tf.export.checks": "ExportCheckError",
        "iad_tf.data.build": "BuildError",
        "iad_tf.synth.render": "SynthUnavailable",
    }
    found = [getattr(sys.modules[m], n) for m, n in names.items() if m in sys.modules]
    return tuple(found)


def interrupted() -> click.exceptions.Exit:
    click.echo("interrupted", err=True)
    return click.exceptions.Exit(EXIT_INTERRUPTED)


def error_boundary(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command body: OS and data errors -> :class:`CommandFailed` (one line, exit code
    of :data:`EXIT_CODES`); Ctrl-C -> exit 130 with one word, no traceback."""
    if getattr(callback, "_error_boundary", False):
        return callback

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise interrupted() from None
        except Exception as exc:
            if os.environ.get("IAD_TF_TRACEBACK") == "1":
                raise
            err = as_command_error(exc)
            if err is None:
                raise
            raise err from None

    run._error_boundary = True  # type: ignore[attr-defined]
    return run
