"""The dossier's section on case entities: signed facts always, personal data only when asked.

Personal data may appear on the pages of a dossier built with --personal-data, and
nowhere else: never in the embedded bundle, never in an event, and the dossier
verifies either way.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from pypdf import PdfReader
from typer.testing import CliRunner

from custody.cli.main import app
from custody.dossier.build import build_dossier, verify_dossier
from custody.entities import add_entity, erase_nominal
from tests.conftest import CASE, World

SUSPECT = {
    "name": "Nguyen Van Thanh",
    "dob": "1979-03-14",
    "passport": "C4471902",
    "phone": "+84 912 555 014",
    "address": "12 Hang Bac, Hanoi",
}
WITNESS = {"name": "Grace Achieng", "phone": "+254 722 000 111"}
FLIGHT = {"identifier": "KQ 310"}
AIRWAY_BILL = {"number": "706-51234563", "consignee": "Lotus Trading Co"}
#: Every personal value of the case, each of which must stay out of bundles and events.
PERSONAL = [*SUSPECT.values(), *WITNESS.values(), *FLIGHT.values(), *AIRWAY_BILL.values()]


def _case(world: World) -> tuple[str, str]:
    scales = world.item(description="Sack of pangolin scales", seal="S-1")
    tusk = world.item(description="Carved ivory tusk", species="Loxodonta africana")
    common = {"store": world.store, "case_no": CASE, "signer": world.officer}
    add_entity(
        **common,
        kind="person",
        category="suspect",
        attributes={"nationality": "VN"},
        nominal=SUSPECT,
        links=[(scales, "owned-by"), (tusk, "seized-from")],
    )
    witness = add_entity(
        **common,
        kind="person",
        category="witness",
        attributes={"nationality": "KE"},
        nominal=WITNESS,
    ).id
    add_entity(**common, kind="organisation", category="company", attributes={"country": "CN"})
    add_entity(
        **common,
        kind="conveyance",
        category="flight",
        attributes={"country": "KE"},
        nominal=FLIGHT,
        links=[(scales, "carried-by")],
    )
    add_entity(
        **common,
        kind="shipment",
        category="airway-bill",
        attributes={"origin": "KE", "destination": "VN"},
        nominal=AIRWAY_BILL,
        links=[(scales, "found-in")],
    )
    erase_nominal(
        world.store, entity_id=witness, signer=world.prosecutor, reason="retention period ended"
    )
    return scales, tusk


def _pages(pdf: Path) -> str:
    return "\n".join(p.extract_text() or "" for p in PdfReader(str(pdf)).pages)


def _squeezed(text: str) -> str:
    """Text without whitespace: a value may wrap inside its table cell."""
    return re.sub(r"\s+", "", text)


def _bundle_bytes(pdf: Path) -> bytes:
    return bytes(PdfReader(str(pdf)).attachments["case-bundle.json"][0])


def _events_text(world: World) -> str:
    con = sqlite3.connect(world.db_path)
    try:
        return "\n".join(r[0] for r in con.execute("SELECT data FROM events"))
    finally:
        con.close()


def _issue_events(world: World) -> list[dict[str, object]]:
    con = sqlite3.connect(world.db_path)
    try:
        rows = con.execute("SELECT data FROM events WHERE type = 'dossier-issue' ORDER BY id")
        return [json.loads(r[0]) for r in rows]
    finally:
        con.close()


def _assert_never_shared(world: World, pdf: Path) -> None:
    bundle = _bundle_bytes(pdf)
    events = _events_text(world)
    for value in PERSONAL:
        assert value.encode() not in bundle, value
        assert value not in events, value
    # The bundle carries the commitments, and its entities are those of the signed events.
    decoded = json.loads(bundle)
    adds = [json.loads(e["data"]) for e in decoded["events"] if e["type"] == "entity-add"]
    assert len(adds) == 5 and all(
        a["nominal"] is None or a["nominal"].startswith("sha256:") for a in adds
    )


def test_dossier_lists_entities_and_leaves_personal_data_out_by_default(
    world: World, tmp_path: Path
) -> None:
    scales, tusk = _case(world)
    out = tmp_path / "dossier.pdf"
    build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor)
    text = _pages(out)
    flat = re.sub(r"\s+", " ", text)
    squeezed = _squeezed(text)
    assert "Persons, organisations, conveyances and shipments" in text
    assert "Personal data left out: 3 of 5 entities hold personal data" in flat
    for fact in (
        "person, suspect",
        "person, witness",
        "organisation, company",
        "conveyance, flight",
        "shipment, airway-bill",
        "nationality: VN",
        "country: CN",
        "destination: VN",
    ):
        assert fact in flat, fact
    for link in (f"{scales}(owned-by)", f"{tusk}(seized-from)", f"{scales}(found-in)"):
        assert link in squeezed, link
    assert "held; left out of this dossier" in flat
    assert re.search(r"erased on \d{4}-\d\d-\d\d by Peris Njeri \(pnjeri\)", flat)
    assert "retention period ended" in flat
    for value in PERSONAL:
        assert _squeezed(value) not in squeezed, value
    _assert_never_shared(world, out)
    check = verify_dossier(out)
    assert check.valid, (check.problems, check.findings)
    assert "personal_data" not in _issue_events(world)[0]


def test_personal_data_printed_only_on_the_pages_when_asked(world: World, tmp_path: Path) -> None:
    _case(world)
    runner = CliRunner()
    plain = tmp_path / "plain.pdf"
    built = runner.invoke(app, ["dossier", "build", CASE, "-o", str(plain), "--as", "pnjeri"])
    assert built.exit_code == 0, built.output
    out = tmp_path / "nominal.pdf"
    built = runner.invoke(
        app,
        [
            "dossier",
            "build",
            CASE,
            "-o",
            str(out),
            "--personal-data",
            "--reason",
            "Court asked for the suspects' particulars",
            "--as",
            "pnjeri",
        ],
    )
    assert built.exit_code == 0, built.output
    text = _pages(out)
    flat = re.sub(r"\s+", " ", text)
    squeezed = _squeezed(text)
    assert "Personal data printed" in flat and "for 3 of 5 entities" in flat
    for value in (*SUSPECT.values(), *FLIGHT.values(), *AIRWAY_BILL.values()):
        assert _squeezed(value) in squeezed, value
    assert "passport: C4471902" in flat and "date of birth: 1979-03-14" in flat
    # Erased data stays erased: the witness's name and phone are nowhere.
    for value in WITNESS.values():
        assert _squeezed(value) not in squeezed, value
    assert re.search(r"erased on \d{4}-\d\d-\d\d by Peris Njeri \(pnjeri\)", flat)
    _assert_never_shared(world, out)
    for pdf in (plain, out):
        checked = runner.invoke(app, ["dossier", "verify", str(pdf)])
        assert checked.exit_code == 0 and checked.stdout.startswith("VALID"), checked.stdout
    # The disclosure is on record (a flag, no data); the plain issue carries no such key.
    first, second = _issue_events(world)
    assert "personal_data" not in first and second["personal_data"] is True


def test_personal_data_changed_outside_custody_is_never_printed(
    world: World, tmp_path: Path
) -> None:
    _case(world)
    con = sqlite3.connect(world.db_path)
    forged = json.dumps({**SUSPECT, "name": "Someone Else Entirely"}, sort_keys=True)
    con.execute("UPDATE nominal_records SET data = ? WHERE entity_id = ?", (forged, f"{CASE}/P1"))
    con.commit()
    con.close()
    out = tmp_path / "dossier.pdf"
    build_dossier(
        world.store,
        case_no=CASE,
        out=out,
        signer=world.prosecutor,
        allow_findings=True,
        personal_data=True,
    )
    flat = re.sub(r"\s+", " ", _pages(out))
    assert "Someone Else Entirely" not in flat and SUSPECT["passport"] not in flat
    assert "not printed: it does not match its signed commitment" in flat
    assert FLIGHT["identifier"] in flat  # the intact entities still print


def test_case_without_entities_has_no_entity_section(world: World, tmp_path: Path) -> None:
    world.item()
    out = tmp_path / "dossier.pdf"
    build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor)
    assert "Persons, organisations" not in _pages(out)


def test_an_entity_event_altered_outside_custody_still_builds_with_findings(
    world: World, tmp_path: Path
) -> None:
    _case(world)
    con = sqlite3.connect(world.db_path)
    con.execute(
        "UPDATE events SET data = ? WHERE type = 'entity-add' AND data LIKE '%organisation%'",
        ('{"entity":"broken"}',),
    )
    con.commit()
    con.close()
    out = tmp_path / "dossier.pdf"
    result = build_dossier(
        world.store, case_no=CASE, out=out, signer=world.prosecutor, allow_findings=True
    )
    assert any(f.kind == "altered" for f in result.findings)
    flat = re.sub(r"\s+", " ", _pages(out))
    assert "person, suspect" in flat and "organisation, company" not in flat
