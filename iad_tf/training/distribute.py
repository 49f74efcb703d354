"""``fit --strategy {default,mirrored,multiworker}``: tf.distribute strategies for training.

* ``default``: TensorFlow's default (no-op) strategy, one device.
* ``mirrored``: :class:`tf.distribute.MirroredStrategy` over every local GPU, or over every
  logical CPU device when there is no GPU (``tf.config.set_logical_device_configuration``
  splits a CPU in tests). Each step's global batch is split across the replicas and the
  gradients are all-reduced, so the loss trajectory equals the single-device one (up to
  float summation order).
* ``multiworker``: :class:`tf.distribute.MultiWorkerMirroredStrategy` (with a fix for Keras 3,
  :func:`multiworker_strategy_class`) over the hosts listed in ``TF_CONFIG`` (``{"cluster": {"worker": ["host:port", ...]}, "task": {"type":
  "worker", "index": i}}``). The same command runs on every host; worker 0 is the chief.

What each part does under a strategy (see :func:`iad_tf.training.fit.fit`):

* the model, its optimizer, loss and the callbacks are created inside ``strategy.scope()``;
* the training dataset keeps its *global* batch size; Keras distributes it and tf.data
  auto-sharding gives each worker its own part (:func:`shard_input`: by file when there are
  at least as many train shards as workers, else by element);
* only the chief writes the run directory; other workers write theirs to
  ``<run_dir>/workers/<index>`` (:func:`worker_run_dir`, scratch they need to resume);
* ``model.keras`` and the ``backup/`` checkpoint hold plain weights: a run saved under one
  strategy loads or resumes under any other.

Two differences from one device, both inherent to Keras 3 + tf.distribute:

* the loss of a replica is the masked mean over *its* frames and the replicas' losses are
  averaged, so when padding masks differ between replicas (``batching="tracks"``) frames are
  weighted slightly differently than in one global masked mean (``windows`` batches are
  unpadded, except tracks shorter than a window);
* under a strategy Keras draws one batch from the training dataset to build the model and
  then restarts the dataset, so the random draws of the first epoch (shuffle order, window
  offsets, SpecAugment) differ from a single-device run with the same seed.

The strategy must be created before TensorFlow runs anything (``MultiWorkerMirroredStrategy``
configures the runtime), so the CLI calls :func:`make_strategy` first.

Failing loudly: creating a ``MultiWorkerMirroredStrategy`` blocks, in TensorFlow's C++ and
deaf to signals, until every worker of ``TF_CONFIG`` is up: TensorFlow holds the GIL (no
Python thread runs) and its preemption notifier replaces the SIGTERM handler (a SIGTERM only
sets a flag of its own). So the long wait happens before, in Python (:func:`wait_for_peers`):
each worker answers on its own ``TF_CONFIG`` address and polls its peers' until every one
answers, and only then creates the strategy (seconds, as every peer is up). In that wait
SIGTERM/SIGINT work as anywhere else (under :func:`stop_on_signals`: the fit command prints
one line and exits 143/130 at once), and after ``peer_timeout_s`` (``fit --peer-timeout``) it
gives up with one line naming the workers that never appeared. The creation itself keeps a
watchdog process with the same deadline (a peer that vanished between the two), Ctrl-C ending
it at once. :func:`stop_on_signals` makes SIGTERM/SIGINT stop a training worker promptly: a
``KeyboardInterrupt`` in the main thread (Keras stops between steps; ``backup/`` holds the
last finished epoch, so rerunning resumes) and, when the main thread is stuck inside
TensorFlow (a collective waiting for a peer that died), an exit after a short grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STRATEGIES: tuple[str, ...] = ("default", "mirrored", "multiworker")
#: Seconds a multi-worker task waits for its peers before it gives up (``--peer-timeout``).
DEFAULT_PEER_TIMEOUT_S = 300.0
#: Seconds between a stop signal and a forced exit when the main thread cannot be interrupted.
STOP_GRACE_S = 15.0


class StrategyError(ValueError):
    """A strategy that cannot be set up here (bad TF_CONFIG, unknown name)."""


def read_tf_config(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse and check ``TF_CONFIG`` for multi-worker training; raise :class:`StrategyError`."""
    env = os.environ if env is None else env
    raw = env.get("TF_CONFIG")
    if not raw:
        raise StrategyError(
            "--strategy multiworker needs TF_CONFIG, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StrategyError(f"TF_CONFIG is not valid JSON ({exc})") from None
    workers = cfg.get("cluster", {}).get("worker") if isinstance(cfg, dict) else None
    task = cfg.get("task", {}) if isinstance(cfg, dict) else {}
    if not isinstance(workers, list) or not workers:
        raise StrategyError("TF_CONFIG: cluster.worker must list the workers' host:port addresses")
    ttype, index = task.get("type"), task.get("index")
    if ttype not in ("worker", "chief") or not isinstance(index, int) or index < 0:
        raise StrategyError("TF_CONFIG: task must be {\"type\": \"worker\"|\"chief\", \"index\": n}")
    if index >= len(cfg["cluster"].get(ttype, [])):
        raise StrategyError(f"TF_CONFIG: task index {index} but cluster.{ttype} lists {len(cfg['cluster'].get(ttype, []))}")
    return cfg


def make_strategy(name: str, peer_timeout_s: float = DEFAULT_PEER_TIMEOUT_S) -> Any:
    """A ``tf.distribute.Strategy`` for ``name`` in :data:`STRATEGIES` (see module docstring).

    ``multiworker``: when the other workers do not all start within ``peer_timeout_s``, the
    process is ended (SIGKILL) after one line on stderr naming them (:func:`_with_deadline`)."""
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "multiworker":
        cfg = read_tf_config()
        return _with_deadline(multiworker_strategy_class(), cfg, peer_timeout_s)
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    raise AssertionError(name)


#: The start-up watchdog: a separate small process (TensorFlow holds the GIL while it waits, so
#: no thread of ours could run): after the deadline it prints the line and kills the worker
#: (SIGKILL: TensorFlow's preemption notifier catches SIGTERM once the cluster starts forming).
_WATCHDOG = """
import os, signal, sys, time
pid, seconds, line = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
end = time.monotonic() + seconds
while time.monotonic() < end:
    if os.getppid() != pid:
        sys.exit(0)
    time.sleep(0.2)
sys.stderr.write("Error: " + line + "\\n")
sys.stderr.flush()
os.kill(pid, signal.SIGKILL)
"""


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _answers(address: str) -> bool:
    """True when something listens on ``address`` (a peer waiting, or its TensorFlow server)."""
    try:
        with socket.create_connection(_split_address(address), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_peers(me: str, peers: list[str], timeout_s: float, line: str, poll_s: float = 0.2) -> None:
    """Answer on ``me`` (this worker's ``TF_CONFIG`` address) and return once every one of
    ``peers`` answers on its own; :class:`StrategyError` with ``line`` after ``timeout_s``.
    Plain Python: signals interrupt it as usual. The listener closes before returning, so the
    TensorFlow server can take the port (a peer polling in between retries)."""
    import time

    listener = socket.socket(socket.AF_INET6 if ":" in _split_address(me)[0] else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", _split_address(me)[1]))
    except OSError as exc:
        listener.close()
        raise StrategyError(f"--strategy multiworker: cannot listen on {me} ({exc.strerror}); "
                            "is another program using that port?") from None
    listener.listen(16)
    listener.setblocking(False)
    waiting, end = list(peers), time.monotonic() + timeout_s
    try:
        while waiting:
            with contextlib.suppress(BlockingIOError):
                while True:  # let every poll of a peer through, then hang up
                    listener.accept()[0].close()
            waiting = [p for p in waiting if not _answers(p)]
            if waiting and time.monotonic() >= end:
                raise StrategyError(line)
            if waiting:
                time.sleep(poll_s)
    finally:
        listener.close()


def _with_deadline(cls: type, tf_config: dict[str, Any], timeout_s: float) -> Any:
    """``cls()`` once every worker of ``tf_config`` answers (:func:`wait_for_peers`: the long,
    interruptible wait). ``cls()`` blocks inside TensorFlow (holding the GIL, deaf to Python
    signal handlers) until the cluster forms; meanwhile SIGINT takes its default action
    (nothing is written yet; SIGTERM is caught by TensorFlow's preemption notifier there) and
    a watchdog process ends this one with one line when ``timeout_s`` passes."""
    import subprocess

    task = tf_config["task"]
    me = tf_config["cluster"][task["type"]][task["index"]]
    peers = [a for t in tf_config["cluster"].values() for a in t if a != me]
    line = (f"--strategy multiworker: {task['type']} {task['index']} ({me}) waited {timeout_s:g} s "
            f"(--peer-timeout) for {', '.join(peers)}, which never appeared; start the same command "
            "on every host of TF_CONFIG")
    wait_for_peers(me, peers, timeout_s, line)
    old = {s: signal.signal(s, signal.SIG_DFL) for s in (signal.SIGTERM, signal.SIGINT)}
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout_s), line],
                                stdin=subprocess.DEVNULL)
    try:
        return cls()
    finally:
        watchdog.kill()
        watchdog.wait()
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def stop_on_signals(grace_s: float = STOP_GRACE_S) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise ``KeyboardInterrupt`` in the main thread;
    if the process is still inside the block ``grace_s`` seconds later (the main thread stuck
    in TensorFlow), it prints one line and exits with 128 + the signal number. Main thread only."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    done = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def watchdog() -> None:
        try:
            data = os.read(read_fd, 1)  # the C-level handler writes here, whatever the main thread does
        finally:
            os.close(read_fd)
        if data and not done.wait(grace_s):
            name = signal.Signals(data[0]).name
            print(f"{name}: TensorFlow did not stop within {grace_s:g} s; exiting (rerun the "
                  "same command to resume from the last finished epoch)", file=sys.stderr, flush=True)
            os._exit(128 + data[0])

    old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    threading.Thread(target=watchdog, name="iad-tf-stop", daemon=True).start()
    try:
        yield
    finally:
        done.set()
        for s, h in old.items():
            signal.signal(s, h)
        signal.set_wakeup_fd(old_fd)
        os.close(write_fd)  # the watchdog reads end-of-file and ends


