"""`custody backup`: a copy of the store that verifies INTACT once restored."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custody.backup import pg_dump_command
from custody.cli.main import app
from custody.species import bundled_data
from tests.conftest import CASE, World


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture
def evidence(world: World, cli: CliRunner, tmp_path: Path) -> World:
    """A store with a photographed item and a reference library."""
    photo = tmp_path / "fins.jpg"
    photo.write_bytes(b"\xff\xd8 shark fins")
    item = cli.invoke(
        app,
        ["item", "add", CASE, "--description", "Shark fins", "--photo", str(photo),
         "--as", "aotieno"],
    )  # fmt: skip
    assert item.exit_code == 0, item.output
    ref = cli.invoke(app, ["ref", "import", "demo", str(bundled_data("demo_library.fasta"))])
    assert ref.exit_code == 0, ref.output
    return world


def test_restored_backup_verifies_intact_and_a_lone_database_does_not(
    evidence: World, cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = tmp_path / "backup"
    made = cli.invoke(app, ["backup", "-o", str(backup)])
    assert made.exit_code == 0, made.output
    assert "manifest sha256:" in made.stdout and "verify" in made.stderr

    manifest = json.loads((backup / "MANIFEST.json").read_text())
    listed = {e["path"]: e for e in manifest["files"]}
    assert "custody.db" in listed
    assert any(p.startswith("attachments/sha256/") for p in listed)
    assert any(p.startswith("references/demo/v0001/") for p in listed)
    assert not any("keys" in p or ".cache" in p for p in listed)
    for rel, entry in listed.items():
        assert hashlib.sha256((backup / rel).read_bytes()).hexdigest() == entry["sha256"], rel
    assert manifest["store"]["log_seq"] >= 1 and manifest["damaged_attachments"] == []

    # Restore as the README says: the folder's contents into a new CUSTODY_HOME.
    home = tmp_path / "restored"
    shutil.copytree(backup, home)
    monkeypatch.setenv("CUSTODY_HOME", str(home))
    monkeypatch.setenv("CUSTODY_DB", str(home / "custody.db"))
    verified = cli.invoke(app, ["verify"])
    assert verified.exit_code == 0 and verified.stdout.startswith("INTACT"), verified.output
    shown = cli.invoke(app, ["ref", "show", "demo", "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["integrity"] == "intact"
    query = tmp_path / "q.fasta"
    records = bundled_data("demo_queries.fasta").read_text().split(">")
    query.write_text("".join(">" + r for r in records if r.startswith("demo_Panthera_tigris")))
    identified = cli.invoke(app, ["identify", str(query), "--library", "demo", "--json"])
    assert identified.exit_code == 0, identified.output

    # The backup folder itself is a store too.
    direct = cli.invoke(app, ["--db", str(backup / "custody.db"), "verify"])
    assert direct.exit_code == 0, direct.output

    # Why a copy of custody.db alone is not a backup.
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy2(backup / "custody.db", lone / "custody.db")
    monkeypatch.setenv("CUSTODY_HOME", str(lone))
    monkeypatch.setenv("CUSTODY_DB", str(lone / "custody.db"))
    broken = cli.invoke(app, ["verify"])
    assert broken.exit_code == 1 and "INTACT" not in broken.stdout


def test_backup_refuses_a_non_empty_folder_and_accepts_an_empty_one(
    evidence: World, cli: CliRunner, tmp_path: Path
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.txt").write_text("an earlier backup")
    refused = cli.invoke(app, ["backup", "-o", str(full)])
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        f"error: The backup folder {full} is not empty; give a new or empty folder so no "
        "earlier backup is mixed into this one."
    ]
    assert sorted(p.name for p in full.iterdir()) == ["old.txt"]
    inside = cli.invoke(app, ["backup", "-o", str(tmp_path / "attachments" / "bk")])
    assert inside.exit_code == 1 and "lies inside the store's folder" in inside.stderr
    missing = cli.invoke(app, ["backup", "-o", str(tmp_path / "no" / "such")])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    made = cli.invoke(app, ["backup", "-o", str(empty)])
    assert made.exit_code == 0, made.output
    assert (empty / "custody.db").is_file() and (empty / "MANIFEST.json").is_file()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_backup_is_a_snapshot_of_the_store_at_that_moment(
    evidence: World, cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Later events do not leak into an earlier backup, and the backup is one file
    (no write-ahead log beside it)."""
    backup = tmp_path / "b1"
    assert cli.invoke(app, ["backup", "-o", str(backup)]).exit_code == 0
    seq = json.loads((backup / "MANIFEST.json").read_text())["store"]["log_seq"]
    evidence.item()
    assert not (backup / "custody.db-wal").exists()
    monkeypatch.setenv("CUSTODY_DB", str(backup / "custody.db"))
    verified = cli.invoke(app, ["verify", "--json"])
    assert verified.exit_code == 0
    assert json.loads(verified.stdout)["log_head"]["seq"] == seq


