"""Worker-process helpers shared by every process pool (build-records, synth, remix).

Ctrl-C reaches every process of the terminal's process group: workers ignore it (no worker
tracebacks) and the parent, which gets KeyboardInterrupt, stops them with :func:`stop_pool`.
"""

from __future__ import annotations

import signal
from concurrent.futures import ProcessPoolExecutor


def ignore_interrupt() -> None:
    """Pool initializer: the worker leaves Ctrl-C to its parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the workers now (on Ctrl-C or an error),
    instead of waiting for the running tasks to finish."""
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