def multiworker_strategy_class() -> type:
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` accepts what Keras 3 passes to it.

    Keras 3's ``fit`` (keras-team/keras#20585, open) calls ``strategy.reduce`` in two ways
    that the multi-worker strategy rejects: on a *tuple* of per-replica batches (to learn
    input shapes: "Attempt to convert a value (PerReplica...)") and on *scalar* logs with
    ``axis=0`` ("Invalid reduction dimension 0"). This subclass reduces each element of a
    structure separately and a scalar across replicas (``axis=None``), which is what Keras
    means in both cases. Everything else is the stock strategy.
    """
    import tensorflow as tf

    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op: Any, value: Any, axis: int | None = None) -> Any:
            parent = super()

            def one(v: Any) -> Any:
                rank = self.experimental_local_results(v)[0].shape.rank
                return parent.reduce(reduce_op, v, axis=None if rank == 0 else axis)

            return tf.nest.map_structure(one, value)

    return MultiWorkerStrategy


def num_workers(strategy: Any) -> int:
    """Hosts taking part (1 unless multi-worker)."""
    extended = getattr(strategy, "extended", None)
    return int(getattr(extended, "_num_workers", 1) or 1)


def task_index(strategy: Any) -> int:
    """This host's worker index (0 outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(getattr(resolver, "task_id", 0) or 0) if resolver is not None else 0


def is_chief(strategy: Any) -> bool:
    """Whether this process writes the run directory: the ``chief`` task, or worker 0 when
    the cluster has no chief (TensorFlow's convention); always true on one host."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or num_workers(strategy) == 1:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_run_dir(run_dir: str | Path, strategy: Any) -> Path:
    """``run_dir`` on the chief; ``run_dir/workers/<index>`` on the other workers."""
    run_dir = Path(run_dir)
    return run_dir if is_chief(strategy) else run_dir / "workers" / str(task_index(strategy))


def shard_input(dataset: Any, strategy: Any, n_files: int) -> Any:
    """Set the auto-shard policy of ``dataset`` for ``strategy``'s workers.

    FILE (each worker reads its own TFRecord shards) when there are at least as many files
    as workers, else DATA (every worker reads everything and keeps every n-th element).
    A single worker is left untouched.
    """
    import tensorflow as tf

    workers = num_workers(strategy)
    if workers <= 1:
        return dataset
    if n_files < workers:
        import logging

        logging.getLogger(__name__).warning(
            "%d train shard(s) for %d workers: every worker reads every record and keeps its "
            "share; rebuild with --shards-per-split >= %d so that each reads only its own shards",
            n_files, workers, workers)
    policy = tf.data.experimental.AutoShardPolicy
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy.FILE if n_files >= workers else policy.DATA
    return dataset.with_options(options)

