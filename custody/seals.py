"""Seal numbers: one physical seal closes one item.

A seal number already recorded on another item (at seizure or by a seal
event) is refused unless the caller says the duplicate is real (two seal rolls
printed with the same numbers happen; a typo is far more common).
"""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from custody.errors import InvalidInput
from custody.models import Event, Item


def item_with_seal(session: Session, seal: str, *, other_than: str | None) -> str | None:
    """The ID of another item that carries or carried `seal`, or None."""
    seal = seal.strip()
    if not seal:
        return None
    query = select(Item.id).where(Item.seal_at_seizure == seal)
    if other_than is not None:
        query = query.where(Item.id != other_than)
    found = session.exec(query.order_by(col(Item.id))).first()
    if found is not None:
        return str(found)
    events = select(Event.item_id, Event.data).where(Event.type == "seal")
    for item_id, data in session.exec(events.order_by(col(Event.id))).all():
        if item_id == other_than or item_id is None:
            continue
        try:
            recorded = json.loads(data).get("seal")
        except (ValueError, AttributeError):
            continue
        if isinstance(recorded, str) and recorded.strip() == seal:
            return str(item_id)
    return None


def check_seal_unused(
    session: Session, seal: str, *, item_id: str | None, allow_duplicate: bool, where: str = ""
) -> None:
    """Refuse `seal` when another item carries it already, naming that item."""
    if allow_duplicate:
        return
    other = item_with_seal(session, seal, other_than=item_id)
    if other is not None:
        at = f" ({where})" if where else ""
        raise InvalidInput(
            f"Seal {seal.strip()}{at} is already recorded on item {other}; check the number, "
            f"or pass --allow-duplicate-seal if two seals really carry it."
        )
