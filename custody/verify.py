"""Verification of custody chains: returns findings, never prints.

What is checked, for the chosen scope (whole store, one item, or one case):
- every event's hash is recomputed from its columns (altered), its data column
  must be in canonical form, and its signatures (actor, receiver, witness) are
  checked against the registered public keys (bad signature, unknown key); a
  receiver or witness who countersigned a transfer offer on another machine
  signed its hand-over statement (`custody.chain.handover_message`) instead;
- every chain runs seq 1..n with each event linking to the previous hash
  (missing, inserted, reordered);
- item and case rows equal the record in the event that created them (altered);
- actor rows carry a valid self-signature over their registration (altered);
and, whatever the scope, the store-wide log: ids run 1..N, each log hash links
to the previous one, and the signed head names the last event (so removing a
whole item, or the newest events, is detected).

Checkpoints (`take_checkpoint`) carry the signed head of the store log out of
the machine: a copy kept elsewhere (with the prosecutor, on paper) lets a later
`verify` detect what the store alone cannot, namely a store re-created from
nothing, restored from an older copy, or rewritten together with its own head.

Signature checks run on both cores for large stores (process pool); the
result is the same list of findings either way, sorted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text

from custody.canonical import canonical_json, hash_record
from custody.chain import (
    actor_message,
    actor_record,
    event_body,
    event_message,
    handover_message,
    head_message,
    log_hash,
)
from custody.keys import unb64, verify_signature
from custody.store import Store

KINDS = ("altered", "missing", "inserted", "reordered", "bad signature", "unknown key")
PARALLEL_THRESHOLD = 4000
EVENT_COLUMNS = (
    "id, chain, seq, item_id, case_no, type, at, recorded_at, actor, actor_key, "
    "counterparty, witness, data, prev_hash, hash, signatures, log_prev, log_hash"
)


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: which item (or chain), which event, what is wrong."""

    subject: str  # item ID, "case:<no>", "actor:<handle>" or "store"
    event: int | None
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "event": self.event,
            "kind": self.kind,
            "message": self.message,
        }


@dataclass
class VerifyReport:
    scope: str
    events_checked: int = 0
    chains_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)  # chain -> last event hash
    signers: dict[str, str] = field(default_factory=dict)  # handle -> key fingerprint
    log_head: dict[str, Any] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "intact": self.intact,
            "events_checked": self.events_checked,
            "chains_checked": self.chains_checked,
            "findings": [f.to_dict() for f in self.findings],
            "heads": self.heads,
            "signers": self.signers,
            "log_head": self.log_head,
        }


Row = tuple[Any, ...]
KeyMap = dict[str, tuple[str, str]]  # handle -> (fingerprint, public key hex)

_WORKER_KEYS: KeyMap = {}


@lru_cache(maxsize=4096)
def _public_key(public_hex: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))


