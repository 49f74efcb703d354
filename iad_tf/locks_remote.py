"""The output lock of a URL folder (``s3://``, ``gs://``, any fsspec store): what
:mod:`iad_tf.locks` is for a local folder, as an object ``<folder>/.iad-tf.lock``.

* Created with a conditional put (``mode="create"``: S3 ``If-None-Match: *``, GCS
  ``ifGenerationMatch=0``): on a store that honours the condition exactly one of two racing
  writers gets the lock. The lock is looked for before and read back after the put (it must
  hold our content), so a store that ignores the condition (the GCS emulator does; so may
  some S3-compatible servers) still refuses a second writer that comes while the first holds
  the lock. The weaker guarantee there: two writers starting within the same instant
  (between one's look and its read-back) may both proceed.
* A lease: the holder renews the lock's ``renewed`` time every :data:`LEASE_S` / 4 seconds
  from a thread. A lock not renewed for :data:`LEASE_S` (its holder died on another
  machine), or of this host whose process is gone (as for local locks), is stale and taken
  over: under a takeover object (created conditionally too) the lock is re-read and deleted
  only if unchanged. Leases compare wall clocks: hosts must agree within minutes; a holder
  that cannot reach the store for a whole lease may lose its lock to another writer.

Content: JSON ``{pid, host, command, started, renewed, lease_s}``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from iad_tf import storage
from iad_tf.locks import LOCK_NAME, TAKEOVER_STALE_S, held, is_stale, lock_info

#: Seconds after its last renewal that a lock of another host counts as abandoned.
LEASE_S = 600.0


def _read(lock: Any) -> dict[str, Any] | None:
    """The lock's content; {} when unreadable, None when absent."""
    with storage.errors(lock):
        try:
            text = lock.fs.cat_file(lock.path)
        except FileNotFoundError:
            return None
    try:
        data = json.loads(text or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _put(lock: Any, info: dict[str, Any], create: bool) -> bool:
    """Write ``info`` to ``lock`` (``create``: only if absent); False when it existed."""
    with storage.errors(lock):
        try:
            lock.fs.pipe_file(lock.path, json.dumps(info).encode(),
                              mode="create" if create else "overwrite")
        except FileExistsError:
            return False
        lock.fs.invalidate_cache(lock.path)
    return True


def _delete(lock: Any) -> None:
    with storage.errors(lock), contextlib.suppress(FileNotFoundError):
        lock.fs.rm_file(lock.path)


def lease_expired(info: dict[str, Any], now: float | None = None) -> bool:
    """True for a lock whose holder stopped renewing it (or a stale lock of this host)."""
    renewed, lease = info.get("renewed"), info.get("lease_s", LEASE_S)
    late = isinstance(renewed, int | float) and isinstance(lease, int | float) and (
        (now if now is not None else time.time()) - renewed > lease)
    return late or is_stale(info)


def _take_over(lock: Any, seen: dict[str, Any]) -> None:
    """Delete the stale lock if it still reads ``seen``, one taker at a time (see
    :func:`iad_tf.locks._take_over`)."""
    mutex = lock.parent / (lock.name + ".takeover")
    if not _put(mutex, {"since": time.time()}, create=True):
        old = _read(mutex)  # None: released meanwhile (never delete a newer taker's)
        if old is not None and time.time() - float(old.get("since") or 0) > TAKEOVER_STALE_S:
            _delete(mutex)  # its taker died mid-takeover
        time.sleep(0.05)
        return  # the caller tries again
    try:
        if _read(lock) == seen:
            _delete(lock)
    finally:
        _delete(mutex)


def _renew_every(lock: Any, info: dict[str, Any], seconds: float, stop: threading.Event) -> None:
    """Renew the lease until ``stop``; stop renewing a lock that is no longer ours."""
    while not stop.wait(seconds):
        try:
            if _read(lock) != info:
                return
            renewed = {**info, "renewed": time.time()}
            _put(lock, renewed, create=False)
            info.update(renewed)
        except storage.StorageError:
            continue  # a store hiccup: the lease is long enough to try again


@contextlib.contextmanager
def url_lock(folder: Any, command: str, wait_s: float = 1.0, lease_s: float = LEASE_S) -> Iterator[Any]:
    """Hold the lock of the URL folder ``folder`` (a ``UPath``) for the ``with`` body.
    :class:`~iad_tf.locks.LockHeld` names a live holder; a storage failure is a one-line
    :class:`~iad_tf.storage.StorageError`."""
    lock = folder / LOCK_NAME
    info = {**lock_info(command), "renewed": time.time(), "lease_s": lease_s}
    deadline = time.monotonic() + wait_s
    while True:
        # Read first: a store that ignores the put's condition would let us overwrite a lock.
        seen = _read(lock)
        if seen is None:
            if _put(lock, info, create=True) and _read(lock) == info:
                break
            continue  # another writer was faster: look at its lock
        if seen and lease_expired(seen):
            _take_over(lock, seen)
            continue
        if time.monotonic() >= deadline:  # {} = a lock being written right now: live
            raise held(folder, seen, lock, f" (a lock not renewed for {lease_s:g} s is taken over)")
        time.sleep(0.1)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew_every, args=(lock, info, lease_s / 4, stop),
                               name="iad-tf-lease", daemon=True)
    renewer.start()
    try:
        yield lock
    finally:
        stop.set()
        renewer.join()
        with contextlib.suppress(storage.StorageError):
            if _read(lock) == info:
                _delete(lock)
