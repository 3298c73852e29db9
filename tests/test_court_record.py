"""What reaches the court is what happened: analyses are custody acts, corrections take
effect, voided items stop being evidence, sub-samples say where they came from, and a
day's hand-overs can be entered after the fact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custody.cli.main import app
from tests.conftest import World


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def _ok(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def _refused(cli: CliRunner, world: World, *args: str) -> str:
    """Run a command that must be refused; the store must not change."""
    before = hashlib.sha256(world.db_path.read_bytes()).hexdigest()
    result = cli.invoke(app, list(args))
    assert result.exit_code == 1, (args, result.output)
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert hashlib.sha256(world.db_path.read_bytes()).hexdigest() == before
    return result.stderr


def _show(cli: CliRunner, item: str) -> dict[str, object]:
    data = json.loads(_ok(cli, "item", "show", item, "--json"))
    assert isinstance(data, dict)
    return data


def _first_event(cli: CliRunner, item: str) -> int:
    return int(json.loads(_ok(cli, "history", item, "--json"))[0]["id"])


def test_field_correction_changes_what_is_shown_and_keeps_the_original(
    world: World, cli: CliRunner
) -> None:
    item = world.item(weight=3.2, unit="kg", seal="S-1")
    seize = _first_event(cli, item)
    _ok(
        cli,
        "correct",
        str(seize),
        "--set",
        "weight=2.9",
        "--reason",
        "scale misread",
        "--as",
        "aotieno",
    )
    shown = _show(cli, item)
    assert shown["weight"] == 2.9
    assert shown["corrections"] == {
        "weight": {"recorded": 3.2, "event": seize + 1, "reason": "scale misread"}
    }
    text = _ok(cli, "item", "show", item)
    assert "2.9" in text and "recorded as 3.2" in text and "scale misread" in text
    history = json.loads(_ok(cli, "history", item, "--json"))
    assert history[0]["data"]["item"]["weight"] == 3.2  # the signed original stays
    assert history[-1]["data"]["set"] == {"weight": 2.9}
    assert json.loads(_ok(cli, "verify", "--json"))["intact"]


@pytest.mark.parametrize(
    ("assignment", "words"),
    [
        ("weight=-1", "negative"),
        ("weight=heavy", "not a number"),
        ("colour=red", "not a field correction"),
        ("lat=91", "outside -90..90"),
        ("count=2.5", "not an integer"),
    ],
)
def test_bad_field_corrections_are_refused(
    world: World, cli: CliRunner, assignment: str, words: str
) -> None:
    item = world.item(weight=3.2, unit="kg", lat=-1.3, lon=36.9)
    seize = _first_event(cli, item)
    message = _refused(
        cli, world, "correct", str(seize), "--set", assignment, "--reason", "r", "--as", "aotieno"
    )
    assert words in message


def test_field_correction_only_on_a_creating_event(world: World, cli: CliRunner) -> None:
    item = world.item()
    _ok(cli, "note", item, "--text", "checked", "--as", "aotieno")
    note = json.loads(_ok(cli, "history", item, "--json"))[-1]["id"]
    message = _refused(
        cli, world, "correct", str(note), "--set", "weight=1", "--reason", "r", "--as", "aotieno"
    )
    assert "not the creating event of an item" in message


def test_void_item_is_refused_by_custody_commands_and_scans_void(
    world: World, cli: CliRunner, tmp_path: Path
) -> None:
    item = world.item(seal="S-9")
    labels = tmp_path / "labels.pdf"
    _ok(cli, "label", "print", item, "-o", str(labels), "--as", "aotieno")
    _ok(cli, "void", item, "--reason", "duplicate entry of bag 1", "--as", "aotieno")
    assert _show(cli, item)["state"]["status"] == "void"  # type: ignore[index]
    for command in (
        ["transfer", item, "--to", "jmwangi", "--as", "aotieno"],
        ["note", item, "--text", "x", "--as", "aotieno"],
        ["unseal", item, "--seal", "S-9", "--reason", "x", "--as", "aotieno"],
        ["void", item, "--reason", "again", "--as", "aotieno"],
    ):
        assert "was voided as entered in error" in _refused(cli, world, *command)
    message = _refused(
        cli, world, "label", "print", item, "-o", str(tmp_path / "again.pdf"), "--as", "aotieno"
    )
    assert "voided" in message and not (tmp_path / "again.pdf").exists()
    scanned = cli.invoke(app, ["scan", str(labels)])
    assert (
        scanned.exit_code == 1 and "VOID" in scanned.stdout and "duplicate entry" in scanned.stdout
    )
    assert json.loads(_ok(cli, "verify", "--json"))["intact"]


def test_void_needs_a_reason_and_the_custodian(world: World, cli: CliRunner) -> None:
    item = world.item()
    assert "needs a reason" in _refused(
        cli, world, "void", item, "--reason", " ", "--as", "aotieno"
    )
    assert "only the current custodian" in _refused(
        cli, world, "void", item, "--reason", "r", "--as", "jmwangi"
    )


def test_sub_sample_shows_where_it_was_taken_from(world: World, cli: CliRunner) -> None:
    item = world.hand_to_lab(world.item(place="JKIA cargo shed 3"))
    sample = _ok(cli, "sample", item, "--description", "one scale", "--as", "wkamau").strip()
    shown = _show(cli, sample)
    assert "seizing_officer" not in shown and "seized_at" not in shown and "place" not in shown
    origin = shown["taken_from"]
    assert isinstance(origin, dict) and origin["item"] == item and origin["by"] == "wkamau"
    text = _ok(cli, "item", "show", sample)
    assert "taken from" in text and item in text and "wkamau" in text
    assert "aotieno" not in text


def test_location_follows_a_transfer_without_a_named_place(world: World, cli: CliRunner) -> None:
    item = world.item(place="JKIA cargo shed 3")
    _ok(cli, "transfer", item, "--to", "jmwangi", "--as", "aotieno")
    assert _show(cli, item)["state"]["location"] == "with jmwangi"  # type: ignore[index]


def test_label_print_does_not_block_back_office_entry(
    world: World, cli: CliRunner, tmp_path: Path
) -> None:
    """Labels printed now; the morning's hand-over entered afterwards with its real time."""
    item = world.item(seized_at="2026-11-20T08:00+03:00")
    _ok(cli, "label", "print", item, "-o", str(tmp_path / "l.pdf"), "--as", "aotieno")
    _ok(
        cli,
        "transfer",
        item,
        "--to",
        "jmwangi",
        "--at",
        "2026-11-20T09:30+03:00",
        "--as",
        "aotieno",
    )
    _ok(
        cli,
        "receive",
        item,
        "--condition",
        "sealed",
        "--at",
        "2026-11-20T10:00+03:00",
        "--as",
        "jmwangi",
    )
    # Acts still cannot go back before the last act.
    message = _refused(
        cli,
        world,
        "store",
        item,
        "--location",
        "Vault",
        "--at",
        "2026-11-20T09:45+03:00",
        "--as",
        "jmwangi",
    )
    assert "earlier than the last act" in message
    assert json.loads(_ok(cli, "verify", "--json"))["intact"]


