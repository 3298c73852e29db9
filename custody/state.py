"""An item's current state, derived by replaying its custody events.

Invariant: state is never stored; it is computed from the append-only chain, so
it can never disagree with the signed record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ItemState:
    item_id: str
    custodian: str | None = None
    seal: str | None = None  # current intact seal, None when unsealed
    location: str = ""
    status: str = "in custody"  # in custody | in transit | disposed
    pending_receiver: str | None = None
    last_at: str | None = None
    last_seq: int = 0
    last_hash: str | None = None
    condition: str = ""  # condition recorded on the last receipt
    disposal: dict[str, Any] | None = None
    corrected: dict[int, list[int]] = field(default_factory=dict)  # event id -> correcting ids
    children: list[str] = field(default_factory=list)
    seals_seen: list[str] = field(default_factory=list)

    @property
    def disposed(self) -> bool:
        return self.disposal is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "custodian": self.custodian,
            "seal": self.seal,
            "location": self.location,
            "status": self.status,
            "pending_receiver": self.pending_receiver,
            "condition": self.condition,
            "disposal": self.disposal,
            "last_event_at": self.last_at,
            "events": self.last_seq,
        }


def apply_event(state: ItemState, ev: Any) -> None:
    """Advance `state` by one event row (anything with the Event columns)."""
    data = json.loads(ev.data) if isinstance(ev.data, str) else ev.data
    kind = ev.type
    state.last_at = ev.at
    state.last_seq = ev.seq
    state.last_hash = ev.hash
    if kind == "seize":
        state.custodian = ev.actor
        seal = data.get("item", {}).get("seal_at_seizure") or None
        state.seal = seal
        if seal:
            state.seals_seen.append(seal)
        state.location = data.get("item", {}).get("place", "")
    elif kind == "sample" and data.get("parent") is not None:
        # Genesis of a sub-sample: held by whoever took it, never sealed yet.
        state.custodian = ev.actor
        state.location = data.get("location", "")
    elif kind == "sample":
        state.children.append(data["child"])
    elif kind == "seal":
        state.seal = data["seal"]
        state.seals_seen.append(data["seal"])
    elif kind == "unseal":
        state.seal = None
    elif kind == "transfer":
        state.custodian = ev.counterparty
        state.pending_receiver = ev.counterparty
        state.status = "in transit"
        if data.get("location"):
            state.location = data["location"]
    elif kind == "receive":
        state.pending_receiver = None
        state.status = "in custody"
        state.condition = data.get("condition", "")
    elif kind == "store":
        state.location = data["location"]
    elif kind == "dispose":
        state.disposal = data
        state.status = "disposed"
        state.pending_receiver = None
    elif kind == "correct":
        state.corrected.setdefault(int(data["corrects"]), []).append(int(ev.id))


def replay(item_id: str, events: Iterable[Any]) -> ItemState:
    state = ItemState(item_id=item_id)
    for ev in events:
        apply_event(state, ev)
    return state
