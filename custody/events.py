"""Custody events: the state machine, and appending signed, hash-chained events.

Invariants:
- Events are only ever appended, by `Writer.append`, inside one write
  transaction; there is no update or delete path. A correction is a new
  `correct` event pointing at the event it corrects.
- Every rule is checked before anything is written; a refused event raises a
  `CustodyError` and the transaction rolls back, leaving the store unchanged.
- Private keys are loaded before the transaction opens (they may need a
  passphrase), and every event is signed by its actor and, for transfers, by the
  receiver and the witness too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from custody import attachments as cas
from custody.canonical import canonical_json
from custody.chain import body_of_row, event_hash, event_message, head_message, log_hash
from custody.errors import (
    IllegalTransition,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from custody.keys import KeyPair, load_key
from custody.models import Actor, Event, Item, StoreHead, StoreMeta
from custody.state import ItemState, apply_event, replay
from custody.store import Store
from custody.timeutil import now_utc, parse_time, to_utc_text

ALL_ROLES = frozenset({"officer", "custodian", "analyst", "prosecutor", "admin"})
HANDLERS = frozenset({"officer", "custodian", "analyst", "admin"})

EVENT_TYPES: dict[str, str] = {
    "case-open": "a case was opened",
    "seize": "an item was seized and logged",
    "seal": "a tamper-evident seal was applied",
    "unseal": "a seal was broken",
    "transfer": "custody passed from one actor to another",
    "receive": "the receiver confirmed receipt and recorded the condition",
    "store": "the item was put in a storage location",
    "sample": "a sub-sample was taken (creates a child item)",
    "analyse": "a laboratory analysis result was recorded",
    "label-print": "evidence labels were printed",
    "dispose": "the item was destroyed, returned or released to court",
    "note": "a free-text note",
    "correct": "a correction pointing at an earlier event",
    "dossier-issue": "an evidence dossier was issued for the case",
    # Case-level intelligence and evidence-room events (see custody.domain.INTEL_TYPES).
    "seizure-facts": "seizure facts of the case were recorded or changed",
    "trade-terms": "CITES trade terms and units were set for items",
    "entity-add": "a person, organisation, conveyance or shipment was added",
    "entity-update": "a case entity or its personal data was changed",
    "entity-link": "a case entity was linked to an item",
    "nominal-erase": "a case entity's personal data was erased",
    "share-export": "seizure records were exported to another agency",
    "smart-import": "a SMART patrol was imported",
    "audit": "a storage location was audited",
}

PERMISSIONS: dict[str, frozenset[str]] = {
    "case-open": frozenset({"officer", "custodian", "admin", "prosecutor"}),
    "seize": frozenset({"officer", "admin"}),
    "seal": HANDLERS,
    "unseal": HANDLERS,
    "transfer": HANDLERS,
    "receive": ALL_ROLES,
    "store": HANDLERS,
    "sample": frozenset({"analyst", "custodian"}),
    "analyse": frozenset({"analyst"}),
    "label-print": HANDLERS,
    "dispose": HANDLERS,  # analysts destroy samples consumed in analysis
    "note": ALL_ROLES,
    "correct": ALL_ROLES,
    "dossier-issue": frozenset({"prosecutor", "analyst", "admin"}),
    "seizure-facts": frozenset({"officer", "custodian", "prosecutor", "admin"}),
    "trade-terms": frozenset({"officer", "custodian", "analyst", "admin"}),
    "entity-add": frozenset({"officer", "prosecutor", "admin"}),
    "entity-update": frozenset({"officer", "prosecutor", "admin"}),
    "entity-link": frozenset({"officer", "prosecutor", "admin"}),
    "nominal-erase": frozenset({"prosecutor", "admin"}),
    "share-export": ALL_ROLES,
    "smart-import": frozenset({"officer", "admin"}),
    "audit": frozenset({"officer", "custodian", "admin"}),
}

# Events the current custodian alone may record.
CUSTODIAN_ONLY = frozenset({"seal", "unseal", "transfer", "store", "sample", "dispose"})
# Events still allowed after disposal.
AFTER_DISPOSAL = frozenset({"note", "correct"})
# How far in the future an event time may lie (clock skew between field devices).
FUTURE_TOLERANCE = timedelta(minutes=10)
DISPOSAL_METHODS = ("destroyed", "returned", "released")


@dataclass(frozen=True)
class Signer:
    actor: Actor
    key: KeyPair


def store_id(session: Session) -> str:
    row = session.get(StoreMeta, "store_id")
    if row is None:
        raise NotFound("The store has no identity record; it was not created by 'custody init'.")
    return row.value


def get_actor(session: Session, handle: str) -> Actor:
    actor = session.get(Actor, handle)
    if actor is None:
        raise NotFound(f"Actor '{handle}' does not exist; list actors with 'custody actor list'.")
    return actor


def load_signer(store: Store, handle: str | None, *, passphrase: str | None = None) -> Signer:
    """The actor row and unlocked private key of `handle` (the acting actor)."""
    if not handle:
        raise InvalidInput(
            "This command writes to the store and needs an acting actor; "
            "pass --as HANDLE or set CUSTODY_ACTOR."
        )
    with store.read() as session:
        actor = get_actor(session, handle)
        session.expunge(actor)
    key = load_key(
        store.home, handle=actor.handle, fpr=actor.key_fingerprint, passphrase=passphrase
    )
    return Signer(actor=actor, key=key)


def event_time(at: str | None) -> str | None:
    """The stored UTC form of a user-given event time; None means "now".

    "Now" is taken inside the write transaction (see `Writer.append`), after the
    store's write lock is held, so concurrent writers never record times that go
    backwards within a chain.
    """
    if not at:
        return None
    when = parse_time(at, what="event time")
    if when - now_utc() > FUTURE_TOLERANCE:
        raise InvalidInput(
            f"The event time {at} lies in the future; check the device clock or the --at value."
        )
    return to_utc_text(when)


class Writer:
    """Appends events inside one write transaction and re-signs the log head."""

    def __init__(self, session: Session):
        self.session = session
        self.store_id = store_id(session)
        last = session.exec(select(Event).order_by(col(Event.id).desc()).limit(1)).first()
        self.next_id = (last.id + 1) if last else 1
        self.log_prev: str | None = last.log_hash if last else None
        self._tails: dict[str, tuple[int, str | None, str | None]] = {}
        self._states: dict[str, ItemState] = {}
        self._last_signer: Signer | None = None

    def tail(self, chain: str) -> tuple[int, str | None, str | None]:
        """(last seq, last hash, last time) of a chain."""
        if chain not in self._tails:
            last = self.session.exec(
                select(Event).where(Event.chain == chain).order_by(col(Event.seq).desc()).limit(1)
            ).first()
            self._tails[chain] = (last.seq, last.hash, last.at) if last else (0, None, None)
        return self._tails[chain]

    def check_time(self, chain: str, at: str) -> None:
        """Refuse an event time earlier than the chain's last event."""
        prev_at = self.tail(chain)[2]
        if prev_at is not None and at < prev_at:
            raise IllegalTransition(
                f"The event time {at} is earlier than the last event of {chain} ({prev_at}); "
                f"custody times cannot go backwards — give a later --at."
            )

    def item_state(self, item_id: str) -> ItemState:
        if item_id not in self._states:
            rows = self.session.exec(
                select(Event).where(Event.chain == item_id).order_by(col(Event.seq))
            ).all()
            self._states[item_id] = replay(item_id, rows)
        return self._states[item_id]

    def append(
        self,
        *,
        chain: str,
        item_id: str | None,
        case_no: str,
        type: str,
        at: str | None,
        signer: Signer,
        data: dict[str, Any],
        counterparty: Signer | None = None,
        witness: Signer | None = None,
        countersigned: tuple[str | None, str | None] | None = None,
        countersignatures: Sequence[dict[str, str]] = (),
    ) -> Event:
        """Append one event signed by `signer` (and `counterparty`/`witness` when their
        keys are here). A transfer countersigned on other machines passes the
        receiver's and witness's handles as `countersigned` and their statement
        signatures as `countersignatures`."""
        seq, prev_hash, _prev_at = self.tail(chain)
        if at is None:
            at = to_utc_text(now_utc())
        self.check_time(chain, at)
        row = Event(
            id=self.next_id,
            chain=chain,
            seq=seq + 1,
            item_id=item_id,
            case_no=case_no,
            type=type,
            at=at,
            recorded_at=to_utc_text(now_utc()),
            actor=signer.actor.handle,
            actor_key=signer.key.fingerprint,
            counterparty=(
                countersigned[0]
                if countersigned
                else counterparty.actor.handle
                if counterparty
                else None
            ),
            witness=countersigned[1]
            if countersigned
            else witness.actor.handle
            if witness
            else None,
            data=canonical_json(data).decode("utf-8"),
            prev_hash=prev_hash,
            hash="",
            signatures="[]",
            log_prev=self.log_prev,
            log_hash="",
        )
        row.hash = event_hash(body_of_row(row))
        message = event_message(row.hash)
        sigs = [_signature("actor", signer, message)]
        if counterparty:
            sigs.append(_signature("receiver", counterparty, message))
        if witness:
            sigs.append(_signature("witness", witness, message))
        sigs.extend(countersignatures)
        row.signatures = canonical_json(sigs).decode("utf-8")
        row.log_hash = log_hash(seq=row.id, event_hash_=row.hash, prev=self.log_prev)
        self.session.add(row)
        self.session.flush()
        self.next_id += 1
        self.log_prev = row.log_hash
        self._tails[chain] = (row.seq, row.hash, row.at)
        if item_id is not None and chain == item_id and item_id in self._states:
            apply_event(self._states[item_id], row)
        self._last_signer = signer
        return row

    def finish(self) -> None:
        """Sign the new head of the store-wide log (detects removal of newest events)."""
        if self._last_signer is None:
            return
        last_id = self.next_id - 1
        assert self.log_prev is not None
        signer = self._last_signer
        sig = signer.key.sign(
            head_message(store_id=self.store_id, seq=last_id, hash_=self.log_prev)
        )
        head = self.session.get(StoreHead, 1)
        values: dict[str, Any] = {
            "log_seq": last_id,
            "log_hash": self.log_prev,
            "actor": signer.actor.handle,
            "actor_key": signer.key.fingerprint,
            "signature": sig,
            "updated_at": to_utc_text(now_utc()),
        }
        if head is None:
            self.session.add(StoreHead(id=1, **values))
        else:
            for key, value in values.items():
                setattr(head, key, value)
            self.session.add(head)
        self.session.flush()


