"""Crash safety and concurrent writers on one SQLite store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from custody import events as ev
from custody.store import open_store
from custody.verify import verify
from tests.conftest import World

WRITER = textwrap.dedent(
    """
    import sys
    from custody.store import open_store
    from custody.events import load_signer, record_note
    store = open_store(sys.argv[1])
    signer = load_signer(store, "aotieno")
    for n in range(int(sys.argv[3])):
        rec = record_note(store, item_id=sys.argv[2], signer=signer, text=f"{sys.argv[4]} note {n}")
        print(rec.events[0].id, flush=True)
    """
)


def _writer(world: World, item: str, count: int, tag: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CUSTODY_HOME": str(world.home)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(world.db_path), item, str(count), tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_sigkill_mid_write_loses_nothing_that_returned(world: World) -> None:
    item = world.item()
    proc = _writer(world, item, 10_000, "crash")
    assert proc.stdout is not None
    returned = [int(proc.stdout.readline()) for _ in range(25)]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = open_store(str(world.db_path))
    report = verify(store)
    assert report.intact, report.findings
    _, events, _ = ev.item_history(store, item)
    ids = {e.id for e in events}
    assert set(returned) <= ids
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_two_processes_writing_one_item_keep_a_linear_chain(world: World) -> None:
    item = world.item()
    procs = [_writer(world, item, 30, tag) for tag in ("A", "B")]
    outputs = [p.communicate(timeout=180) for p in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
    _, events, _ = ev.item_history(world.store, item)
    notes = [e for e in events if e.type == "note"]
    assert len(notes) == 60
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert verify(world.store).intact


def test_open_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    from custody.errors import StoreProblem

    with pytest.raises(StoreProblem, match="run 'custody init'"):
        open_store(str(tmp_path / "nope.db"))
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreProblem, match="could not be opened"):
        open_store(str(garbage))


def test_bad_urls_and_foreign_databases_are_refused(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from custody.errors import StoreProblem
    from custody.records import init_store

    with pytest.raises(StoreProblem, match="cannot be used"):
        open_store("foo://bar/x")
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE invoices (n INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(StoreProblem, match="other tables"):
        init_store(str(other))
    con = sqlite3.connect(other)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")] == [
        "invoices"
    ]
