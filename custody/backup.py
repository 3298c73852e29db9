"""Backups of a custody store: the database together with the files it points at.

A copy of `custody.db` alone is not a backup: the photos and documents that
events attach live in the attachments folder, and the reference libraries that
identifications cite live in the references folder. A backup folder holds all
three in the layout `open_store` expects, so the backup *is* a store:

    DIR/custody.db        consistent copy (SQLite online backup API)
    DIR/attachments/...   every attachment, content-addressed
    DIR/references/...    every reference library version
    DIR/MANIFEST.json     size and SHA-256 of every file above

Invariants:
- The database is copied first, then the files: attachments are stored before
  the event that names them commits, and neither they nor library versions are
  ever rewritten, so every file the copied database names is in the backup.
- The backup is assembled in a hidden folder beside DIR and renamed into place:
  DIR is either complete or absent. A non-empty DIR is refused.
- Private keys are never copied: they belong to their actors, not to the store.
- Search indexes (`references/<name>/.cache`) are not copied: they are derived
  from the library versions and rebuilt when first needed.
- PostgreSQL stores cannot be copied from here; the attachments and libraries
  are, and the report says how to take the database dump with `pg_dump`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody import __version__
from custody.errors import AlreadyExists, InvalidInput, StoreProblem
from custody.files import os_reason
from custody.store import Store
from custody.timeutil import now_utc, to_utc_text

MANIFEST = "MANIFEST.json"
BACKUP_FORMAT = "custody-backup-v1"
DB_NAME = "custody.db"


@dataclass
class BackupReport:
    path: Path
    database: str  # "copied" or "not copied (PostgreSQL)"
    files: int
    bytes: int
    manifest_sha256: str
    pg_dump_command: str | None = None
    damaged: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_target(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InvalidInput(
            f"The backup folder {out} exists and is not a folder; give a new folder name."
        )
    if out.is_dir() and any(out.iterdir()):
        raise AlreadyExists(
            f"The backup folder {out} is not empty; give a new or empty folder so no earlier "
            f"backup is mixed into this one."
        )
    if not out.parent.is_dir():
        raise InvalidInput(
            f"The folder {out.parent} for the backup does not exist; create it first or choose "
            f"another path."
        )


def _copy_sqlite(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
            # The copy stands alone: one file, no write-ahead log beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def _copy_tree(source: Path, target: Path, *, skip: Callable[[Path], bool]) -> None:
    if not source.is_dir():
        return
    for folder, dirs, names in os.walk(source):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not skip(here / d) and not (here / d).is_symlink())
        rel = here.relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(names):
            path = here / name
            if skip(path) or path.is_symlink() or not path.is_file():
                continue
            shutil.copy2(path, target / rel / name)


def _temporary(name: str) -> bool:
    return name.startswith((".incoming-", ".import-")) or name.endswith((".tmp", ".partial"))


def pg_dump_command(url: str, out: Path) -> str:
    """The pg_dump command that dumps the PostgreSQL store `url` into the backup folder."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    plain = parsed.render_as_string(hide_password=True)
    return f"pg_dump --format=custom --file {out / 'custody.pgdump'} '{plain}'"


def backup_store(
    store: Store, out: Path, *, progress: Callable[[str], None] | None = None
) -> BackupReport:
    """Copy the store (database, attachments, reference libraries) into the new folder `out`."""
    say = progress or (lambda _m: None)
    out = Path(out)
    _check_target(out)
    target = out.resolve()
    for folder in (store.attachments_dir, store.references_dir):
        if target.is_relative_to(folder.resolve()):
            raise InvalidInput(
                f"The backup folder {out} lies inside the store's folder {folder}, which it "
                f"copies; give a folder outside it."
            )
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{out.name[:40]}.partial-", dir=out.parent))
    except OSError as exc:
        raise InvalidInput(
            f"The backup folder {out} cannot be created ({os_reason(exc)}); choose another path."
        ) from None
    os.chmod(work, 0o700)
    try:
        pg_command = None
        if store.is_sqlite and store.sqlite_path is not None:
            say("copying the database (SQLite online backup)")
            _copy_sqlite(store.sqlite_path, work / DB_NAME)
            database = "copied"
        else:
            pg_command = pg_dump_command(store.url, out)
            database = "not copied (PostgreSQL): dump it with pg_dump"
        say("copying attachments")
        _copy_tree(store.attachments_dir, work / "attachments", skip=lambda p: _temporary(p.name))
        say("copying reference libraries")
        _copy_tree(
            store.references_dir,
            work / "references",
            skip=lambda p: _temporary(p.name) or p.name == ".cache",
        )
        entries: list[dict[str, Any]] = []
        damaged: list[str] = []
        for path in sorted(p for p in work.rglob("*") if p.is_file()):
            rel = path.relative_to(work).as_posix()
            sha = _sha256(path)
            entries.append({"path": rel, "size": path.stat().st_size, "sha256": sha})
            parts = rel.split("/")
            if parts[:2] == ["attachments", "sha256"] and len(parts) == 4 and parts[3] != sha:
                damaged.append(rel)
        manifest = {
            "format": BACKUP_FORMAT,
            "custody_version": __version__,
            "created_at": to_utc_text(now_utc()),
            "source": store.sqlite_path.as_posix() if store.sqlite_path else pg_command,
            "database": database,
            "store": _store_facts(store, work / DB_NAME if database == "copied" else None),
            "files": entries,
            "damaged_attachments": damaged,
        }
        text = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        (work / MANIFEST).write_text(text, encoding="utf-8")
        if out.is_dir():
            out.rmdir()  # empty, checked above; replaced by the complete backup
        os.rename(work, out)
    except OSError as exc:
        raise StoreProblem(
            f"The backup into {out} failed ({os_reason(exc)}); nothing was left there, so free "
            f"space or fix permissions and run it again."
        ) from None
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return BackupReport(
        path=out,
        database=database,
        files=len(entries),
        bytes=sum(e["size"] for e in entries),
        manifest_sha256="sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest(),
        pg_dump_command=pg_command,
        damaged=damaged,
    )


def _store_facts(store: Store, copy: Path | None) -> dict[str, Any]:
    """The store's identity and log head as the backup holds them (for PostgreSQL, as
    the store holds them now)."""
    id_sql = "SELECT value FROM store_meta WHERE key = 'store_id'"
    head_sql = "SELECT log_seq, log_hash FROM store_head WHERE id = 1"
    if copy is not None:
        con = sqlite3.connect(copy)
        try:
            row = con.execute(id_sql).fetchone()
            store_id = row[0] if row else None
            head = con.execute(head_sql).fetchone()
        finally:
            con.close()
    else:
        from sqlalchemy import text

        with store.engine.connect() as conn:
            store_id = conn.execute(text(id_sql)).scalar()
            head = conn.execute(text(head_sql)).first()
    return {
        "store_id": store_id,
        "log_seq": head[0] if head else None,
        "log_hash": head[1] if head else None,
    }
