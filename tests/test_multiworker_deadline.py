"""fit fails loudly under multi-worker training: a worker whose peers never start exits within
--peer-timeout with one line, SIGTERM/SIGINT end a worker waiting for its peers at once, and
SIGTERM stops a training run promptly, leaving it resumable.
Each run is a subprocess (TensorFlow's runtime setup is per process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.records_factory import make_records
from tests.storage_fixtures import free_port

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
FIT = [sys.executable, "-m", "iad_tf", "fit", "--model", "mlp", "--batch-size", "2",
       "--batching", "windows", "--window-seconds", "1.0", "--no-augment"]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_records(tmp_path_factory.mktemp("recs"), n_frames=120, seed=0)


def test_lonely_worker_exits_within_its_deadline(records: Path, tmp_path: Path) -> None:
    me, peer = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    tf_config = {"cluster": {"worker": [me, peer]}, "task": {"type": "worker", "index": 0}}
    start = time.monotonic()
    proc = subprocess.run(
        [*FIT, "--records", str(records), "--run-dir", str(tmp_path / "run"), "--epochs", "1",
         "--strategy", "multiworker", "--peer-timeout", "4"],
        env={**ENV, "TF_CONFIG": json.dumps(tf_config)}, capture_output=True, text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
    assert lines == [
        f"Error: --strategy multiworker: worker 0 ({me}) waited 4 s (--peer-timeout) for {peer}, "
        "which never appeared; start the same command on every host of TF_CONFIG"]
    assert elapsed < 4 + 60  # the deadline plus TensorFlow's start-up on a busy machine
    assert not (tmp_path / "run" / "model.keras").exists()


def _listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
        return True
    except OSError:
        return False


def _default_signals() -> None:
    """In the child: the default SIGINT/SIGTERM (a background shell may ignore SIGINT)."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_worker_waiting_for_its_peers_at_once(
    sig: signal.Signals, records: Path, tmp_path: Path,
) -> None:
    """Issue 19: TensorFlow swallows SIGTERM while the cluster forms (its preemption notifier);
    the wait for peers happens before, in Python, so a stop signal ends it with one line."""
    me, peer = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    tf_config = {"cluster": {"worker": [me, peer]}, "task": {"type": "worker", "index": 0}}
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [*FIT, "--records", str(records), "--run-dir", str(run), "--epochs", "1",
         "--strategy", "multiworker", "--peer-timeout", "120"],
        env={**ENV, "TF_CONFIG": json.dumps(tf_config)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals,
    )
    try:
        deadline = time.monotonic() + 90
        while not _listening(me) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # up to TensorFlow's start-up on a busy machine
        assert _listening(me), "the worker never started waiting for its peer"
        time.sleep(1.0)  # well into the wait
        sent = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err[-2000:]
    assert stopped_after < 10
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [f"stopped by {sig.name}; rerun the same command to resume {run}"], err[-2000:]
    assert not (run / "config.json").exists()


@pytest.mark.slow
def test_sigterm_stops_training_promptly_and_the_run_resumes(records: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [*FIT, "--records", str(records), "--run-dir", str(run), "--epochs", "3",
            "--steps-per-epoch", "150"]
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        # the first epoch finished and its backup landed (written just after metrics.jsonl)
        backed_up = run / "backup" / "training_metadata.json"
        while not (backed_up.is_file() and (run / "metrics.jsonl").is_file()) and (
                time.monotonic() < deadline):
            time.sleep(0.1)
        assert backed_up.is_file(), "the first epoch never finished"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM; rerun the same command to resume" in err
    assert stopped_after < 15
    assert (run / "backup").is_dir()  # the last finished epoch, to resume from
    done = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    epochs = [json.loads(ln)["epoch"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]  # resumed after epoch 1, nothing repeated