def _signature(role: str, signer: Signer, message: bytes) -> dict[str, str]:
    return {
        "role": role,
        "handle": signer.actor.handle,
        "key": signer.key.fingerprint,
        "sig": signer.key.sign(message),
    }


def get_item(session: Session, item_id: str) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"Item {item_id} does not exist; list items with 'custody item list'.")
    return item


def check_permission(actor: Actor, kind: str) -> None:
    allowed = PERMISSIONS[kind]
    if actor.role not in allowed:
        roles = ", ".join(sorted(allowed))
        raise PermissionDenied(
            f"Actor '{actor.handle}' has the role {actor.role}; recording '{kind}' needs one of: {roles}."
        )


def check_transition(state: ItemState, kind: str, actor: Actor, data: dict[str, Any]) -> None:
    """Refuse an event the item's current state does not allow (raises, never returns False)."""
    item = state.item_id
    check_permission(actor, kind)
    if state.disposed and kind not in AFTER_DISPOSAL:
        how = (state.disposal or {}).get("method", "disposed of")
        raise IllegalTransition(
            f"Item {item} was {how} and its custody is closed; only 'note' and 'correct' "
            f"can still be recorded."
        )
    if state.pending_receiver and kind in CUSTODIAN_ONLY:
        raise IllegalTransition(
            f"Item {item} is in transit to '{state.pending_receiver}'; "
            f"they must record 'custody receive' first."
        )
    if kind in CUSTODIAN_ONLY and state.custodian != actor.handle:
        raise IllegalTransition(
            f"Item {item} is held by '{state.custodian}', not '{actor.handle}'; only the "
            f"current custodian may record '{kind}' (transfer it to them first)."
        )
    if kind == "receive":
        if state.pending_receiver is None:
            raise IllegalTransition(
                f"Item {item} has no transfer awaiting receipt; record 'custody transfer' first."
            )
        if state.pending_receiver != actor.handle:
            raise IllegalTransition(
                f"Item {item} was transferred to '{state.pending_receiver}', so only they may "
                f"record its receipt, not '{actor.handle}'."
            )
    if kind == "seal" and state.seal:
        raise IllegalTransition(
            f"Item {item} is already sealed with seal {state.seal}; record an unseal first."
        )
    if kind == "unseal":
        if not state.seal:
            raise IllegalTransition(f"Item {item} is not sealed; there is no seal to break.")
        if data.get("seal") != state.seal:
            raise IllegalTransition(
                f"Item {item} is sealed with seal {state.seal}, not {data.get('seal')}; "
                f"an unseal must name the seal it breaks."
            )
    if kind == "sample" and state.seal:
        raise IllegalTransition(
            f"Item {item} is sealed with seal {state.seal}; record an unseal event first."
        )


