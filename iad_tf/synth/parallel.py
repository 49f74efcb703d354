"""Run one function over many tracks in worker processes, with a tqdm progress bar."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from iad_tf.workers import ignore_interrupt, stop_pool

T = TypeVar("T")


def run_tasks(
    fn: Callable[[Any], T], tasks: Sequence[Any], workers: int, desc: str, unit: str = "track"
) -> list[T]:
    """``[fn(t) for t in tasks]`` in task order; ``workers > 1`` uses a process pool.

    Each task must be self-contained (its own seed), so results do not depend on the number
    of workers or on completion order.
    """
    from tqdm import tqdm

    results: list[Any] = [None] * len(tasks)
    with tqdm(total=len(tasks), desc=desc, unit=unit, disable=None) as bar:
        if workers <= 1 or len(tasks) <= 1:
            for k, task in enumerate(tasks):
                results[k] = fn(task)
                bar.update(1)
            return results
        with ProcessPoolExecutor(
            max_workers=min(workers, len(tasks)), initializer=ignore_interrupt
        ) as pool:
            futures = {pool.submit(fn, task): k for k, task in enumerate(tasks)}
            try:
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update(1)
            except BaseException:
                stop_pool(pool)
                raise
    return results
