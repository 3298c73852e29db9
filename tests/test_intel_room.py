"""The evidence room: search, several items handed over at once, storage locations,
audits with discrepancies, and CSV import reporting every bad row."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from custody import events as ev
from custody.errors import (
    AlreadyExists,
    IllegalTransition,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from custody.events import record_transfers
from custody.records import import_items, list_items
from custody.room import add_location, audit_location, find_items
from custody.verify import verify
from tests.conftest import CASE, World


@pytest.fixture
def room(world: World) -> dict[str, str]:
    add_location(world.store, code="HQ", name="KWS HQ Langata", kind="building")
    add_location(world.store, code="EV1", name="Evidence room 1", kind="room", parent="HQ")
    add_location(world.store, code="EV1-S3", name="Shelf 3", kind="shelf", parent="EV1")
    add_location(world.store, code="EV1-S3-B12", name="Box 12", kind="box", parent="EV1-S3")
    add_location(world.store, code="EV1-S4", name="Shelf 4", kind="shelf", parent="EV1")
    ids = {
        "scales": world.item(
            description="Sack of pangolin scales",
            species="Manis sp.",
            seal="S-100",
            seized_at="2026-03-04T10:00:00+03:00",
        ),  # fmt: skip
        "tusk": world.item(
            description="Elephant tusk",
            species="Loxodonta africana",
            seal="S-101",
            seized_at="2026-05-20T08:00:00+03:00",
        ),  # fmt: skip
        "horn": world.item(
            description="Rhino horn piece",
            species="Diceros bicornis",
            seized_at="2026-06-01T08:00:00+03:00",
        ),  # fmt: skip
    }
    record_transfers(world.store, item_ids=list(ids.values()), signer=world.officer,
                     receiver=world.custodian, purpose="safe keeping")  # fmt: skip
    for key, where in (("scales", "EV1-S3-B12"), ("tusk", "EV1-S3"), ("horn", "EV1-S4")):
        ev.record_receive(world.store, item_id=ids[key], signer=world.custodian, condition="intact")
        ev.record_store(world.store, item_id=ids[key], signer=world.custodian, location=where)
    return ids


def test_several_items_handed_over_in_one_transaction(world: World, room: dict[str, str]) -> None:
    recorded = record_transfers(world.store, item_ids=[room["scales"], room["tusk"]], signer=world.custodian,
                                receiver=world.analyst, witness=world.prosecutor, purpose="DNA analysis")  # fmt: skip
    assert [e.item_id for e in recorded.events] == [room["scales"], room["tusk"]]
    assert all(e.counterparty == "wkamau" and e.witness == "pnjeri" for e in recorded.events)
    assert all(json.loads(e.data)["seal"] in ("S-100", "S-101") for e in recorded.events)
    assert verify(world.store).intact


def test_one_refused_item_refuses_the_whole_hand_over(
    world: World, room: dict[str, str], db_snapshot
) -> None:
    other = world.item(description="Still with the officer")
    before = db_snapshot(world.db_path)
    with pytest.raises(IllegalTransition, match=other):
        record_transfers(world.store, item_ids=[room["scales"], other], signer=world.custodian,
                         receiver=world.analyst)  # fmt: skip
    with pytest.raises(NotFound):
        record_transfers(world.store, item_ids=[room["scales"], "NOPE/1"], signer=world.custodian,
                         receiver=world.analyst)  # fmt: skip
    with pytest.raises(IllegalTransition, match="themselves"):
        record_transfers(world.store, item_ids=[room["scales"]], signer=world.custodian,
                         receiver=world.custodian)  # fmt: skip
    assert db_snapshot(world.db_path) == before


def test_find_by_each_filter(world: World, room: dict[str, str]) -> None:
    def ids(**filters: str) -> list[str]:
        return [f.item.id for f in find_items(world.store, **filters)]

    assert ids(seal="s-100") == [room["scales"]]
    assert ids(text="TUSK") == [room["tusk"]]
    assert ids(species="loxodonta") == [room["tusk"]]
    assert ids(case_no=CASE) == list(room.values())
    assert ids(location="EV1-S3") == [room["scales"], room["tusk"]]
    assert ids(location="Evidence room 1") == list(room.values())
    assert ids(seized_from="2026-05-01", seized_to="2026-05-31") == [room["tusk"]]
    assert ids(status="in transit") == []
    ev.record_transfer(
        world.store, item_id=room["scales"], signer=world.custodian, receiver=world.analyst
    )
    ev.record_receive(world.store, item_id=room["scales"], signer=world.analyst, condition="sealed")
    ev.record_unseal(
        world.store, item_id=room["scales"], signer=world.analyst, seal="S-100", reason="DNA"
    )
    ev.record_analysis(world.store, item_id=room["scales"], signer=world.analyst,
                       result={"analysis": "species-identification", "level": "species",
                               "taxon": "Phataginus tricuspis"})  # fmt: skip
    assert ids(species="phataginus") == [room["scales"]]
    with pytest.raises(InvalidInput, match="not a date"):
        find_items(world.store, seized_from="March")
    with pytest.raises(InvalidInput, match="not an item status"):
        find_items(world.store, status="lost")
    with pytest.raises(NotFound, match="Case NOPE"):
        find_items(world.store, case_no="NOPE")


def test_locations_form_a_hierarchy(world: World) -> None:
    add_location(world.store, code="HQ", name="HQ", kind="building")
    with pytest.raises(InvalidInput, match="must sit inside"):
        add_location(world.store, code="S1", name="Shelf", kind="shelf")
    add_location(world.store, code="R1", name="Room", kind="room", parent="HQ")
    with pytest.raises(InvalidInput, match="cannot sit inside"):
        add_location(world.store, code="B0", name="Building", kind="building", parent="R1")
    with pytest.raises(AlreadyExists):
        add_location(world.store, code="HQ", name="Again", kind="building")
    with pytest.raises(NotFound):
        add_location(world.store, code="S2", name="Shelf", kind="shelf", parent="NOPE")
    with pytest.raises(InvalidInput, match="not a location kind"):
        add_location(world.store, code="X", name="X", kind="drawer", parent="R1")


def test_audit_records_every_discrepancy(world: World, room: dict[str, str]) -> None:
    listed = audit_location(world.store, location="EV1-S3", found=None)
    assert listed.expected == [room["scales"], room["tusk"]] and listed.events == []
    result = audit_location(world.store, location="EV1-S3", signer=world.custodian,
                            found=["S-101", room["horn"], "KWS-9999/1", "# scanned 09:40", ""])  # fmt: skip
    kinds = {(d["item"], d["kind"]) for d in result.discrepancies}
    assert kinds == {(room["scales"], "missing"), (room["horn"], "misplaced"), ("", "unknown")}
    assert result.found == [room["tusk"], room["horn"]]
    assert "KWS HQ Langata (HQ) > Evidence room 1 (EV1) > Shelf 3 (EV1-S3)" == result.path
    con = sqlite3.connect(world.db_path)
    (data,) = [json.loads(r[0]) for r in con.execute("SELECT data FROM events WHERE type='audit'")]
    con.close()
    assert len(data["discrepancies"]) == 3 and data["location"] == "EV1-S3"
    assert verify(world.store).intact


def test_audit_bad_input_changes_nothing(world: World, room: dict[str, str], db_snapshot) -> None:
    add_location(world.store, code="EMPTY", name="Empty shelf", kind="shelf", parent="EV1")
    before = db_snapshot(world.db_path)
    with pytest.raises(NotFound, match="Location NOPE"):
        audit_location(world.store, location="NOPE", found=[], signer=world.custodian)
    with pytest.raises(PermissionDenied):
        audit_location(world.store, location="EV1-S3", found=[], signer=world.analyst)
    with pytest.raises(InvalidInput, match="no case to record"):
        audit_location(world.store, location="EMPTY", found=["junk"], signer=world.custodian)
    assert db_snapshot(world.db_path) == before


def test_csv_import_semicolons_any_case_headers(world: World, tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        "Description;Species;Weight;UNIT;Seized At;Lat;Lon\n"
        "Sack of scales;Manis sp.;3,2;kg;2026-03-04T10:00+03:00;-1.3;36.9\n"
        '"Tusk; left";Loxodonta africana;11.5;kg;2026-03-04T10:00+03:00;;\n'
    )
    items = import_items(world.store, case_no=CASE, csv_path=path, signer=world.officer)
    assert [i.weight for i in items] == [3.2, 11.5] and items[1].description == "Tusk; left"


def test_csv_import_reports_every_bad_row_and_imports_nothing(
    world: World, tmp_path: Path, db_snapshot
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "description,count,weight,unit,bag,lat,lon,seized_at,parent\n"
        "Good row,1,,,,,,,\n"
        "Bad count,two,,,,,,,\n"
        "No unit,,3.5,,,,,,\n"
        ",1,,,,,,,\n"
        "Bad bag,1,,,7/5,,,,\n"
        "Half coords,1,,,,-1.3,,,\n"
        "Naive time,1,,,,,,2026-03-04T10:00,\n"
        "Orphan,1,,,,,,,KWS-2026-0042/77\n"
        "Too many,1,,,,,,,,,extra\n"
    )
    before = db_snapshot(world.db_path)
    with pytest.raises(InvalidInput) as info:
        import_items(world.store, case_no=CASE, csv_path=path, signer=world.officer)
    message = str(info.value)
    assert "8 bad rows and nothing was imported" in message and "\n" not in message
    for line in range(3, 11):
        assert f"line {line}" in message
    for words in ("'two' is not a whole number", "no unit", "needs a description", "Bag 7 of 5",
                  "both latitude and longitude", "no time zone", "KWS-2026-0042/77", "more fields"):  # fmt: skip
        assert words in message, words
    assert db_snapshot(world.db_path) == before
    assert list_items(world.store, case_no=CASE) == []