@dataclass(frozen=True)
class Recorded:
    """What a write produced: the events appended (and a new item, for samples)."""

    events: tuple[Event, ...]
    new_item: str | None = None


def record_item_event(
    store: Store,
    *,
    item_id: str,
    kind: str,
    signer: Signer,
    data: dict[str, Any],
    at: str | None = None,
    counterparty: Signer | None = None,
    witness: Signer | None = None,
    files: Sequence[Path] = (),
) -> Recorded:
    """Check the rules and append one event to an item's chain, atomically."""
    if kind not in EVENT_TYPES:
        raise InvalidInput(
            f"'{kind}' is not a custody event type; use one of {', '.join(EVENT_TYPES)}."
        )
    when = event_time(at)
    manifest = [cas.describe(p) for p in files]
    if manifest:
        data = {**data, "attachments": manifest}
    with store.write() as session:
        writer = Writer(session)
        item = get_item(session, item_id)
        state = writer.item_state(item_id)
        check_transition(state, kind, signer.actor, data)
        if kind == "transfer":
            data = {**data, "seal": state.seal}  # the seal as handed over, read under the lock
        row = writer.append(
            chain=item_id,
            item_id=item_id,
            case_no=item.case_no,
            type=kind,
            at=when,
            signer=signer,
            data=data,
            counterparty=counterparty,
            witness=witness,
        )
        writer.finish()
        for path, entry in zip(files, manifest, strict=True):
            cas.store_file(store.attachments_dir, path, entry["sha256"])
    return Recorded(events=(row,))


