"""The checks of the record, on loaded events (no SQL here).

- `check_event`: one event's hash, canonical data and signatures;
- `link_chain`: one chain's positions and hash links;
- `check_log`: the store-wide log and its signed head;
- `check_rows_against_genesis`: item, case and agency rows against the signed
  records in the events that created them;
- `check_attachments`: attached files still in the content store, unchanged.

Each returns findings; none prints or raises for a problem in the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.canonical import canonical_json, hash_record
from custody.chain import body_of_row, event_message, handover_message, head_message, log_hash
from custody.domain import EventRecord, EventType, FindingKind, UnreadableEvent
from custody.findings import Finding, LogHead
from custody.keys import unb64, verify_signature
from custody.registrations import KeyMap

K = FindingKind


@lru_cache(maxsize=4096)
def _public_key(public_hex: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))


def _sig_ok(public_hex: str, sig_b64: str, message: bytes) -> bool:
    try:
        _public_key(public_hex).verify(unb64(sig_b64), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def check_event(ev: EventRecord, keys: KeyMap) -> list[Finding]:
    """Hash, canonical form and signatures of one event (no chain context)."""
    subject, eid = ev.subject, ev.id
    if not ev.data_readable:
        return [Finding(subject, eid, K.ALTERED, f"Event {eid} has unreadable data (not JSON).")]
    out: list[Finding] = []
    if canonical_json(ev.data).decode("utf-8") != ev.data_text:
        out.append(
            Finding(
                subject, eid, K.ALTERED, f"Event {eid}'s data is not in its signed canonical form."
            )
        )
    body = body_of_row(ev)
    if hash_record(body) != ev.hash:
        out.append(
            Finding(
                subject,
                eid,
                K.ALTERED,
                f"Event {eid} ({ev.type}) does not match its hash: a column was changed after signing.",
            )
        )
    try:
        sigs = ev.signatures()
    except UnreadableEvent as exc:
        return [*out, Finding(subject, eid, K.BAD_SIGNATURE, str(exc))]
    return out + _check_signatures(ev, sigs, body, keys)


def _check_signatures(
    ev: EventRecord,
    sigs: Sequence[Mapping[str, Any]],
    body: dict[str, Any],
    keys: KeyMap,
) -> list[Finding]:
    subject, eid = ev.subject, ev.id
    message = event_message(ev.hash)
    # A receiver or witness may have countersigned the hand-over statement on
    # another machine; the releaser always signs the event itself.
    statement = handover_message(body) if ev.type == EventType.TRANSFER else None
    required = {"actor": ev.actor}
    if ev.counterparty:
        required["receiver"] = ev.counterparty
    if ev.witness:
        required["witness"] = ev.witness
    out: list[Finding] = []
    seen: set[str] = set()
    for sig in sigs:
        role, handle, fpr = sig.get("role"), sig.get("handle"), sig.get("key")
        registered = keys.get(str(handle or ""))
        public_hex = registered.public_for(fpr) if registered is not None else None
        if public_hex is None:
            out.append(
                Finding(
                    subject,
                    eid,
                    K.UNKNOWN_KEY,
                    f"Event {eid} is signed as {role} '{handle}' by key {str(fpr)[:16]}…, which is not that actor's registered key.",
                )
            )
            continue
        if role == "actor" and fpr != ev.actor_key:
            out.append(
                Finding(
                    subject,
                    eid,
                    K.UNKNOWN_KEY,
                    f"Event {eid} names actor key {ev.actor_key[:16]}… but was signed by {str(fpr)[:16]}….",
                )
            )
        over_statement = sig.get("over") == "handover" and role in ("receiver", "witness")
        signed = statement if over_statement and statement else message
        if not _sig_ok(public_hex, str(sig.get("sig", "")), signed):
            out.append(
                Finding(
                    subject,
                    eid,
                    K.BAD_SIGNATURE,
                    f"Event {eid}'s {role} signature by '{handle}' does not verify.",
                )
            )
            continue
        if required.get(str(role)) == handle:
            seen.add(str(role))
    if not out:
        for role, handle in required.items():
            if role not in seen:
                out.append(
                    Finding(
                        subject,
                        eid,
                        K.BAD_SIGNATURE,
                        f"Event {eid} lacks a valid {role} signature by '{handle}'.",
                    )
                )
    return out


def link_chain(chain: str, events: Sequence[EventRecord]) -> list[Finding]:
    """Sequence and hash-link checks of one chain (events sorted by seq)."""
    out: list[Finding] = []
    by_hash = {e.hash: e for e in events}
    expected_seq = 1
    prev_hash: str | None = None
    subject = events[0].subject if events else chain
    for ev in events:
        eid, seq = ev.id, ev.seq
        if seq < expected_seq:
            out.append(
                Finding(
                    subject,
                    eid,
                    K.INSERTED,
                    f"Event {eid} repeats position {seq} of {chain}: an extra event was inserted.",
                )
            )
        elif seq > expected_seq:
            out.append(
                Finding(
                    subject,
                    eid,
                    K.MISSING,
                    f"Events at positions {expected_seq}..{seq - 1} of {chain} are missing before event {eid}.",
                )
            )
        if ev.prev_hash != prev_hash and seq >= expected_seq:
            linked = by_hash.get(ev.prev_hash) if ev.prev_hash else None
            if linked is not None and linked.seq > seq:
                out.append(
                    Finding(
                        subject,
                        eid,
                        K.REORDERED,
                        f"Event {eid} of {chain} links to a later event: the chain was reordered.",
                    )
                )
            elif seq == expected_seq:
                out.append(
                    Finding(
                        subject,
                        eid,
                        K.INSERTED,
                        f"Event {eid} of {chain} does not link to the event before it: it was inserted or its predecessor replaced.",
                    )
                )
        expected_seq = max(expected_seq, seq + 1)
        prev_hash = ev.hash
    return out


def check_log(
    events: Sequence[EventRecord], head: Sequence[Any] | None, keys: KeyMap, store_id: str
) -> tuple[list[Finding], LogHead]:
    """The store-wide log: ids run 1..N, each entry links to the previous, the head is signed."""
    out: list[Finding] = []
    expected = 1
    prev: str | None = None
    for ev in events:
        eid = ev.id
        if eid > expected:
            out.append(
                Finding(
                    "store",
                    eid,
                    K.MISSING,
                    f"Store log entries {expected}..{eid - 1} are missing: events (or a whole item) were deleted.",
                )
            )
        if ev.log_prev != prev and eid >= expected:
            out.append(
                Finding(
                    ev.subject,
                    eid,
                    K.INSERTED,
                    f"Event {eid} does not link to the previous entry of the store log: it was inserted, or the log was rewritten.",
                )
            )
        if log_hash(seq=eid, event_hash_=ev.hash, prev=ev.log_prev) != ev.log_hash:
            out.append(
                Finding(
                    ev.subject,
                    eid,
                    K.ALTERED,
                    f"Event {eid}'s store log entry does not match its contents.",
                )
            )
        expected = max(expected, eid + 1)
        prev = ev.log_hash
    last_id = events[-1].id if events else 0
    if head is None:
        if events:
            out.append(
                Finding("store", None, K.MISSING, "The signed head of the store log is missing.")
            )
        return out, LogHead(seq=last_id, hash=prev)
    h_seq, h_hash, h_actor, h_key, h_sig = head
    out.extend(_check_head_signature(keys, h_actor, h_key, h_sig, store_id, h_seq, h_hash))
    out.extend(_check_head_position(h_seq, h_hash, last_id, prev))
    return out, LogHead(seq=last_id, hash=prev, signed_by=h_actor, key=h_key)


def _check_head_signature(
    keys: KeyMap, actor: str, key: str, sig: str, store_id: str, seq: int, hash_: str
) -> list[Finding]:
    registered = keys.get(actor)
    public_hex = registered.public_for(key) if registered is not None else None
    if public_hex is None:
        return [
            Finding(
                "store",
                None,
                K.UNKNOWN_KEY,
                f"The store head is signed by '{actor}' with a key that is not registered.",
            )
        ]
    message = head_message(store_id=store_id, seq=seq, hash_=hash_)
    if not verify_signature(public_hex=public_hex, signature_b64=sig, message=message):
        return [
            Finding("store", None, K.BAD_SIGNATURE, "The store head's signature does not verify.")
        ]
    return []


def _check_head_position(
    h_seq: int, h_hash: str, last_id: int, last_hash: str | None
) -> list[Finding]:
    if h_seq > last_id:
        return [
            Finding(
                "store",
                h_seq,
                K.MISSING,
                f"The signed head names event {h_seq} but the log ends at {last_id}: the newest events were deleted.",
            )
        ]
    if h_seq < last_id:
        return [
            Finding(
                "store",
                last_id,
                K.INSERTED,
                f"Events {h_seq + 1}..{last_id} lie beyond the signed head of the log: they were inserted outside custody.",
            )
        ]
    if h_hash != last_hash:
        return [
            Finding(
                "store",
                h_seq,
                K.ALTERED,
                f"The last log entry ({h_seq}) differs from the signed head.",
            )
        ]
    return []


def check_attachments(attachments_dir: Any, events: Iterable[EventRecord]) -> list[Finding]:
    """Every attached file must still be in the content store with its recorded hash."""
    from custody.attachments import blob_path, file_sha256

    out: list[Finding] = []
    for ev in events:
        for entry in ev.data.get("attachments") or []:
            sha = str(entry.get("sha256", ""))
            path = blob_path(attachments_dir, sha)
            if not path.exists():
                out.append(
                    Finding(
                        ev.subject,
                        ev.id,
                        K.MISSING,
                        f"Attachment {entry.get('name')} ({sha[:19]}…) of event {ev.id} is missing from the attachment store.",
                    )
                )
            elif file_sha256(path) != sha:
                out.append(
                    Finding(
                        ev.subject,
                        ev.id,
                        K.ALTERED,
                        f"Attachment {entry.get('name')} of event {ev.id} no longer matches its recorded SHA-256.",
                    )
                )
    return out


def _record_diff(row: Mapping[str, Any], recorded: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(row) | set(recorded) if row.get(k) != recorded.get(k))


def check_rows_against_genesis(
    item_rows: Iterable[Mapping[str, Any]],
    case_rows: Iterable[Mapping[str, Any]],
    chains: Mapping[str, Sequence[EventRecord]],
    agencies: Mapping[str, Any],
) -> list[Finding]:
    """Item, case and agency rows must equal the records signed when they were created."""
    out: list[Finding] = []
    for item in item_rows:
        out.extend(_check_item_row(dict(item), chains.get(item["id"])))
    for case in case_rows:
        out.extend(_check_case_row(dict(case), chains.get(f"case:{case['case_no']}"), agencies))
    return out


def _check_item_row(row: dict[str, Any], chain: Sequence[EventRecord] | None) -> list[Finding]:
    item_id = row["id"]
    genesis = chain[0] if chain and chain[0].seq == 1 else None
    if genesis is None:
        return [
            Finding(
                item_id,
                None,
                K.INSERTED,
                f"Item {item_id} has no creating event: the item row was inserted outside custody.",
            )
        ]
    diff = _record_diff(row, genesis.data.get("item", {}))
    if diff:
        return [
            Finding(
                item_id,
                genesis.id,
                K.ALTERED,
                f"Item {item_id}'s row differs from its signed record in {', '.join(diff)}.",
            )
        ]
    return []


def _check_case_row(
    row: dict[str, Any], chain: Sequence[EventRecord] | None, agencies: Mapping[str, Any]
) -> list[Finding]:
    case_no, subject = row["case_no"], f"case:{row['case_no']}"
    if not chain or chain[0].seq != 1:
        return [
            Finding(
                subject,
                None,
                K.INSERTED,
                f"Case {case_no} has no case-open event: the case row was inserted outside custody.",
            )
        ]
    genesis = chain[0]
    out = []
    diff = _record_diff(row, genesis.data.get("case", {}))
    if diff:
        out.append(
            Finding(
                subject,
                genesis.id,
                K.ALTERED,
                f"Case {case_no}'s row differs from its signed record in {', '.join(diff)}.",
            )
        )
    agency = genesis.data.get("agency")
    if agency and agencies.get(agency["code"]) != agency:
        out.append(
            Finding(
                subject,
                genesis.id,
                K.ALTERED,
                f"Agency {agency['code']}'s row differs from the record signed when case {case_no} was opened.",
            )
        )
    return out
