"""The one process pool: map a function over items in forked workers.

Owns `fork_map` and the one worker-count rule (`default_workers`, capped so
each worker gets at least `min_per_worker` items). Every parallel map of the
package (identification batches, validation, library statistics, the decision
lab) goes through it.

How it works: the parent stores `(fn, shared)` in a module variable, then
forks the workers, which inherit it. Nothing large is pickled: only the items
go to the workers and the results come back. `fn` may therefore be a closure
or lambda, and `shared` may hold an index, an engine or NumPy arrays.

Invariants:
- Results come back in the order of `items`, whatever the number of workers,
  so a parallel run returns exactly what a serial one does.
- One worker, fewer than two workers' worth of items, a platform without the
  "fork" start method, or a call made from inside a worker: the map runs
  serially in the calling process (same results, same progress calls).
- `progress(done, total)` is called once per finished item, in the parent.
- Workers never see a half-set state: the shared slot is cleared when the map
  ends, even on error.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

Progress = Callable[[int, int], None]

#: (fn, shared) of the map in progress; set in the parent, inherited by forked workers.
_JOB: tuple[Callable[[Any, Any], Any], Any] | None = None


def default_workers() -> int:
    """Cores this process may run on (the worker count when none is given)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def worker_count(n_items: int, *, workers: int | None = None, min_per_worker: int = 20) -> int:
    """Workers for `n_items` items: `workers` (None or 0: every core), at least
    `min_per_worker` items each, 1 when forking is unavailable."""
    wanted = workers if workers else default_workers()
    if _JOB is not None or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(wanted, n_items // max(1, min_per_worker)))


def fork_map(
    fn: Callable[[S, T], R],
    items: Sequence[T],
    *,
    shared: S,
    workers: int | None = None,
    progress: Progress | None = None,
    min_per_worker: int = 20,
) -> list[R]:
    """`[fn(shared, item) for item in items]`, spread over forked worker processes.

    - `fn(shared, item)`: the work for one item; any callable (closures too).
    - `items`: a sequence; each item and each result must pickle. To work on
      chunks of a large sequence (one task per chunk), pass the chunks as items.
    - `shared`: read-only state every call needs (an index, an engine, rows
      loaded from a database); inherited by the forked workers, never pickled.
      Workers must not rely on changes they make to it.
    - `workers`: processes to use; None or 0 means `default_workers()`. The
      count is capped so each worker gets at least `min_per_worker` items.
    - `progress(done, total)`: called in the parent after each item.

    Returns the results in the order of `items`.
    """
    global _JOB
    total = len(items)
    n_workers = worker_count(total, workers=workers, min_per_worker=min_per_worker)
    results: list[R] = []
    if n_workers <= 1:
        for item in items:
            results.append(fn(shared, item))
            if progress is not None:
                progress(len(results), total)
        return results
    chunk = max(1, min(64, total // (n_workers * 8)))
    _JOB = (fn, shared)
    try:
        with multiprocessing.get_context("fork").Pool(n_workers) as pool:
            for result in pool.imap(_run_one, items, chunksize=chunk):
                results.append(result)
                if progress is not None:
                    progress(len(results), total)
    finally:
        _JOB = None
    return results


def chunks(items: Sequence[T], *, size: int) -> list[Sequence[T]]:
    """`items` cut into consecutive slices of at most `size` (for one task per chunk).

    Example: `fork_map(check_rows, chunks(rows, size=500), shared=ctx, min_per_worker=1)`
    returns one result per chunk, in order.
    """
    step = max(1, size)
    return [items[i : i + step] for i in range(0, len(items), step)]


def _run_one(item: Any) -> Any:
    assert _JOB is not None, "fork_map worker started without a job"
    fn, shared = _JOB
    return fn(shared, item)
