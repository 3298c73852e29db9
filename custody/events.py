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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func
from sqlmodel import Session, col, select

from custody import attachments as cas
from custody.canonical import canonical_json
from custody.chain import body_of_row, event_hash, event_message, head_message, log_hash
from custody.domain import EventRecord, EventType, Role
from custody.errors import (
    IllegalTransition,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from custody.keys import KeyPair, load_key
from custody.models import Actor, Event, Item, StoreHead, StoreMeta
from custody.state import ItemState, apply_event, moves_act_clock, replay
from custody.store import Store
from custody.timeutil import now_utc, parse_time, to_utc_text

R = Role
ALL_ROLES = frozenset(Role)
HANDLERS = frozenset({R.OFFICER, R.CUSTODIAN, R.ANALYST, R.ADMIN})

E = EventType
PERMISSIONS: dict[EventType, frozenset[Role]] = {
    E.CASE_OPEN: frozenset({R.OFFICER, R.CUSTODIAN, R.ADMIN, R.PROSECUTOR}),
    E.SEIZE: frozenset({R.OFFICER, R.ADMIN}),
    E.SEAL: HANDLERS,
    E.UNSEAL: HANDLERS,
    E.TRANSFER: HANDLERS,
    E.RECEIVE: ALL_ROLES,
    E.STORE: HANDLERS,
    E.SAMPLE: frozenset({R.ANALYST, R.CUSTODIAN}),
    E.ANALYSE: frozenset({R.ANALYST}),
    E.LABEL_PRINT: HANDLERS,
    E.DISPOSE: HANDLERS,  # analysts destroy samples consumed in analysis
    E.NOTE: ALL_ROLES,
    E.CORRECT: ALL_ROLES,
    E.DOSSIER_ISSUE: frozenset({R.PROSECUTOR, R.ANALYST, R.ADMIN}),
    E.VOID: HANDLERS,
    # Case-level intelligence and evidence-room events (`custody.domain.INTEL_TYPES`).
    E.SEIZURE_FACTS: frozenset({R.OFFICER, R.CUSTODIAN, R.PROSECUTOR, R.ADMIN}),
    E.TRADE_TERMS: HANDLERS,
    E.ENTITY_ADD: frozenset({R.OFFICER, R.PROSECUTOR, R.ADMIN}),
    E.ENTITY_UPDATE: frozenset({R.OFFICER, R.PROSECUTOR, R.ADMIN}),
    E.ENTITY_LINK: frozenset({R.OFFICER, R.PROSECUTOR, R.ADMIN}),
    E.NOMINAL_ERASE: frozenset({R.PROSECUTOR, R.ADMIN}),
    E.SHARE_EXPORT: ALL_ROLES,
    E.SMART_IMPORT: frozenset({R.OFFICER, R.ADMIN}),
    E.AUDIT: frozenset({R.OFFICER, R.CUSTODIAN, R.ADMIN}),
}

# Events the current custodian alone may record. An analysis is a custody act: the
# analyst holds the item (received) or took the sub-sample themselves.
CUSTODIAN_ONLY = frozenset(
    {E.SEAL, E.UNSEAL, E.TRANSFER, E.STORE, E.SAMPLE, E.ANALYSE, E.DISPOSE, E.VOID}
)
# Events that need the item open (no intact seal).
NEEDS_UNSEALED = frozenset({E.SAMPLE, E.ANALYSE})
# Events still allowed after disposal.
AFTER_DISPOSAL = frozenset({E.NOTE, E.CORRECT})
# How far in the future an event time may lie (clock skew between field devices).
FUTURE_TOLERANCE = timedelta(minutes=10)
DISPOSAL_METHODS = ("destroyed", "returned", "released")


class Acting(Protocol):
    """Who records an event, as the rules see them (an `Actor` row or a replayed one)."""

    @property
    def handle(self) -> str: ...

    @property
    def role(self) -> str: ...


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
        raise NotFound.actor(handle)
    return actor


def load_signer(store: Store, handle: str | None, *, passphrase: str | None = None) -> Signer:
    """The actor row and unlocked private key of `handle` (the acting actor)."""
    if not handle:
        raise InvalidInput(
            "This command writes to the store and needs an acting actor; "
            "pass --as HANDLE or set CUSTODY_ACTOR."
        )
    from custody.trust import current_role, is_revoked

    with store.read() as session:
        actor = get_actor(session, handle)
        revoked = is_revoked(session, actor.key_fingerprint)
        role = current_role(session, actor)
        session.expunge(actor)
    actor.role = role  # a role change is a certificate; the row keeps the registered role
    if revoked is not None:
        raise PermissionDenied(
            f"Actor '{handle}''s key was revoked by the agency, so it can no longer sign; "
            f"register a new key for them."
        )
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


@dataclass(frozen=True)
class Draft:
    """An event before the writer chains, hashes and signs it."""

    chain: str
    case_no: str
    type: EventType
    data: Mapping[str, Any]
    item_id: str | None = None
    at: str | None = None  # None: "now", read under the store's write lock

    @classmethod
    def on_item(
        cls, item_id: str, *, case_no: str, type: EventType, data: Mapping[str, Any], at: str | None
    ) -> Draft:
        """An event of an item's own chain."""
        return cls(chain=item_id, item_id=item_id, case_no=case_no, type=type, data=data, at=at)


@dataclass(frozen=True)
class Cosign:
    """Who signs an event besides its actor.

    `receiver`/`witness`: their keys are on this machine and they sign the event.
    `remote`: they countersigned the hand-over statement on their own machines;
    their handles (receiver, witness) and statement signatures are carried in.
    """

    receiver: Signer | None = None
    witness: Signer | None = None
    remote: tuple[str, str | None] | None = None
    remote_signatures: tuple[Mapping[str, str], ...] = ()

    @property
    def receiver_handle(self) -> str | None:
        if self.remote:
            return self.remote[0]
        return self.receiver.actor.handle if self.receiver else None

    @property
    def witness_handle(self) -> str | None:
        if self.remote:
            return self.remote[1]
        return self.witness.actor.handle if self.witness else None

    def signatures(self, signer: Signer, hash_: str) -> list[Mapping[str, str]]:
        message = event_message(hash_)
        sigs: list[Mapping[str, str]] = [_signature("actor", signer, message)]
        if self.receiver:
            sigs.append(_signature("receiver", self.receiver, message))
        if self.witness:
            sigs.append(_signature("witness", self.witness, message))
        sigs.extend(self.remote_signatures)
        return sigs


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
        """(last seq, last hash, act clock) of a chain: the act clock is the latest time
        of its acts, label prints excluded (`custody.state.moves_act_clock`)."""
        if chain not in self._tails:
            last = self.session.exec(
                select(Event).where(Event.chain == chain).order_by(col(Event.seq).desc()).limit(1)
            ).first()
            clock = self.session.exec(
                select(func.max(Event.at)).where(
                    Event.chain == chain, Event.type != EventType.LABEL_PRINT
                )
            ).one()
            self._tails[chain] = (last.seq, last.hash, clock) if last else (0, None, None)
        return self._tails[chain]

    def check_time(self, chain: str, at: str) -> None:
        """Refuse an act time earlier than the chain's last act (times of the acts, not of
        their recording: a day's hand-overs can be entered in the evening)."""
        prev_at = self.tail(chain)[2]
        if prev_at is not None and at < prev_at:
            raise IllegalTransition(
                f"The event time {at} is earlier than the last act on {chain} ({prev_at}); "
                f"custody times cannot go backwards — give a later --at."
            )

    def item_state(self, item_id: str) -> ItemState:
        if item_id not in self._states:
            rows = self.session.exec(
                select(Event).where(Event.chain == item_id).order_by(col(Event.seq))
            ).all()
            self._states[item_id] = replay(item_id, rows)
        return self._states[item_id]

    def append(self, draft: Draft, *, signer: Signer, cosign: Cosign | None = None) -> Event:
        """Chain, hash and sign one event; `cosign` names who else signs it."""
        cosign = cosign or Cosign()
        seq, prev_hash, _prev_at = self.tail(draft.chain)
        at = draft.at or to_utc_text(now_utc())
        self.check_time(draft.chain, at)
        row = Event(
            id=self.next_id,
            chain=draft.chain,
            seq=seq + 1,
            item_id=draft.item_id,
            case_no=draft.case_no,
            type=str(draft.type),
            at=at,
            recorded_at=to_utc_text(now_utc()),
            actor=signer.actor.handle,
            actor_key=signer.key.fingerprint,
            counterparty=cosign.receiver_handle,
            witness=cosign.witness_handle,
            data=canonical_json(draft.data).decode("utf-8"),
            prev_hash=prev_hash,
            hash="",
            signatures="[]",
            log_prev=self.log_prev,
            log_hash="",
        )
        row.hash = event_hash(body_of_row(row))
        row.signatures = canonical_json(cosign.signatures(signer, row.hash)).decode("utf-8")
        row.log_hash = log_hash(seq=row.id, event_hash_=row.hash, prev=self.log_prev)
        self.session.add(row)
        self.session.flush()
        self.next_id += 1
        self.log_prev = row.log_hash
        clock = self._tails[draft.chain][2]
        if moves_act_clock(row.type) and (clock is None or row.at > clock):
            clock = row.at
        self._tails[draft.chain] = (row.seq, row.hash, clock)
        if draft.item_id is not None and draft.chain == draft.item_id:
            if draft.item_id in self._states:
                apply_event(self._states[draft.item_id], row)
        self._last_signer = signer
        return row

    def append_foreign(self, rec: EventRecord, *, origin_store: str, importer: Signer) -> Event:
        """Give an event recorded in another store (checked by the caller) its place in this
        store's log, keeping its hash and signatures; `importer` signs the new log head."""
        row = Event(
            id=self.next_id,
            chain=rec.chain,
            seq=rec.seq,
            item_id=rec.item_id,
            case_no=rec.case_no,
            type=rec.type,
            at=rec.at,
            recorded_at=rec.recorded_at,
            actor=rec.actor,
            actor_key=rec.actor_key,
            counterparty=rec.counterparty,
            witness=rec.witness,
            data=rec.data_text,
            prev_hash=rec.prev_hash,
            hash=rec.hash,
            signatures=rec.signatures_text,
            log_prev=self.log_prev,
            log_hash=log_hash(seq=self.next_id, event_hash_=rec.hash, prev=self.log_prev),
            origin_id=rec.signed_id,
            origin_store=rec.origin_store or origin_store,
        )
        self.tail(rec.chain)
        self.session.add(row)
        self.session.flush()
        self.next_id += 1
        self.log_prev = row.log_hash
        clock = self._tails[rec.chain][2]
        if moves_act_clock(row.type) and (clock is None or row.at > clock):
            clock = row.at
        self._tails[rec.chain] = (row.seq, row.hash, clock)
        if rec.item_id is not None and rec.chain == rec.item_id and rec.item_id in self._states:
            apply_event(self._states[rec.item_id], row)
        self._last_signer = importer
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
        raise NotFound.item(item_id)
    return item


def check_permission(actor: Acting, kind: EventType) -> None:
    allowed = PERMISSIONS[kind]
    if actor.role not in allowed:
        roles = ", ".join(sorted(allowed))
        raise PermissionDenied(
            f"Actor '{actor.handle}' has the role {actor.role}; recording '{kind}' needs one of: {roles}."
        )


def _gives_out_sub_item(kind: EventType, data: Mapping[str, Any]) -> bool:
    """The note `item add --parent` writes on the parent: a custody act like a sample."""
    return kind == E.NOTE and "sub_item" in data


def check_transition(
    state: ItemState, kind: EventType, actor: Acting, data: Mapping[str, Any]
) -> None:
    """Refuse an event the item's current state does not allow (raises, never returns False).

    The writer and verification's replay (`custody.replay`) both call this, so a
    rule has one implementation.
    """
    check_permission(actor, kind)
    if state.transferred_to and kind != E.RECEIVE:
        # Any event here would fork the chain that goes on in the other agency's store.
        raise IllegalTransition(
            f"Item {state.item_id} was transferred to '{state.pending_receiver}' of agency "
            f"{state.transferred_to}; its custody goes on in their store, and only their "
            f"receipt can follow (in a store that imported its custody bundle)."
        )
    sub_item = _gives_out_sub_item(kind, data)
    what = "log sub-items of it" if sub_item else f"record '{kind}'"
    _check_open(state, kind, custodial=sub_item)
    if kind in CUSTODIAN_ONLY or sub_item:
        _check_custodian(state, actor, what)
    if kind == E.RECEIVE:
        _check_receiver(state, actor)
    elif kind == E.SEAL and state.seal:
        raise IllegalTransition(
            f"Item {state.item_id} is already sealed with seal {state.seal}; record an unseal first."
        )
    elif kind == E.UNSEAL:
        _check_unseal(state, data)
    if (kind in NEEDS_UNSEALED or sub_item) and state.seal:
        raise IllegalTransition(
            f"Item {state.item_id} is sealed with seal {state.seal}; record an unseal event first."
        )


def _check_open(state: ItemState, kind: EventType, *, custodial: bool) -> None:
    if state.void is not None and kind != E.CORRECT:
        raise IllegalTransition(
            f"Item {state.item_id} was voided as entered in error (event {state.void['event']}: "
            f"{state.void['reason']}); no custody act can be recorded on it."
        )
    if state.disposed and (custodial or kind not in AFTER_DISPOSAL):
        how = (state.disposal or {}).get("method", "disposed of")
        raise IllegalTransition(
            f"Item {state.item_id} was {how} and its custody is closed; only 'note' and "
            f"'correct' can still be recorded."
        )


def _check_custodian(state: ItemState, actor: Acting, what: str) -> None:
    if state.pending_receiver:
        raise IllegalTransition(
            f"Item {state.item_id} is in transit to '{state.pending_receiver}'; "
            f"they must record 'custody receive' first."
        )
    if state.custodian != actor.handle:
        raise IllegalTransition(
            f"Item {state.item_id} is held by '{state.custodian}', not '{actor.handle}'; only "
            f"the current custodian may {what} (transfer it to them first)."
        )


def _check_receiver(state: ItemState, actor: Acting) -> None:
    if state.pending_receiver is None:
        raise IllegalTransition(
            f"Item {state.item_id} has no transfer awaiting receipt; record 'custody transfer' first."
        )
    if state.pending_receiver != actor.handle:
        raise IllegalTransition(
            f"Item {state.item_id} was transferred to '{state.pending_receiver}', so only they "
            f"may record its receipt, not '{actor.handle}'."
        )


def _check_unseal(state: ItemState, data: Mapping[str, Any]) -> None:
    if not state.seal:
        raise IllegalTransition(f"Item {state.item_id} is not sealed; there is no seal to break.")
    if data.get("seal") != state.seal:
        raise IllegalTransition(
            f"Item {state.item_id} is sealed with seal {state.seal}, not {data.get('seal')}; "
            f"an unseal must name the seal it breaks."
        )


def check_can_record(store: Store, *, item_id: str, kind: EventType, actor: Acting) -> None:
    """Refuse now, before slow work, what recording `kind` on the item would refuse later."""
    with store.read() as session:
        get_item(session, item_id)
        rows = session.exec(select(Event).where(Event.chain == item_id).order_by(col(Event.seq)))
        state = replay(item_id, rows.all())
    check_transition(state, kind, actor, {})


@dataclass(frozen=True)
class Recorded:
    """What a write produced: the events appended (and a new item, for samples)."""

    events: tuple[Event, ...]
    new_item: str | None = None


def record_item_event(
    store: Store,
    *,
    item_id: str,
    kind: EventType,
    signer: Signer,
    data: Mapping[str, Any],
    at: str | None = None,
    cosign: Cosign | None = None,
    files: Sequence[Path] = (),
) -> Recorded:
    """Check the rules and append one event to an item's chain, atomically."""
    when = event_time(at)
    manifest = [cas.describe(p) for p in files]
    if manifest:
        data = {**data, "attachments": manifest}
    with store.write() as session:
        writer = Writer(session)
        item = get_item(session, item_id)
        state = writer.item_state(item_id)
        check_transition(state, kind, signer.actor, data)
        if kind == E.TRANSFER:
            data = {**data, "seal": state.seal}  # the seal as handed over, read under the lock
        draft = Draft.on_item(item_id, case_no=item.case_no, type=kind, data=data, at=when)
        row = writer.append(draft, signer=signer, cosign=cosign)
        writer.finish()
        for path, entry in zip(files, manifest, strict=True):
            cas.store_file(store.attachments_dir, path, entry["sha256"])
    return Recorded(events=(row,))


def record_seal(
    store: Store,
    *,
    item_id: str,
    signer: Signer,
    seal: str,
    at: str | None = None,
    allow_duplicate_seal: bool = False,
) -> Recorded:
    seal = seal.strip()
    if not seal:
        raise InvalidInput(
            "A seal number is required; pass --seal with the number on the bag or tape."
        )
    from custody.seals import check_seal_unused

    with store.read() as session:
        check_seal_unused(session, seal, item_id=item_id, allow_duplicate=allow_duplicate_seal)
    return record_item_event(
        store, item_id=item_id, kind=E.SEAL, signer=signer, data={"seal": seal}, at=at
    )


def record_unseal(
    store: Store, *, item_id: str, signer: Signer, seal: str, reason: str, at: str | None = None
) -> Recorded:
    if not reason.strip():
        raise InvalidInput("Breaking a seal needs a reason; pass --reason.")
    return record_item_event(
        store,
        item_id=item_id,
        kind=E.UNSEAL,
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
    """Hand one item over (see `record_transfers`)."""
    return record_transfers(
        store,
        item_ids=[item_id],
        signer=signer,
        receiver=receiver,
        purpose=purpose,
        location=location,
        witness=witness,
        at=at,
    )


def record_transfers(
    store: Store,
    *,
    item_ids: Sequence[str],
    signer: Signer,
    receiver: Signer,
    purpose: str = "",
    location: str = "",
    witness: Signer | None = None,
    at: str | None = None,
) -> Recorded:
    """Hand several items over at once: one `transfer` event per item, all or none."""
    ids = list(dict.fromkeys(item_ids))
    if not ids:
        raise InvalidInput("Name at least one item to transfer.")
    for item_id in ids:
        check_transfer_parties(
            item_id=item_id,
            releaser=signer.actor.handle,
            receiver=receiver.actor.handle,
            witness=witness.actor.handle if witness else None,
        )
    when = event_time(at)
    rows: list[Event] = []
    with store.write() as session:
        writer = Writer(session)
        for item_id in ids:
            item = get_item(session, item_id)
            state = writer.item_state(item_id)
            data: dict[str, Any] = {
                "from": signer.actor.handle,
                "to": receiver.actor.handle,
                "purpose": purpose,
                "location": location,
            }
            check_transition(state, E.TRANSFER, signer.actor, data)
            data["seal"] = state.seal
            draft = Draft.on_item(
                item_id, case_no=item.case_no, type=E.TRANSFER, data=data, at=when
            )
            rows.append(
                writer.append(
                    draft, signer=signer, cosign=Cosign(receiver=receiver, witness=witness)
                )
            )
        writer.finish()
    return Recorded(events=tuple(rows))


def record_receive(
    store: Store, *, item_id: str, signer: Signer, condition: str, at: str | None = None
) -> Recorded:
    if not condition.strip():
        raise InvalidInput("Receipt needs the condition of the item; pass --condition.")
    return record_item_event(
        store,
        item_id=item_id,
        kind=E.RECEIVE,
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
        kind=E.STORE,
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
        kind=E.DISPOSE,
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
        kind=E.NOTE,
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
        store, item_id=item_id, kind=E.ANALYSE, signer=signer, data=result, at=at
    )


@dataclass(frozen=True)
class ItemAct:
    """One event of a batch: which item, what kind, what it says."""

    item_id: str
    kind: EventType
    data: Mapping[str, Any]


def record_item_events(
    store: Store, *, acts: Sequence[ItemAct], signer: Signer, at: str | None = None
) -> Recorded:
    """Append several item events in one transaction, each checked by the rules."""
    when = event_time(at)
    rows: list[Event] = []
    with store.write() as session:
        writer = Writer(session)
        for act in acts:
            item = get_item(session, act.item_id)
            check_transition(writer.item_state(act.item_id), act.kind, signer.actor, act.data)
            draft = Draft.on_item(
                act.item_id, case_no=item.case_no, type=act.kind, data=act.data, at=when
            )
            rows.append(writer.append(draft, signer=signer))
        writer.finish()
    return Recorded(events=tuple(rows))


@dataclass(frozen=True)
class LabelJob:
    """A label print job as it is recorded: one `label-print` event per item."""

    job: str
    layout: str
    copies: int
    reason: str
    item_ids: tuple[str, ...]
    reprints: Mapping[str, int]  # item -> how many times its labels were printed before
    seals: Mapping[str, str | None]  # item -> its intact seal when printed

    def acts(self) -> list[ItemAct]:
        return [
            ItemAct(
                item_id,
                E.LABEL_PRINT,
                {
                    "job": self.job,
                    "layout": self.layout,
                    "copies": self.copies,
                    "reason": self.reason,
                    "reprint": self.reprints.get(item_id, 0),
                    "seal": self.seals.get(item_id),
                    "items_in_job": len(self.item_ids),
                    "items": list(self.item_ids),
                },
            )
            for item_id in self.item_ids
        ]


def record_label_print(
    store: Store, *, job: LabelJob, signer: Signer, at: str | None = None
) -> Recorded:
    """One `label-print` event per item of a print job, all in one transaction."""
    return record_item_events(store, acts=job.acts(), signer=signer, at=at)


def record_correction(
    store: Store,
    *,
    event_id: int,
    signer: Signer,
    reason: str,
    changes: Mapping[str, Any] | None = None,
    at: str | None = None,
) -> Recorded:
    """A `correct` event on the same chain, pointing at the event it corrects.

    Without `changes` the event is withdrawn; with them (already validated, see
    `custody.records.record_field_correction`) the named fields of the item's
    record read as corrected from now on, and the original stays in the record.
    """
    if not reason.strip():
        raise InvalidInput("A correction needs a reason; pass --reason.")
    when = event_time(at)
    with store.write() as session:
        target = correctable_event(session, event_id, signer.actor)
        data: dict[str, Any] = {
            "corrects": event_id,
            "corrects_hash": target.hash,
            "reason": reason.strip(),
        }
        if changes:
            data["set"] = dict(changes)
        writer = Writer(session)
        draft = Draft(
            chain=target.chain,
            item_id=target.item_id,
            case_no=target.case_no,
            type=E.CORRECT,
            data=data,
            at=when,
        )
        row = writer.append(draft, signer=signer)
        writer.finish()
    return Recorded(events=(row,))


def correctable_event(session: Session, event_id: int, actor: Acting) -> Event:
    """The event `actor` may correct, or a one-sentence refusal."""
    target = session.get(Event, event_id) if 0 < event_id < 2**63 else None
    if target is None:
        raise NotFound(
            f"Event {event_id} does not exist; see event IDs with 'custody history ITEM'."
        )
    check_permission(actor, E.CORRECT)
    if actor.role != R.ADMIN and target.actor != actor.handle:
        raise PermissionDenied(
            f"Event {event_id} was recorded by '{target.actor}'; only they or an admin "
            f"may correct it."
        )
    if target.type == E.CORRECT:
        raise IllegalTransition(
            f"Event {event_id} is itself a correction; correct the original event instead."
        )
    return target


def record_void(
    store: Store, *, item_id: str, signer: Signer, reason: str, at: str | None = None
) -> Recorded:
    """Void an item entered in error: it stays in the record, and no custody act follows."""
    if not reason.strip():
        raise InvalidInput("Voiding an item needs a reason; pass --reason.")
    return record_item_event(
        store, item_id=item_id, kind=E.VOID, signer=signer, data={"reason": reason.strip()}, at=at
    )


def item_history(store: Store, item_id: str) -> tuple[Item, list[EventRecord], ItemState]:
    """An item, its chain as typed events, and the state they replay to."""
    with store.read() as session:
        item = get_item(session, item_id)
        rows = session.exec(select(Event).where(Event.chain == item_id).order_by(col(Event.seq)))
        events = [EventRecord.from_row(r) for r in rows.all()]
        session.expunge(item)
    return item, events, replay(item_id, events)


def event_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Event)).one())
