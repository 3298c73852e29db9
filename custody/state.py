"""An item's current state, derived by replaying its custody events.

Invariant: state is never stored; it is computed from the append-only chain, so
it can never disagree with the signed record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from custody.domain import EventType, ItemStatus

E = EventType


class _Event(Protocol):
    """What replay reads of an event: an `EventRecord`, or an ORM row whose data is text."""

    @property
    def id(self) -> Any: ...
    @property
    def seq(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def at(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def counterparty(self) -> str | None: ...
    @property
    def data(self) -> Any: ...


@dataclass(frozen=True)
class FieldCorrection:
    """A recorded value replaced by a correction; the original stays in the signed record."""

    value: Any
    event: int  # the correcting event
    reason: str


#: Events that record an act on the item; a label print is not one (its time is kept
#: but does not hold back the time of the next hand-over being entered after the fact).
def moves_act_clock(kind: str) -> bool:
    return kind != E.LABEL_PRINT


@dataclass
class ItemState:
    item_id: str
    custodian: str | None = None
    seal: str | None = None  # current intact seal, None when unsealed
    location: str = ""
    status: ItemStatus = ItemStatus.IN_CUSTODY
    pending_receiver: str | None = None
    transferred_to: str | None = None  # agency the item was handed to, until it comes back
    last_at: str | None = None
    last_seq: int = 0
    condition: str = ""  # condition recorded on the last receipt
    disposal: Mapping[str, Any] | None = None
    corrected: dict[int, list[int]] = field(default_factory=dict)  # event id -> correcting ids
    children: list[str] = field(default_factory=list)
    seals_seen: list[str] = field(default_factory=list)  # every seal it has carried (item find)
    # Events withdrawn by a correction without new values: event id -> (correcting event, reason).
    withdrawn: dict[int, tuple[int, str]] = field(default_factory=dict)
    # Item fields corrected by later events (`correct EVENT --set`), newest last.
    field_corrections: dict[str, FieldCorrection] = field(default_factory=dict)
    void: Mapping[str, Any] | None = None  # why and by which event the item was voided
    # For a sub-sample: which item it was taken from, when and by whom.
    origin: Mapping[str, Any] | None = None
    # Time of the last custody act; label prints do not move it (back-office entry).
    act_at: str | None = None

    @property
    def disposed(self) -> bool:
        return self.disposal is not None

    @property
    def voided(self) -> bool:
        return self.void is not None

    def record(self, signed: Mapping[str, Any]) -> dict[str, Any]:
        """An item's record as it now reads: the signed record with its field corrections."""
        return {**signed, **{k: c.value for k, c in self.field_corrections.items()}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "custodian": self.custodian,
            "seal": self.seal,
            "location": self.location,
            "status": (
                f"transferred to {self.transferred_to}" if self.transferred_to else str(self.status)
            ),
            "pending_receiver": self.pending_receiver,
            "condition": self.condition,
            "disposal": dict(self.disposal) if self.disposal is not None else None,
            "void": dict(self.void) if self.void is not None else None,
            "last_event_at": self.last_at,
            "events": self.last_seq,
        }


def apply_event(state: ItemState, ev: _Event) -> None:
    """Advance `state` by one event."""
    data: Mapping[str, Any] = json.loads(ev.data) if isinstance(ev.data, str) else ev.data
    kind = ev.type
    state.last_at = ev.at
    state.last_seq = ev.seq
    if moves_act_clock(kind) and (state.act_at is None or ev.at > state.act_at):
        state.act_at = ev.at
    if kind == E.SEIZE:
        state.custodian = ev.actor
        state.seal = data.get("item", {}).get("seal_at_seizure") or None
        if state.seal:
            state.seals_seen.append(state.seal)
        state.location = data.get("item", {}).get("place", "")
    elif kind == E.SAMPLE and data.get("parent") is not None:
        # Genesis of a sub-sample: held by whoever took it, never sealed yet.
        state.custodian = ev.actor
        state.location = data.get("location", "")
        state.origin = {"item": data["parent"], "at": ev.at, "by": ev.actor}
    elif kind == E.SAMPLE:
        state.children.append(data["child"])
    elif kind == E.SEAL:
        state.seal = data["seal"]
        state.seals_seen.append(data["seal"])
    elif kind == E.UNSEAL:
        state.seal = None
    elif kind == E.TRANSFER:
        state.custodian = ev.counterparty
        state.pending_receiver = ev.counterparty
        state.status = ItemStatus.IN_TRANSIT
        state.transferred_to = data.get("to_agency") or None
        if state.transferred_to:
            state.status = ItemStatus.TRANSFERRED
        # Without a named place, the item is wherever its receiver is.
        state.location = data.get("location") or f"with {ev.counterparty}"
    elif kind == E.RECEIVE:
        state.pending_receiver = None
        state.transferred_to = None
        state.status = ItemStatus.IN_CUSTODY
        state.condition = data.get("condition", "")
    elif kind == E.STORE:
        state.location = data["location"]
    elif kind == E.DISPOSE:
        state.disposal = data
        state.status = ItemStatus.DISPOSED
        state.pending_receiver = None
    elif kind == E.VOID:
        state.void = {"reason": data.get("reason", ""), "event": ev.id, "by": ev.actor, "at": ev.at}
        state.status = ItemStatus.VOID
    elif kind == E.CORRECT:
        state.corrected.setdefault(int(data["corrects"]), []).append(int(ev.id))
        if not data.get("set"):
            state.withdrawn[int(data["corrects"])] = (int(ev.id), str(data.get("reason", "")))
        for name, value in (data.get("set") or {}).items():
            state.field_corrections[name] = FieldCorrection(
                value, int(ev.id), data.get("reason", "")
            )


def replay(item_id: str, events: Iterable[_Event]) -> ItemState:
    state = ItemState(item_id=item_id)
    for ev in events:
        apply_event(state, ev)
    return state
