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


#: Longest start-up (imports, records check) allowed before a worker begins its wait: a
#: loaded machine (CI beside a training run) took more than 90 s; the tests time the wait
#: itself, from when the worker answers on its address, never the start-up.
STARTUP_S = 600


def test_lonely_worker_exits_within_its_deadline(records: Path, tmp_path: Path) -> None:
    me, peer = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    tf_config = {"cluster": {"worker": [me, peer]}, "task": {"type": "worker", "index": 0}}
    proc = subprocess.Popen(
        [*FIT, "--records", str(records), "--run-dir", str(tmp_path / "run"), "--epochs", "1",
         "--strategy", "multiworker", "--peer-timeout", "4"],
        env={**ENV, "TF_CONFIG": json.dumps(tf_config)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        waiting_since = _wait_until_listening(proc, me)
        _, err = proc.communicate(timeout=120)
        waited = time.monotonic() - waiting_since
    finally:
        proc.kill()
    assert proc.returncode != 0
    lines = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert lines == [
        f"Error: --strategy multiworker: worker 0 ({me}) waited 4 s (--peer-timeout) for {peer}, "
        "which never appeared; start the same command on every host of TF_CONFIG"]
    assert waited < 4 + 15  # the deadline, not TensorFlow's watchdog (48 s before issue 19)
    assert not (tmp_path / "run" / "model.keras").exists()


def _listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
        return True
    except OSError:
        return False


def _wait_until_listening(proc: subprocess.Popen, address: str, limit: float = STARTUP_S) -> float:
    """Block until the worker ``proc`` answers on ``address`` (its wait for peers began);
    return that moment (monotonic). Fails with the worker's stderr if it exited first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if _listening(address):
            return time.monotonic()
        if proc.poll() is not None:
            pytest.fail(f"the worker exited ({proc.returncode}) before waiting for its peer: "
                        f"{proc.stderr.read()[-2000:] if proc.stderr else ''}")
        time.sleep(0.05)
    pytest.fail(f"the worker did not answer on {address} within {limit:.0f} s")


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
        _wait_until_listening(proc, me)
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
        deadline = time.monotonic() + STARTUP_S
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
