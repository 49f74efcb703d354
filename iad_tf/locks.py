"""One lock per output folder: a second writer refuses, naming the holder.

The lock is a file ``<folder>/.iad-tf.lock`` created with ``O_CREAT | O_EXCL`` and holding
JSON ``{pid, host, command, started}``. A lock whose process is gone (same host, no such pid)
is stale and taken over: removed under a takeover mutex after checking it is unchanged, then
the folder is locked afresh. TF-free, standard library only (a URL folder's lock, an object
in the store with a lease: :mod:`iad_tf.locks_remote`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCK_NAME = ".iad-tf.lock"


class LockHeld(RuntimeError):
    """The folder is locked by a live process; the message names it and the lock file."""


def holder(info: dict[str, Any]) -> str:
    return (
        f"`iad-tf {info.get('command', '?')}` (pid {info.get('pid', '?')} on "
        f"{info.get('host', '?')}, started {info.get('started', '?')})"
    )


def held(folder: object, seen: dict[str, Any], lock: object, note: str = "") -> LockHeld:
    """The one-line refusal: who holds ``folder`` and what to do about it."""
    return LockHeld(f"{folder}: in use by {holder(seen)}; wait for it to finish, or delete "
                    f"{lock} if that process is not running{note}")


def _read(lock: Path) -> dict[str, Any] | None:
    """The lock's content; {} when unreadable (being written), None when gone."""
    try:
        data = json.loads(lock.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, someone else's
        return True
    return True


def is_stale(info: dict[str, Any]) -> bool:
    """True for a lock of this host whose process no longer exists."""
    pid = info.get("pid")
    return info.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid)


def lock_info(command: str) -> dict[str, Any]:
    """What a lock holds: who took it, for which command, since when."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _create(lock: Path, info: dict[str, Any]) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(info))
    return True


#: A takeover mutex older than this belongs to a taker that died mid-takeover.
TAKEOVER_STALE_S = 10.0


def _take_over(lock: Path, seen: dict[str, Any]) -> None:
    """Remove a stale lock whose content is still ``seen``, one taker at a time: takers hold
    ``<lock>.takeover`` (O_EXCL), re-read the lock under it and move it away only if it is
    unchanged, so a lock a faster taker has meanwhile created is never touched."""
    mutex = lock.with_name(lock.name + ".takeover")
    try:
        fd = os.open(mutex, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        with contextlib.suppress(OSError):
            if time.time() - mutex.stat().st_mtime > TAKEOVER_STALE_S:
                mutex.unlink()
        time.sleep(0.02)
        return  # the caller tries again
    os.close(fd)
    try:
        if _read(lock) == seen:
            aside = lock.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
            os.replace(lock, aside)
            aside.unlink(missing_ok=True)
    finally:
        mutex.unlink(missing_ok=True)


@contextlib.contextmanager
def output_lock(folder: Any, command: str, wait_s: float = 1.0) -> Iterator[Any]:
    """Hold ``folder``'s lock for the ``with`` body (the folder is created; removed again on
    exit if this lock created it and it stayed empty). :class:`LockHeld` names a live holder.
    A URL folder (``s3://``...) is locked by :func:`iad_tf.locks_remote.url_lock`.
    """
    if "://" in str(folder):  # a URL: the lock is an object (iad_tf.locks_remote)
        from iad_tf import storage
        from iad_tf.locks_remote import url_lock

        path = storage.to_path(folder) if isinstance(folder, str) else folder
        if storage.is_remote(path):
            with url_lock(path, command, wait_s) as lock:
                yield lock
            return
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    info = lock_info(command)
    deadline = time.monotonic() + wait_s
    while not _create(lock, info):
        seen = _read(lock)
        if seen is None:
            continue  # released meanwhile: try again
        if seen and is_stale(seen):
            _take_over(lock, seen)
            continue
        if time.monotonic() >= deadline:  # {} = a lock being written right now: live
            raise held(folder, seen, lock)
        time.sleep(0.05)
    try:
        yield lock
    finally:
        if _read(lock) == info:
            lock.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