def _sig_ok(public_hex: str, sig_b64: str, message: bytes) -> bool:
    try:
        _public_key(public_hex).verify(unb64(sig_b64), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def check_event_row(row: Row, keys: KeyMap) -> list[Finding]:
    """Hash, canonical form and signatures of one event row (no chain context)."""
    (eid, chain, seq, item_id, case_no, kind, at, recorded_at, actor, actor_key,
     counterparty, witness, data_text, prev_hash, stored_hash, sigs_text, _lp, _lh) = row  # fmt: skip
    subject = item_id or chain
    out: list[Finding] = []
    try:
        data = json.loads(data_text)
    except (TypeError, ValueError):
        return [Finding(subject, eid, "altered", f"Event {eid} has unreadable data (not JSON).")]
    if canonical_json(data).decode("utf-8") != data_text:
        out.append(
            Finding(
                subject, eid, "altered", f"Event {eid}'s data is not in its signed canonical form."
            )
        )
    body = event_body(
        id=eid, chain=chain, seq=seq, item_id=item_id, case_no=case_no, type=kind, at=at,
        recorded_at=recorded_at, actor=actor, actor_key=actor_key, counterparty=counterparty,
        witness=witness, data=data, prev_hash=prev_hash,
    )  # fmt: skip
    if hash_record(body) != stored_hash:
        out.append(
            Finding(
                subject,
                eid,
                "altered",
                f"Event {eid} ({kind}) does not match its hash: a column was changed after signing.",
            )
        )
    try:
        sigs = json.loads(sigs_text)
        assert isinstance(sigs, list)
    except (TypeError, ValueError, AssertionError):
        return [
            *out,
            Finding(subject, eid, "bad signature", f"Event {eid} has unreadable signatures."),
        ]
    message = event_message(stored_hash)
    statement = handover_message(body) if kind == "transfer" else None
    required = {"actor": actor}
    if counterparty:
        required["receiver"] = counterparty
    if witness:
        required["witness"] = witness
    seen: set[str] = set()
    for sig in sigs:
        role, handle, fpr, value = (
            sig.get("role"),
            sig.get("handle"),
            sig.get("key"),
            sig.get("sig", ""),
        )
        registered = keys.get(handle or "")
        if registered is None or registered[0] != fpr:
            out.append(
                Finding(
                    subject,
                    eid,
                    "unknown key",
                    f"Event {eid} is signed as {role} '{handle}' by key {str(fpr)[:16]}…, which is not that actor's registered key.",
                )
            )
            continue
        if role == "actor" and fpr != actor_key:
            out.append(
                Finding(
                    subject,
                    eid,
                    "unknown key",
                    f"Event {eid} names actor key {actor_key[:16]}… but was signed by {fpr[:16]}….",
                )
            )
        # A receiver or witness may have countersigned the hand-over statement on
        # another machine; the releaser always signs the event itself.
        signed = (
            statement
            if sig.get("over") == "handover" and role in ("receiver", "witness") and statement
            else message
        )
        if not _sig_ok(registered[1], value, signed):
            out.append(
                Finding(
                    subject,
                    eid,
                    "bad signature",
                    f"Event {eid}'s {role} signature by '{handle}' does not verify.",
                )
            )
            continue
        if required.get(role) == handle:
            seen.add(role)
    for role, handle in required.items():
        if role not in seen and not any(f.event == eid and f.kind != "altered" for f in out):
            out.append(
                Finding(
                    subject,
                    eid,
                    "bad signature",
                    f"Event {eid} lacks a valid {role} signature by '{handle}'.",
                )
            )
    return out


ACTOR_FIELDS = (
    "handle", "name", "role", "badge", "agency_code", "public_key", "key_fingerprint", "created_at",
    "registration_signature",
)  # fmt: skip
EVENT_FIELDS = tuple(c.strip() for c in EVENT_COLUMNS.split(","))


def registration_ok(actor: dict[str, Any]) -> bool:
    """True when an actor's fields (ACTOR_FIELDS) match its self-signed registration."""
    from custody.keys import fingerprint

    record = actor_record(
        handle=actor["handle"],
        name=actor["name"],
        role=actor["role"],
        badge=actor["badge"],
        agency_code=actor["agency_code"],
        public_key=actor["public_key"],
        created_at=actor["created_at"],
    )
    try:
        key_ok = fingerprint(bytes.fromhex(actor["public_key"])) == actor["key_fingerprint"]
    except ValueError:
        return False
    return key_ok and verify_signature(
        public_hex=actor["public_key"],
        signature_b64=actor["registration_signature"],
        message=actor_message(record),
    )


def actor_keys(actors: Iterable[Sequence[Any]]) -> tuple[KeyMap, list[Finding]]:
    """Registered keys of actors whose rows carry a valid self-signed registration.

    Rows are in ACTOR_FIELDS order. An actor whose row was altered is reported,
    and its key is not trusted (events it signed then show as unknown key).
    """
    keys: KeyMap = {}
    findings: list[Finding] = []
    for a in actors:
        if not registration_ok(dict(zip(ACTOR_FIELDS, a, strict=True))):
            findings.append(
                Finding(
                    f"actor:{a[0]}",
                    None,
                    "altered",
                    f"Actor '{a[0]}''s record or key does not match its signed registration.",
                )
            )
            continue
        keys[a[0]] = (a[6], a[5])
    return keys, findings


def verify_chains(
    rows: Sequence[Row],
    keys: KeyMap,
    *,
    item_rows: Iterable[Any] = (),
    case_rows: Iterable[Any] = (),
    agencies: dict[str, Any] | None = None,
    roles: dict[str, str] | None = None,
    workers: int = 0,
) -> tuple[list[Finding], dict[str, str]]:
    """Per-event, per-chain and genesis checks of a set of chains; returns findings and heads.

    With `roles` (actor handle -> role), every item chain is also replayed through
    the custody rules, so a well-signed event that no legitimate command could
    have recorded (a release by someone who did not hold the item, an event after
    disposal, a time going backwards) is reported too.
    """
    findings = check_rows(rows, keys, workers=workers)
    chains: dict[str, list[Row]] = {}
    for r in rows:
        chains.setdefault(r[1], []).append(r)
    heads: dict[str, str] = {}
    for chain, chain_rows in chains.items():
        chain_rows.sort(key=lambda r: (r[2], r[0]))
        findings.extend(_link_chain(chain, chain_rows))
        heads[chain] = chain_rows[-1][14]
        if roles is not None and not chain.startswith("case:"):
            findings.extend(_replay_rules(chain, chain_rows, roles))
    findings.extend(_check_rows_against_genesis(item_rows, case_rows, chains, agencies or {}))
    return findings, heads


class _EventView:
    """Attribute access over an event row tuple, for the state machine."""

    def __init__(self, row: Row) -> None:
        (self.id, self.chain, self.seq, self.item_id, self.case_no, self.type, self.at,
         self.recorded_at, self.actor, self.actor_key, self.counterparty, self.witness,
         self.data, self.prev_hash, self.hash, self.signatures, self.log_prev,
         self.log_hash) = row  # fmt: skip


class _ActorView:
    def __init__(self, handle: str, role: str) -> None:
        self.handle, self.role = handle, role


GENESIS_TYPES = {"seize": "seize", "sample": "sample"}


def _replay_rules(chain: str, rows: Sequence[Row], roles: dict[str, str]) -> list[Finding]:
    """Replay one item chain through the custody rules; each breach is a finding."""
    from custody.domain import INTEL_TYPES
    from custody.errors import CustodyError
    from custody.events import EVENT_TYPES, check_permission, check_transition
    from custody.state import ItemState, apply_event

    out: list[Finding] = []
    state = ItemState(item_id=chain)
    authors: dict[int, str] = {}
    prev_at: str | None = None
    for row in rows:
        ev = _EventView(row)
        try:
            data = json.loads(ev.data)
        except ValueError:
            continue  # reported as altered already
        actor = _ActorView(ev.actor, roles.get(ev.actor, ""))
        problem: str | None = None
        try:
            if (
                ev.type not in EVENT_TYPES
                or ev.type in ("case-open", "dossier-issue")
                or ev.type in INTEL_TYPES  # case-chain events only
            ):
                problem = f"'{ev.type}' is not an item event type"
            elif ev.seq == 1:
                if ev.type not in GENESIS_TYPES:
                    problem = f"an item's first event must be seize or sample, not {ev.type}"
                else:
                    check_permission(actor, GENESIS_TYPES[ev.type])  # type: ignore[arg-type]
            elif prev_at is not None and ev.at < prev_at:
                problem = f"its time {ev.at} is earlier than the event before it ({prev_at})"
            elif ev.type == "correct":
                target = authors.get(int(data.get("corrects", 0)))
                if actor.role != "admin" and target is not None and target != ev.actor:
                    problem = f"'{ev.actor}' corrected an event recorded by '{target}'"
            else:
                check_transition(state, ev.type, actor, data)  # type: ignore[arg-type]
                if ev.type == "transfer" and ev.counterparty is None:
                    problem = "a transfer without a receiver"
        except CustodyError as exc:
            problem = str(exc).rstrip(".")
        if problem:
            out.append(
                Finding(
                    chain,
                    ev.id,
                    "inserted",
                    f"Event {ev.id} ({ev.type}) breaks the custody rules: {problem}; no legitimate command records it.",
                )
            )
        authors[ev.id] = ev.actor
        prev_at = ev.at if prev_at is None or ev.at > prev_at else prev_at
        apply_event(state, ev)
    return out


_WORKER_ROWS: Sequence[Row] = ()


def _check_range(bounds: tuple[int, int]) -> list[Finding]:
    # Rows and keys reach the forked workers through memory they inherit, not pickling.
    out: list[Finding] = []
    for row in _WORKER_ROWS[bounds[0] : bounds[1]]:
        out.extend(check_event_row(row, _WORKER_KEYS))
    return out


def check_rows(rows: Sequence[Row], keys: KeyMap, *, workers: int = 0) -> list[Finding]:
    """Per-event checks, spread over the machine's cores when there are many rows."""
    global _WORKER_ROWS, _WORKER_KEYS
    if workers <= 0:
        workers = os.cpu_count() or 1
    if workers == 1 or len(rows) < PARALLEL_THRESHOLD:
        return [f for row in rows for f in check_event_row(row, keys)]
    import multiprocessing

    size = max(1000, len(rows) // (workers * 4))
    bounds = [(i, min(i + size, len(rows))) for i in range(0, len(rows), size)]
    _WORKER_ROWS, _WORKER_KEYS = rows, keys
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            return [f for part in pool.map(_check_range, bounds) for f in part]
    finally:
        _WORKER_ROWS, _WORKER_KEYS = (), {}


def _link_chain(chain: str, rows: Sequence[Row]) -> list[Finding]:
    """Sequence and hash-link checks of one chain (rows sorted by seq)."""
    out: list[Finding] = []
    hashes = {r[14]: r for r in rows}
    expected_seq = 1
    prev_hash: str | None = None
    subject = rows[0][3] or chain if rows else chain
    for row in rows:
        eid, seq, prev_link, own_hash = row[0], row[2], row[13], row[14]
        if seq < expected_seq:
            out.append(
                Finding(
                    subject,
                    eid,
                    "inserted",
                    f"Event {eid} repeats position {seq} of {chain}: an extra event was inserted.",
                )
            )
        elif seq > expected_seq:
            out.append(
                Finding(
                    subject,
                    eid,
                    "missing",
                    f"Events at positions {expected_seq}..{seq - 1} of {chain} are missing before event {eid}.",
                )
            )
        if prev_link != prev_hash and seq >= expected_seq:
            linked = hashes.get(prev_link) if prev_link else None
            if linked is not None and linked[2] > seq:
                out.append(
                    Finding(
                        subject,
                        eid,
                        "reordered",
                        f"Event {eid} of {chain} links to a later event: the chain was reordered.",
                    )
                )
            elif seq == expected_seq:
                out.append(
                    Finding(
                        subject,
                        eid,
                        "inserted",
                        f"Event {eid} of {chain} does not link to the event before it: it was inserted or its predecessor replaced.",
                    )
                )
        expected_seq = max(expected_seq, seq + 1)
        prev_hash = own_hash
    return out


def _check_log(
    rows: Sequence[Row], head: Row | None, keys: KeyMap, store_id: str
) -> tuple[list[Finding], dict[str, Any]]:
    out: list[Finding] = []
    expected = 1
    prev: str | None = None
    for row in rows:
        eid, ev_hash, log_prev, stored_log = row[0], row[14], row[16], row[17]
        subject = row[3] or row[1]
        if eid > expected:
            out.append(
                Finding(
                    "store",
                    eid,
                    "missing",
                    f"Store log entries {expected}..{eid - 1} are missing: events (or a whole item) were deleted.",
                )
            )
        if log_prev != prev and eid >= expected:
            out.append(
                Finding(
                    subject,
                    eid,
                    "inserted",
                    f"Event {eid} does not link to the previous entry of the store log: it was inserted, or the log was rewritten.",
                )
            )
        if log_hash(seq=eid, event_hash_=ev_hash, prev=log_prev) != stored_log:
            out.append(
                Finding(
                    subject,
                    eid,
                    "altered",
                    f"Event {eid}'s store log entry does not match its contents.",
                )
            )
        expected = max(expected, eid + 1)
        prev = stored_log
    last_id = rows[-1][0] if rows else 0
    info: dict[str, Any] = {"seq": last_id, "hash": prev}
    if head is None:
        if rows:
            out.append(
                Finding("store", None, "missing", "The signed head of the store log is missing.")
            )
        return out, info
    h_seq, h_hash, h_actor, h_key, h_sig = head
    info.update({"signed_by": h_actor, "key": h_key})
    registered = keys.get(h_actor)
    if registered is None or registered[0] != h_key:
        out.append(
            Finding(
                "store",
                None,
                "unknown key",
                f"The store head is signed by '{h_actor}' with a key that is not registered.",
            )
        )
    elif not verify_signature(
        public_hex=registered[1],
        signature_b64=h_sig,
        message=head_message(store_id=store_id, seq=h_seq, hash_=h_hash),
    ):
        out.append(
            Finding("store", None, "bad signature", "The store head's signature does not verify.")
        )
    if h_seq > last_id:
        out.append(
            Finding(
                "store",
                h_seq,
                "missing",
                f"The signed head names event {h_seq} but the log ends at {last_id}: the newest events were deleted.",
            )
        )
    elif h_seq < last_id:
        out.append(
            Finding(
                "store",
                last_id,
                "inserted",
                f"Events {h_seq + 1}..{last_id} lie beyond the signed head of the log: they were inserted outside custody.",
            )
        )
    elif h_hash != prev:
        out.append(
            Finding(
                "store",
                h_seq,
                "altered",
                f"The last log entry ({h_seq}) differs from the signed head.",
            )
        )
    return out, info


CHECKPOINT_FORMAT = "custody-checkpoint-v1"
_CHECKPOINT_FIELDS = ("store_id", "seq", "log_hash", "signed_by", "key", "public_key", "signature")


def take_checkpoint(store: Store) -> dict[str, Any]:
    """The signed head of the store log, with what is needed to check it anywhere.

    Raises `InvalidInput` when nothing has been recorded yet (there is no head).
    """
    from custody.errors import InvalidInput
    from custody.timeutil import now_utc, to_utc_text

    with store.engine.connect() as conn, conn.begin():
        q = conn.exec_driver_sql
        head = q(
            "SELECT log_seq, log_hash, actor, actor_key, signature FROM store_head WHERE id = 1"
        ).first()
        store_id = q("SELECT value FROM store_meta WHERE key = 'store_id'").scalar()
        if head is None:
            raise InvalidInput(
                "The store has no custody events yet; record one before taking a checkpoint."
            )
        public = conn.execute(
            text("SELECT public_key FROM actors WHERE handle = :h"), {"h": head[2]}
        ).scalar()
    return {
        "format": CHECKPOINT_FORMAT,
        "store_id": str(store_id or ""),
        "seq": int(head[0]),
        "log_hash": str(head[1]),
        "signed_by": str(head[2]),
        "key": str(head[3]),
        "public_key": str(public or ""),
        "signature": str(head[4]),
        "taken_at": to_utc_text(now_utc()),
    }


def read_checkpoint(text_: str, *, name: str) -> dict[str, Any]:
    """Parse a checkpoint file's text; `InvalidInput` names the file when it is not one."""
    from custody.errors import InvalidInput

    try:
        data = json.loads(text_)
    except ValueError:
        data = None
    if (
        not isinstance(data, dict)
        or data.get("format") != CHECKPOINT_FORMAT
        or any(not isinstance(data.get(f), str) for f in _CHECKPOINT_FIELDS if f != "seq")
        or not isinstance(data.get("seq"), int)
    ):
        raise InvalidInput(
            f"{name} is not a custody checkpoint; write one with 'custody checkpoint -o FILE'."
        )
    data["name"] = name
    return data


def check_checkpoint(
    checkpoint: dict[str, Any], *, store_id: str, rows: Sequence[Row]
) -> list[Finding]:
    """Findings when the store no longer holds the history a checkpoint vouches for."""
    from custody.keys import fingerprint

    label = f"checkpoint {checkpoint.get('name', '')} (taken {checkpoint.get('taken_at', '?')})"
    seq = int(checkpoint["seq"])
    try:
        key_ok = fingerprint(bytes.fromhex(checkpoint["public_key"])) == checkpoint["key"]
    except ValueError:
        key_ok = False
    message = head_message(store_id=checkpoint["store_id"], seq=seq, hash_=checkpoint["log_hash"])
    if not key_ok or not verify_signature(
        public_hex=checkpoint["public_key"], signature_b64=checkpoint["signature"], message=message
    ):
        return [
            Finding(
                "checkpoint",
                seq,
                "bad signature",
                f"The signature of {label} does not verify: the file was edited; use an untouched copy.",
            )
        ]
    if checkpoint["store_id"] != store_id:
        return [
            Finding(
                "store",
                None,
                "missing",
                f"This store ({store_id or 'no id'}) is not the one {label} was taken from "
                f"({checkpoint['store_id']}): it was re-created or replaced, and the {seq} "
                "events recorded before the checkpoint are not in it.",
            )
        ]
    entry = next((r for r in rows if r[0] == seq), None)
    if entry is None:
        last = rows[-1][0] if rows else 0
        return [
            Finding(
                "store",
                seq,
                "missing",
                f"The {label} names store log entry {seq}, but the log ends at {last}: "
                "events were deleted or the store was restored from an older copy.",
            )
        ]
    if entry[17] != checkpoint["log_hash"]:
        return [
            Finding(
                "store",
                seq,
                "altered",
                f"Store log entry {seq} differs from the {label}: the history up to it was rewritten.",
            )
        ]
    return []


def _record_diff(row: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(row) | set(recorded) if row.get(k) != recorded.get(k))


def verify(
    store: Store,
    *,
    item_id: str | None = None,
    case_no: str | None = None,
    workers: int = 0,
    progress: Callable[[str], None] | None = None,
    trusted_keys: frozenset[str] | None = None,
    checkpoints: Sequence[dict[str, Any]] = (),
) -> VerifyReport:
    """Verify the whole store, one item's chain, or one case; returns the findings.

    `trusted_keys` (key fingerprints kept outside the store, e.g. published by the
    agency) anchors trust: an actor whose key is not among them is reported, and
    every event it signed shows as signed by an unknown key. `checkpoints` (from
    `read_checkpoint`) must each still be part of the store's log.
    """
    from custody.errors import NotFound

    scope = f"item {item_id}" if item_id else f"case {case_no}" if case_no else "store"
    report = VerifyReport(scope=scope)
    with store.engine.connect() as conn, conn.begin():
        q = conn.exec_driver_sql
        actors = q(
            "SELECT handle, name, role, badge, agency_code, public_key, key_fingerprint, created_at, registration_signature FROM actors"
        ).all()
        meta: dict[str, str] = {
            str(k): str(v) for k, v in q("SELECT key, value FROM store_meta").all()
        }
        head = q(
            "SELECT log_seq, log_hash, actor, actor_key, signature FROM store_head WHERE id = 1"
        ).first()
        rows: list[Row] = [
            tuple(r) for r in q(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY id").all()
        ]
        if item_id:
            if conn.execute(
                text("SELECT 1 FROM items WHERE id = :i"), {"i": item_id}
            ).first() is None and not any(r[1] == item_id for r in rows):
                raise NotFound(
                    f"Item {item_id} does not exist; list items with 'custody item list'."
                )
            item_rows = (
                conn.execute(text("SELECT * FROM items WHERE id = :i"), {"i": item_id})
                .mappings()
                .all()
            )
            case_rows: Sequence[Any] = []
        elif case_no:
            if conn.execute(
                text("SELECT 1 FROM cases WHERE case_no = :c"), {"c": case_no}
            ).first() is None and not any(r[4] == case_no for r in rows):
                raise NotFound(
                    f"Case {case_no} does not exist; list cases with 'custody case list'."
                )
            item_rows = (
                conn.execute(text("SELECT * FROM items WHERE case_no = :c"), {"c": case_no})
                .mappings()
                .all()
            )
            case_rows = (
                conn.execute(text("SELECT * FROM cases WHERE case_no = :c"), {"c": case_no})
                .mappings()
                .all()
            )
        else:
            item_rows = conn.execute(text("SELECT * FROM items")).mappings().all()
            case_rows = conn.execute(text("SELECT * FROM cases")).mappings().all()
        agencies = {
            r["code"]: dict(r)
            for r in conn.execute(text("SELECT * FROM agencies")).mappings().all()
        }

    keys, actor_findings = actor_keys(actors)
    report.findings.extend(actor_findings)
    if trusted_keys is not None:
        for handle, (fpr, _) in sorted(keys.items()):
            if fpr not in trusted_keys:
                del keys[handle]
                report.findings.append(
                    Finding(
                        f"actor:{handle}",
                        None,
                        "unknown key",
                        f"Actor '{handle}''s key {fpr[:16]}… is not in the trusted key list.",
                    )
                )
    report.signers = {h: v[0] for h, v in sorted(keys.items())}

    if progress:
        progress("store log")
    log_findings, report.log_head = _check_log(rows, head, keys, meta.get("store_id", ""))
    report.findings.extend(log_findings)
    for cp in checkpoints:
        report.findings.extend(check_checkpoint(cp, store_id=meta.get("store_id", ""), rows=rows))

    if item_id:
        in_scope = [r for r in rows if r[1] == item_id]
    elif case_no:
        in_scope = [r for r in rows if r[4] == case_no]
    else:
        in_scope = rows
    if progress:
        progress(f"{len(in_scope)} events")
    chain_findings, report.heads = verify_chains(
        in_scope,
        keys,
        item_rows=item_rows,
        case_rows=case_rows,
        agencies=agencies,
        roles={a[0]: a[2] for a in actors},
        workers=workers,
    )
    report.findings.extend(chain_findings)
    report.events_checked = len(in_scope)
    report.chains_checked = len(report.heads)
    chains = {r[1] for r in in_scope}
    report.findings.extend(_check_attachments(store, in_scope))
    # Personal data of case entities must still match the commitments signed for it.
    from custody.entities import nominal_findings

    report.findings.extend(nominal_findings(store, in_scope))
    present_items = {r["id"] for r in item_rows}
    present_cases = {r["case_no"] for r in case_rows}
    for chain in sorted(chains):
        first = min(r[0] for r in in_scope if r[1] == chain)
        if chain.startswith("case:"):
            if not item_id and chain[5:] not in present_cases:
                report.findings.append(
                    Finding(
                        chain,
                        first,
                        "missing",
                        f"Case {chain[5:]} has custody events but its case row was deleted.",
                    )
                )
        elif chain not in present_items:
            report.findings.append(
                Finding(
                    chain,
                    first,
                    "missing",
                    f"Item {chain} has custody events but its item row was deleted.",
                )
            )
    report.findings.sort(key=lambda f: (f.subject, f.event or 0, f.kind, f.message))
    return report


def _check_attachments(store: Store, rows: Iterable[Row]) -> list[Finding]:
    """Every attached file must still be in the content store with its recorded hash."""
    from custody.attachments import blob_path, file_sha256

    out: list[Finding] = []
    for row in rows:
        if '"attachments"' not in row[12]:
            continue
        try:
            entries = json.loads(row[12]).get("attachments") or []
        except ValueError:
            continue  # already reported as altered
        for entry in entries:
            sha = str(entry.get("sha256", ""))
            path = blob_path(store.attachments_dir, sha)
            subject = row[3] or row[1]
            if not path.exists():
                out.append(
                    Finding(
                        subject,
                        row[0],
                        "missing",
                        f"Attachment {entry.get('name')} ({sha[:19]}…) of event {row[0]} is missing from the attachment store.",
                    )
                )
            elif file_sha256(path) != sha:
                out.append(
                    Finding(
                        subject,
                        row[0],
                        "altered",
                        f"Attachment {entry.get('name')} of event {row[0]} no longer matches its recorded SHA-256.",
                    )
                )
    return out


def _check_rows_against_genesis(
    item_rows: Iterable[Any],
    case_rows: Iterable[Any],
    chains: dict[str, list[Row]],
    agencies: dict[str, Any],
) -> list[Finding]:
    out: list[Finding] = []
    for item in item_rows:
        row = dict(item)
        chain = chains.get(row["id"])
        genesis = chain[0] if chain and chain[0][2] == 1 else None
        if genesis is None:
            out.append(
                Finding(
                    row["id"],
                    None,
                    "inserted",
                    f"Item {row['id']} has no creating event: the item row was inserted outside custody.",
                )
            )
            continue
        recorded = json.loads(genesis[12]).get("item", {})
        diff = _record_diff(row, recorded)
        if diff:
            out.append(
                Finding(
                    row["id"],
                    genesis[0],
                    "altered",
                    f"Item {row['id']}'s row differs from its signed record in {', '.join(diff)}.",
                )
            )
    for case in case_rows:
        row = dict(case)
        chain = chains.get(f"case:{row['case_no']}")
        if not chain or chain[0][2] != 1:
            out.append(
                Finding(
                    f"case:{row['case_no']}",
                    None,
                    "inserted",
                    f"Case {row['case_no']} has no case-open event: the case row was inserted outside custody.",
                )
            )
            continue
        data = json.loads(chain[0][12])
        diff = _record_diff(row, data.get("case", {}))
        if diff:
            out.append(
                Finding(
                    f"case:{row['case_no']}",
                    chain[0][0],
                    "altered",
                    f"Case {row['case_no']}'s row differs from its signed record in {', '.join(diff)}.",
                )
            )
        agency = data.get("agency")
        if agency and agencies.get(agency["code"]) != agency:
            out.append(
                Finding(
                    f"case:{row['case_no']}",
                    chain[0][0],
                    "altered",
                    f"Agency {agency['code']}'s row differs from the record signed when case {row['case_no']} was opened.",
                )
            )
    return out
