"""Alembic owns the schema: head equals the models; old stores are backed up and upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from custody.errors import StoreProblem
from custody.records import add_actor, init_store
from custody.store import (
    HEAD_REVISION,
    _make_engine,
    current_revision,
    head_revision,
    open_store,
    upgrade,
)


def test_blank_database_migrated_to_head_matches_models(tmp_path: Path) -> None:
    engine = _make_engine(f"sqlite:///{tmp_path / 'blank.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
        )
    assert diff == []
    assert current_revision(engine) == head_revision()


def test_old_store_is_backed_up_then_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = _make_engine(f"sqlite:///{path}")
    upgrade(engine, "0001")
    engine.dispose()
    # Fill the 0001-era store through the library so it holds real data.
    con = sqlite3.connect(path)
    con.execute("INSERT INTO store_meta VALUES ('store_id', 'old-store')")
    con.execute("INSERT INTO agencies VALUES ('KWS', 'Kenya Wildlife Service', 'KE')")
    con.commit()
    con.close()
    store = open_store(str(path))
    assert store.backup_path is not None and store.backup_path.exists()
    assert "backup-0001" in store.backup_path.name
    assert current_revision(store.engine) == head_revision()
    backup = sqlite3.connect(store.backup_path)
    assert backup.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    backup.close()
    # registering needs the agency root, which 'custody init' creates on the upgraded store
    store = init_store(str(path))
    add_actor(store, handle="aotieno", name="Amina Otieno", role="officer", agency_code="KWS")
    con = sqlite3.connect(path)
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "ix_items_parent" in indexes
    assert (
        con.execute("SELECT value FROM store_meta WHERE key='store_id'").fetchone()[0]
        == "old-store"
    )


def test_init_is_idempotent(tmp_path: Path) -> None:
    init_store(
        str(tmp_path / "c.db"),
        agency_code="KWS",
        agency_name="Kenya Wildlife Service",
        country="KE",
    )
    store = init_store(
        str(tmp_path / "c.db"),
        agency_code="KWS",
        agency_name="Kenya Wildlife Service",
        country="KE",
    )
    assert store.backup_path is None


def test_store_knows_the_newest_migration_without_loading_the_migrations() -> None:
    # open_store compares a store's revision with HEAD_REVISION; were it behind the
    # migrations, a store at the newest schema would be "upgraded" on every open.
    assert HEAD_REVISION == head_revision()


def test_store_with_two_recorded_revisions_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "two.db"
    engine = _make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO alembic_version VALUES ('0003')")
    con.commit()
    con.close()
    before = path.read_bytes()
    try:
        open_store(str(path))
    except StoreProblem as exc:
        assert "2 schema revisions" in str(exc) and "restore it from a backup" in str(exc)
    else:
        raise AssertionError("a store recording two schema revisions was opened")
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("two.db.backup-*"))
