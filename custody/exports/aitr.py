"""The CITES Annual Illegal Trade Report (Res. Conf. 11.17 (Rev. CoP17)).

One row per seizure (case) and species/term/unit, for items seized in the
year (local date of seizure), in the template's column order. Species from the
DNA identification when there is one, else the claimed species marked
"(claimed)". Quantities are summed in the CITES unit; a blank unit means a
number of specimens. Sub-samples are parts of their items and are not counted.
The report leaves as a disclosure: a `share-export` event on each case in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import col, select

from custody.domain import EventType
from custody.errors import InvalidInput
from custody.events import Signer, check_permission, event_time
from custody.exports import check_output
from custody.exports.common import (
    ExportResult,
    Seizure,
    format_of,
    load_seizure,
    table_bytes,
    write_recorded,
)
from custody.models import Case
from custody.store import Store
from custody.timeutil import now_utc

AITR_COLUMNS = (
    "Date of seizure",
    "Species (scientific name)",
    "Description of specimens (CITES term)",
    "Quantity",
    "Unit (CITES unit; blank = number of specimens)",
    "Detecting agency",
    "Location of incident",
    "Method of detection",
    "Mode of transport",
    "Method of concealment",
    "Reason for seizure",
    "Alleged country of origin",
    "Country(ies) of transit",
    "Alleged country of final destination",
    "Nationality of offenders",
    "Estimated value in country (amount, currency)",
    "Law under which charges were brought",
    "Disposal of confiscated specimens",
    "Additional information",
)
FIRST_YEAR = 1975  # CITES entered into force


def check_year(year: int) -> int:
    this_year = now_utc().year
    if not FIRST_YEAR <= year <= this_year:
        raise InvalidInput(
            f"Year {year} cannot be reported; give a year from {FIRST_YEAR} to {this_year}."
        )
    return year


def _join(values: Any) -> str:
    if not values:
        return ""
    if isinstance(values, list):
        return ", ".join(str(v) for v in values)
    return str(values)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 6)


def seizure_rows(seizure: Seizure, year: int) -> list[list[Any]]:
    """The AITR rows of one seizure: items seized in `year`, grouped by species/term/unit."""
    facts = seizure.facts
    items = [i for i in seizure.top_items if i.seized_at_local[:4] == str(year)]
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for item in items:
        trade = seizure.terms[item.id]
        key = (seizure.species[item.id].label, trade.term, trade.unit)
        groups.setdefault(key, []).append(item)
    agency = facts.get("detecting_agency") or (seizure.agency.name if seizure.agency else "")
    place = facts.get("location") or next((i.place for i in items if i.place), "")
    if facts.get("location_type"):
        place = f"{place} ({facts.get('location_type')})" if place else facts.get("location_type")
    offenders = []
    for entity in seizure.entities.values():
        nationality = entity.attributes.get("nationality")
        if entity.kind == "person" and entity.category in ("suspect", "convicted") and nationality:
            if nationality not in offenders:
                offenders.append(nationality)
    value = ""
    if facts.get("value_amount") is not None:
        value = f"{_number(facts.get('value_amount')):,} {facts.get('value_currency', '')}".strip()
    law = facts.get("law") or seizure.case.legal_basis
    rows: list[list[Any]] = []
    for (species, term, unit), group in groups.items():
        quantities = [seizure.terms[i.id].quantity for i in group]
        known = [q for q in quantities if q is not None]
        disposals = sorted(
            {str((seizure.states[i.id].disposal or {}).get("method", "")) for i in group} - {""}
        )
        info = [f"Case {seizure.case.case_no}", f"{len(group)} item(s)", "source I, purpose L"]
        if len(known) < len(quantities):
            info.append(f"quantity unknown for {len(quantities) - len(known)} item(s)")
        if seizure.species[group[0].id].basis == "identified":
            info.append("species identified by DNA barcoding")
        rows.append(
            [
                min(i.seized_at_local[:10] for i in group),
                species,
                term,
                _number(sum(known)) if known else None,
                unit,
                agency,
                place,
                facts.get("detection_method", ""),
                facts.get("transport_mode", ""),
                facts.get("concealment", ""),
                facts.get("reason", ""),
                _join(facts.get("origin")),
                _join(facts.get("transit")),
                _join(facts.get("destination")),
                ", ".join(offenders),
                value,
                law,
                facts.get("disposal") or ", ".join(disposals),
                "; ".join(info),
            ]
        )
    return rows


def aitr_rows(store: Store, year: int) -> tuple[list[list[Any]], dict[str, list[str]]]:
    """(rows, case -> items reported) for the seizures of `year`."""
    check_year(year)
    rows: list[list[Any]] = []
    reported: dict[str, list[str]] = {}
    with store.read() as session:
        cases = session.exec(select(Case).order_by(col(Case.case_no))).all()
        for case in cases:
            seizure = load_seizure(session, case)
            case_rows = seizure_rows(seizure, year)
            if case_rows:
                rows.extend(case_rows)
                reported[case.case_no] = [
                    i.id for i in seizure.top_items if i.seized_at_local[:4] == str(year)
                ]
    rows.sort(key=lambda r: (r[0], r[18]))
    return rows, reported


def export_aitr(
    store: Store, *, year: int, out: Path, signer: Signer, at: str | None = None
) -> ExportResult:
    """Write the AITR of `year` to `out` (.xlsx or .csv) and record the disclosure."""
    fmt = format_of(out.suffix, ("xlsx", "csv"))
    check_year(year)
    check_output(out)
    check_permission(signer.actor, EventType("share-export"))
    when = event_time(at)
    rows, reported = aitr_rows(store, year)
    data = table_bytes(AITR_COLUMNS, rows, fmt=fmt, title=f"AITR {year}")
    return write_recorded(
        store,
        out=out,
        data=data,
        signer=signer,
        cases=list(reported),
        at=when,
        record={
            "export": "aitr",
            "recipient": "CITES Secretariat (Annual Illegal Trade Report)",
            "year": year,
            "format": fmt,
            "rows": len(rows),
        },
        items=reported,
        n_rows=len(rows),
    )
