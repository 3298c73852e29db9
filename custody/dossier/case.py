"""The case a dossier is built from, read once from the store as typed records.

`collect_case` returns a `CaseFile`: the case row, its item rows, every event of
the case as an `EventRecord` (its JSON parsed once, here), the actors and
agencies involved, the attachment manifest, the species identifications, the
case entities (replayed from their events; never their personal data) and the
dossiers already issued. Building, the bundle and rendering read only it.

Invariants:
- The records hold the stored values unchanged, and `columns()` gives each back
  under its column names, so the bundle encoded from a `CaseFile` has exactly the
  bytes it had when it was encoded from the rows (issued dossiers stay verifiable
  and a new bundle has the same shape). Each record's fields are the table's
  columns; a test keeps them equal.
- Rows keep the store's order; events are in id order.
- An item's description is the record signed in its creating (seize or sample)
  event (`CaseFile.item`), never its row, which can be changed outside custody.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import text

from custody.analysis import Analysis, species_identifications
from custody.domain import EVENT_COLUMNS, GENESIS_TYPES, EventRecord, EventType
from custody.entities import Entity, replay_entity_records
from custody.errors import NotFound
from custody.store import Store


def _columns(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _known(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values of `cls`'s fields found in `values` (an absent one takes its default)."""
    return {f.name: values[f.name] for f in fields(cls) if f.name in values}


@dataclass(frozen=True, slots=True)
class CaseRow:
    """A row of the cases table."""

    case_no: str
    title: str = ""
    agency_code: str | None = None
    jurisdiction: str = ""
    legal_basis: str = ""
    opened_at: str = ""
    opened_by: str = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CaseRow:
        return cls(**_known(cls, values))

    def columns(self) -> dict[str, Any]:
        return _columns(self)


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """An item: a row of the items table, or the record signed when it was created.

    A record signed before a column existed lacks it; it reads as the default.
    """

    id: str
    description: str = ""
    species: str = ""
    count: int | None = None
    weight: float | None = None
    unit: str = ""
    packaging: str = ""
    bag_no: int | None = None
    bag_total: int | None = None
    other_ids: str = "{}"  # JSON object, as stored
    place: str = ""
    lat: float | None = None
    lon: float | None = None
    case_no: str = ""
    parent_id: str | None = None
    seized_at: str = ""
    seized_at_local: str = ""
    seizing_officer: str = ""
    seal_at_seizure: str = ""
    created_at: str = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ItemRecord:
        return cls(**_known(cls, values))

    def columns(self) -> dict[str, Any]:
        return _columns(self)

    @property
    def depth(self) -> int:
        """0 for a seized item, 1 for its sub-sample, 2 for a sub-sample of that..."""
        return self.id.split("/", 1)[1].count(".") if "/" in self.id else 0

    @property
    def other_id_pairs(self) -> list[tuple[str, str]]:
        """Other identifiers (rings, microchips, permits) as sorted (kind, value) pairs."""
        try:
            parsed = json.loads(self.other_ids or "{}")
        except ValueError:
            return []
        if not isinstance(parsed, dict):
            return []
        return sorted((str(k), str(v)) for k, v in parsed.items())


@dataclass(frozen=True, slots=True)
class ActorRecord:
    """A registered actor: the actors table's columns (`custody.registrations.ACTOR_FIELDS`)."""

    handle: str
    name: str
    role: str
    badge: str | None
    agency_code: str | None
    public_key: str
    key_fingerprint: str
    created_at: str
    registration_signature: str

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ActorRecord:
        return cls(**_known(cls, values))

    def columns(self) -> dict[str, Any]:
        return _columns(self)


@dataclass(frozen=True, slots=True)
class AgencyRecord:
    code: str
    name: str = ""
    country: str = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AgencyRecord:
        return cls(**_known(cls, values))

    def columns(self) -> dict[str, Any]:
        return _columns(self)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file recorded with an event (a photograph, say) and its SHA-256.

    `recorded` is the manifest entry exactly as the event signed it; the bundle
    carries it with the event ID and item added.
    """

    event: int
    item: str | None
    sha256: str
    name: str
    size: int | None
    media_type: str
    recorded: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: EventRecord) -> list[Attachment]:
        entries = event.data.get("attachments") or []
        if not isinstance(entries, list):
            return []
        return [
            cls(
                event=event.id,
                item=event.item_id,
                sha256=str(e.get("sha256", "")),
                name=str(e.get("name", "")),
                size=e.get("size") if isinstance(e.get("size"), int) else None,
                media_type=str(e.get("media_type") or ""),
                recorded=e,
            )
            for e in entries
            if isinstance(e, dict)
        ]

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")

    def columns(self) -> dict[str, Any]:
        return {**self.recorded, "event": self.event, "item": self.item}


@dataclass(frozen=True, slots=True)
class IssuedDossier:
    """A dossier issued for the case: the data of its `dossier-issue` event."""

    report_id: str
    amendment: int = 0
    supersedes: str | None = None
    bundle_hash: str = ""
    pdf_sha256: str = ""
    pages: int = 0
    prepared_for: str = ""
    reason: str = ""
    last_event: int = 0  # the newest event the dossier's bundle holds
    findings: int = 0
    personal_data: bool = False  # printed the case entities' personal data (a disclosure)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> IssuedDossier:
        known = _known(cls, data)
        return cls(**{**known, "report_id": str(data.get("report_id"))})

    def to_data(self) -> dict[str, Any]:
        """The `dossier-issue` event's data; `personal_data` only when it was printed, so
        the event of a dossier without it keeps the shape it has always had."""
        data = _columns(self)
        if not self.personal_data:
            del data["personal_data"]
        return data


@dataclass(frozen=True, slots=True)
class ReportDetails:
    """What identifies one issue of a dossier; the bundle's "report" section."""

    report_id: str
    version: int
    amendment: int  # 0 for the original issue
    supersedes: str | None  # the previous issue's report ID
    original: str | None  # the first issue's report ID
    issued_at: str
    issued_by: str  # handle of the issuing actor
    prepared_for: str = ""
    reason: str = ""  # what changed and why (amendments only)
    places: tuple[str, ...] = ()  # where the work was done
    changes: tuple[str, ...] = ()  # events recorded since the previous issue

    def to_bundle(self) -> dict[str, Any]:
        return {**_columns(self), "places": list(self.places), "changes": list(self.changes)}


