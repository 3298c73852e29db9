"""The integrity primitives of custody events: body, hash, signatures, log links.

Invariants (shared by the writer in events.py and the checker in verify.py, so
the two can never disagree):
- An event's hash is `hash_record(event_body(row))`, where the body holds every
  column of the row except the hash, the signatures and the log links, and the
  previous event hash of the same chain (per-item chains travel alone).
- Signatures are Ed25519 over EVENT_DOMAIN + hash; the head of the store-wide
  log is signed over HEAD_DOMAIN + canonical {store, seq, hash}.
- A receiver or witness who countersigns a transfer on another machine signs
  HANDOVER_DOMAIN + canonical(hand-over statement) instead (signature marked
  `"over": "handover"`): the statement is the event body without its store-wide
  position (`id`) and recording time, so it binds the item, its chain position
  and previous hash, time, parties, seal and purpose, yet other items' events
  recorded meanwhile do not invalidate it.
- The store-wide log hash of event n is hash_record({seq, event, prev}) with
  prev the log hash of event n-1: removing any event, or a whole item, breaks it.
"""

from __future__ import annotations

import json
from typing import Any

from custody.canonical import canonical_json, hash_record

EVENT_DOMAIN = b"custody-event-v1\n"
HEAD_DOMAIN = b"custody-head-v1\n"
HANDOVER_DOMAIN = b"custody-handover-v1\n"
#: the event body fields a hand-over statement leaves out (set when it is recorded).
POSITION_FIELDS = ("id", "recorded_at")
ACTOR_DOMAIN = b"custody-actor-v1\n"
BODY_VERSION = 1


def event_body(
    *,
    id: int,
    chain: str,
    seq: int,
    item_id: str | None,
    case_no: str,
    type: str,
    at: str,
    recorded_at: str,
    actor: str,
    actor_key: str,
    counterparty: str | None,
    witness: str | None,
    data: Any,
    prev_hash: str | None,
) -> dict[str, Any]:
    return {
        "v": BODY_VERSION,
        "id": id,
        "chain": chain,
        "seq": seq,
        "item": item_id,
        "case": case_no,
        "type": type,
        "at": at,
        "recorded_at": recorded_at,
        "actor": actor,
        "actor_key": actor_key,
        "counterparty": counterparty,
        "witness": witness,
        "data": data,
        "prev": prev_hash,
    }


def body_of_row(row: Any) -> dict[str, Any]:
    """The hashed body of an event: an ORM row (data as stored text) or an
    `EventRecord` (data already parsed). An event imported from another store is
    hashed with its id there (`origin_id`)."""
    data = json.loads(row.data) if isinstance(row.data, str) else row.data
    origin = getattr(row, "origin_id", None)
    return event_body(
        id=origin if origin is not None else row.id,
        chain=row.chain,
        seq=row.seq,
        item_id=row.item_id,
        case_no=row.case_no,
        type=row.type,
        at=row.at,
        recorded_at=row.recorded_at,
        actor=row.actor,
        actor_key=row.actor_key,
        counterparty=row.counterparty,
        witness=row.witness,
        data=data,
        prev_hash=row.prev_hash,
    )


def event_hash(body: dict[str, Any]) -> str:
    return hash_record(body)


def event_message(hash_: str) -> bytes:
    return EVENT_DOMAIN + hash_.encode("ascii")


def handover_statement(body: dict[str, Any]) -> dict[str, Any]:
    """What a countersigning receiver or witness signs: the body without its store position."""
    return {k: v for k, v in body.items() if k not in POSITION_FIELDS}


def handover_message(body: dict[str, Any]) -> bytes:
    return HANDOVER_DOMAIN + canonical_json(handover_statement(body))


def log_hash(*, seq: int, event_hash_: str, prev: str | None) -> str:
    return hash_record({"seq": seq, "event": event_hash_, "prev": prev})


def head_message(*, store_id: str, seq: int, hash_: str) -> bytes:
    return HEAD_DOMAIN + canonical_json({"store": store_id, "seq": seq, "hash": hash_})


def actor_record(
    *,
    handle: str,
    name: str,
    role: str,
    badge: str,
    agency_code: str | None,
    public_key: str,
    created_at: str,
) -> dict[str, Any]:
    return {
        "handle": handle,
        "name": name,
        "role": role,
        "badge": badge,
        "agency": agency_code,
        "public_key": public_key,
        "created_at": created_at,
    }


def actor_message(record: dict[str, Any]) -> bytes:
    return ACTOR_DOMAIN + canonical_json(record)
