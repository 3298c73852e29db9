"""Custody rules: every illegal transition is refused with a clear error and no change."""

from __future__ import annotations

import pytest

from custody import events as ev
from custody.errors import CustodyError, IllegalTransition, InvalidInput, PermissionDenied
from custody.records import record_sample
from tests.conftest import World


def test_happy_path_derives_state(world: World) -> None:
    item = world.item(seal="S-1001")
    ev.record_transfer(
        world.store, item_id=item, signer=world.officer, receiver=world.custodian, purpose="storage"
    )
    ev.record_receive(world.store, item_id=item, signer=world.custodian, condition="seal intact")
    ev.record_store(world.store, item_id=item, signer=world.custodian, location="Vault B")
    _, events, state = ev.item_history(world.store, item)
    assert [e.type for e in events] == ["seize", "transfer", "receive", "store"]
    assert state.custodian == "jmwangi" and state.seal == "S-1001" and state.location == "Vault B"
    assert state.status == "in custody"


def _at_lab(world: World, seal: str = "S-1") -> str:
    item = world.item(seal=seal)
    ev.record_transfer(world.store, item_id=item, signer=world.officer, receiver=world.analyst)
    ev.record_receive(world.store, item_id=item, signer=world.analyst, condition="seal intact")
    return item


ILLEGAL = {
    "release by non-custodian": (
        lambda w, i: ev.record_transfer(w.store, item_id=i, signer=w.custodian, receiver=w.analyst),
        IllegalTransition,
        "only the current custodian",
    ),
    "sample while sealed": (
        lambda w, i: record_sample(w.store, item_id=i, signer=w.analyst, description="x"),
        IllegalTransition,
        "record an unseal event first",
    ),
    "unseal naming the wrong seal": (
        lambda w, i: ev.record_unseal(
            w.store, item_id=i, signer=w.analyst, seal="S-999", reason="r"
        ),
        IllegalTransition,
        "must name the seal it breaks",
    ),
    "seal an already sealed item": (
        lambda w, i: ev.record_seal(w.store, item_id=i, signer=w.analyst, seal="S-2"),
        IllegalTransition,
        "already sealed",
    ),
    "analyse by an officer": (
        lambda w, i: ev.record_analysis(w.store, item_id=i, signer=w.officer, result={"x": 1}),
        PermissionDenied,
        "needs one of: analyst",
    ),
    "sample by a prosecutor": (
        lambda w, i: record_sample(w.store, item_id=i, signer=w.prosecutor, description="x"),
        PermissionDenied,
        "needs one of",
    ),
    "time going backwards": (
        lambda w, i: ev.record_store(
            w.store, item_id=i, signer=w.analyst, location="L", at="2001-01-01T00:00:00Z"
        ),
        IllegalTransition,
        "cannot go backwards",
    ),
    "implausible year": (
        lambda w, i: ev.record_note(
            w.store, item_id=i, signer=w.analyst, text="x", at="0999-01-01T00:00:00Z"
        ),
        InvalidInput,
        "not a plausible date",
    ),
    "time without zone": (
        lambda w, i: ev.record_store(
            w.store, item_id=i, signer=w.analyst, location="L", at="2026-01-01T10:00"
        ),
        InvalidInput,
        "has no time zone",
    ),
    "receive without a transfer": (
        lambda w, i: ev.record_receive(w.store, item_id=i, signer=w.analyst, condition="ok"),
        IllegalTransition,
        "no transfer awaiting receipt",
    ),
    "transfer to oneself": (
        lambda w, i: ev.record_transfer(w.store, item_id=i, signer=w.analyst, receiver=w.analyst),
        IllegalTransition,
        "to themselves",
    ),
    "unknown disposal method": (
        lambda w, i: ev.record_dispose(
            w.store, item_id=i, signer=w.custodian, method="sold", authority="x"
        ),
        InvalidInput,
        "not a disposal method",
    ),
}


@pytest.mark.parametrize("name", sorted(ILLEGAL))
def test_illegal_transition_refused_and_nothing_changes(
    world: World, db_snapshot, name: str
) -> None:  # type: ignore[no-untyped-def]
    action, error, words = ILLEGAL[name]
    item = _at_lab(world)
    before = db_snapshot(world.db_path)
    with pytest.raises(error) as info:
        action(world, item)
    assert words in str(info.value)
    assert str(info.value).endswith(".")
    assert db_snapshot(world.db_path) == before


