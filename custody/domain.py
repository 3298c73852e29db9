"""The domain's words as types, and the one typed view of a custody event.

Invariants:
- Every custody event, whether just written (`models.Event`), loaded for
  verification (a SQL row tuple), or read back from a bundle or a dossier
  (a dict), becomes one `EventRecord`; its JSON `data` is parsed once, when
  the record is made, and never again.
- Event types, roles, item statuses and finding kinds are `StrEnum`s, so they
  compare equal to the strings stored in the database and in signed bodies
  (nothing stored changes), and a misspelt member is a type error.
- Each enum turns its members into words in exactly one place (`describe`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class EventType(StrEnum):
    CASE_OPEN = "case-open"
    SEIZE = "seize"
    SEAL = "seal"
    UNSEAL = "unseal"
    TRANSFER = "transfer"
    RECEIVE = "receive"
    STORE = "store"
    SAMPLE = "sample"
    ANALYSE = "analyse"
    LABEL_PRINT = "label-print"
    DISPOSE = "dispose"
    NOTE = "note"
    CORRECT = "correct"
    DOSSIER_ISSUE = "dossier-issue"
    VOID = "void"
    # Case-level intelligence and evidence-room events (issue 15).
    SEIZURE_FACTS = "seizure-facts"
    TRADE_TERMS = "trade-terms"
    ENTITY_ADD = "entity-add"
    ENTITY_UPDATE = "entity-update"
    ENTITY_LINK = "entity-link"
    NOMINAL_ERASE = "nominal-erase"
    SHARE_EXPORT = "share-export"
    SMART_IMPORT = "smart-import"
    AUDIT = "audit"

    @property
    def description(self) -> str:
        return _EVENT_WORDS[self]

    @classmethod
    def parse(cls, value: str) -> EventType | None:
        """The member named by `value`, or None for a word that is no event type."""
        try:
            return cls(value)
        except ValueError:
            return None


_EVENT_WORDS: dict[EventType, str] = {
    EventType.CASE_OPEN: "a case was opened",
    EventType.SEIZE: "an item was seized and logged",
    EventType.SEAL: "a tamper-evident seal was applied",
    EventType.UNSEAL: "a seal was broken",
    EventType.TRANSFER: "custody passed from one actor to another",
    EventType.RECEIVE: "the receiver confirmed receipt and recorded the condition",
    EventType.STORE: "the item was put in a storage location",
    EventType.SAMPLE: "a sub-sample was taken (creates a child item)",
    EventType.ANALYSE: "a laboratory analysis result was recorded",
    EventType.LABEL_PRINT: "evidence labels were printed",
    EventType.DISPOSE: "the item was destroyed, returned or released to court",
    EventType.NOTE: "a free-text note",
    EventType.CORRECT: "a correction pointing at an earlier event",
    EventType.DOSSIER_ISSUE: "an evidence dossier was issued for the case",
    EventType.VOID: "the item was found to be entered in error and voided",
    EventType.SEIZURE_FACTS: "seizure facts of the case were recorded or changed",
    EventType.TRADE_TERMS: "CITES trade terms and units were set for items",
    EventType.ENTITY_ADD: "a person, organisation, conveyance or shipment was added",
    EventType.ENTITY_UPDATE: "a case entity or its personal data was changed",
    EventType.ENTITY_LINK: "a case entity was linked to an item",
    EventType.NOMINAL_ERASE: "a case entity's personal data was erased",
    EventType.SHARE_EXPORT: "seizure records were exported to another agency",
    EventType.SMART_IMPORT: "a SMART patrol was imported",
    EventType.AUDIT: "a storage location was audited",
}

#: Event types that open an item's chain.
GENESIS_TYPES = frozenset({EventType.SEIZE, EventType.SAMPLE})
#: Event types that belong to a case chain, never to an item's.
CASE_TYPES = frozenset({EventType.CASE_OPEN, EventType.DOSSIER_ISSUE})
#: Case-chain events of seizure facts, case entities, exports, imports and audits.
INTEL_TYPES = frozenset(
    {
        EventType.SEIZURE_FACTS,
        EventType.TRADE_TERMS,
        EventType.ENTITY_ADD,
        EventType.ENTITY_UPDATE,
        EventType.ENTITY_LINK,
        EventType.NOMINAL_ERASE,
        EventType.SHARE_EXPORT,
        EventType.SMART_IMPORT,
        EventType.AUDIT,
    }
)


class Role(StrEnum):
    OFFICER = "officer"
    CUSTODIAN = "custodian"
    ANALYST = "analyst"
    PROSECUTOR = "prosecutor"
    ADMIN = "admin"


class ItemStatus(StrEnum):
    IN_CUSTODY = "in custody"
    IN_TRANSIT = "in transit"
    TRANSFERRED = "transferred"  # to another agency: its custody goes on in their store
    DISPOSED = "disposed"
    VOID = "void"


class FindingKind(StrEnum):
    """What verification can find wrong with the record."""

    ALTERED = "altered"
    MISSING = "missing"
    INSERTED = "inserted"
    REORDERED = "reordered"
    BAD_SIGNATURE = "bad signature"
    UNKNOWN_KEY = "unknown key"
    UNTRUSTED_KEY = "untrusted key"
    ROLLED_BACK = "rolled back"


class _EventColumns(Protocol):
    """Anything with the event table's columns (an ORM row)."""

    id: Any
    chain: str
    seq: int
    item_id: str | None
    case_no: str
    type: str
    at: str
    recorded_at: str
    actor: str
    actor_key: str
    counterparty: str | None
    witness: str | None
    data: str
    prev_hash: str | None
    hash: str
    signatures: str
    log_prev: str | None
    log_hash: str
    origin_id: int | None
    origin_store: str | None