def test_pg_dump_guidance_hides_the_password(tmp_path: Path) -> None:
    command = pg_dump_command("postgresql+psycopg://alice:hunter2@db.example/custody", tmp_path)
    assert command.startswith("pg_dump --format=custom --file ")
    assert "hunter2" not in command and "alice:***@db.example/custody" in command
    assert "+psycopg" not in command


@pytest.fixture
def pg_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new PostgreSQL database on the CUSTODY_TEST_PG server, named by a plain
    `postgresql://` URL (the form the README documents), dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = os.environ.get("CUSTODY_TEST_PG")
    if not server:
        pytest.skip("CUSTODY_TEST_PG is not set (no PostgreSQL server to test against)")
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"custody_backup_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = (
        make_url(server)
        .set(drivername="postgresql", database=name)
        .render_as_string(hide_password=False)
    )
    monkeypatch.setenv("CUSTODY_DB", url)
    yield url
    with admin.connect() as conn:
        conn.execute(
            text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def test_a_plain_postgresql_url_opens_the_store(pg_database: str, cli: CliRunner) -> None:
    """`--db postgresql://...` works with the `postgres` extra's driver (no '+driver')."""
    assert pg_database.startswith("postgresql://")
    made = cli.invoke(app, ["--db", pg_database, "init", "--agency-code", "KWS"])
    assert made.exit_code == 0, made.output
    assert "No module named" not in made.output
    verified = cli.invoke(app, ["--db", pg_database, "verify"])
    assert verified.exit_code == 0 and verified.stdout.startswith("INTACT"), verified.output


def test_backup_of_a_postgres_store_copies_files_and_explains_pg_dump(
    pg_database: str, cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTODY_ATTACHMENTS", str(tmp_path / "home" / "attachments"))
    assert cli.invoke(app, ["init", "--agency-code", "KWS"]).exit_code == 0
    assert cli.invoke(app, ["actor", "add", "a1", "--name", "A", "--role", "officer",
                            "--agency", "KWS"]).exit_code == 0  # fmt: skip
    assert cli.invoke(app, ["case", "open", "C-1", "--title", "t", "--as", "a1"]).exit_code == 0
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"photo bytes")
    added = cli.invoke(app, ["item", "add", "C-1", "--description", "d", "--photo", str(photo),
                             "--as", "a1"])  # fmt: skip
    assert added.exit_code == 0, added.output
    backup = tmp_path / "pg-backup"
    made = cli.invoke(app, ["backup", "-o", str(backup)])
    assert made.exit_code == 0, made.output
    assert "pg_dump --format=custom" in made.stderr and str(backup) in made.stderr
    manifest = json.loads((backup / "MANIFEST.json").read_text())
    assert manifest["database"].startswith("not copied") and manifest["store"]["store_id"]
    assert not (backup / "custody.db").exists()
    blob = hashlib.sha256(b"photo bytes").hexdigest()
    assert (backup / "attachments" / "sha256" / blob[:2] / blob).read_bytes() == b"photo bytes"


def test_a_bare_postgresql_url_gets_the_installed_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from custody.store import _postgres_driver

    url = "postgresql://u:pw@db.example:5432/custody"
    assert _postgres_driver(url) == "postgresql+psycopg://u:pw@db.example:5432/custody"
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name)
    )
    assert _postgres_driver(url) == "postgresql+psycopg2://u:pw@db.example:5432/custody"
    explicit = "postgresql+psycopg2://u@h/d"
    assert _postgres_driver(explicit) == explicit
    assert _postgres_driver("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
