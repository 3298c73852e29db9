"""Tampering through raw SQL is always detected by verification."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from custody import events as ev
from custody.chain import body_of_row, event_hash, log_hash
from custody.models import Event
from custody.records import record_sample
from custody.verify import verify
from tests.conftest import World


@pytest.fixture
def busy(world: World) -> World:
    """Two items with transfers, a witness, a sample and notes."""
    a = world.item(seal="S-1", weight=3.2, unit="kg", lat=-1.32, lon=36.92, place="JKIA cargo")
    b = world.item(count=4, bag_no=1, bag_total=2, other_ids='{"cites_permit": "KE-123"}')
    ev.record_transfer(
        world.store,
        item_id=a,
        signer=world.officer,
        receiver=world.analyst,
        witness=world.custodian,
    )
    ev.record_receive(world.store, item_id=a, signer=world.analyst, condition="seal intact")
    ev.record_unseal(world.store, item_id=a, signer=world.analyst, seal="S-1", reason="sampling")
    record_sample(world.store, item_id=a, signer=world.analyst, description="scale")
    ev.record_note(world.store, item_id=b, signer=world.officer, text="photographed")
    ev.record_store(world.store, item_id=b, signer=world.officer, location="Vault B")
    assert verify(world.store).intact
    return world


def _sql(path: Path, statement: str, params: tuple[object, ...] = ()) -> None:
    con = sqlite3.connect(path)
    con.execute(statement, params)
    con.commit()
    con.close()


def _kinds(world: World) -> set[str]:
    return {f.kind for f in verify(world.store).findings}


def _other_value(value: object) -> object:
    if value is None:
        return "jmwangi"
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 1000
    if isinstance(value, float):
        return value + 0.5
    text = str(value)
    if text.startswith("{") or text.startswith("["):
        return text.replace("a", "b", 1) if "a" in text else text + " "
    return text[:-1] + ("X" if not text.endswith("X") else "Y") if text else "X"


EVENT_COLUMNS = [
    "id", "chain", "seq", "item_id", "case_no", "type", "at", "recorded_at", "actor", "actor_key",
    "counterparty", "witness", "data", "prev_hash", "hash", "signatures", "log_prev", "log_hash",
]  # fmt: skip


@pytest.mark.parametrize("column", EVENT_COLUMNS)
def test_changing_any_event_column_is_found(busy: World, column: str) -> None:
    con = sqlite3.connect(busy.db_path)
    target = con.execute("SELECT id, " + column + " FROM events WHERE type='transfer'").fetchone()
    con.close()
    _sql(
        busy.db_path,
        f"UPDATE events SET {column} = ? WHERE id = ?",
        (_other_value(target[1]), target[0]),
    )
    report = verify(busy.store)
    assert not report.intact, column
    # The finding says what happened, and names the changed event (its new id when the
    # id itself was changed) or the store log.
    wanted = EXPECTED_KINDS.get(column, {"altered"})
    named = {target[0], _other_value(target[1]) if column == "id" else target[0]}
    assert any(
        f.kind in wanted and (f.event in named or f.subject == "store") for f in report.findings
    ), (column, report.findings)


# What changing each column of a transfer event is reported as ("altered" otherwise).
EXPECTED_KINDS = {
    "signatures": {"bad signature", "unknown key"},
    "actor_key": {"altered", "unknown key"},
    "id": {"missing", "inserted", "altered"},
    "seq": {"altered", "missing", "inserted"},
    "log_prev": {"inserted"},
    "log_hash": {"altered", "inserted"},
}


ITEM_COLUMNS = [
    "description", "species", "count", "weight", "unit", "packaging", "bag_no", "bag_total", "other_ids",
    "place", "lat", "lon", "case_no", "parent_id", "seized_at", "seized_at_local", "seizing_officer",
    "seal_at_seizure", "created_at",
]  # fmt: skip


@pytest.mark.parametrize("column", ITEM_COLUMNS)
def test_changing_any_item_column_is_found(busy: World, column: str) -> None:
    con = sqlite3.connect(busy.db_path)
    value = con.execute(f"SELECT {column} FROM items WHERE id = 'KWS-2026-0042/1'").fetchone()[0]
    con.close()
    _sql(
        busy.db_path,
        f"UPDATE items SET {column} = ? WHERE id = 'KWS-2026-0042/1'",
        (_other_value(value),),
    )
    findings = verify(busy.store).findings
    assert any(f.kind == "altered" and column in f.message for f in findings), findings


def test_changing_item_id_is_found(busy: World) -> None:
    _sql(busy.db_path, "PRAGMA foreign_keys=OFF")
    _sql(busy.db_path, "UPDATE items SET id = 'KWS-2026-0042/9' WHERE id = 'KWS-2026-0042/2'")
    kinds = _kinds(busy)
    assert {"inserted", "missing"} <= kinds


@pytest.mark.parametrize(
    "column", ["title", "agency_code", "jurisdiction", "legal_basis", "opened_at", "opened_by"]
)
def test_changing_any_case_column_is_found(busy: World, column: str) -> None:
    con = sqlite3.connect(busy.db_path)
    value = con.execute(f"SELECT {column} FROM cases").fetchone()[0]
    con.close()
    _sql(busy.db_path, f"UPDATE cases SET {column} = ?", (_other_value(value),))
    findings = verify(busy.store).findings
    assert any(f.kind == "altered" and column in f.message for f in findings), findings


def test_changing_case_number_is_found(busy: World) -> None:
    _sql(busy.db_path, "UPDATE cases SET case_no = 'KWS-2026-0043'")
    assert "inserted" in _kinds(busy)


def test_changing_actor_name_or_key_is_found(busy: World) -> None:
    _sql(busy.db_path, "UPDATE actors SET name = 'Someone Else' WHERE handle = 'jmwangi'")
    findings = verify(busy.store).findings
    assert any(f.subject == "actor:jmwangi" and f.kind == "altered" for f in findings)
    # Events signed by that actor are now signed by an unknown key.
    assert any(f.kind == "unknown key" for f in findings)


def test_deleting_an_event_in_the_middle(busy: World) -> None:
    _sql(busy.db_path, "DELETE FROM events WHERE type = 'receive'")
    findings = verify(busy.store).findings
    assert any(f.kind == "missing" and f.subject == "KWS-2026-0042/1" for f in findings)
    assert any(f.kind == "missing" and f.subject == "store" for f in findings)


def test_deleting_the_last_event_of_an_item(busy: World) -> None:
    con = sqlite3.connect(busy.db_path)
    last = con.execute("SELECT max(id) FROM events WHERE chain = 'KWS-2026-0042/1'").fetchone()[0]
    con.close()
    _sql(busy.db_path, "DELETE FROM events WHERE id = ?", (last,))
    assert "missing" in _kinds(busy)


def test_deleting_the_newest_event_of_the_store(busy: World) -> None:
    _sql(busy.db_path, "DELETE FROM events WHERE id = (SELECT max(id) FROM events)")
    findings = verify(busy.store).findings
    assert any(f.kind == "missing" and "newest events" in f.message for f in findings)


def test_deleting_a_whole_item(busy: World) -> None:
    _sql(busy.db_path, "PRAGMA foreign_keys=OFF")
    _sql(busy.db_path, "DELETE FROM events WHERE item_id = 'KWS-2026-0042/2'")
    _sql(busy.db_path, "DELETE FROM items WHERE id = 'KWS-2026-0042/2'")
    findings = verify(busy.store).findings
    assert any(f.kind == "missing" and f.subject == "store" for f in findings)


def test_reordering_events(busy: World) -> None:
    con = sqlite3.connect(busy.db_path)
    rows = con.execute(
        "SELECT id, seq FROM events WHERE chain = 'KWS-2026-0042/1' ORDER BY seq"
    ).fetchall()
    con.close()
    (id2, s2), (id3, s3) = rows[1], rows[2]
    _sql(busy.db_path, "UPDATE events SET seq = -1 WHERE id = ?", (id2,))
    _sql(busy.db_path, "UPDATE events SET seq = ? WHERE id = ?", (s2, id3))
    _sql(busy.db_path, "UPDATE events SET seq = ? WHERE id = ?", (s3, id2))
    kinds = _kinds(busy)
    assert "reordered" in kinds and "altered" in kinds


def test_inserting_a_forged_event(busy: World) -> None:
    """A forger who recomputes every hash still cannot sign: bad signature / unknown key."""
    con = sqlite3.connect(busy.db_path)
    con.row_factory = sqlite3.Row
    last_item = con.execute(
        "SELECT * FROM events WHERE chain = 'KWS-2026-0042/2' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    last_log = con.execute("SELECT * FROM events ORDER BY id DESC LIMIT 1").fetchone()
    con.close()
    forged = Event(
        id=last_log["id"] + 1, chain=last_item["chain"], seq=last_item["seq"] + 1, item_id=last_item["item_id"],
        case_no=last_item["case_no"], type="dispose", at=last_item["at"], recorded_at=last_item["recorded_at"],
        actor="aotieno", actor_key=last_item["actor_key"], counterparty=None, witness=None,
        data=json.dumps({"authority": "none", "method": "destroyed"}, separators=(",", ":"), sort_keys=True),
        prev_hash=last_item["hash"], hash="", signatures=last_item["signatures"], log_prev=last_log["log_hash"], log_hash="",
    )  # fmt: skip
    forged.hash = event_hash(body_of_row(forged))
    forged.log_hash = log_hash(seq=forged.id, event_hash_=forged.hash, prev=forged.log_prev)
    cols = list(forged.model_dump())
    _sql(
        busy.db_path,
        f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
        tuple(forged.model_dump().values()),
    )
    findings = verify(busy.store).findings
    assert any(f.kind == "bad signature" and f.event == forged.id for f in findings)
    assert any(f.kind == "inserted" and "signed head" in f.message for f in findings)


def test_altered_or_missing_attachment_is_found(world: World, tmp_path: Path) -> None:
    photo = tmp_path / "scales.jpg"
    photo.write_bytes(b"\xff\xd8 fake jpeg bytes")
    from custody.models import ItemCreate
    from custody.records import add_item

    item = add_item(
        world.store,
        case_no="KWS-2026-0042",
        spec=ItemCreate(description="bag"),
        signer=world.officer,
        photos=[photo],
    )
    _, events, _ = ev.item_history(world.store, item.id)
    manifest = events[0].data["attachments"]
    assert manifest[0]["name"] == "scales.jpg" and manifest[0]["size"] == photo.stat().st_size
    from custody.attachments import blob_path, file_sha256

    stored = blob_path(world.store.attachments_dir, manifest[0]["sha256"])
    assert file_sha256(stored) == manifest[0]["sha256"]
    assert verify(world.store).intact
    stored.chmod(0o644)
    stored.write_bytes(b"\xff\xd8 other bytes")
    findings = verify(world.store).findings
    assert any(f.kind == "altered" and "scales.jpg" in f.message for f in findings)
    stored.unlink()
    assert any(
        f.kind == "missing" and "scales.jpg" in f.message for f in verify(world.store).findings
    )


def test_verify_scopes(busy: World) -> None:
    item_report = verify(busy.store, item_id="KWS-2026-0042/2")
    assert item_report.intact and item_report.chains_checked == 1
    case_report = verify(busy.store, case_no="KWS-2026-0042")
    assert case_report.intact and "case:KWS-2026-0042" in case_report.heads
    _sql(
        busy.db_path,
        "UPDATE events SET at = '2026-01-01T00:00:00.000000Z' WHERE chain = 'KWS-2026-0042/2' AND seq = 2",
    )
    assert not verify(busy.store, item_id="KWS-2026-0042/2").intact
    assert verify(busy.store, item_id="KWS-2026-0042/1").intact


def test_parallel_verification_finds_the_same(world: World) -> None:
    """Large stores are checked on every core; the findings must not depend on it."""
    from custody.domain import EventType
    from custody.events import Draft, Writer
    from custody.verify import PARALLEL_THRESHOLD

    item = world.item()
    with world.store.write() as session:
        writer = Writer(session)
        for n in range(PARALLEL_THRESHOLD + 50):
            note = Draft.on_item(
                item,
                case_no="KWS-2026-0042",
                type=EventType.NOTE,
                data={"text": f"check {n}"},
                at=None,
            )
            writer.append(note, signer=world.officer)
        writer.finish()
    _sql(
        world.db_path,
        "UPDATE events SET data = replace(data, 'check 77\"', 'check 78\"') WHERE data LIKE '%check 77\"%'",
    )
    _sql(
        world.db_path,
        "UPDATE events SET signatures = (SELECT signatures FROM events WHERE id = 3999) WHERE id = 4000",
    )
    serial = verify(world.store, workers=1).findings
    parallel = verify(world.store, workers=2).findings
    assert serial == parallel
    assert {(f.kind, f.event) for f in parallel} >= {("bad signature", 4000)}
    assert any(f.kind == "altered" for f in parallel)


def test_well_signed_event_that_breaks_the_rules_is_found(busy: World) -> None:
    """A forger with a registered key and write access, bypassing the rules, is still caught."""
    from custody.domain import EventType
    from custody.events import Draft, Writer, load_signer
    from custody.records import add_actor

    add_actor(busy.store, handle="mallory", name="Mallory", role="officer", agency_code="KWS")
    mallory = load_signer(busy.store, "mallory")
    with busy.store.write() as session:
        writer = Writer(session)  # appends without the rule checks the commands make
        draft = Draft.on_item(
            "KWS-2026-0042/2", case_no="KWS-2026-0042", type=EventType.DISPOSE,
            data={"method": "destroyed", "authority": "none"}, at=None,
        )  # fmt: skip
        writer.append(draft, signer=mallory)
        writer.finish()
    findings = verify(busy.store).findings
    assert any(
        f.kind == "inserted"
        and f.subject == "KWS-2026-0042/2"
        and "breaks the custody rules" in f.message
        and "mallory" in f.message
        for f in findings
    ), findings


def test_deleted_case_row_and_item_row_in_item_scope(busy: World) -> None:
    _sql(busy.db_path, "PRAGMA foreign_keys=OFF")
    con = sqlite3.connect(busy.db_path)
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("DELETE FROM items WHERE id = 'KWS-2026-0042/2'")
    con.execute("DELETE FROM cases")
    con.commit()
    con.close()
    store_findings = verify(busy.store).findings
    assert any(f.kind == "missing" and "case row was deleted" in f.message for f in store_findings)
    scoped = verify(busy.store, item_id="KWS-2026-0042/2").findings
    assert any(f.kind == "missing" and "item row was deleted" in f.message for f in scoped)


def _forge_sub_item(world: World, *, parent: str, signer: object, announce: bool) -> str:
    """A well-signed sub-item written straight through the writer, bypassing the rules."""
    from custody.domain import EventType
    from custody.events import Draft, Writer
    from custody.models import Item
    from custody.records import item_record, next_item_id

    with world.store.write() as session:
        writer = Writer(session)
        parent_row = session.get(Item, parent)
        assert parent_row is not None
        child_id = next_item_id(session, parent_row.case_no, parent)
        child = Item(
            id=child_id, case_no=parent_row.case_no, parent_id=parent, description="forged tusk",
            other_ids="{}", seized_at=parent_row.seized_at, seized_at_local=parent_row.seized_at_local,
            seizing_officer=signer.actor.handle, seal_at_seizure="", created_at=parent_row.created_at,
        )  # type: ignore[attr-defined]  # fmt: skip
        session.add(child)
        session.flush()
        if announce:
            note = {"text": f"sub-item {child_id} logged", "sub_item": child_id}
            writer.append(
                Draft.on_item(
                    parent, case_no=child.case_no, type=EventType.NOTE, data=note, at=None
                ),
                signer=signer,  # type: ignore[arg-type]
            )
        seize = {"item": item_record(child), "attachments": []}
        writer.append(
            Draft.on_item(
                child_id, case_no=child.case_no, type=EventType.SEIZE, data=seize, at=None
            ),
            signer=signer,  # type: ignore[arg-type]
        )
        writer.finish()
    return child_id


def test_sub_item_from_a_sealed_parent_is_found(world: World) -> None:
    """The parent's custodian, but the parent is sealed: no command gives out a sub-item."""
    box = world.item(seal="S-77")
    child = _forge_sub_item(world, parent=box, signer=world.officer, announce=True)
    findings = verify(world.store).findings
    assert any(
        f.kind == "inserted" and f.subject == box and "sealed with seal S-77" in f.message
        for f in findings
    ), findings
    assert not any(f.subject == child for f in findings), findings


def test_sub_item_by_someone_not_holding_the_parent_is_found(world: World) -> None:
    from custody.events import load_signer
    from custody.records import add_actor

    box = world.item()
    add_actor(world.store, handle="mallory", name="Mallory", role="officer", agency_code="KWS")
    mallory = load_signer(world.store, "mallory")
    _forge_sub_item(world, parent=box, signer=mallory, announce=True)
    findings = verify(world.store).findings
    assert any(
        f.kind == "inserted"
        and f.subject == box
        and "held by 'aotieno', not 'mallory'" in f.message
        for f in findings
    ), findings


def test_sub_item_its_parent_never_gave_out_is_found(world: World) -> None:
    box = world.item()
    child = _forge_sub_item(world, parent=box, signer=world.officer, announce=False)
    findings = verify(world.store).findings
    assert [(f.kind, f.subject) for f in findings] == [("inserted", child)], findings
    assert "has no event by 'aotieno' giving it out" in findings[0].message
