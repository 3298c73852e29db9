"""Replaying item chains through the custody rules, as verification does.

A well-signed event that no legitimate command could have recorded (a release
by someone who did not hold the item, an event after disposal, a time going
backwards, a sub-item that its parent's chain never gave out) is a finding.
The rules are the writer's own (`custody.events.check_transition`), so the
replay and the commands can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from custody.domain import (
    CASE_TYPES,
    GENESIS_TYPES,
    INTEL_TYPES,
    EventRecord,
    EventType,
    FindingKind,
    Role,
)
from custody.errors import CustodyError
from custody.findings import Finding
from custody.state import ItemState, apply_event, moves_act_clock


@dataclass(frozen=True)
class ActorRole:
    """Who recorded an event, as the rules see them."""

    handle: str
    role: str


@runtime_checkable
class RoleLookup(Protocol):
    """Roles that change over time (`custody.trust.RoleBook`): the role at an event."""

    def role_of(self, ev: EventRecord) -> str: ...


def replay_rules(
    chain: str, events: Sequence[EventRecord], roles: Mapping[str, str] | RoleLookup
) -> list[Finding]:
    """Replay one item chain through the custody rules; each breach is a finding."""
    out: list[Finding] = []
    state = ItemState(item_id=chain)
    authors: dict[int, str] = {}
    prev_at: str | None = None
    for ev in events:
        if not ev.data_readable:
            continue  # reported as altered already
        role = roles.role_of(ev) if isinstance(roles, RoleLookup) else roles.get(ev.actor, "")
        problem = _breach(ev, state, ActorRole(ev.actor, role), authors, prev_at)
        if problem:
            out.append(
                Finding(
                    chain,
                    ev.id,
                    FindingKind.INSERTED,
                    f"Event {ev.id} ({ev.type}) breaks the custody rules: {problem}; no legitimate command records it.",
                )
            )
        authors[ev.id] = ev.actor
        if moves_act_clock(ev.type) and (prev_at is None or ev.at > prev_at):
            prev_at = ev.at
        apply_event(state, ev)
    return out


def _breach(
    ev: EventRecord,
    state: ItemState,
    actor: ActorRole,
    authors: Mapping[int, str],
    prev_at: str | None,
) -> str | None:
    """Why the rules refuse `ev` in `state`, or None when a command could record it."""
    from custody.events import check_permission, check_transition

    kind = ev.kind
    try:
        if kind is None or kind in CASE_TYPES or kind in INTEL_TYPES:
            return f"'{ev.type}' is not an item event type"
        if ev.seq == 1:
            if kind not in GENESIS_TYPES:
                return f"an item's first event must be seize or sample, not {ev.type}"
            check_permission(actor, kind)
        elif prev_at is not None and ev.at < prev_at:
            return f"its time {ev.at} is earlier than the event before it ({prev_at})"
        elif kind == EventType.CORRECT:
            target = authors.get(int(ev.data.get("corrects", 0)))
            if actor.role != Role.ADMIN and target is not None and target != ev.actor:
                return f"'{ev.actor}' corrected an event recorded by '{target}'"
        else:
            check_transition(state, kind, actor, ev.data)
            if kind == EventType.TRANSFER and ev.counterparty is None:
                return "a transfer without a receiver"
    except CustodyError as exc:
        return str(exc).rstrip(".")
    return None


def announced_children(events: Sequence[EventRecord]) -> dict[str, EventRecord]:
    """Sub-items a parent's chain gave out (a `sample` naming the child, or the
    note `item add --parent` writes), by child item ID."""
    out: dict[str, EventRecord] = {}
    for ev in events:
        child = ev.data.get("child") if ev.type == EventType.SAMPLE else None
        child = child or (ev.data.get("sub_item") if ev.type == EventType.NOTE else None)
        if isinstance(child, str):
            out[child] = ev
    return out


def check_sub_items(chains: Mapping[str, Sequence[EventRecord]]) -> list[Finding]:
    """A sub-item's creating event must be matched by its parent's chain giving it out,
    by the same actor; the parent's event itself is held to the custody rules by
    `replay_rules` (custodian only, not sealed). Parents outside the scope are skipped."""
    out: list[Finding] = []
    given: dict[str, dict[str, EventRecord]] = {}
    for chain, events in chains.items():
        if not events or events[0].seq != 1:
            continue
        parent = _parent_of(events[0])
        if parent is None or parent not in chains:
            continue
        if parent not in given:
            given[parent] = announced_children(chains[parent])
        announced = given[parent].get(chain)
        if announced is None or announced.actor != events[0].actor:
            out.append(
                Finding(
                    chain,
                    events[0].id,
                    FindingKind.INSERTED,
                    f"Item {chain} claims to be taken from {parent}, but {parent}'s chain has no "
                    f"event by '{events[0].actor}' giving it out; no legitimate command records it.",
                )
            )
    return out


def _parent_of(genesis: EventRecord) -> str | None:
    if genesis.type == EventType.SAMPLE:
        parent = genesis.data.get("parent")
    else:
        parent = (genesis.data.get("item") or {}).get("parent_id")
    return parent if isinstance(parent, str) else None
