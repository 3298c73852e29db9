"""Hand-overs between machines: the receiver and witness countersign with their own keys."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from custody import events as ev
from custody.chain import handover_message
from custody.cli.main import app
from custody.errors import AlreadyExists, IllegalTransition, InvalidInput, KeyProblem
from custody.handover import (
    actor_card,
    complete_transfer,
    countersign,
    import_actor_card,
    prepare_transfer,
    read_card,
    read_offer,
)
from custody.keys import load_key
from custody.records import add_actor, init_store
from custody.store import Store
from custody.verify import verify
from tests.conftest import World

Snapshot = Callable[[Path], list[tuple[str, list[tuple[object, ...]]]]]


@dataclass
class Lab:
    """Another agency's machine: its own store and home, holding the lab staff's keys."""

    store: Store
    home: Path


@pytest.fixture
def lab(world: World, tmp_path: Path) -> Lab:
    home = tmp_path / "lab-home"
    store = init_store(
        str(tmp_path / "lab.db"),
        agency_code="NMK",
        agency_name="National Museums of Kenya",
        country="KE",
        home=home,
    )
    for handle, name in (("bochieng", "Brian Ochieng"), ("wnduta", "Wairimu Nduta")):
        add_actor(store, handle=handle, name=name, role="custodian", agency_code="NMK")
        card = read_card(json.dumps(actor_card(store, handle)), name=f"{handle}.json")
        import_actor_card(world.store, card)
    return Lab(store, home)


def _fingerprint(lab: Lab, handle: str) -> str:
    with lab.store.read() as session:
        return ev.get_actor(session, handle).key_fingerprint


def _offer(world: World, item: str, **kw: Any) -> dict[str, Any]:
    offer = prepare_transfer(
        world.store,
        item_id=item,
        signer=world.officer,
        receiver="bochieng",
        purpose="DNA analysis",
        location="JKIA cargo shed 3",
        **kw,
    )
    return read_offer(json.dumps(offer), name="offer.json")


def _signed(offer: dict[str, Any], lab: Lab, *handles: str) -> dict[str, Any]:
    for handle in handles:
        offer, _role = countersign(offer, handle=handle, home=lab.home)
    return offer


def test_receiver_and_witness_countersign_on_their_own_machines(
    world: World, lab: Lab, tmp_path: Path
) -> None:
    from custody.dossier.build import build_dossier, verify_dossier

    item = world.item(seal="S-1")
    offer = _offer(world, item, witness="wnduta")
    offer, role = countersign(offer, handle="bochieng", home=lab.home)
    assert role == "receiver"
    offer, role = countersign(offer, handle="wnduta", home=lab.home)
    assert role == "witness"
    row = complete_transfer(world.store, offer=offer, signer=world.officer).events[0]
    assert (row.counterparty, row.witness) == ("bochieng", "wnduta")
    assert json.loads(row.data)["seal"] == "S-1"
    sigs = {s["role"]: s for s in json.loads(row.signatures)}
    assert set(sigs) == {"actor", "receiver", "witness"}
    assert "over" not in sigs["actor"] and sigs["receiver"]["over"] == "handover"
    assert verify(world.store).intact
    state = ev.item_history(world.store, item)[2]
    assert state.custodian == "bochieng" and state.pending_receiver == "bochieng"
    # A dossier built from the store checks the countersignatures offline too.
    out = tmp_path / "dossier.pdf"
    build_dossier(world.store, case_no="KWS-2026-0042", out=out, signer=world.prosecutor)
    assert verify_dossier(out).valid


def test_events_on_other_items_do_not_spoil_an_offer_but_the_items_own_do(
    world: World, lab: Lab, db_snapshot: Snapshot
) -> None:
    item, other = world.item(seal="S-1"), world.item()
    offer = _signed(_offer(world, item), lab, "bochieng")
    ev.record_note(world.store, item_id=other, signer=world.officer, text="photographed")
    complete_transfer(world.store, offer=offer, signer=world.officer)
    with pytest.raises(AlreadyExists, match="recorded already"):
        complete_transfer(world.store, offer=offer, signer=world.officer)

    item2 = world.item(seal="S-2")
    offer2 = _signed(_offer(world, item2), lab, "bochieng")
    ev.record_note(world.store, item_id=item2, signer=world.officer, text="weighed again")
    before = db_snapshot(world.db_path)
    with pytest.raises(IllegalTransition, match="new custody events since the transfer offer"):
        complete_transfer(world.store, offer=offer2, signer=world.officer)
    assert db_snapshot(world.db_path) == before
    assert verify(world.store).intact


def test_an_edited_or_unsigned_offer_is_refused(
    world: World, lab: Lab, db_snapshot: Snapshot
) -> None:
    item = world.item(seal="S-1")
    offer = _offer(world, item, witness="wnduta")
    before = db_snapshot(world.db_path)
    with pytest.raises(IllegalTransition, match="countersignature of its receiver 'bochieng'"):
        complete_transfer(world.store, offer=offer, signer=world.officer)
    signed = _signed(offer, lab, "bochieng")
    with pytest.raises(IllegalTransition, match="countersignature of its witness 'wnduta'"):
        complete_transfer(world.store, offer=signed, signer=world.officer)
    # The purpose changed after the receiver signed: the releaser's signature no
    # longer matches, and a forged re-signature would fail the receiver's.
    edited = json.loads(json.dumps(signed))
    edited["statement"]["data"]["purpose"] = "return to owner"
    with pytest.raises(InvalidInput, match="was edited"):
        countersign(edited, handle="wnduta", home=lab.home)
    with pytest.raises(InvalidInput, match="was edited"):
        complete_transfer(world.store, offer=edited, signer=world.officer)
    # The description shown to countersigners must be the record's.
    described = {**signed, "description": "Carved ivory"}
    with pytest.raises(InvalidInput, match="describes"):
        complete_transfer(world.store, offer=described, signer=world.officer)
    # Only the releaser records the offer.
    with pytest.raises(InvalidInput, match="only they can record it"):
        complete_transfer(world.store, offer=signed, signer=world.custodian)
    assert db_snapshot(world.db_path) == before


def test_only_the_named_people_countersign_with_their_registered_keys(
    world: World, lab: Lab, tmp_path: Path, db_snapshot: Snapshot
) -> None:
    item = world.item(seal="S-1")
    offer = _offer(world, item)
    with pytest.raises(InvalidInput, match="neither the receiver"):
        countersign(offer, handle="wnduta", home=lab.home)
    with pytest.raises(KeyProblem, match="not on this machine"):
        countersign(offer, handle="bochieng", home=tmp_path / "elsewhere")
    signed = _signed(offer, lab, "bochieng")
    with pytest.raises(AlreadyExists, match="countersigned by its receiver already"):
        countersign(signed, handle="bochieng", home=lab.home)
    # A statement signed with another key than the receiver's registered one is refused.
    other = load_key(lab.home, handle="wnduta", fpr=_fingerprint(lab, "wnduta"))
    forged = json.loads(json.dumps(offer))
    forged["signatures"].append(
        {
            "role": "receiver",
            "handle": "bochieng",
            "key": other.fingerprint,
            "sig": other.sign(handover_message(offer["statement"])),
            "over": "handover",
        }
    )
    before = db_snapshot(world.db_path)
    with pytest.raises(IllegalTransition, match="countersignature of its receiver"):
        complete_transfer(world.store, offer=forged, signer=world.officer)
    assert db_snapshot(world.db_path) == before


def test_verify_checks_countersignatures_in_the_store(world: World, lab: Lab) -> None:
    item = world.item(seal="S-1")
    offer = _signed(_offer(world, item), lab, "bochieng")
    row = complete_transfer(world.store, offer=offer, signer=world.officer).events[0]
    sigs = json.loads(row.signatures)
    receiver = next(s for s in sigs if s["role"] == "receiver")

    def rewrite(new_sigs: list[dict[str, str]]) -> list[str]:
        world.store.engine.dispose()
        with sqlite3.connect(world.db_path) as conn:
            conn.execute(
                "UPDATE events SET signatures = ? WHERE id = ?",
                (json.dumps(new_sigs, sort_keys=True, separators=(",", ":")), row.id),
            )
        return [f.message for f in verify(world.store).findings]

    # Read as a signature over the event instead of the statement: it does not verify.
    plain = {k: v for k, v in receiver.items() if k != "over"}
    found = rewrite([s if s["role"] != "receiver" else plain for s in sigs])
    assert any("receiver signature by 'bochieng' does not verify" in m for m in found)
    # The releaser's signature of the offer cannot stand in for their signature of the event.
    actor = next(s for s in offer["signatures"] if s["role"] == "actor")
    found = rewrite([actor, receiver])
    assert any("actor signature by 'aotieno' does not verify" in m for m in found)
    found = rewrite(sigs)
    assert found == []
    # A changed purpose breaks the event hash, whoever signed it.
    with sqlite3.connect(world.db_path) as conn:
        data = json.loads(row.data)
        data["purpose"] = "return to owner"
        conn.execute(
            "UPDATE events SET data = ? WHERE id = ?",
            (json.dumps(data, sort_keys=True, separators=(",", ":")), row.id),
        )
    assert any(f.kind == "altered" for f in verify(world.store).findings)


def test_actor_cards_register_remote_actors_and_refuse_edits(world: World, lab: Lab) -> None:
    card = actor_card(lab.store, "bochieng")
    with pytest.raises(AlreadyExists, match="registered already with this key"):
        import_actor_card(world.store, card)
    edited = json.loads(json.dumps(card))
    edited["actor"]["role"] = "admin"
    with pytest.raises(InvalidInput, match="does not match its signed registration"):
        import_actor_card(world.store, edited)
    add_actor(lab.store, handle="jmwangi", name="Another Mwangi", role="custodian")
    with pytest.raises(AlreadyExists, match="exists already with another key"):
        import_actor_card(world.store, actor_card(lab.store, "jmwangi"))
    # The imported actor's agency came with the card; their key stays on their machine.
    with world.store.read() as session:
        from custody.models import Agency

        assert session.get(Agency, "NMK") is not None
    with pytest.raises(KeyProblem, match="not on this machine"):
        ev.load_signer(world.store, "bochieng")
    assert verify(world.store).intact
    with pytest.raises(InvalidInput, match="is not an actor card"):
        read_card('{"format": "custody-actor-card-v1"}', name="junk.json")


def test_cli_hand_over_between_two_machines(world: World, lab: Lab, tmp_path: Path) -> None:
    runner = CliRunner()
    item = world.item(seal="S-1")
    here = {"CUSTODY_HOME": str(world.home), "CUSTODY_DB": str(world.db_path)}
    there = {"CUSTODY_HOME": str(lab.home), "CUSTODY_DB": str(tmp_path / "lab.db")}
    offer = tmp_path / "offer.json"

    def run(env: dict[str, str], *args: str) -> Any:
        return runner.invoke(app, list(args), env=env)

    r = run(here, "transfer", item, "--to", "bochieng", "--offer", str(offer), "--as", "aotieno")
    assert r.exit_code == 0, r.output
    assert "nothing is recorded yet" in r.output
    assert ev.item_history(world.store, item)[2].custodian == "aotieno"
    r = run(here, "complete-transfer", str(offer), "--as", "aotieno")
    assert r.exit_code == 1 and "lacks a valid countersignature" in r.output
    r = run(there, "countersign", str(offer), "--as", "bochieng")
    assert r.exit_code == 0, r.output
    assert "Countersigned as receiver" in r.output and "seal S-1" in r.output
    r = run(here, "complete-transfer", str(offer), "--as", "aotieno")
    assert r.exit_code == 0, r.output
    assert ev.item_history(world.store, item)[2].custodian == "bochieng"
    assert run(here, "verify").exit_code == 0
    # Files that are not offers or cards, or cannot be read, are one-line errors.
    junk = tmp_path / "junk.json"
    junk.write_text("not json", encoding="utf-8")
    for args in (
        ("countersign", str(junk), "--as", "bochieng"),
        ("complete-transfer", str(tmp_path / "missing.json"), "--as", "aotieno"),
        ("actor", "import", str(junk)),
    ):
        r = run(here, *args)
        assert r.exit_code == 1, args
        assert "is not a" in r.output or "does not exist" in r.output
    card = tmp_path / "card.json"
    r = run(there, "actor", "card", "nobody", "-o", str(card))
    assert r.exit_code == 1 and "does not exist" in r.output and not card.exists()
    r = run(there, "actor", "card", "wnduta", "-o", str(card))
    assert r.exit_code == 0, r.output
    assert run(here, "actor", "import", str(card)).exit_code == 1  # registered already