def record_seal(
    store: Store, *, item_id: str, signer: Signer, seal: str, at: str | None = None
) -> Recorded:
    seal = seal.strip()
    if not seal:
        raise InvalidInput(
            "A seal number is required; pass --seal with the number on the bag or tape."
        )
    return record_item_event(
        store, item_id=item_id, kind="seal", signer=signer, data={"seal": seal}, at=at
    )


def record_unseal(
    store: Store, *, item_id: str, signer: Signer, seal: str, reason: str, at: str | None = None
) -> Recorded:
    if not reason.strip():
        raise InvalidInput("Breaking a seal needs a reason; pass --reason.")
    return record_item_event(
        store,
        item_id=item_id,
        kind="unseal",
        signer=signer,
        data={"seal": seal.strip(), "reason": reason.strip()},
        at=at,
    )


def check_transfer_parties(
    *, item_id: str, releaser: str, receiver: str, witness: str | None
) -> None:
    """Receiver and witness are other people than the releaser and each other."""
    if receiver == releaser:
        raise IllegalTransition(
            f"Actor '{releaser}' cannot transfer item {item_id} to themselves; "
            f"name another actor with --to."
        )
    if witness and witness in (releaser, receiver):
        raise InvalidInput("The witness of a transfer must be a third person; name another actor.")


def record_transfer(
    store: Store,
    *,
    item_id: str,
    signer: Signer,
    receiver: Signer,
    purpose: str = "",
    location: str = "",
    witness: Signer | None = None,
    at: str | None = None,
) -> Recorded:
    check_transfer_parties(
        item_id=item_id,
        releaser=signer.actor.handle,
        receiver=receiver.actor.handle,
        witness=witness.actor.handle if witness else None,
    )
    data: dict[str, Any] = {
        "from": signer.actor.handle,
        "to": receiver.actor.handle,
        "purpose": purpose,
        "location": location,
    }
    return record_item_event(
        store,
        item_id=item_id,
        kind="transfer",
        signer=signer,
        data=data,
        at=at,
        counterparty=receiver,
        witness=witness,
    )


def record_receive(
    store: Store, *, item_id: str, signer: Signer, condition: str, at: str | None = None
) -> Recorded:
    if not condition.strip():
        raise InvalidInput("Receipt needs the condition of the item; pass --condition.")
    return record_item_event(
        store,
        item_id=item_id,
        kind="receive",
        signer=signer,
        data={"condition": condition.strip()},
        at=at,
    )


def record_store(
    store: Store, *, item_id: str, signer: Signer, location: str, at: str | None = None
) -> Recorded:
    if not location.strip():
        raise InvalidInput("A storage location is required; pass --location.")
    return record_item_event(
        store,
        item_id=item_id,
        kind="store",
        signer=signer,
        data={"location": location.strip()},
        at=at,
    )


