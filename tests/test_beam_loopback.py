"""A local multi-process Beam build listens on loopback only: every listening socket of this
process while the pipeline runs is bound to 127.0.0.1 (Beam's portable DirectRunner binds
its gRPC servers to every interface unless iad_tf.data.beam.loopback_grpc rebinds them)."""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from pathlib import Path

import pytest

from iad_tf.data.build import BuildOptions

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


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_multi_process_direct_runner_listens_on_loopback_only(tiny_aam: Path, tmp_path: Path) -> None:
    from iad_tf.data.beam import build_records_beam

    seen: set[tuple[str, int]] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(listening(os.getpid()))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = build_records_beam([tiny_aam], tmp_path / "rec",
                                    BuildOptions(shards_per_split=1, workers=2, progress=False),
                                    beam_args=MULTI)
    finally:
        done.set()
        watcher.join()
    assert len(result.manifest["tracks"]) == 4
    assert len(seen) >= 4  # control, data, state, logging servers were seen
    assert {ip for ip, _ in seen} == {"127.0.0.1"}, seen
