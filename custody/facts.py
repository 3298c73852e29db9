"""Seizure facts of a case and the CITES trade term and unit of its items.

Invariants:
- Seizure facts (how, where and why a seizure was made; origin, transit and
  destination; value; law; disposal) are `seizure-facts` events on the case
  chain, each carrying only the fields it sets or clears (`None`). The current
  facts are the fields of all such events applied in chain order.
- An item's CITES trade term and unit default to what its record says (a weight
  in g or kg -> KIL, a volume -> LTR, a count -> blank unit = number of
  specimens; the term from words of its description, else UNS) and are changed
  by `trade-terms` events on the case chain. Every code is checked against the
  bundled CITES lists; countries are ISO 3166-1 alpha-2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from custody import codes
from custody.caselog import append_case_event, case_events, require_case
from custody.errors import InvalidInput
from custody.events import Signer, Writer, event_time, get_item
from custody.models import Event, Item
from custody.store import Store

LOCATION_TYPES = ("airport", "seaport", "land-border", "mail", "inland", "online")
TRANSPORT_MODES = ("air", "sea", "road", "rail", "mail", "on-foot", "other")
SEIZURE_POINTS = ("import", "export", "transit", "internal")
TEXT_FACTS = (
    "detecting_agency",
    "detection_method",
    "location",
    "concealment",
    "reason",
    "law",
    "disposal",
)
CHOICE_FACTS: dict[str, tuple[str, ...]] = {
    "location_type": LOCATION_TYPES,
    "transport_mode": TRANSPORT_MODES,
    "point_of_seizure": SEIZURE_POINTS,
}
COUNTRY_FACTS = ("origin", "transit", "destination")
FACT_FIELDS = (
    "detecting_agency",
    "detection_method",
    "location_type",
    "location",
    "point_of_seizure",
    "transport_mode",
    "concealment",
    "reason",
    "origin",
    "transit",
    "destination",
    "value_amount",
    "value_currency",
    "law",
    "disposal",
)
MAX_TEXT = 500
#: No seizure is valued at a thousand trillion in any currency: larger is a typing error.
MAX_VALUE = 1e15


def check_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Validated facts: codes upper-cased, choices checked; "" or None clears a field."""
    out: dict[str, Any] = {}
    for name, raw in facts.items():
        if name not in FACT_FIELDS:
            raise InvalidInput(
                f"'{name}' is not a seizure fact; use one of {', '.join(FACT_FIELDS)}."
            )
        if raw is None or raw == "" or raw == []:
            out[name] = None
            continue
        if name in TEXT_FACTS:
            value = str(raw).strip()
            if len(value) > MAX_TEXT:
                raise InvalidInput(
                    f"The {name.replace('_', ' ')} is longer than {MAX_TEXT} characters; shorten it."
                )
            out[name] = value or None
        elif name in CHOICE_FACTS:
            value = str(raw).strip().lower().replace(" ", "-")
            if value not in CHOICE_FACTS[name]:
                raise InvalidInput(
                    f"'{raw}' is not a {name.replace('_', ' ')}; use one of "
                    f"{', '.join(CHOICE_FACTS[name])}."
                )
            out[name] = value
        elif name in COUNTRY_FACTS:
            items = [raw] if isinstance(raw, str) else list(raw)
            out[name] = codes.check_countries(items, where=name) or None
        elif name == "value_amount":
            try:
                amount = float(raw)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"The estimated value '{raw}' is not a number; give an amount such as 125000."
                ) from None
            if not math.isfinite(amount) or amount < 0:
                raise InvalidInput(
                    f"The estimated value {raw} is not a positive amount; give an amount such as 125000."
                )
            if amount > MAX_VALUE:
                raise InvalidInput(
                    f"The estimated value {raw} is beyond any seizure's value (at most "
                    f"{MAX_VALUE:,.0f}); check the amount."
                )
            out[name] = amount
        elif name == "value_currency":
            out[name] = codes.check_currency(str(raw))
    return out


@dataclass
class SeizureFacts:
    """The current facts of a case and the event that last set each one."""

    case_no: str
    facts: dict[str, Any] = field(default_factory=dict)
    set_by: dict[str, int] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.facts.get(name)
        return default if value is None else value

    def to_dict(self) -> dict[str, Any]:
        return {"case_no": self.case_no, "facts": dict(self.facts), "set_by": dict(self.set_by)}


def read_facts(session: Session, case_no: str) -> SeizureFacts:
    result = SeizureFacts(case_no=case_no, facts=dict.fromkeys(FACT_FIELDS))
    for ev in case_events(session, case_no, ["seizure-facts"]):
        for name, value in json.loads(ev.data).get("facts", {}).items():
            result.facts[name] = value
            result.set_by[name] = ev.id
    return result


def seizure_facts(store: Store, case_no: str) -> SeizureFacts:
    with store.read() as session:
        require_case(session, case_no)
        return read_facts(session, case_no)


