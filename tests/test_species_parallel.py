"""fork_map: the one process pool of species_ref (order, shared state, fallbacks, progress)."""

from __future__ import annotations

import os

import pytest

from species_ref.parallel import chunks, default_workers, fork_map, worker_count


def _pid_and_square(offset: int, x: int) -> tuple[int, int]:
    return os.getpid(), x * x + offset


def test_results_keep_input_order_across_forked_workers() -> None:
    items = list(range(200, 0, -1))
    calls: list[tuple[int, int]] = []
    out = fork_map(
        _pid_and_square,
        items,
        shared=7,
        workers=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert [value for _pid, value in out] == [x * x + 7 for x in items]
    assert len({pid for pid, _ in out} - {os.getpid()}) >= 1, "no item ran in a worker"
    assert calls[-1] == (200, 200) and len(calls) == 200


def test_shared_state_reaches_workers_without_pickling() -> None:
    # A lambda and an open generator cannot be pickled; fork inheritance needs neither.
    unpicklable = {"scale": 3, "gen": (x for x in range(1))}
    out = fork_map(lambda shared, x: x * shared["scale"], list(range(100)), shared=unpicklable)
    assert out == [x * 3 for x in range(100)]


def test_one_worker_or_few_items_run_in_this_process() -> None:
    here = os.getpid()
    serial = fork_map(_pid_and_square, [1, 2, 3], shared=0, workers=8)
    assert serial == [(here, 1), (here, 4), (here, 9)]
    one = fork_map(_pid_and_square, list(range(100)), shared=0, workers=1)
    assert {pid for pid, _ in one} == {here}
    assert fork_map(_pid_and_square, [], shared=0) == []


def test_worker_count_rule() -> None:
    assert default_workers() >= 1
    assert worker_count(10, workers=4) == 1  # fewer than 20 items per worker
    assert worker_count(45, workers=4) == 2
    assert worker_count(1000, workers=3) == 3
    assert worker_count(1000, workers=3, min_per_worker=500) == 2


def test_errors_in_workers_reach_the_caller() -> None:
    def fail_on_13(_shared: None, x: int) -> int:
        if x == 13:
            raise ValueError("item 13 is bad")
        return x

    with pytest.raises(ValueError, match="item 13"):
        fork_map(fail_on_13, list(range(100)), shared=None, workers=2)
    # the pool is gone and the next map starts clean
    assert fork_map(fail_on_13, [1, 2], shared=None) == [1, 2]


def test_chunks_of_a_sequence_as_tasks() -> None:
    rows = list(range(1050))
    parts = chunks(rows, size=500)
    assert [len(p) for p in parts] == [500, 500, 50]
    sums = fork_map(lambda offset, part: sum(part) + offset, parts, shared=1, min_per_worker=1)
    assert sums == [sum(p) + 1 for p in parts]
    assert chunks([], size=10) == []
