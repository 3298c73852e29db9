"""CLI wiring of seizure facts, trade terms, entities, exports, SMART import and the
evidence room: outputs, exit codes, one-line errors that change nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custody.cli.main import app

CASE = "KWS-2026-0042"


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.stdout


def fails(cli: CliRunner, *args: str, words: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 1, (args, result.output, result.exception)
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and words in message, message
    assert len(message.splitlines()) == 1, message
    return message


def snapshot(path: Path) -> list[tuple[str, list[tuple[object, ...]]]]:
    con = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        return [
            (t, sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)) for t in tables
        ]
    finally:
        con.close()


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture
def seeded(cli: CliRunner, tmp_path: Path) -> Path:
    run(
        cli,
        "init",
        "--agency-code",
        "KWS",
        "--agency-name",
        "Kenya Wildlife Service",
        "--country",
        "KE",
    )
    for handle, name, role in (
        ("aotieno", "Amina Otieno", "officer"),
        ("jmwangi", "Joseph Mwangi", "custodian"),
        ("bkiprop", "Brian Kiprop", "officer"),
        ("pnjeri", "Peris Njeri", "prosecutor"),
    ):
        run(cli, "actor", "add", handle, "--name", name, "--role", role, "--agency", "KWS")
    run(cli, "case", "open", CASE, "--title", "Pangolin scales at JKIA", "--as", "aotieno")
    run(cli, "item", "add", CASE, "--description", "Sack of pangolin scales", "--species", "Manis tricuspis",
        "--weight", "3.2", "--unit", "kg", "--seal", "S-1", "--seized-at", "2026-03-04T10:00:00+03:00",
        "--lat", "-1.31923", "--lon", "36.92781", "--as", "aotieno")  # fmt: skip
    run(cli, "item", "add", CASE, "--description", "Elephant tusks", "--count", "2",
        "--seized-at", "2026-03-04T10:30:00+03:00", "--as", "aotieno")  # fmt: skip
    return tmp_path / "custody.db"


def test_seizure_facts_terms_and_codes(cli: CliRunner, seeded: Path) -> None:
    run(cli, "seizure", "set", CASE, "--location-type", "airport", "--origin", "NG,CM",
        "--destination", "VN", "--value", "125000", "--currency", "USD", "--as", "aotieno")  # fmt: skip
    run(cli, "seizure", "term", f"{CASE}/2", "--term", "TUS", "--unit", "-", "--as", "jmwangi")
    shown = json.loads(run(cli, "seizure", "show", CASE, "--json"))
    assert shown["facts"]["origin"] == ["NG", "CM"]
    assert {t["item"]: (t["term"], t["unit"]) for t in shown["items"]} == {
        f"{CASE}/1": ("SCA", "KIL"),
        f"{CASE}/2": ("TUS", ""),
    }
    assert "airport" in run(cli, "seizure", "show", CASE)
    assert "KIL  Kilograms" in run(cli, "codes", "unit")
    before = snapshot(seeded)
    fails(cli, "seizure", "set", CASE, "--origin", "Nigeria", "--as", "aotieno", words="ISO 3166")
    fails(cli, "seizure", "set", "NOPE", "--reason", "x", "--as", "aotieno", words="Case NOPE")
    fails(
        cli, "seizure", "term", f"{CASE}/1", "--term", "XYZ", "--as", "aotieno", words="CITES term"
    )
    fails(
        cli, "seizure", "term", f"{CASE}/9", "--term", "SCA", "--as", "aotieno", words=f"{CASE}/9"
    )
    fails(cli, "codes", "colours", words="not a code list")
    assert snapshot(seeded) == before


def test_entities_through_the_cli(cli: CliRunner, seeded: Path) -> None:
    pid = run(cli, "entity", "add", CASE, "--kind", "person", "--category", "suspect",
              "--nationality", "VN", "--name", "Nguyen Van Thanh", "--passport", "C4471902",
              "--link", f"{CASE}/1=owned-by", "--as", "aotieno").strip()  # fmt: skip
    assert pid == f"{CASE}/P1"
    listed = run(cli, "entity", "list", CASE)
    assert "suspect" in listed and "Nguyen" not in listed
    assert "Nguyen Van Thanh" in run(cli, "entity", "list", CASE, "--nominal")
    run(cli, "entity", "update", pid, "--set", "phone=+84 912 555 014", "--as", "aotieno")
    run(cli, "entity", "link", pid, f"{CASE}/2", "--relation", "carried-by", "--as", "aotieno")
    data = json.loads(run(cli, "entity", "list", CASE, "--json", "--nominal"))
    assert data[0]["nominal"]["phone"] == "+84 912 555 014" and len(data[0]["links"]) == 2
    before = snapshot(seeded)
    fails(cli, "entity", "add", CASE, "--kind", "person", "--category", "suspect", "--number", "1",
          "--as", "aotieno", words="--number")  # fmt: skip
    fails(cli, "entity", "add", CASE, "--kind", "ship", "--category", "x", "--as", "aotieno",
          words="not an entity kind")  # fmt: skip
    fails(cli, "entity", "link", pid, f"{CASE}/1", "--relation", "owned-by", "--as", "aotieno",
          words="already linked")  # fmt: skip
    fails(cli, "entity", "erase", pid, "--reason", "retention", "--as", "aotieno", words="role")
    assert snapshot(seeded) == before
    run(cli, "entity", "erase", pid, "--reason", "retention ended", "--as", "pnjeri")
    assert "erased" in run(cli, "entity", "list", CASE)
    run(cli, "verify")


def test_exports_through_the_cli(cli: CliRunner, seeded: Path, tmp_path: Path) -> None:
    run(cli, "entity", "add", CASE, "--kind", "person", "--category", "suspect", "--nationality", "VN",
        "--name", "Nguyen Van Thanh", "--passport", "C4471902", "--link", f"{CASE}/1=owned-by",
        "--as", "aotieno")  # fmt: skip
    run(cli, "transfer", f"{CASE}/1", "--to", "jmwangi", "--as", "aotieno")
    result = cli.invoke(app, ["export", "aitr", "--year", "2026", "-o", str(tmp_path / "aitr.xlsx"),
                              "--as", "aotieno"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Wrote the 2026 AITR (2 rows)" in result.stderr and "recorded as event" in result.stderr
    run(
        cli,
        "export",
        "seizures",
        "--recipient",
        "WCO CEN",
        "-o",
        str(tmp_path / "cen.csv"),
        "--as",
        "aotieno",
    )
    assert "Nguyen" not in (tmp_path / "cen.csv").read_text(encoding="utf-8-sig")
    run(cli, "export", "i2", "--case", CASE, "-o", str(tmp_path / "case.anx"), "--as", "aotieno")
    run(
        cli,
        "export",
        "i2",
        "--case",
        CASE,
        "--format",
        "csv",
        "-o",
        str(tmp_path / "case"),
        "--as",
        "aotieno",
    )
    assert (tmp_path / "case-entities.csv").exists() and (tmp_path / "case-links.csv").exists()
    run(cli, "export", "items", "--format", "json", "-o", str(tmp_path / "items.json"))
    logged = json.loads(run(cli, "export", "log", "--case", CASE, "--json"))
    assert [e["export"] for e in logged] == ["aitr", "seizures-non-nominal", "i2-chart", "i2-chart"]
    assert "WCO CEN" in run(cli, "export", "log")
    assert len(json.loads((tmp_path / "items.json").read_text())) == 2
    run(cli, "verify")
    before = snapshot(seeded)
    fails(cli, "export", "aitr", "--year", "1066", "-o", str(tmp_path / "x.csv"), "--as", "aotieno",
          words="Year 1066")  # fmt: skip
    fails(cli, "export", "aitr", "--year", "2026", "-o", str(tmp_path / "aitr.xlsx"), "--as", "aotieno",
          words="exists already")  # fmt: skip
    fails(cli, "export", "i2", "--case", "NOPE", "-o", str(tmp_path / "x.anx"), "--as", "aotieno",
          words="Case NOPE")  # fmt: skip
    fails(cli, "export", "i2", "--case", CASE, "-o", str(tmp_path / "x.xml"), "--as", "aotieno",
          words=".anx")  # fmt: skip
    fails(
        cli,
        "export",
        "items",
        "--format",
        "xml",
        "-o",
        str(tmp_path / "x.xml"),
        words="csv or json",
    )
    fails(cli, "export", "seizures", "--recipient", "EU-TWIX", "-o", str(tmp_path / "x.csv"),
          words="--as")  # fmt: skip
    assert snapshot(seeded) == before
    assert not any(p.name.startswith("x") for p in tmp_path.iterdir())


def test_smart_import_through_the_cli(cli: CliRunner, seeded: Path, tmp_path: Path) -> None:
    patrol = Path(__file__).parent / "data" / "smart" / "patrol_tsavo.xml"
    result = cli.invoke(app, ["smart", "import", str(patrol), "--case", CASE, "--tz", "Africa/Nairobi",
                              "--as", "aotieno"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [f"{CASE}/3", f"{CASE}/4"]
    assert "2 item(s) and 2 person(s) imported" in result.stderr
    again = cli.invoke(app, ["smart", "import", str(patrol), "--case", CASE, "--tz", "Africa/Nairobi",
                             "--as", "aotieno"])  # fmt: skip
    assert again.exit_code == 0 and "4 already imported" in again.stderr and again.stdout == ""
    hostile = tmp_path / "bomb.xml"
    hostile.write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><patrol id="&b;"/>')
    before = snapshot(seeded)
    fails(cli, "smart", "import", str(hostile), "--case", CASE, "--tz", "UTC", "--as", "aotieno",
          words="declares a DTD")  # fmt: skip
    fails(cli, "smart", "import", str(patrol), "--case", CASE, "--tz", "Nowhere/City", "--as", "aotieno",
          words="time zone")  # fmt: skip
    fails(cli, "smart", "import", str(tmp_path), "--case", CASE, "--tz", "UTC", "--as", "aotieno",
          words="not a regular file")  # fmt: skip
    assert snapshot(seeded) == before
    run(cli, "verify")


def test_evidence_room_through_the_cli(cli: CliRunner, seeded: Path, tmp_path: Path) -> None:
    item1, item2 = f"{CASE}/1", f"{CASE}/2"
    result = cli.invoke(app, ["transfer", item1, item2, "--to", "jmwangi", "--witness", "bkiprop",
                              "--purpose", "safe keeping", "--as", "aotieno"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Recorded transfer") == 2
    run(cli, "location", "add", "HQ", "--name", "KWS HQ", "--kind", "building")
    run(
        cli,
        "location",
        "add",
        "EV1",
        "--name",
        "Evidence room 1",
        "--kind",
        "room",
        "--parent",
        "HQ",
    )
    run(cli, "location", "add", "EV1-S3", "--name", "Shelf 3", "--kind", "shelf", "--parent", "EV1")
    assert "    EV1-S3  Shelf 3 (shelf)" in run(cli, "location", "list")
    for item in (item1, item2):
        run(cli, "receive", item, "--condition", "intact", "--as", "jmwangi")
        run(cli, "store", item, "--location", "EV1-S3", "--as", "jmwangi")
    found = json.loads(run(cli, "item", "find", "--location", "EV1", "--json"))
    assert [f["id"] for f in found] == [item1, item2]
    assert [f["id"] for f in json.loads(run(cli, "item", "find", "--seal", "S-1", "--json"))] == [
        item1
    ]
    result = cli.invoke(app, ["item", "find", "--text", "tusks"])
    assert result.exit_code == 0 and "1 item(s) found" in result.stderr
    assert item1 in run(cli, "audit", "EV1-S3")
    scans = tmp_path / "scans.txt"
    scans.write_text("S-1\nKWS-0000/9\n")
    result = cli.invoke(app, ["audit", "EV1-S3", "--found", str(scans), "--as", "jmwangi"])
    assert result.exit_code == 0, result.output
    assert "missing" in result.stdout and "unknown" in result.stdout
    assert "2 discrepancies" in result.stderr
    run(cli, "verify")
    before = snapshot(seeded)
    fails(cli, "transfer", item1, item2, "--to", "aotieno", "--offer", str(tmp_path / "o.json"),
          "--as", "jmwangi", words="one item")  # fmt: skip
    fails(
        cli, "transfer", item1, f"{CASE}/9", "--to", "aotieno", "--as", "jmwangi", words=f"{CASE}/9"
    )
    fails(cli, "item", "find", "--from", "yesterday", words="not a date")
    fails(cli, "audit", "NOPE", "--item", "x", "--as", "jmwangi", words="Location NOPE")
    fails(
        cli,
        "audit",
        "EV1-S3",
        "--found",
        str(tmp_path),
        "--as",
        "jmwangi",
        words="not a regular file",
    )
    fails(cli, "location", "add", "B1", "--name", "Box", "--kind", "box", words="must sit inside")
    bad = tmp_path / "bad.csv"
    bad.write_text("DESCRIPTION;Count\nOk;1\nBad;x\n;2\n")
    fails(cli, "item", "import", CASE, str(bad), "--as", "aotieno", words="2 bad rows")
    assert snapshot(seeded) == before
    good = tmp_path / "good.csv"
    good.write_text("DESCRIPTION;Count;Seal\nParrot;1;S-9\n")
    assert run(cli, "item", "import", CASE, str(good), "--as", "aotieno").split() == [f"{CASE}/3"]