def test_analysis_is_a_custody_act(world: World) -> None:
    from custody.errors import IllegalTransition
    from custody.events import record_analysis, record_unseal

    item = world.item(seal="S-5")
    with pytest.raises(IllegalTransition, match="only the current custodian may record 'analyse'"):
        record_analysis(world.store, item_id=item, signer=world.analyst, result={"x": 1})
    world.hand_to_lab(item)
    with pytest.raises(IllegalTransition, match="sealed with seal S-5; record an unseal"):
        record_analysis(world.store, item_id=item, signer=world.analyst, result={"x": 1})
    record_unseal(world.store, item_id=item, signer=world.analyst, seal="S-5", reason="sampling")
    record_analysis(world.store, item_id=item, signer=world.analyst, result={"x": 1})


def test_withdrawn_analysis_says_so_in_history(world: World, cli: CliRunner) -> None:
    from custody.events import record_analysis

    item = world.hand_to_lab(world.item())
    recorded = record_analysis(
        world.store, item_id=item, signer=world.analyst, result={"statement": "Manis sp."}
    )
    analysis = recorded.events[0].id
    _ok(cli, "correct", str(analysis), "--reason", "contaminated extraction", "--as", "wkamau")
    history = json.loads(_ok(cli, "history", item, "--json"))
    entry = next(e for e in history if e["id"] == analysis)
    assert entry["withdrawn"] == {"by_event": analysis + 1, "reason": "contaminated extraction"}
    assert all(e["withdrawn"] is None for e in history if e["id"] != analysis)
    text = _ok(cli, "history", item)
    assert "WITHDRAWN by event" in text and "contaminated extraction" in text
