"""The evidence room's daily work: finding items, handing over several at once,
storage locations as a hierarchy, and auditing what a location holds.

Invariants:
- Search reads the signed record only (item rows, replayed state, species
  identifications); it never writes.
- A hand-over of several items is one transaction and one signature ceremony
  (every party's key unlocked once), with one `transfer` event per item, each
  checked by the same custody rules as a single transfer; one refused item
  refuses them all.
- Storage locations (building > room > shelf > box) are reference data like
  agencies; an item is at a location when its current location (from its last
  `store` or `transfer`) names the location's code or name, or one of its
  descendants'.
- An audit compares what the record says a location holds with what was found
  there, and records the result with every discrepancy as a signed `audit`
  event on the chain of each case involved.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple, TypedDict

from sqlmodel import Session, col, select

from custody.caselog import append_case_event
from custody.domain import EventType
from custody.errors import AlreadyExists, InvalidInput, NotFound
from custody.events import (
    Signer,
    Writer,
    check_permission,
    event_time,
)
from custody.models import Case, Event, Item, StorageLocation
from custody.records import item_sort_key
from custody.state import ItemState, replay
from custody.store import Store
from custody.timeutil import now_utc, to_utc_text

LOCATION_KINDS = ("building", "room", "shelf", "box")
LOCATION_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
STATUSES = ("in custody", "in transit", "disposed")


# --- search -----------------------------------------------------------------


@dataclass
class Found:
    item: Item
    state: ItemState
    identified: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = self.item.model_dump()
        data["other_ids"] = json.loads(self.item.other_ids or "{}")
        data["identified_species"] = self.identified
        data["state"] = self.state.to_dict()
        data["seals_seen"] = list(self.state.seals_seen)
        return data


def _day(text: str | None, what: str) -> str | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise InvalidInput(
            f"The {what} date '{text}' is not a date; write it like 2026-03-01."
        ) from None


def find_items(
    store: Store,
    *,
    seal: str | None = None,
    text: str | None = None,
    species: str | None = None,
    case_no: str | None = None,
    status: str | None = None,
    location: str | None = None,
    seized_from: str | None = None,
    seized_to: str | None = None,
) -> list[Found]:
    """Items matching every filter given (case-insensitive; dates by local seizure day)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"'{status}' is not an item status; use one of {', '.join(STATUSES)}.")
    since, until = _day(seized_from, "from"), _day(seized_to, "to")
    if since and until and since > until:
        raise InvalidInput(f"The date range {since} to {until} is empty; swap the dates.")
    from custody.exports.common import identified_species

    out: list[Found] = []
    with store.read() as session:
        items_q = select(Item)
        events_q = select(Event).where(col(Event.item_id).is_not(None))
        if case_no:
            if session.get(Case, case_no) is None:
                raise NotFound(
                    f"Case {case_no} does not exist; list cases with 'custody case list'."
                )
            items_q = items_q.where(Item.case_no == case_no)
            events_q = events_q.where(Event.case_no == case_no)
        items = list(session.exec(items_q).all())
        events = list(session.exec(events_q.order_by(col(Event.chain), col(Event.seq))).all())
        places = location_names(session, location) if location else None
    by_chain: dict[str, list[Event]] = {}
    for ev in events:
        if ev.chain == ev.item_id:
            by_chain.setdefault(ev.chain, []).append(ev)
    identified = identified_species(events, items)
    needle = (text or "").casefold().strip()
    for item in items:
        state = replay(item.id, by_chain.get(item.id, []))
        names = identified.get(item.id, [])
        if seal and seal.strip().casefold() not in {
            s.casefold() for s in (*state.seals_seen, item.seal_at_seizure) if s
        }:
            continue
        if needle and not any(
            needle in field.casefold()
            for field in (item.id, item.description, item.place, item.packaging, item.other_ids)
        ):
            continue
        if species and not any(
            species.casefold().strip() in s.casefold() for s in (item.species, *names) if s
        ):
            continue
        if status and state.status != status:
            continue
        if places is not None and state.location.casefold() not in places:
            if not (location and location.casefold() in state.location.casefold()):
                continue
        day = item.seized_at_local[:10]
        if (since and day < since) or (until and day > until):
            continue
        out.append(Found(item=item, state=state, identified=names))
    out.sort(key=lambda f: item_sort_key(f.item.id))
    return out


# --- hand-over of several items ------------------------------------------------


# --- storage locations ---------------------------------------------------------


