"""An issued dossier is never replaced, lost or issued twice: its file and its record
exist together or not at all."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custody.cli.main import app
from custody.errors import InvalidInput
from tests.conftest import CASE, World


def _issues(world: World) -> list[str]:
    con = sqlite3.connect(world.db_path)
    rows = con.execute(
        "SELECT json_extract(data, '$.report_id') FROM events WHERE type = 'dossier-issue'"
    )
    return [r[0] for r in rows.fetchall()]


def _build(world: World, out: Path, **options: object) -> object:
    from custody.dossier.build import build_dossier

    return build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor, **options)  # type: ignore[arg-type]


@pytest.fixture
def small_case(world: World) -> World:
    world.item(description="Rhino horn, one piece", weight=2.1, unit="kg")
    return world


def test_an_issued_dossier_is_never_replaced(small_case: World, tmp_path: Path) -> None:
    out = tmp_path / "dossier-R1.pdf"
    _build(small_case, out)
    before = hashlib.sha256(out.read_bytes()).hexdigest()
    for force in (False, True):
        with pytest.raises(InvalidInput, match="issued dossier .* never replaced"):
            _build(small_case, out, reason="a second issue", force=force)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == before
    assert _issues(small_case) == [f"{CASE}-R1"]


def test_an_existing_file_needs_force_and_is_then_replaced(
    small_case: World, tmp_path: Path
) -> None:
    out = tmp_path / "notes.pdf"
    out.write_text("not a dossier")
    with pytest.raises(InvalidInput, match="exists already; .* --force"):
        _build(small_case, out)
    assert out.read_text() == "not a dossier" and _issues(small_case) == []
    _build(small_case, out, force=True)
    assert out.read_bytes().startswith(b"%PDF") and _issues(small_case) == [f"{CASE}-R1"]


def test_file_and_record_appear_together_or_not_at_all(
    small_case: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure at the moment the PDF is put in place leaves neither file nor record,
    and the next build issues R1 again (not a different R1 beside a lost one)."""
    import custody.dossier.build as build

    real_place = build._place

    def place_then_fail(staged: Path, out: Path, *, force: bool) -> None:
        real_place(staged, out, force=force)
        raise OSError("power cut")

    monkeypatch.setattr(build, "_place", place_then_fail)
    out = tmp_path / "dossier.pdf"
    with pytest.raises(OSError, match="power cut"):
        _build(small_case, out)
    assert not out.exists() and _issues(small_case) == []
    assert not [p for p in tmp_path.iterdir() if "staged" in p.name]
    monkeypatch.setattr(build, "_place", real_place)
    result = _build(small_case, out)
    assert result.report_id == f"{CASE}-R1" and out.exists()  # type: ignore[attr-defined]
    assert _issues(small_case) == [f"{CASE}-R1"]


def test_case_show_lists_issued_dossiers_with_their_hashes(
    small_case: World, tmp_path: Path
) -> None:
    out = tmp_path / "d.pdf"
    _build(small_case, out)
    sha = "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    runner = CliRunner()
    shown = runner.invoke(app, ["case", "show", CASE, "--json"])
    assert shown.exit_code == 0, shown.output
    (dossier,) = json.loads(shown.stdout)["dossiers"]
    assert dossier["report_id"] == f"{CASE}-R1" and dossier["pdf_sha256"] == sha
    assert dossier["issued_by"] == "pnjeri"
    text = runner.invoke(app, ["case", "show", CASE]).stdout
    assert f"{CASE}-R1" in text and sha[:20] in text


def test_cli_refuses_to_replace_and_says_how(small_case: World, tmp_path: Path) -> None:
    out = tmp_path / "d.pdf"
    runner = CliRunner()
    first = runner.invoke(app, ["dossier", "build", CASE, "-o", str(out), "--as", "pnjeri"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(
        app,
        [
            "dossier",
            "build",
            CASE,
            "-o",
            str(out),
            "--reason",
            "again",
            "--force",
            "--as",
            "pnjeri",
        ],
    )
    assert again.exit_code == 1 and "never replaced" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
