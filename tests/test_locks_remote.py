"""Issue 19: output locks for URL folders (iad_tf.locks_remote): a lock object created with a
conditional put, with a lease. A second writer into the same s3:// or gs:// folder refuses
naming the holder; a stale lock (dead process of this host, or a lease not renewed) is taken
over; racing writers on S3 (whose emulator honours If-None-Match) leave exactly one holder."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from iad_tf import storage
from iad_tf.cli.errors import EXIT_LOCKED
from iad_tf.cli.main import cli
from iad_tf.locks import LOCK_NAME, LockHeld, output_lock
from iad_tf.locks_remote import url_lock
from tests.storage_fixtures import gcs_bucket, s3_bucket  # noqa: F401
from tests.test_locks import dead_pid

pytest.importorskip("upath")


def _exists(url: str) -> bool:
    return storage.to_path(url).exists()


def _write(url: str, info: dict) -> None:
    p = storage.to_path(url)
    p.fs.pipe_file(p.path, json.dumps(info).encode())


@pytest.mark.parametrize("bucket", ["memory://locks", "s3_bucket", "gcs_bucket"])
def test_a_second_writer_into_a_url_folder_refuses_naming_the_first(
    bucket: str, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    base = bucket if "://" in bucket else request.getfixturevalue(bucket)
    out = f"{base}/second-writer/rec"
    with output_lock(out, "build-records"):
        assert _exists(f"{out}/{LOCK_NAME}")
        res = CliRunner().invoke(cli, ["build-records", "--aam-root", str(tmp_path),
                                       "--out", out, "--workers", "1"])
        assert res.exit_code == EXIT_LOCKED, res.output
        # one error line (the in-process emulators' own notes and request tracebacks land in
        # the same captured stderr: not ours)
        lines = [ln for ln in res.output.splitlines() if ln.startswith("Error")]
        assert len(lines) == 1, res.output
        assert lines[0].startswith(f"Error: {out}: in use by `iad-tf build-records` (pid "
                                   f"{os.getpid()} on {socket.gethostname()}, started ")
        assert f"or delete {out}/{LOCK_NAME} if that process is not running" in lines[0]
    assert not _exists(f"{out}/{LOCK_NAME}")  # released


@pytest.mark.parametrize("bucket", ["memory://locks", "s3_bucket", "gcs_bucket"])
def test_a_stale_url_lock_is_taken_over_and_a_live_one_respected(
    bucket: str, request: pytest.FixtureRequest,
) -> None:
    base = bucket if "://" in bucket else request.getfixturevalue(bucket)
    out = storage.to_path(f"{base}/stale/run")
    lock = f"{out}/{LOCK_NAME}"
    now = time.time()
    dead = {"pid": dead_pid(), "host": socket.gethostname(), "command": "fit", "started": "x",
            "renewed": now, "lease_s": 600}
    expired = {"pid": 1, "host": "elsewhere.example", "command": "cv", "started": "y",
               "renewed": now - 700, "lease_s": 600}
    live = {**expired, "renewed": now}
    for stale in (dead, expired):
        _write(lock, stale)
        with url_lock(out, "export") as held:
            assert json.loads(held.read_text())["command"] == "export"
        assert not _exists(lock) and not _exists(f"{lock}.takeover")
    _write(lock, live)
    held = r"in use by `iad-tf cv` \(pid 1 on elsewhere.example"
    with pytest.raises(LockHeld, match=held), url_lock(out, "export", wait_s=0.1):
        pass
    assert json.loads(storage.to_path(lock).read_text()) == live  # untouched
    storage.to_path(lock).unlink()


def test_the_holder_renews_its_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    out = storage.to_path("memory://locks/renewed")
    with url_lock(out, "fit", lease_s=0.4) as held:
        first = json.loads(held.read_text())["renewed"]
        time.sleep(0.6)  # past the lease: renewed meanwhile, so still live
        assert json.loads(held.read_text())["renewed"] > first
        with pytest.raises(LockHeld), url_lock(out, "fit", wait_s=0.1):
            pass


def test_racing_writers_on_s3_leave_exactly_one_holder(request: pytest.FixtureRequest) -> None:
    """moto honours If-None-Match: * like S3 itself: of racing creators exactly one wins."""
    out = storage.to_path(f"{request.getfixturevalue('s3_bucket')}/race/rec")
    results: list[str] = []
    start = threading.Barrier(4)

    def writer() -> None:
        start.wait()
        try:
            with url_lock(out, "build-records", wait_s=0.0):
                results.append("got")
                time.sleep(1.0)
        except LockHeld:
            results.append("refused")

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["got", "refused", "refused", "refused"]
    assert not _exists(f"{out}/{LOCK_NAME}")


def test_staging_never_copies_a_lock(tmp_path: Path) -> None:
    """A run dir staged from a URL leaves the store's lock object alone (not downloaded, not
    uploaded over, not deleted by a sync)."""
    url = "memory://locks/staged"
    with output_lock(url, "fit") as lock:
        before = lock.read_text()
        with storage.staged_dir(storage.to_path(url)) as st:
            assert not list(st.local.glob(f"{LOCK_NAME}*"))
            (st.local / LOCK_NAME).write_text("{}")  # even a stray local one
            (st.local / "a.txt").write_text("a")
            st.sync()
        assert lock.read_text() == before
        assert storage.to_path(f"{url}/a.txt").read_text() == "a"


def test_a_taker_never_deletes_the_takeover_object_of_a_newer_taker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A taker that finds the takeover object held, then reads it gone (released meanwhile),
    must not delete the one a newer taker has just created."""
    from iad_tf import locks_remote

    lock = storage.to_path("memory://locks/takeover/o") / LOCK_NAME
    mutex = f"{lock}.takeover"
    _write(mutex, {"since": time.time()})  # a newer taker's, fresh
    real = locks_remote._read
    # the holder's mutex read as gone once (it was released between the put and the read)
    monkeypatch.setattr(locks_remote, "_read",
                        lambda p: None if str(p) == mutex else real(p))
    locks_remote._take_over(lock, {"pid": 1})
    assert _exists(mutex)
    storage.to_path(mutex).unlink()