def add_location(
    store: Store, *, code: str, name: str, kind: str, parent: str | None = None
) -> StorageLocation:
    """Register a storage location; a box sits on a shelf, a shelf in a room, a room in a building."""
    if not LOCATION_CODE_RE.match(code):
        raise InvalidInput(
            f"Location code '{code}' is not valid; use letters, digits, '.', '-' or '_' (e.g. HQ-R1-S3)."
        )
    if kind not in LOCATION_KINDS:
        raise InvalidInput(
            f"'{kind}' is not a location kind; use one of {', '.join(LOCATION_KINDS)}."
        )
    if not name.strip():
        raise InvalidInput("A location needs a name; pass --name.")
    with store.write() as session:
        if session.get(StorageLocation, code) is not None:
            raise AlreadyExists(f"Location {code} exists already; choose another code.")
        if parent:
            above = session.get(StorageLocation, parent)
            if above is None:
                raise NotFound(
                    f"Location {parent} does not exist; list locations with 'custody location list'."
                )
            if LOCATION_KINDS.index(kind) <= LOCATION_KINDS.index(above.kind):
                raise InvalidInput(
                    f"A {kind} cannot sit inside the {above.kind} {parent}; the order is "
                    f"{' > '.join(LOCATION_KINDS)}."
                )
        elif kind != "building":
            raise InvalidInput(
                f"A {kind} must sit inside a location; pass --parent (only a building stands alone)."
            )
        row = StorageLocation(
            code=code,
            name=name.strip(),
            kind=kind,
            parent=parent,
            created_at=to_utc_text(now_utc()),
        )
        session.add(row)
        session.flush()
        session.expunge(row)
    return row


def list_locations(store: Store) -> list[StorageLocation]:
    with store.read() as session:
        rows = list(session.exec(select(StorageLocation).order_by(col(StorageLocation.code))).all())
        for row in rows:
            session.expunge(row)
    return rows


def _subtree(session: Session, code: str) -> list[StorageLocation]:
    rows = list(session.exec(select(StorageLocation)).all())
    by_code = {r.code.casefold(): r for r in rows}
    root = by_code.get(code.casefold()) or next(
        (r for r in rows if r.name.casefold() == code.casefold()), None
    )
    if root is None:
        return []
    out, todo = [root], [root.code]
    while todo:
        current = todo.pop()
        for row in rows:
            if row.parent == current:
                out.append(row)
                todo.append(row.code)
    return out


def location_names(session: Session, code: str) -> set[str]:
    """Lower-cased codes and names of a location and everything inside it."""
    return {v.casefold() for r in _subtree(session, code) for v in (r.code, r.name)}


def location_path(session: Session, code: str) -> str:
    parts: list[str] = []
    row = session.get(StorageLocation, code)
    while row is not None:
        parts.append(f"{row.name} ({row.code})")
        row = session.get(StorageLocation, row.parent) if row.parent else None
    return " > ".join(reversed(parts))


# --- audits ----------------------------------------------------------------------


class Discrepancy(TypedDict):
    """One difference between the record and what an audit found (JSON as it is)."""

    item: str  # "" for a code that names no item
    kind: str  # missing | disposed | in transit | misplaced | unknown
    detail: str


@dataclass
class AuditResult:
    location: str
    path: str
    expected: list[str]
    found: list[str]
    discrepancies: list[Discrepancy]
    unknown: list[str]
    events: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "path": self.path,
            "expected": self.expected,
            "found": self.found,
            "discrepancies": self.discrepancies,
            "unknown": self.unknown,
            "events": self.events,
        }


class _Holdings(NamedTuple):
    """Every item and its replayed state: what the record says is where."""

    items: dict[str, Item]
    states: dict[str, ItemState]


class _Scan(NamedTuple):
    """What an audit's codes named: items (in sort order) and codes naming none."""

    found: list[str]
    unknown: list[str]


def _resolve(token: str, *, items: dict[str, Item], states: dict[str, ItemState]) -> str | None:
    """The item a scanned or typed code names: item ID, label QR text, or current seal."""
    token = token.strip()
    if token in items:
        return token
    if token.upper().startswith("CL") and ":" in token[:6]:
        try:
            from labels.payload import parse_label

            item_id = parse_label(token).payload.item_id
        except Exception:  # a damaged label is reported as an unknown code
            return None
        return item_id if item_id in items else None
    for item_id, state in states.items():
        if state.seal and state.seal.casefold() == token.casefold():
            return item_id
    return None


