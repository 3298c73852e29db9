"""Appending to and reading a case's own chain (`case:<CASE_NO>`).

Invariants: case-level facts (seizure facts, trade terms, case entities,
exports, imports, audits) are signed events on the case chain, appended through
`custody.events.Writer` like every other event; their current value is derived
by reading the chain in order, later events overriding earlier ones, so there
is no update path and `custody verify` checks them like any chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from custody.domain import EventType
from custody.errors import NotFound
from custody.events import Draft, Signer, Writer, check_permission
from custody.models import Case, Event


def case_chain(case_no: str) -> str:
    return f"case:{case_no}"


def require_case(session: Session, case_no: str) -> Case:
    case = session.get(Case, case_no)
    if case is None:
        raise NotFound.case(case_no)
    return case


def append_case_event(
    writer: Writer,
    *,
    case_no: str,
    kind: str,
    signer: Signer,
    data: dict[str, Any],
    at: str | None = None,
) -> Event:
    """Check the actor's role and append one signed event to the case chain."""
    check_permission(signer.actor, EventType(kind))
    draft = Draft(
        chain=case_chain(case_no), case_no=case_no, type=EventType(kind), data=data, at=at
    )
    return writer.append(draft, signer=signer)


def case_events(session: Session, case_no: str, kinds: Iterable[str] | None = None) -> list[Event]:
    """The case chain's events (optionally of some types), in chain order."""
    query = select(Event).where(Event.chain == case_chain(case_no))
    if kinds is not None:
        query = query.where(col(Event.type).in_(list(kinds)))
    return list(session.exec(query.order_by(col(Event.seq))).all())
