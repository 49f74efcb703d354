"""The one click parameter type for every path option and argument: a local path or a URL
(through :mod:`iad_tf.storage`). A local value behaves exactly like ``click.Path``; a URL is
checked for an installed scheme (one line naming the extra otherwise) and, with
``exists=True``, for existence (one line naming the URL and the cause)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from iad_tf import storage


class StoragePath(click.ParamType):
    """``click.Path`` that also takes URLs. Converts to :class:`pathlib.Path` (local) or a
    ``UPath`` (URL), or to ``str`` with ``as_str=True`` (the URL or local path text)."""

    name = "path"

    def __init__(
        self, exists: bool = False, file_okay: bool = True, dir_okay: bool = True,
        as_str: bool = False,
    ) -> None:
        self.exists, self.file_okay, self.dir_okay, self.as_str = exists, file_okay, dir_okay, as_str
        self._local = click.Path(exists=exists, file_okay=file_okay, dir_okay=dir_okay, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str | os.PathLike) or not storage.is_url(value):
            local = self._local.convert(value, param, ctx)
            return str(local) if self.as_str else local
        try:
            path = storage.to_path(value)
            if self.exists:
                storage.check_bucket(path)
                with storage.errors(path):
                    is_file, is_dir = path.is_file(), path.is_dir()
                if not (is_file or is_dir):
                    self.fail(f"{value}: does not exist", param, ctx)
                if is_file and not self.file_okay:
                    self.fail(f"{value}: is a file, a folder is expected", param, ctx)
                if is_dir and not is_file and not self.dir_okay:
                    self.fail(f"{value}: is a folder, a file is expected", param, ctx)
        except storage.StorageError as exc:
            self.fail(str(exc), param, ctx)
        return str(path) if self.as_str else path


#: The usual kinds.
IN_DIR = StoragePath(exists=True, file_okay=False)
IN_FILE = StoragePath(exists=True, dir_okay=False)
OUT_DIR = StoragePath(file_okay=False)
#: A run folder: its absence is reported by the command itself (its own one-line message).
RUN_DIR = StoragePath(file_okay=False)
OUT_FILE = StoragePath(dir_okay=False)
IN_ANY = StoragePath(exists=True)


def local_records(value: Any) -> str:
    """A local records folder for a records option (a verified cached copy of a URL)."""
    try:
        return str(storage.local_records(value))
    except storage.StorageError as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.contextmanager
def staged(value: Any, download: bool = True, skip: tuple[str, ...] = ()) -> Iterator[storage.Staged | None]:
    """:func:`iad_tf.storage.staged_dir` for a folder option (``None`` stays ``None``): the
    command works in ``.local``; a URL folder is downloaded first (``download``) and uploaded
    at the end (and at each ``.sync()``; never the paths matching ``skip``). Storage failures become one-line click errors, and a click error raised in
    the block names the URL rather than the local stand-in."""
    if value is None:
        yield None
        return
    try:
        with storage.staged_dir(storage.to_path(value), download=download, skip=skip) as st:
            try:
                yield st
            except click.ClickException as exc:
                if st.local != st.dest:
                    exc.message = exc.message.replace(str(st.local), str(st.dest))
                raise
    except storage.StorageError as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.contextmanager
def local_file(value: Any) -> Iterator[Path | None]:
    """A local copy of a file option's URL (itself when local; ``None`` stays ``None``)."""
    if value is None:
        yield None
        return
    try:
        with storage.local_copy(storage.to_path(value)) as p:
            yield p
    except storage.StorageError as exc:
        raise click.ClickException(str(exc)) from None
