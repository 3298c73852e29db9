"""Test fixtures: every test gets its own store and home; nothing touches a real store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from custody.events import Signer, load_signer
from custody.models import ItemCreate
from custody.records import add_actor, add_item, init_store, open_case
from custody.store import Store

CASE = "KWS-2026-0042"

# Property tests assert behaviour, never speed: a loaded machine must not fail them.
settings.register_profile("custody", deadline=None)
settings.load_profile("custody")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point CUSTODY_HOME / CUSTODY_DB at tmp_path so no test can touch a real store."""
    monkeypatch.setenv("CUSTODY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CUSTODY_DB", str(tmp_path / "custody.db"))
    for var in ("CUSTODY_ACTOR", "CUSTODY_PASSPHRASE", "CUSTODY_ATTACHMENTS"):
        monkeypatch.delenv(var, raising=False)
    yield


@dataclass
class World:
    """A store with an agency, four actors and one open case."""

    store: Store
    officer: Signer
    custodian: Signer
    analyst: Signer
    prosecutor: Signer
    db_path: Path
    home: Path

    def item(self, **fields: object) -> str:
        spec = ItemCreate(
            **{"description": "Bag of pangolin scales", "species": "Manis javanica", **fields}
        )  # type: ignore[arg-type]
        return add_item(self.store, case_no=CASE, spec=spec, signer=self.officer).id

    def hand_to_lab(self, item: str) -> str:
        """The officer hands `item` to the analyst, who receives it (unsealed items only
        can then be analysed)."""
        from custody.events import record_receive, record_transfer

        record_transfer(self.store, item_id=item, signer=self.officer, receiver=self.analyst)
        record_receive(self.store, item_id=item, signer=self.analyst, condition="as described")
        return item


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return init_store(
        str(tmp_path / "custody.db"),
        agency_code="KWS",
        agency_name="Kenya Wildlife Service",
        country="KE",
        home=tmp_path / "home",
    )


@pytest.fixture
def world(store: Store, tmp_path: Path) -> World:
    people = [
        ("aotieno", "Amina Otieno", "officer", "R-1042"),
        ("jmwangi", "Joseph Mwangi", "custodian", "C-77"),
        ("wkamau", "Dr Wanjiru Kamau", "analyst", "L-12"),
        ("pnjeri", "Peris Njeri", "prosecutor", "P-3"),
    ]
    for handle, name, role, badge in people:
        add_actor(store, handle=handle, name=name, role=role, badge=badge, agency_code="KWS")
    signers = [load_signer(store, p[0]) for p in people]
    open_case(store, case_no=CASE, title="Pangolin scales at JKIA", signer=signers[0])
    return World(store, *signers, db_path=tmp_path / "custody.db", home=tmp_path / "home")


@pytest.fixture
def db_snapshot() -> Callable[[Path], list[tuple[str, list[tuple[object, ...]]]]]:
    """Every row of every table, to assert a refused command changed nothing."""
    import sqlite3

    def snap(path: Path) -> list[tuple[str, list[tuple[object, ...]]]]:
        con = sqlite3.connect(path)
        try:
            tables = [
                r[0]
                for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
                )
            ]
            return [
                (t, sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr))
                for t in tables
            ]
        finally:
            con.close()

    return snap


def env_path() -> str:
    return os.environ["CUSTODY_DB"]