def audit_location(
    store: Store,
    *,
    location: str,
    found: Sequence[str] | None,
    signer: Signer | None = None,
    at: str | None = None,
) -> AuditResult:
    """What the record says `location` holds and, with `found` (codes scanned or typed),
    the discrepancies, recorded as signed `audit` events (needs `signer`)."""
    if found is not None and signer is None:
        raise InvalidInput("Recording an audit needs the auditor; pass --as HANDLE.")
    if signer is not None:
        check_permission(signer.actor, EventType("audit"))
    when = event_time(at)
    with store.write() if found is not None else store.read() as session:
        if session.get(StorageLocation, location) is None:
            raise NotFound(
                f"Location {location} does not exist; list locations with 'custody location list'."
            )
        names = location_names(session, location)
        holdings = _holdings(session)
        expected = sorted(
            (
                i
                for i, s in holdings.states.items()
                if not s.disposed and s.location.casefold() in names
            ),
            key=item_sort_key,
        )
        path = location_path(session, location)
        if found is None:
            return AuditResult(
                location=location,
                path=path,
                expected=expected,
                found=[],
                discrepancies=[],
                unknown=[],
            )
        scan = _scan(found, holdings=holdings)
        result = AuditResult(
            location=location,
            path=path,
            expected=expected,
            found=scan.found,
            discrepancies=_discrepancies(expected, scan=scan, states=holdings.states),
            unknown=scan.unknown,
        )
        assert signer is not None
        _record_audit(session, result, items=holdings.items, signer=signer, at=when)
    return result


def _holdings(session: Session) -> _Holdings:
    items = {i.id: i for i in session.exec(select(Item)).all()}
    events: dict[str, list[Event]] = {}
    for ev in session.exec(
        select(Event)
        .where(col(Event.item_id).is_not(None))
        .order_by(col(Event.chain), col(Event.seq))
    ).all():
        if ev.chain == ev.item_id:
            events.setdefault(ev.chain, []).append(ev)
    return _Holdings(items=items, states={i: replay(i, events.get(i, [])) for i in items})


def _scan(found: Sequence[str], *, holdings: _Holdings) -> _Scan:
    """The items the codes name (each once) and the codes naming none; blanks and '#' skipped."""
    seen: list[str] = []
    unknown: list[str] = []
    for token in found:
        if not token.strip() or token.strip().startswith("#"):
            continue
        item_id = _resolve(token, items=holdings.items, states=holdings.states)
        if item_id is None:
            if token.strip() not in unknown:
                unknown.append(token.strip())
        elif item_id not in seen:
            seen.append(item_id)
    return _Scan(found=sorted(seen, key=item_sort_key), unknown=unknown)


def _discrepancies(
    expected: list[str], *, scan: _Scan, states: dict[str, ItemState]
) -> list[Discrepancy]:
    """Items missing, items found that the record places elsewhere, and unknown codes."""
    out = [
        Discrepancy(item=item_id, kind="missing", detail="recorded here, not found")
        for item_id in expected
        if item_id not in scan.found
    ]
    for item_id in scan.found:
        if item_id not in expected:
            out.append(_unexpected(item_id, states[item_id]))
    for token in scan.unknown:
        out.append(Discrepancy(item="", kind="unknown", detail=f"code '{token}' names no item"))
    return out


def _unexpected(item_id: str, state: ItemState) -> Discrepancy:
    """Why an item found at the location is not expected there."""
    if state.disposed:
        how = (state.disposal or {}).get("method", "disposed of")
        return Discrepancy(
            item=item_id, kind="disposed", detail=f"found here, but recorded as {how}"
        )
    if state.pending_receiver:
        return Discrepancy(
            item=item_id,
            kind="in transit",
            detail=f"found here, but recorded in transit to {state.pending_receiver}",
        )
    return Discrepancy(
        item=item_id,
        kind="misplaced",
        detail=f"found here, but recorded at '{state.location or 'no location'}'",
    )


def _record_audit(
    session: Session,
    result: AuditResult,
    *,
    items: dict[str, Item],
    signer: Signer,
    at: str | None,
) -> None:
    """One signed `audit` event per case involved, each with that case's part of the result."""
    involved = (*result.expected, *result.found)
    cases = sorted({items[i].case_no for i in involved})
    if not cases:
        raise InvalidInput(
            f"Location {result.location} holds no recorded item and nothing found there is an "
            f"item; there is no case to record the audit on."
        )
    audit_id = str(uuid.uuid4())
    writer = Writer(session)
    for case_no in cases:
        mine = {i for i in involved if items[i].case_no == case_no}
        row = append_case_event(
            writer,
            case_no=case_no,
            kind="audit",
            signer=signer,
            at=at,
            data={
                "audit": audit_id,
                "location": result.location,
                "path": result.path,
                "expected": [i for i in result.expected if i in mine],
                "found": [i for i in result.found if i in mine],
                "discrepancies": [
                    d for d in result.discrepancies if d["item"] in mine or not d["item"]
                ],
                "expected_total": len(result.expected),
                "found_total": len(result.found) + len(result.unknown),
                "cases": cases,
            },
        )
        result.events.append(row.id)
    writer.finish()
