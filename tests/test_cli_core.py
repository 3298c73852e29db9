"""CLI wiring: outputs, IDs on stdout, JSON, exit codes, help text and docs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custody.cli.docgen import generate
from custody.cli.main import app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.stdout


@pytest.fixture
def seeded(cli: CliRunner) -> str:
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
    run(
        cli,
        "actor",
        "add",
        "aotieno",
        "--name",
        "Amina Otieno",
        "--role",
        "officer",
        "--agency",
        "KWS",
        "--badge",
        "R-1042",
    )
    run(
        cli,
        "actor",
        "add",
        "jmwangi",
        "--name",
        "Joseph Mwangi",
        "--role",
        "custodian",
        "--agency",
        "KWS",
    )
    run(
        cli,
        "actor",
        "add",
        "wkamau",
        "--name",
        "Dr Wanjiru Kamau",
        "--role",
        "analyst",
        "--agency",
        "KWS",
    )
    assert (
        run(cli, "case", "open", "KWS-2026-0042", "--title", "Pangolin scales", "--as", "aotieno")
        == "KWS-2026-0042\n"
    )
    return "KWS-2026-0042"


def test_full_custody_flow_through_the_cli(cli: CliRunner, seeded: str, tmp_path: Path) -> None:
    photo = tmp_path / "bag.jpg"
    photo.write_bytes(b"\xff\xd8photo")
    item = run(
        cli, "item", "add", seeded, "--description", "Bag of scales", "--species", "Manis javanica",
        "--weight", "3.2", "--unit", "kg", "--seal", "S-1001", "--bag", "1/3", "--place", "JKIA",
        "--lat", "-1.319", "--lon", "36.927", "--seized-at", "2026-11-20T09:15+03:00", "--photo", str(photo),
        "--other-id", "cites_permit=KE-2026-77", "--as", "aotieno",
    ).strip()  # fmt: skip
    assert item == f"{seeded}/1"
    run(cli, "transfer", item, "--to", "jmwangi", "--purpose", "storage", "--as", "aotieno")
    run(cli, "receive", item, "--condition", "seal intact", "--as", "jmwangi")
    run(cli, "store", item, "--location", "Vault B", "--as", "jmwangi")
    run(cli, "transfer", item, "--to", "wkamau", "--purpose", "DNA analysis", "--as", "jmwangi")
    run(cli, "receive", item, "--condition", "seal intact", "--as", "wkamau")
    run(cli, "unseal", item, "--seal", "S-1001", "--reason", "sampling", "--as", "wkamau")
    child = run(cli, "sample", item, "--description", "one scale", "--as", "wkamau").strip()
    assert child == f"{item}.1"
    run(cli, "seal", item, "--seal", "S-2002", "--as", "wkamau")
    run(cli, "note", item, "--text", "resealed after sampling", "--as", "wkamau")
    shown = json.loads(run(cli, "item", "show", item, "--json"))
    assert shown["state"]["seal"] == "S-2002" and shown["state"]["custodian"] == "wkamau"
    assert shown["other_ids"] == {"cites_permit": "KE-2026-77"}
    assert shown["seized_at"] == "2026-11-20T06:15:00.000000Z"
    history = json.loads(run(cli, "history", item, "--json"))
    assert [h["type"] for h in history] == [
        "seize", "transfer", "receive", "store", "transfer", "receive", "unseal", "sample", "seal", "note",
    ]  # fmt: skip
    assert {s["role"] for s in history[1]["signatures"]} == {"actor", "receiver"}
    listed = json.loads(run(cli, "item", "list", "--case", seeded, "--json"))
    assert [i["id"] for i in listed] == [item, child]
    verdict = json.loads(run(cli, "verify", "--json"))
    assert verdict["intact"] and verdict["events_checked"] == 12
    assert "INTACT" in run(cli, "verify", "--case", seeded)
    run(
        cli,
        "dispose",
        child,
        "--method",
        "destroyed",
        "--authority",
        "consumed in analysis",
        "--as",
        "wkamau",
    )
    cases = json.loads(run(cli, "case", "list", "--json"))
    assert cases[0]["case_no"] == seeded
    actors = json.loads(run(cli, "actor", "list", "--json"))
    assert {a["handle"] for a in actors} == {"aotieno", "jmwangi", "wkamau"}


def test_errors_are_one_line_exit_1_and_change_nothing(cli: CliRunner, seeded: str) -> None:
    db = Path(__import__("os").environ["CUSTODY_DB"])
    item = run(
        cli, "item", "add", seeded, "--description", "Tusk", "--seal", "S-1", "--as", "aotieno"
    ).strip()
    before = sqlite3.connect(db).execute("SELECT count(*) FROM events").fetchone()[0]
    cases = [
        (["transfer", item, "--to", "wkamau", "--as", "jmwangi"], "only the current custodian"),
        (
            ["unseal", item, "--seal", "S-9", "--reason", "x", "--as", "aotieno"],
            "must name the seal",
        ),
        (["note", "KWS-2026-0042/77", "--text", "x", "--as", "aotieno"], "does not exist"),
        (["note", item, "--text", "x"], "--as HANDLE"),
        (
            ["item", "add", "NOPE", "--description", "x", "--as", "aotieno"],
            "Case NOPE does not exist",
        ),
        (
            [
                "item",
                "add",
                seeded,
                "--description",
                "x",
                "--seized-at",
                "2026-01-01T10:00",
                "--as",
                "aotieno",
            ],
            "no time zone",
        ),
        (
            [
                "item",
                "add",
                seeded,
                "--description",
                "x",
                "--lat",
                "95",
                "--lon",
                "1",
                "--as",
                "aotieno",
            ],
            "outside -90..90",
        ),
        (["correct", "9999", "--reason", "x", "--as", "aotieno"], "Event 9999 does not exist"),
        (["actor", "add", "Bad Handle", "--name", "x", "--role", "officer"], "not valid"),
        (
            ["actor", "add", "zed", "--name", "x", "--role", "janitor"],
            "Role 'janitor' does not exist",
        ),
    ]
    for args, words in cases:
        result = cli.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert words in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert sqlite3.connect(db).execute("SELECT count(*) FROM events").fetchone()[0] == before
    assert cli.invoke(app, ["transfer", item]).exit_code == 2  # usage error: missing --to


def test_verify_exits_1_and_names_findings(cli: CliRunner, seeded: str) -> None:
    item = run(cli, "item", "add", seeded, "--description", "Tusk", "--as", "aotieno").strip()
    db = __import__("os").environ["CUSTODY_DB"]
    con = sqlite3.connect(db)
    con.execute(
        "UPDATE events SET data = replace(data, 'Tusk', 'Tooth') WHERE item_id = ?", (item,)
    )
    con.commit()
    result = cli.invoke(app, ["verify", item, "--json"])
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert any(f["kind"] == "altered" and f["subject"] == item and f["event"] for f in findings)


def test_csv_import_is_all_or_nothing(cli: CliRunner, seeded: str, tmp_path: Path) -> None:
    good = tmp_path / "items.csv"
    good.write_text(
        "description,species,count,weight,unit,bag,seal,place,lat,lon,seized_at,microchip\n"
        "Live parrot,Psittacus erithacus,1,,,1/2,S-10,Mombasa port,-4.06,39.66,2026-11-20T08:00+03:00,985120000000001\n"
        "Live parrot,Psittacus erithacus,1,,,2/2,S-11,Mombasa port,-4.06,39.66,2026-11-20T08:00+03:00,985120000000002\n"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("description,count,bag\nTusk,1,1/2\nTusk,two,2/2\n")
    db = __import__("os").environ["CUSTODY_DB"]
    result = cli.invoke(app, ["item", "import", seeded, str(bad), "--as", "aotieno"])
    assert result.exit_code == 1 and "line 3" in result.stderr
    assert sqlite3.connect(db).execute("SELECT count(*) FROM items").fetchone()[0] == 0
    ids = run(cli, "item", "import", seeded, str(good), "--as", "aotieno").split()
    assert ids == [f"{seeded}/1", f"{seeded}/2"]
    shown = json.loads(run(cli, "item", "show", ids[1], "--json"))
    assert (
        shown["bag_no"] == 2
        and shown["bag_total"] == 2
        and shown["other_ids"]["microchip"] == "985120000000002"
    )


def _leaf_commands() -> list[list[str]]:
    import typer

    def walk(cmd: object, path: list[str]) -> list[list[str]]:
        sub = getattr(cmd, "commands", None)
        if not sub:
            return [path]
        return [p for name in sorted(sub) for p in walk(sub[name], [*path, name])]

    return walk(typer.main.get_command(app), [])


def test_every_command_has_help_and_is_documented(cli: CliRunner) -> None:
    docs = (ROOT / "docs" / "cli.md").read_text()
    for path in _leaf_commands():
        result = cli.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert len(result.stdout.strip()) > 40, path
        assert f"## custody {' '.join(path)}\n" in docs, f"{path} missing from docs/cli.md"


def test_docs_cli_md_is_up_to_date() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == generate(), "run 'make docs'"


def test_user_text_that_looks_like_markup_is_printed_as_is(cli: CliRunner, seeded: str) -> None:
    item = run(
        cli,
        "item",
        "add",
        seeded,
        "--description",
        "[/] odd [bold]bag",
        "--seal",
        "[/bold]",
        "--as",
        "aotieno",
    ).strip()
    assert "[/]" in run(cli, "item", "list")  # the table renders instead of failing on markup
    assert "[/bold]" in run(cli, "item", "show", item)
    assert "[/]" in run(cli, "history", item)
    result = cli.invoke(app, ["seal", item, "--seal", "X", "--as", "aotieno"])
    assert (
        result.exit_code == 1 and "[/bold]" in result.stderr and result.stderr.startswith("error: ")
    )


def test_malformed_csv_and_numbers_are_clear_errors(
    cli: CliRunner, seeded: str, tmp_path: Path
) -> None:
    db = Path(__import__("os").environ["CUSTODY_DB"])
    cases = {
        "extra.csv": ("description,count\nA,1\nB,2,extra\n", "more fields than the header"),
        "quote.csv": ('description,count\n"A,1\n', "malformed"),
        "inf.csv": ("description,weight,unit\nA,inf,g\n", "not a finite number"),
        "nul.csv": ("description\nA\x00B\n", "NUL"),
    }
    for name, (content, words) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        result = cli.invoke(app, ["item", "import", seeded, str(path), "--as", "aotieno"])
        assert result.exit_code == 1 and words in result.stderr, (
            name,
            result.stderr,
            result.exception,
        )
    for extra in (["--weight", "nan", "--unit", "g"], ["--count", "99999999999"]):
        result = cli.invoke(
            app, ["item", "add", seeded, "--description", "x", *extra, "--as", "aotieno"]
        )
        assert result.exit_code == 1 and result.stderr.startswith("error: "), (extra, result.output)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM items").fetchone()[0] == 0


def test_sub_items_follow_the_custody_rules(cli: CliRunner, seeded: str) -> None:
    run(
        cli,
        "actor",
        "add",
        "bkiprop",
        "--name",
        "Brian Kiprop",
        "--role",
        "officer",
        "--agency",
        "KWS",
    )
    box = run(
        cli,
        "item",
        "add",
        seeded,
        "--description",
        "Box of tusks",
        "--seal",
        "S-9",
        "--as",
        "aotieno",
    ).strip()
    sealed = cli.invoke(
        app, ["item", "add", seeded, "--description", "tusk", "--parent", box, "--as", "aotieno"]
    )
    assert sealed.exit_code == 1 and "unseal" in sealed.stderr
    run(cli, "unseal", box, "--seal", "S-9", "--reason", "inventory", "--as", "aotieno")
    other = cli.invoke(
        app, ["item", "add", seeded, "--description", "tusk", "--parent", box, "--as", "bkiprop"]
    )
    assert other.exit_code == 1 and "only the current custodian may log sub-items" in other.stderr
    tusk = run(
        cli, "item", "add", seeded, "--description", "tusk", "--parent", box, "--as", "aotieno"
    ).strip()
    assert tusk == f"{box}.1"
    history = json.loads(run(cli, "history", box, "--json"))
    assert history[-1]["type"] == "note" and history[-1]["data"]["sub_item"] == tusk
    assert json.loads(run(cli, "verify", "--json"))["intact"]


def test_verify_against_trusted_keys(cli: CliRunner, seeded: str, tmp_path: Path) -> None:
    run(cli, "item", "add", seeded, "--description", "Tusk", "--as", "aotieno")
    trusted = tmp_path / "trusted.txt"
    trusted.write_text(run(cli, "actor", "list", "--fingerprints"))
    assert json.loads(run(cli, "verify", "--json", "--trusted-keys", str(trusted)))["intact"]
    # An actor added later (or by someone with write access) is not in the published list.
    run(cli, "actor", "add", "mallory", "--name", "Mallory", "--role", "officer", "--agency", "KWS")
    run(cli, "note", f"{seeded}/1", "--text", "looks fine", "--as", "mallory")
    result = cli.invoke(app, ["verify", "--json", "--trusted-keys", str(trusted)])
    assert result.exit_code == 1
    kinds = {(f["subject"], f["kind"]) for f in json.loads(result.stdout)["findings"]}
    assert ("actor:mallory", "unknown key") in kinds and (f"{seeded}/1", "unknown key") in kinds
    bad = tmp_path / "bad.txt"
    bad.write_text("not a fingerprint\n")
    broken = cli.invoke(app, ["verify", "--trusted-keys", str(bad)])
    assert broken.exit_code == 1 and "64-hex-digit" in broken.stderr