#: The event table's columns, in the order `EventRecord.from_tuple` reads them.
EVENT_FIELDS: tuple[str, ...] = (
    "id", "chain", "seq", "item_id", "case_no", "type", "at", "recorded_at", "actor",
    "actor_key", "counterparty", "witness", "data", "prev_hash", "hash", "signatures",
    "log_prev", "log_hash", "origin_id", "origin_store",
)  # fmt: skip
#: Columns only events brought in from another store's custody bundle fill.
ORIGIN_FIELDS = ("origin_id", "origin_store")
EVENT_COLUMNS = ", ".join(EVENT_FIELDS)


class UnreadableEvent(ValueError):
    """An event's stored data or signatures are not JSON (verification reports it)."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One custody event, typed: its stored columns plus `data` parsed once.

    `data_text` and `signatures_text` keep the stored text exactly, because
    verification checks that the text is in its signed canonical form.
    """

    id: int
    chain: str
    seq: int
    item_id: str | None
    case_no: str
    type: str
    at: str
    recorded_at: str
    actor: str
    actor_key: str
    counterparty: str | None
    witness: str | None
    data_text: str
    prev_hash: str | None
    hash: str
    signatures_text: str
    log_prev: str | None
    log_hash: str
    data: Mapping[str, Any]
    origin_id: int | None = None  # the event's id in the store that recorded it (imported)
    origin_store: str | None = None

    @property
    def signed_id(self) -> int:
        """The id the event was hashed and signed with: its id in the store that recorded it."""
        return self.origin_id if self.origin_id is not None else self.id

    @property
    def kind(self) -> EventType | None:
        """The event type as a member, None for a word no command records."""
        return EventType.parse(self.type)

    @property
    def subject(self) -> str:
        """What a finding about this event names: the item, else the chain."""
        return self.item_id or self.chain

    def signatures(self) -> list[dict[str, str]]:
        """The stored signature list; raises `UnreadableEvent` when it is not a JSON list."""
        try:
            sigs = json.loads(self.signatures_text)
        except (TypeError, ValueError) as exc:
            raise UnreadableEvent(f"Event {self.id} has unreadable signatures.") from exc
        if not isinstance(sigs, list) or not all(isinstance(s, dict) for s in sigs):
            raise UnreadableEvent(f"Event {self.id} has unreadable signatures.")
        return sigs

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> EventRecord:
        """From the columns in `EVENT_FIELDS` order; unreadable data parses as `{}`
        and sets `readable` False (see `data_readable`)."""
        (eid, chain, seq, item_id, case_no, kind, at, recorded_at, actor, actor_key,
         counterparty, witness, data_text, prev_hash, hash_, sigs, log_prev, log_hash,
         *origin) = values  # fmt: skip
        origin_id, origin_store = (origin + [None, None])[:2]
        return cls(
            id=int(eid), chain=chain, seq=int(seq), item_id=item_id, case_no=case_no,
            type=kind, at=at, recorded_at=recorded_at, actor=actor, actor_key=actor_key,
            counterparty=counterparty, witness=witness, data_text=data_text,
            prev_hash=prev_hash, hash=hash_, signatures_text=sigs, log_prev=log_prev,
            log_hash=log_hash, data=_parse_data(data_text),
            origin_id=int(origin_id) if origin_id is not None else None,
            origin_store=origin_store,
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: _EventColumns) -> EventRecord:
        """From an ORM `Event` row."""
        return cls.from_values([getattr(row, f) for f in EVENT_FIELDS])

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EventRecord:
        """From a dict keyed by column name (a bundle's event, a SQL mapping row)."""
        return cls.from_values(
            [values[f] if f not in ORIGIN_FIELDS else values.get(f) for f in EVENT_FIELDS]
        )

    @property
    def data_readable(self) -> bool:
        return not isinstance(self.data, _Unreadable)

    def columns(self) -> dict[str, Any]:
        """The stored columns by name, as a bundle carries them."""
        out = {f: getattr(self, f) for f in EVENT_FIELDS if f not in ("data", "signatures")}
        out["data"] = self.data_text
        out["signatures"] = self.signatures_text
        return out


class _Unreadable(dict[str, Any]):
    """The empty data of an event whose stored data is not a JSON object."""


def _parse_data(text: Any) -> Mapping[str, Any]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return _Unreadable()
    if not isinstance(data, dict):
        return _Unreadable()
    return data
