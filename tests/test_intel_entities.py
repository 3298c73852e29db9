"""Case entities: non-nominal facts signed, personal data apart behind a salted commitment."""

from __future__ import annotations

import sqlite3

import pytest

from custody.entities import (
    NominalMismatch,
    add_entity,
    case_nominal,
    erase_nominal,
    link_entity,
    list_entities,
    nominal_data,
    update_entity,
)
from custody.errors import InvalidInput, NotFound, PermissionDenied
from custody.verify import verify
from tests.conftest import CASE, World

SUSPECT = {
    "name": "Nguyen Van Thanh",
    "dob": "1979-03-14",
    "passport": "C4471902",
    "phone": "+84 912 555 014",
    "address": "12 Hang Bac, Hanoi",
}


def _suspect(world: World, item: str) -> str:
    return add_entity(
        world.store,
        case_no=CASE,
        kind="person",
        category="suspect",
        signer=world.officer,
        attributes={"nationality": "vn"},
        nominal=SUSPECT,
        links=[(item, "owned-by")],
    ).id


def _event_bodies(world: World) -> str:
    con = sqlite3.connect(world.db_path)
    try:
        return "\n".join(r[0] for r in con.execute("SELECT data FROM events"))
    finally:
        con.close()


def test_person_added_with_nominal_data_kept_out_of_signed_events(world: World) -> None:
    item = world.item()
    pid = _suspect(world, item)
    assert pid == f"{CASE}/P1"
    bodies = _event_bodies(world)
    for value in SUSPECT.values():
        assert value not in bodies
    (entity,) = list_entities(world.store, CASE)
    assert entity.attributes == {"nationality": "VN"}
    assert entity.links == [{"item": item, "relation": "owned-by"}]
    assert entity.commitment and entity.commitment.startswith("sha256:")
    assert nominal_data(world.store, pid) == SUSPECT
    assert verify(world.store).intact


def test_correcting_and_erasing_personal_data_keeps_verification_intact(world: World) -> None:
    pid = _suspect(world, world.item())
    before = list_entities(world.store, CASE)[0].commitment
    update_entity(world.store, entity_id=pid, signer=world.officer, nominal={"phone": "+84 1"})
    after = list_entities(world.store, CASE)[0].commitment
    assert after != before and nominal_data(world.store, pid)["phone"] == "+84 1"
    assert verify(world.store).intact
    erase_nominal(
        world.store, entity_id=pid, signer=world.prosecutor, reason="retention period ended"
    )
    assert nominal_data(world.store, pid) is None
    con = sqlite3.connect(world.db_path)
    assert con.execute("SELECT salt, data FROM nominal_records").fetchall() == [(None, None)]
    con.close()
    assert verify(world.store).intact
    assert verify(world.store, case_no=CASE).intact
    with pytest.raises(InvalidInput, match="holds no personal data"):
        erase_nominal(world.store, entity_id=pid, signer=world.prosecutor, reason="again")


def test_tampered_personal_data_is_reported(world: World) -> None:
    pid = _suspect(world, world.item())
    con = sqlite3.connect(world.db_path)
    con.execute(
        "UPDATE nominal_records SET data = replace(data, 'Nguyen Van Thanh', 'Someone Else')"
    )
    con.commit()
    report = verify(world.store)
    assert [f.kind for f in report.findings] == ["altered"]
    assert pid in report.findings[0].message and "commitment" in report.findings[0].message
    with pytest.raises(NominalMismatch, match="does not match its signed commitment"):
        nominal_data(world.store, pid)
    con.execute("DELETE FROM nominal_records")
    con.commit()
    con.close()
    report = verify(world.store, case_no=CASE)
    assert [f.kind for f in report.findings] == ["missing"]
    assert "without a recorded erasure" in report.findings[0].message


def test_links_updates_and_other_kinds(world: World) -> None:
    item = world.item()
    truck = add_entity(
        world.store,
        case_no=CASE,
        kind="conveyance",
        category="vehicle",
        signer=world.officer,
        attributes={"country": "KE"},
        nominal={"identifier": "KDA 123X"},
    )
    awb = add_entity(
        world.store,
        case_no=CASE,
        kind="shipment",
        category="airway-bill",
        signer=world.officer,
        attributes={"origin": "NG", "destination": "VN"},
        nominal={"number": "706-1123", "consignor": "Lagos Fish Exports Ltd"},
        links=[(item, "found-in")],
    )
    assert (truck.id, awb.id) == (f"{CASE}/V1", f"{CASE}/S1")
    link_entity(
        world.store, entity_id=truck.id, item_id=item, relation="found-in", signer=world.officer
    )
    updated = link_entity(
        world.store,
        entity_id=truck.id,
        item_id=item,
        relation="found-in",
        signer=world.officer,
        remove=True,
    )
    assert updated.links == []
    update_entity(
        world.store, entity_id=awb.id, signer=world.officer, attributes={"destination": "CN"}
    )
    assert {e.id: e.attributes for e in list_entities(world.store, CASE)}[awb.id] == {
        "origin": "NG",
        "destination": "CN",
    }
    assert set(case_nominal(world.store, CASE)) == {truck.id, awb.id}
    assert verify(world.store).intact


@pytest.mark.parametrize(
    "fields, error, words",
    [
        ({"kind": "animal", "category": "other"}, InvalidInput, "not an entity kind"),
        ({"kind": "person", "category": "informant"}, InvalidInput, "not a person category"),
        (
            {"kind": "person", "category": "suspect", "attributes": {"nationality": "Kenyan"}},
            InvalidInput,
            "ISO 3166",
        ),
        (
            {"kind": "person", "category": "suspect", "nominal": {"shoe_size": "42"}},
            InvalidInput,
            "no personal-data field",
        ),
        (
            {"kind": "person", "category": "suspect", "links": [("NOPE/1", "owned-by")]},
            NotFound,
            "NOPE/1",
        ),
        (
            {"kind": "person", "category": "suspect", "links": [("ITEM", "ate")]},
            InvalidInput,
            "not a link relation",
        ),
    ],
)
def test_bad_entities_are_refused_and_nothing_is_written(
    world: World, fields: dict, error: type, words: str, db_snapshot
) -> None:
    item = world.item()
    if "links" in fields:
        fields = {**fields, "links": [(item if i == "ITEM" else i, r) for i, r in fields["links"]]}
    before = db_snapshot(world.db_path)
    with pytest.raises(error, match=words):
        add_entity(world.store, case_no=CASE, signer=world.officer, **fields)
    assert db_snapshot(world.db_path) == before


def test_entity_roles_and_unknown_entities(world: World) -> None:
    with pytest.raises(PermissionDenied):
        add_entity(
            world.store, case_no=CASE, kind="person", category="witness", signer=world.analyst
        )
    with pytest.raises(NotFound, match="does not exist"):
        nominal_data(world.store, f"{CASE}/P9")
    with pytest.raises(NotFound, match="not an entity ID"):
        nominal_data(world.store, "garbage")


def test_a_case_event_on_an_item_chain_is_reported(world: World) -> None:
    from custody.domain import EventType
    from custody.events import Draft, Writer

    item = world.item()
    with world.store.write() as session:
        writer = Writer(session)
        draft = Draft.on_item(item, case_no=CASE, type=EventType.SEIZURE_FACTS,
                              data={"facts": {"reason": "x"}}, at=None)  # fmt: skip
        writer.append(draft, signer=world.officer)
        writer.finish()
    report = verify(world.store)
    assert [f.kind for f in report.findings] == ["inserted"]
    assert "not an item event type" in report.findings[0].message
