"""Seizure facts and CITES trade terms: signed case events, editable, codes checked."""

from __future__ import annotations

import pytest

from custody import codes
from custody.errors import InvalidInput, NotFound, PermissionDenied
from custody.facts import record_seizure_facts, record_trade_terms, seizure_facts, trade_terms
from custody.verify import verify
from tests.conftest import CASE, World


def test_facts_recorded_then_changed_by_a_later_event(world: World) -> None:
    first = record_seizure_facts(
        world.store,
        case_no=CASE,
        signer=world.officer,
        facts={
            "detecting_agency": "Kenya Revenue Authority, Customs",
            "detection_method": "x-ray of air cargo",
            "location_type": "Airport",
            "transport_mode": "air",
            "concealment": "declared as dried fish maw",
            "reason": "no CITES permit",
            "origin": "NG, CM",
            "transit": ["ke"],
            "destination": "VN",
            "value_amount": "125000",
            "value_currency": "usd",
        },
    )
    assert first.chain == f"case:{CASE}" and first.type == "seizure-facts"
    facts = seizure_facts(world.store, CASE)
    assert facts.get("location_type") == "airport"
    assert facts.get("origin") == ["NG", "CM"]
    assert facts.get("transit") == ["KE"]
    assert facts.get("value_currency") == "USD" and facts.get("value_amount") == 125000.0
    second = record_seizure_facts(
        world.store,
        case_no=CASE,
        signer=world.prosecutor,
        facts={"destination": "CN", "law": "WCMA 2013 s.92", "concealment": ""},
    )
    facts = seizure_facts(world.store, CASE)
    assert facts.get("destination") == ["CN"]
    assert facts.get("concealment") is None
    assert facts.set_by["destination"] == second.id and facts.set_by["origin"] == first.id
    assert verify(world.store).intact


@pytest.mark.parametrize(
    "facts, words",
    [
        ({"origin": "XX"}, "ISO 3166"),
        ({"destination": "Vietnam"}, "ISO 3166"),
        ({"location_type": "harbour"}, "location type"),
        ({"value_currency": "dollars"}, "ISO 4217"),
        ({"value_amount": "lots"}, "not a number"),
        ({"value_amount": "-5"}, "positive"),
        ({"value_amount": "1e300"}, "beyond any seizure's value"),
        ({"colour": "red"}, "not a seizure fact"),
        ({}, "No seizure fact"),
    ],
)
def test_bad_facts_are_refused_and_nothing_is_written(
    world: World, facts: dict[str, str], words: str, db_snapshot
) -> None:
    before = db_snapshot(world.db_path)
    with pytest.raises(InvalidInput, match=words):
        record_seizure_facts(world.store, case_no=CASE, signer=world.officer, facts=facts)
    assert db_snapshot(world.db_path) == before


def test_facts_need_a_known_case_and_a_permitted_role(world: World) -> None:
    with pytest.raises(NotFound, match="Case NOPE does not exist"):
        record_seizure_facts(
            world.store, case_no="NOPE", signer=world.officer, facts={"reason": "x"}
        )
    with pytest.raises(PermissionDenied):
        record_seizure_facts(world.store, case_no=CASE, signer=world.analyst, facts={"reason": "x"})


def test_trade_terms_default_from_the_record(world: World) -> None:
    scales = world.item(description="Sack of dried pangolin scales", weight=3200.0, unit="g")
    tusks = world.item(description="Elephant tusks", count=4)
    other = world.item(description="Wrapped parcel")
    terms = trade_terms(world.store, CASE)
    assert (terms[scales].term, terms[scales].unit, terms[scales].quantity) == ("SCA", "KIL", 3.2)
    assert (terms[tusks].term, terms[tusks].unit, terms[tusks].quantity) == ("TUS", "", 4.0)
    assert terms[other].term == "UNS" and terms[other].quantity is None
    assert all(t.derived for t in terms.values())


def test_trade_terms_set_by_events_and_checked(world: World, db_snapshot) -> None:
    tusks = world.item(description="Worked ivory", count=4, weight=11.5, unit="kg")
    record_trade_terms(world.store, item_ids=[tusks], signer=world.officer, term="ivc")
    term = trade_terms(world.store, CASE)[tusks]
    assert (term.term, term.unit, term.quantity, term.derived) == ("IVC", "KIL", 11.5, False)
    record_trade_terms(world.store, item_ids=[tusks], signer=world.custodian, unit="")
    term = trade_terms(world.store, CASE)[tusks]
    assert (term.term, term.unit, term.quantity) == ("IVC", "", 4.0)
    before = db_snapshot(world.db_path)
    with pytest.raises(InvalidInput, match="not a CITES term code"):
        record_trade_terms(world.store, item_ids=[tusks], signer=world.officer, term="TUSKS")
    with pytest.raises(InvalidInput, match="not a CITES unit code"):
        record_trade_terms(world.store, item_ids=[tusks], signer=world.officer, unit="KG")
    with pytest.raises(InvalidInput, match="cannot be given in CITES unit 'LTR'"):
        record_trade_terms(world.store, item_ids=[tusks], signer=world.officer, unit="LTR")
    with pytest.raises(NotFound):
        record_trade_terms(world.store, item_ids=["NOPE/1"], signer=world.officer, term="TUS")
    assert db_snapshot(world.db_path) == before
    assert verify(world.store).intact


def test_code_lists_are_the_bundled_cites_lists() -> None:
    lists = codes.cites_codes()
    assert lists["term"]["SCA"] == "Scales" and lists["unit"]["KIL"] == "Kilograms"
    assert lists["source"]["I"].startswith("Confiscated") and "L" in lists["purpose"]
    assert len(codes.countries()) == 249 and "KE" in codes.countries()