@dataclass(frozen=True, slots=True)
class CaseFile:
    """Everything of one case that a dossier shows or embeds."""

    case: CaseRow
    items: tuple[ItemRecord, ...]  # rows, in store order
    signed_items: Mapping[str, ItemRecord]  # item ID -> record signed at creation
    events: tuple[EventRecord, ...]  # every event of the case, by id
    actors: tuple[ActorRecord, ...]  # those who signed, received or witnessed
    agencies: tuple[AgencyRecord, ...]
    attachments: tuple[Attachment, ...]  # by event id
    analyses: tuple[Analysis, ...]  # species identifications, by event id
    issued: tuple[IssuedDossier, ...]  # earlier dossiers, oldest first
    store_id: str

    def item(self, row: ItemRecord) -> ItemRecord:
        """The item as signed in its creating event; its row when there is none (a
        finding of verification)."""
        return self.signed_items.get(row.id, row)

    @property
    def agency(self) -> AgencyRecord | None:
        """The case's agency."""
        return next((a for a in self.agencies if a.code == self.case.agency_code), None)

    @property
    def last_event(self) -> int:
        return max((e.id for e in self.events), default=0)

    @property
    def entities(self) -> tuple[Entity, ...]:
        """The case's persons, organisations, conveyances and shipments as its signed
        events describe them (no personal data: only commitments to it)."""
        case_chain = (e for e in self.events if e.chain == f"case:{self.case.case_no}")
        return tuple(replay_entity_records(case_chain).values())


def signed_items(events: Iterable[EventRecord]) -> dict[str, ItemRecord]:
    """Each item's record as signed in its creating (seize or sample) event, by item ID."""
    out: dict[str, ItemRecord] = {}
    for ev in events:
        if ev.item_id and ev.seq == 1 and ev.type in GENESIS_TYPES:
            record = ev.data.get("item")
            if isinstance(record, dict) and record.get("id") == ev.item_id:
                out[ev.item_id] = ItemRecord.from_mapping(record)
    return out


def collect_case(store: Store, case_no: str, *, also_actors: tuple[str, ...] = ()) -> CaseFile:
    """Read case `case_no` in one transaction; `also_actors` are included with those involved."""
    with store.engine.connect() as conn, conn.begin():
        case = (
            conn.execute(text("SELECT * FROM cases WHERE case_no = :c"), {"c": case_no})
            .mappings()
            .first()
        )
        if case is None:
            raise NotFound.case(case_no)
        items = [
            ItemRecord.from_mapping(dict(r))
            for r in conn.execute(
                text("SELECT * FROM items WHERE case_no = :c"), {"c": case_no}
            ).mappings()
        ]
        events = [
            EventRecord.from_values(tuple(r))
            for r in conn.execute(
                text(f"SELECT {EVENT_COLUMNS} FROM events WHERE case_no = :c ORDER BY id"),
                {"c": case_no},
            )
        ]
        actor_columns = ", ".join(f.name for f in fields(ActorRecord))
        actors = [
            ActorRecord.from_mapping(dict(r))
            for r in conn.execute(text(f"SELECT {actor_columns} FROM actors")).mappings()
        ]
        agencies = [
            AgencyRecord.from_mapping(dict(r))
            for r in conn.execute(text("SELECT * FROM agencies")).mappings()
        ]
        meta: dict[str, str] = {
            str(k): str(v)
            for k, v in conn.exec_driver_sql("SELECT key, value FROM store_meta").all()
        }
    return _case_file(
        case=CaseRow.from_mapping(dict(case)),
        items=items,
        events=events,
        actors=actors,
        agencies=agencies,
        also_actors=also_actors,
        store_id=str(meta.get("store_id", "")),
    )


def _case_file(
    *,
    case: CaseRow,
    items: list[ItemRecord],
    events: list[EventRecord],
    actors: list[ActorRecord],
    agencies: list[AgencyRecord],
    also_actors: tuple[str, ...],
    store_id: str,
) -> CaseFile:
    involved = set(also_actors)
    for e in events:
        involved.update(h for h in (e.actor, e.counterparty, e.witness) if h)
    # The agencies of the case and of every registered actor, as the bundle has always held.
    codes = {case.agency_code} | {a.agency_code for a in actors}
    return CaseFile(
        case=case,
        items=tuple(items),
        signed_items=signed_items(events),
        events=tuple(events),
        actors=tuple(a for a in actors if a.handle in involved),
        agencies=tuple(a for a in agencies if a.code in codes),
        attachments=tuple(a for e in events for a in Attachment.from_event(e)),
        analyses=tuple(species_identifications(events)),
        issued=tuple(
            IssuedDossier.from_data(e.data) for e in events if e.type == EventType.DOSSIER_ISSUE
        ),
        store_id=store_id,
    )
