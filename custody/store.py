"""Opening, creating and upgrading a custody store; transactions.

Invariants:
- No engine exists at import time: `open_store(url_or_path)` builds one.
- SQLite runs in WAL mode with foreign keys on and synchronous=FULL, so a
  command that returned has its events on disk even if the machine dies next.
- Every write runs in one `BEGIN IMMEDIATE` transaction (on PostgreSQL, under a
  transaction-scoped advisory lock), so writers are serialised and chains stay
  linear; a failure rolls the whole write back.
- Alembic owns the schema. Opening a store of an older schema revision first
  copies it (SQLite backup API) and then upgrades it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, create_engine

from custody.errors import StoreProblem
from custody.timeutil import now_utc

DB_ENV = "CUSTODY_DB"
HOME_ENV = "CUSTODY_HOME"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_WRITE_LOCK = 7_243_100_001


def custody_home() -> Path:
    """CUSTODY_HOME, else the platform's per-user data directory."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("custody", appauthor=False))


def resolve_url(url_or_path: str | os.PathLike[str] | None) -> str:
    """A SQLAlchemy URL from --db / CUSTODY_DB / the default store path."""
    value: str | None = os.fspath(url_or_path) if url_or_path is not None else None
    if not value:
        value = os.environ.get(DB_ENV) or str(custody_home() / "custody.db")
    if "://" in value:
        return value
    return "sqlite:///" + str(Path(value).expanduser().resolve())


def _without_password(url: str) -> str:
    """The URL for messages: a password never reaches the terminal or a log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given, minus nothing secret
        return url.split("@", 1)[-1] if "@" in url else url


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _install_sqlite_pragmas(engine: Engine) -> None:
    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("custody_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass
class Store:
    """An open custody store: its engine, where its files live, and transactions."""

    url: str
    engine: Engine
    home: Path
    attachments_dir: Path
    backup_path: Path | None = None
    _head_cache: dict[str, Any] = field(default_factory=dict)

    @property
    def references_dir(self) -> Path:
        """Where versioned reference libraries live: beside the attachments."""
        return self.attachments_dir.parent / "references"

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        return _sqlite_path(self.url)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read session over one consistent snapshot."""
        with self.engine.connect() as conn, conn.begin():
            with Session(bind=conn) as session:
                yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write session in one serialised transaction; commits on success only."""
        with self.engine.connect() as base:
            conn = base.execution_options(custody_write=True)
            with conn.begin():
                if self.engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")
                with Session(bind=conn, expire_on_commit=False) as session:
                    yield session
                    session.flush()

    def close(self) -> None:
        self.engine.dispose()


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


#: The newest schema revision (the head of custody/migrations/versions). Opening
#: a store at this revision needs no migration machinery, so everyday commands do
#: not import it; a test checks that this is the migrations' head.
HEAD_REVISION = "0004"


def current_revision(engine: Engine) -> str | None:
    """The store's schema revision (None for a database without one), read as the migrations record it."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = [
            str(r) for r in conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
        ]
    if len(rows) > 1:
        raise StoreProblem(
            f"The store records {len(rows)} schema revisions ({', '.join(sorted(rows))}); "
            "restore it from a backup."
        )
    return rows[0] if rows else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with engine.connect() as conn:
        command.upgrade(_alembic_config(conn), revision)
        conn.commit()


def _backup_sqlite(path: Path, revision: str) -> Path:
    stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.backup-{revision}-{stamp}")
    src = sqlite3.connect(str(path))
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    return target


def _postgres_driver(url: str) -> str:
    """`postgresql://` with the driver that is installed made explicit.

    SQLAlchemy's default driver for a bare `postgresql://` differs between its
    versions (psycopg2, then psycopg 3); the `postgres` extra installs psycopg 3,
    and a machine with only psycopg2 keeps working.
    """
    import importlib.util

    parsed = make_url(url)
    if parsed.drivername != "postgresql":
        return url
    for module, driver in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return parsed.set(drivername=driver).render_as_string(hide_password=False)
    return url


def _make_engine(url: str) -> Engine:
    url = _postgres_driver(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _install_sqlite_pragmas(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def open_store(
    url_or_path: str | os.PathLike[str] | None = None,
    *,
    create: bool = False,
    home: Path | None = None,
) -> Store:
    """Open (and with `create`, create) the store at `url_or_path`.

    A store of an older schema is backed up and upgraded; a missing store is an
    error unless `create` is set.
    """
    url = resolve_url(url_or_path)
    shown_url = _without_password(url)
    path = _sqlite_path(url)
    if path is not None:
        if not path.exists() and not create:
            raise StoreProblem(f"No custody store at {path}; run 'custody init' to create one.")
        if not path.parent.exists():
            # The store's folder (usually CUSTODY_HOME) is private whatever the umask.
            path.parent.parent.mkdir(parents=True, exist_ok=True)
            path.parent.mkdir(mode=0o700, exist_ok=True)
            os.chmod(path.parent, 0o700)
    home = home or custody_home()
    try:
        engine = _make_engine(url)
    except Exception as exc:  # unknown dialect, missing driver, malformed URL
        raise StoreProblem(
            f"The database URL {shown_url} cannot be used ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); check the URL, and for "
            f"PostgreSQL install the driver with \"pip install 'custody[postgres]'\"."
        ) from None
    backup: Path | None = None
    try:
        revision = current_revision(engine)
        head = HEAD_REVISION
        if revision is None:
            tables = set(inspect(engine).get_table_names())
            if tables and "events" in tables:
                raise StoreProblem(
                    f"The database {shown_url} has custody tables but no schema revision; "
                    f"restore it from a backup."
                )
            if tables:
                raise StoreProblem(
                    f"The database {shown_url} already holds other tables ({', '.join(sorted(tables)[:3])}"
                    f"{' ...' if len(tables) > 3 else ''}); give custody a database of its own."
                )
            if not create:
                raise StoreProblem(
                    f"The database {shown_url} is not a custody store; run 'custody init' first."
                )
            upgrade(engine)
        elif revision != head:
            if path is not None:
                backup = _backup_sqlite(path, revision)
            elif not create:
                raise StoreProblem(
                    f"The store {shown_url} has schema revision {revision}, this version needs {head}; "
                    f"back it up and run 'custody init' to upgrade it."
                )
            upgrade(engine)
    except StoreProblem:
        engine.dispose()
        raise
    except Exception as exc:  # driver errors: unreadable file, not a database ...
        engine.dispose()
        raise StoreProblem(
            f"The store {shown_url} could not be opened ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}); check the path or restore a backup."
        ) from exc
    attachments = (
        Path(os.environ.get("CUSTODY_ATTACHMENTS", ""))
        if os.environ.get("CUSTODY_ATTACHMENTS")
        else ((path.parent / "attachments") if path is not None else home / "attachments")
    )
    return Store(url=url, engine=engine, home=home, attachments_dir=attachments, backup_path=backup)