def test_nothing_but_note_or_correct_after_disposal(world: World, db_snapshot) -> None:  # type: ignore[no-untyped-def]
    item = world.item()
    ev.record_dispose(
        world.store,
        item_id=item,
        signer=world.officer,
        method="released",
        authority="Court order 12/2026",
    )
    before = db_snapshot(world.db_path)
    for action in (
        lambda: ev.record_store(world.store, item_id=item, signer=world.officer, location="x"),
        lambda: ev.record_seal(world.store, item_id=item, signer=world.officer, seal="S"),
        lambda: ev.record_transfer(
            world.store, item_id=item, signer=world.officer, receiver=world.custodian
        ),
    ):
        with pytest.raises(IllegalTransition, match="custody is closed"):
            action()
    assert db_snapshot(world.db_path) == before
    ev.record_note(world.store, item_id=item, signer=world.prosecutor, text="Exhibit P3 in court")
    _, events, state = ev.item_history(world.store, item)
    assert events[-1].type == "note" and state.status == "disposed"


def test_transfer_in_transit_blocks_custodian_actions(world: World) -> None:
    item = world.item()
    ev.record_transfer(world.store, item_id=item, signer=world.officer, receiver=world.custodian)
    with pytest.raises(IllegalTransition, match="in transit"):
        ev.record_store(world.store, item_id=item, signer=world.custodian, location="x")
    with pytest.raises(IllegalTransition, match="only they may"):
        ev.record_receive(world.store, item_id=item, signer=world.analyst, condition="ok")


def test_unseal_then_sample_creates_child_chain(world: World) -> None:
    item = _at_lab(world, seal="S-7")
    ev.record_unseal(world.store, item_id=item, signer=world.analyst, seal="S-7", reason="sampling")
    child = record_sample(world.store, item_id=item, signer=world.analyst, description="scale 1")
    grandchild = record_sample(
        world.store, item_id=child.id, signer=world.analyst, description="DNA extract"
    )
    assert child.id == f"{item}.1" and grandchild.id == f"{item}.1.1"
    second = record_sample(world.store, item_id=item, signer=world.analyst, description="scale 2")
    assert second.id == f"{item}.2"
    _, events, state = ev.item_history(world.store, child.id)
    assert events[0].type == "sample" and state.custodian == "wkamau"
    _, parent_events, pstate = ev.item_history(world.store, item)
    assert pstate.children == [child.id, second.id]


def test_correction_points_at_event_and_keeps_original(world: World) -> None:
    item = world.item()
    note = ev.record_note(world.store, item_id=item, signer=world.officer, text="12 scales").events[
        0
    ]
    ev.record_correction(
        world.store, event_id=note.id, signer=world.officer, reason="13 scales, one was stuck"
    )
    _, events, state = ev.item_history(world.store, item)
    assert [e.type for e in events][-2:] == ["note", "correct"]
    assert state.corrected == {note.id: [events[-1].id]}
    with pytest.raises(PermissionDenied, match="only they or an admin"):
        ev.record_correction(world.store, event_id=note.id, signer=world.analyst, reason="no")


def test_unknown_item_and_actor(world: World) -> None:
    with pytest.raises(CustodyError, match="Item KWS-2026-0042/99 does not exist"):
        ev.record_note(world.store, item_id="KWS-2026-0042/99", signer=world.officer, text="x")
    with pytest.raises(CustodyError, match="Actor 'ghost' does not exist"):
        ev.load_signer(world.store, "ghost")


def test_writer_incremental_state_matches_a_fresh_replay(world: World) -> None:
    """The writer advances a cached state event by event; a replay of the stored
    chain afterwards must arrive at the same state."""
    from custody.domain import EventType as E
    from custody.events import Cosign, Draft, Writer

    item = world.item(seal="S-1")
    acts = [
        (E.UNSEAL, {"seal": "S-1", "reason": "inventory"}, None),
        (E.SEAL, {"seal": "S-2"}, None),
        (E.STORE, {"location": "Vault C"}, None),
        (E.TRANSFER, {"from": "aotieno", "to": "jmwangi", "purpose": "", "location": ""}, world.custodian),
    ]  # fmt: skip
    with world.store.write() as session:
        writer = Writer(session)
        assert writer.item_state(item).seal == "S-1"  # cached now; the appends below advance it
        for kind, data, receiver in acts:
            draft = Draft.on_item(item, case_no="KWS-2026-0042", type=kind, data=data, at=None)
            writer.append(draft, signer=world.officer, cosign=Cosign(receiver=receiver))
        incremental = writer.item_state(item).to_dict()
        writer.finish()
    _, _events, replayed = ev.item_history(world.store, item)
    assert incremental == replayed.to_dict()
    assert incremental["seal"] == "S-2" and incremental["status"] == "in transit"
    assert incremental["custodian"] == "jmwangi" and incremental["events"] == 5