def record_seizure_facts(
    store: Store,
    *,
    case_no: str,
    signer: Signer,
    facts: Mapping[str, Any],
    at: str | None = None,
) -> Event:
    """Record (or change) seizure facts of a case as one signed case event."""
    checked = check_facts(facts)
    if not checked:
        raise InvalidInput(
            "No seizure fact was given; pass at least one, e.g. --location-type airport."
        )
    when = event_time(at)
    with store.write() as session:
        require_case(session, case_no)
        current = read_facts(session, case_no).facts
        changed = {k: v for k, v in checked.items() if current.get(k) != v}
        if not changed:
            raise InvalidInput(
                f"Case {case_no} already records these seizure facts; nothing was changed."
            )
        writer = Writer(session)
        row = append_case_event(
            writer,
            case_no=case_no,
            kind="seizure-facts",
            signer=signer,
            data={"facts": changed},
            at=when,
        )
        writer.finish()
        session.expunge(row)
    return row


@dataclass(frozen=True)
class TradeTerm:
    """An item's CITES description: term, unit ("" = number of specimens), quantity."""

    item_id: str
    term: str
    unit: str
    quantity: float | None
    derived: bool  # True while no trade-terms event set it

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item_id,
            "term": self.term,
            "unit": self.unit,
            "quantity": self.quantity,
            "derived": self.derived,
        }


def default_trade_term(item: Item) -> TradeTerm:
    quantity, unit = codes.default_quantity(count=item.count, weight=item.weight, unit=item.unit)
    return TradeTerm(
        item_id=item.id,
        term=codes.default_term(item.description),
        unit=unit,
        quantity=quantity,
        derived=True,
    )


def _apply_term(item: Item, base: TradeTerm, term: str | None, unit: str | None) -> TradeTerm:
    new_unit = base.unit if unit is None else unit
    quantity = codes.convert_quantity(
        count=item.count, weight=item.weight, unit=item.unit, cites_unit=new_unit
    )
    return TradeTerm(
        item_id=item.id,
        term=base.term if term is None else term,
        unit=new_unit,
        quantity=quantity,
        derived=False,
    )


def read_trade_terms(session: Session, case_no: str) -> dict[str, TradeTerm]:
    items = {i.id: i for i in session.exec(select(Item).where(Item.case_no == case_no)).all()}
    terms = {item_id: default_trade_term(item) for item_id, item in items.items()}
    for ev in case_events(session, case_no, ["trade-terms"]):
        data = json.loads(ev.data)
        for item_id in data.get("items", []):
            if item_id in items:
                terms[item_id] = _apply_term(
                    items[item_id], terms[item_id], data.get("term"), data.get("unit")
                )
    return terms


def trade_terms(store: Store, case_no: str) -> dict[str, TradeTerm]:
    with store.read() as session:
        require_case(session, case_no)
        return read_trade_terms(session, case_no)


def record_trade_terms(
    store: Store,
    *,
    item_ids: Sequence[str],
    signer: Signer,
    term: str | None = None,
    unit: str | None = None,
    at: str | None = None,
) -> list[Event]:
    """Set the CITES term and/or unit of items (one event per case involved).

    `unit=""` means a number of specimens; `None` leaves the field as it is.
    """
    if not item_ids:
        raise InvalidInput("Name at least one item to set its CITES trade term.")
    if term is None and unit is None:
        raise InvalidInput("Give a CITES term (--term) or unit (--unit), or both.")
    term = codes.check_cites("term", term) if term is not None else None
    unit = codes.check_unit(unit) if unit is not None else None
    when = event_time(at)
    rows: list[Event] = []
    with store.write() as session:
        by_case: dict[str, list[str]] = {}
        for item_id in dict.fromkeys(item_ids):
            item = get_item(session, item_id)
            by_case.setdefault(item.case_no, []).append(item_id)
            if unit is not None:
                amount = codes.convert_quantity(
                    count=item.count, weight=item.weight, unit=item.unit, cites_unit=unit
                )
                if amount is None:
                    recorded = (
                        f"{item.weight} {item.unit}"
                        if item.weight is not None
                        else f"{item.count} pieces"
                        if item.count is not None
                        else "no quantity"
                    )
                    raise InvalidInput(
                        f"Item {item_id} records {recorded}, which cannot be given in CITES unit "
                        f"'{unit or 'number of specimens'}'; choose a unit that matches the record."
                    )
        writer = Writer(session)
        for case_no, ids in by_case.items():
            data: dict[str, Any] = {"items": ids}
            if term is not None:
                data["term"] = term
            if unit is not None:
                data["unit"] = unit
            rows.append(
                append_case_event(
                    writer, case_no=case_no, kind="trade-terms", signer=signer, data=data, at=when
                )
            )
        writer.finish()
        for row in rows:
            session.expunge(row)
    return rows