def record_dispose(
    store: Store,
    *,
    item_id: str,
    signer: Signer,
    method: str,
    authority: str,
    at: str | None = None,
) -> Recorded:
    if method not in DISPOSAL_METHODS:
        raise InvalidInput(
            f"'{method}' is not a disposal method; use one of {', '.join(DISPOSAL_METHODS)}."
        )
    if not authority.strip():
        raise InvalidInput("Disposal needs the authority that ordered it; pass --authority.")
    return record_item_event(
        store,
        item_id=item_id,
        kind="dispose",
        signer=signer,
        data={"method": method, "authority": authority.strip()},
        at=at,
    )


def record_note(
    store: Store,
    *,
    item_id: str,
    signer: Signer,
    text: str,
    files: Sequence[Path] = (),
    at: str | None = None,
) -> Recorded:
    if not text.strip():
        raise InvalidInput("A note needs text; pass --text.")
    return record_item_event(
        store,
        item_id=item_id,
        kind="note",
        signer=signer,
        data={"text": text.strip()},
        files=files,
        at=at,
    )


def record_analysis(
    store: Store, *, item_id: str, signer: Signer, result: dict[str, Any], at: str | None = None
) -> Recorded:
    """Record a laboratory result (e.g. a species identification) on an item."""
    return record_item_event(
        store, item_id=item_id, kind="analyse", signer=signer, data=result, at=at
    )


def record_item_events(
    store: Store,
    *,
    entries: Sequence[tuple[str, str, dict[str, Any]]],
    signer: Signer,
    at: str | None = None,
) -> Recorded:
    """Append several (item, kind, data) events in one transaction, each checked by the rules."""
    when = event_time(at)
    rows: list[Event] = []
    with store.write() as session:
        writer = Writer(session)
        for item_id, kind, data in entries:
            item = get_item(session, item_id)
            check_transition(writer.item_state(item_id), kind, signer.actor, data)
            rows.append(
                writer.append(
                    chain=item_id,
                    item_id=item_id,
                    case_no=item.case_no,
                    type=kind,
                    at=when,
                    signer=signer,
                    data=data,
                )  # fmt: skip
            )
        writer.finish()
    return Recorded(events=tuple(rows))


def record_label_print(
    store: Store,
    *,
    item_ids: Sequence[str],
    signer: Signer,
    layout: str,
    copies: int,
    reason: str,
    reprints: dict[str, int],
    seals: dict[str, str | None],
    job: str,
    at: str | None = None,
) -> Recorded:
    """One `label-print` event per item of a print job, all in one transaction."""
    entries = [
        (
            item_id,
            "label-print",
            {
                "job": job,
                "layout": layout,
                "copies": copies,
                "reason": reason,
                "reprint": reprints.get(item_id, 0),
                "seal": seals.get(item_id),
                "items_in_job": len(item_ids),
                "items": list(item_ids),
            },
        )
        for item_id in item_ids
    ]
    return record_item_events(store, entries=entries, signer=signer, at=at)


def record_correction(
    store: Store, *, event_id: int, signer: Signer, reason: str, at: str | None = None
) -> Recorded:
    """A `correct` event on the same chain, pointing at the event it corrects."""
    if not reason.strip():
        raise InvalidInput("A correction needs a reason; pass --reason.")
    when = event_time(at)
    with store.write() as session:
        target = session.get(Event, event_id)
        if target is None:
            raise NotFound(
                f"Event {event_id} does not exist; see event IDs with 'custody history ITEM'."
            )
        check_permission(signer.actor, "correct")
        if signer.actor.role != "admin" and target.actor != signer.actor.handle:
            raise PermissionDenied(
                f"Event {event_id} was recorded by '{target.actor}'; only they or an admin "
                f"may correct it."
            )
        if target.type == "correct":
            raise IllegalTransition(
                f"Event {event_id} is itself a correction; correct the original event instead."
            )
        writer = Writer(session)
        row = writer.append(
            chain=target.chain,
            item_id=target.item_id,
            case_no=target.case_no,
            type="correct",
            at=when,
            signer=signer,
            data={"corrects": event_id, "corrects_hash": target.hash, "reason": reason.strip()},
        )
        writer.finish()
    return Recorded(events=(row,))


def item_history(store: Store, item_id: str) -> tuple[Item, list[Event], ItemState]:
    with store.read() as session:
        item = get_item(session, item_id)
        rows = list(
            session.exec(select(Event).where(Event.chain == item_id).order_by(col(Event.seq))).all()
        )
        for obj in (item, *rows):
            session.expunge(obj)
    return item, rows, replay(item_id, rows)


def event_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Event)).one())


def event_data(row: Event) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row.data)
    return data
