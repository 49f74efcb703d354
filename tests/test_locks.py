"""Issue 21 item 2: one lock per output folder. A second writer refuses naming the holder
(two real processes), a stale lock of a dead process is taken over, a lock of another host is
respected, and the lock goes when the command ends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from iad_tf.cli.errors import EXIT_LOCKED
from iad_tf.cli.main import OUTPUT_FOLDERS, cli
from iad_tf.data.build import DELAY_ENV
from iad_tf.locks import LOCK_NAME, LockHeld, output_lock

REPO = Path(__file__).resolve().parents[1]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def build(aam: Path, out: Path) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["build-records", "--aam-root", str(aam), "--out", str(out), "--workers", "1"])
    return res.exit_code, res.output


def test_a_second_build_records_into_one_out_refuses_naming_the_first(
    tiny_aam: Path, tmp_path: Path
) -> None:
    out = tmp_path / "records"
    first = subprocess.Popen(
        [sys.executable, "-m", "iad_tf", "build-records", "--aam-root", str(tiny_aam), "--out", str(out),
         "--workers", "1"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), DELAY_ENV: "1.5"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not (out / LOCK_NAME).is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    code, output = build(tiny_aam, out)
    assert code == EXIT_LOCKED, output
    assert f"`iad-tf build-records` (pid {first.pid} on {socket.gethostname()}" in output
    assert len(output.strip().splitlines()) == 1
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert not (out / LOCK_NAME).exists()  # released
    from tfrecords_tools.verify import verify_dir

    assert verify_dir(out).ok  # the first build is whole: the second wrote nothing


def test_a_stale_lock_of_a_dead_process_is_taken_over(tiny_aam: Path, tmp_path: Path) -> None:
    out = tmp_path / "records"
    out.mkdir()
    stale = {"pid": dead_pid(), "host": socket.gethostname(), "command": "build-records",
             "started": "2026-01-01T00:00:00Z"}
    (out / LOCK_NAME).write_text(json.dumps(stale))
    code, output = build(tiny_aam, out)
    assert code == 0, output
    assert (out / "manifest.json").is_file() and not (out / LOCK_NAME).exists()
    assert not list(out.glob(f"{LOCK_NAME}*"))


def test_a_lock_of_another_host_or_a_live_process_is_respected(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    other = {"pid": 1, "host": "elsewhere.example", "command": "fit", "started": "x"}
    (out / LOCK_NAME).write_text(json.dumps(other))
    held = r"in use by `iad-tf fit` \(pid 1 on elsewhere.example"
    with pytest.raises(LockHeld, match=held), output_lock(out, "export", wait_s=0.1):
        pass
    (out / LOCK_NAME).unlink()
    with (
        output_lock(out, "export"),
        pytest.raises(LockHeld, match=f"pid {os.getpid()}"),
        output_lock(out, "synth", wait_s=0.1),
    ):
        pass
    assert not (out / LOCK_NAME).exists()


def test_a_lock_that_made_the_folder_removes_it_when_nothing_was_written(tmp_path: Path) -> None:
    with output_lock(tmp_path / "new", "fit"):
        assert (tmp_path / "new" / LOCK_NAME).is_file()
    assert not (tmp_path / "new").exists()


def test_every_writing_command_names_its_output_folder() -> None:
    assert set(OUTPUT_FOLDERS) == {
        "build-records", "fit", "cv", "evaluate", "export", "synth", "remix", "bank", "view"
    }


def test_racing_takers_of_a_stale_lock_leave_exactly_one_holder(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    stale = {"pid": dead_pid(), "host": socket.gethostname(), "command": "fit", "started": "x"}
    (out / LOCK_NAME).write_text(json.dumps(stale))
    code = (
        "import sys, time\nfrom iad_tf.locks import LockHeld, output_lock\n"
        "try:\n"
        f"    with output_lock({str(out)!r}, 'fit', wait_s=0.0):\n"
        "        print('got', flush=True); time.sleep(3)\n"
        "except LockHeld:\n    print('refused', flush=True)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                         stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert results == ["got", "refused", "refused", "refused"]
    assert not (out / LOCK_NAME).exists()
