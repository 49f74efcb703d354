"""A local multi-process Beam build listens on loopback only: every listening socket of this
process while the pipeline runs is bound to 127.0.0.1 (Beam's portable DirectRunner binds
its gRPC servers to every interface unless iad_tf.data.beam.loopback_grpc rebinds them).
The same holds for Beam's portable runner against a local job service (no Java) with a
LOOPBACK environment, whose records equal the local build's."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from iad_tf.cli.build_records import build_records as build_cmd
from iad_tf.data.build import BuildOptions, build_records
from tests.test_beam import records_by_track
from tfrecords_tools.reader import read_manifest

pytest.importorskip("apache_beam")
MULTI = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets process ``pid`` listens on (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for row in fh.read().splitlines()[1:]:
                cols = row.split()
                if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                    continue
                hex_ip, hex_port = cols[1].split(":")
                raw = bytes.fromhex(hex_ip)  # little-endian 32-bit words
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                ip = ipaddress.ip_address(words)
                if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                    ip = ip.ipv4_mapped  # an IPv6 socket bound to ::ffff:127.0.0.1
                out.add((str(ip), int(hex_port, 16)))
    return out


@contextlib.contextmanager
def listening_while() -> Iterator[set[tuple[str, int]]]:
    """The (address, port) pairs this process listened on while the block ran (polled)."""
    seen: set[tuple[str, int]] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(listening(os.getpid()))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


NEEDS_PROC = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")


@pytest.mark.slow
@NEEDS_PROC
def test_multi_process_direct_runner_listens_on_loopback_only(tiny_aam: Path, tmp_path: Path) -> None:
    from iad_tf.data.beam import build_records_beam

    with listening_while() as seen:
        result = build_records_beam([tiny_aam], tmp_path / "rec",
                                    BuildOptions(shards_per_split=1, workers=2, progress=False),
                                    beam_args=MULTI)
    assert len(result.manifest["tracks"]) == 4
    assert len(seen) >= 4  # control, data, state, logging servers were seen
    assert {ip for ip, _ in seen} == {"127.0.0.1"}, seen


#: Beam's local job service (pure Python), its own worker-handler servers kept on loopback.
JOB_SERVICE = """
import sys
from apache_beam.runners.portability import local_job_service_main
from iad_tf.data.beam import loopback_grpc
with loopback_grpc([]):
    local_job_service_main.run(sys.argv[1:])
"""


@pytest.fixture
def job_service(tmp_path: Path) -> Iterator[int]:
    """Port of a local Beam job service on localhost (a subprocess, stopped at teardown)."""
    port_file, log = tmp_path / "job.port", tmp_path / "job.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", JOB_SERVICE, "--port=0", f"--port_file={port_file}"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"local job service did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield int(port_file.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@NEEDS_PROC
def test_portable_runner_on_local_job_service_equals_local(
    job_service: int, tiny_aam: Path, tmp_path: Path
) -> None:
    build_records([tiny_aam], tmp_path / "local", BuildOptions(shards_per_split=1, workers=1, progress=False))
    flags = f"--runner=PortableRunner --job_endpoint=localhost:{job_service} --environment_type=LOOPBACK"
    with listening_while() as seen:
        res = CliRunner().invoke(build_cmd, ["--aam-root", str(tiny_aam), "--out", str(tmp_path / "beam"),
                                             "--shards-per-split", "1", "--runner", "beam", "--beam-options", flags])
    assert res.exit_code == 0, res.output
    assert "built 4 track(s) (4 computed, 0 from cache)" in res.output
    assert seen and {ip for ip, _ in seen} == {"127.0.0.1"}, seen  # the LOOPBACK worker pool
    a, b = records_by_track(tmp_path / "local"), records_by_track(tmp_path / "beam")
    assert sorted(a) == sorted(b) and len(a) == 4
    for tid in a:
        assert a[tid]["split"] == b[tid]["split"]
        assert a[tid]["mel"].tobytes() == b[tid]["mel"].tobytes()
        assert a[tid]["labels"].tobytes() == b[tid]["labels"].tobytes()
    ma, mb = read_manifest(tmp_path / "local"), read_manifest(tmp_path / "beam")
    assert {k: v for k, v in ma.items() if k != "shards"} == {k: v for k, v in mb.items() if k != "shards"}
    assert sorted(ma["shards"]) == sorted(mb["shards"])
