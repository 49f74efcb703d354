"""Atomic file writing, the one implementation every iad-tf writer uses.

A file is written under a temporary name in the same folder and renamed when complete, so an
interrupted job never leaves a file that looks whole. TF-free (numpy only).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: Longest file name most file systems take (bytes).
NAME_MAX = 255


#: Fault injection for the kill tests: ``<file name>:<n>`` makes the process SIGKILL itself
#: in the middle of its n-th atomic save of a file of that name (half the temporary written).
KILL_AT_SAVE_ENV = "IAD_TF_KILL_AT_SAVE"
_saves: dict[str, int] = {}

#: The marker every temporary name carries (``.<name>.<pid>.tmp`` or ``.<pid>.tmp.<name>``).
TMP_MARK = ".tmp"


def _tmp(path: Path, keep_name_end: bool = False) -> Path:
    """A hidden name beside ``path``; shortened (with a hash) where the plain one would be
    too long, so any file name that fits can be written atomically. ``keep_name_end``: the
    temporary name ends with ``path``'s name (for writers that insist on ``.keras``,
    ``.weights.h5``)."""
    name = (
        f".{os.getpid()}{TMP_MARK}.{path.name}" if keep_name_end
        else f".{path.name}.{os.getpid()}{TMP_MARK}"
    )
    if len(name.encode()) > NAME_MAX:
        digest = hashlib.sha1(path.name.encode()).hexdigest()[:16]
        name = f".{digest}.{os.getpid()}.tmp{path.suffix[:16]}"
    return path.with_name(name)


def os_error_line(exc: OSError, path: str | Path | None = None) -> str:
    """``<path>: <cause>`` for an OSError, naming ``path`` when the error itself has none
    (a failed ``write`` on an open file)."""
    cause = OS_CAUSES.get(exc.errno or -1) or exc.strerror or str(exc)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None] or (
        [str(path)] if path is not None else []
    )
    return f"{' -> '.join(paths)}: {cause}" if paths else cause


#: Friendlier causes for the errno values a user meets on outputs.
OS_CAUSES: dict[int, str] = {
    errno.ENOSPC: "disk full (no space left on device)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "file name too long",
}


def _fault_point(path: Path, tmp: Path) -> None:
    """The :data:`KILL_AT_SAVE_ENV` hook (tests only): die with a half-written temporary."""
    spec = os.environ.get(KILL_AT_SAVE_ENV)
    if not spec or spec.rpartition(":")[0] != path.name:
        return
    _saves[path.name] = _saves.get(path.name, 0) + 1
    if _saves[path.name] == int(spec.rpartition(":")[2]):
        if tmp.is_file():
            os.truncate(tmp, tmp.stat().st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries a killed writer left in ``folder`` (not recursive)."""
    gone = []
    for p in Path(folder).glob(f".*{TMP_MARK}*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_name_end: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write into; renamed to ``path`` on success,
    removed on error. The parent folder is created. ``keep_name_end``: see :func:`_tmp`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path, keep_name_end)
    try:
        yield tmp
        _fault_point(path, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None:  # a write on an open file: say which file
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any, sort_keys: bool = False) -> Path:
    """JSON with NaN/inf written as null (strict JSON)."""
    return write_text(path, json.dumps(_clean(data), indent=2, sort_keys=sort_keys) + "\n")


def portable_paths(value: Any) -> Any:
    """``value`` (nested dicts, lists, tuples) with every absolute local path cut to its last
    part, for files that are published (shipped model metadata, benchmark results): a reader
    has none of the writing machine's folders. A URL (a str containing ``://``) and a relative
    path are kept whole; tuples come back as lists (as JSON writes them); ``value`` itself is
    not modified."""
    if isinstance(value, dict):
        return {k: portable_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [portable_paths(v) for v in value]
    if isinstance(value, str) and "://" not in value and Path(value).is_absolute():
        return Path(value).name
    return value


def read_text(path: str | Path) -> str:
    """A text input as the user may have saved it: UTF-8 with or without a BOM, any line
    ending (returned with ``\n``). ``ValueError`` naming the file when it is not UTF-8.
    ``path``: a local path or a storage path (``iad_tf.storage.to_path``: s3://, gs://, ...)."""
    path = _as_path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: cannot read: not UTF-8 text (byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _as_path(path: Any) -> Any:
    """A local ``Path`` or a URL path: the storage layer's one resolver (imported here, not at
    module level: storage builds on this module)."""
    from iad_tf.storage import to_path

    return to_path(path)


def read_json(path: str | Path) -> Any:
    path = _as_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def write_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        v = float(x)
        return v if np.isfinite(v) else None
    return x
