"""Every item as one row: what `custody item show` knows, plus the species it was
identified as and its CITES trade term, as CSV or JSON.

Invariant: read-only; no event is recorded (an item table names no person
beyond the handles of officers, and stays inside the agency).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from custody.errors import InvalidInput, NotFound
from custody.exports import check_output, write_output
from custody.exports.common import ExportResult, load_seizure, table_bytes
from custody.models import Case
from custody.store import Store

ITEM_FIELDS = (
    "id",
    "case_no",
    "parent_id",
    "description",
    "species",
    "species_reported",
    "species_basis",
    "count",
    "weight",
    "unit",
    "cites_term",
    "cites_quantity",
    "cites_unit",
    "packaging",
    "bag_no",
    "bag_total",
    "seal_at_seizure",
    "other_ids",
    "place",
    "lat",
    "lon",
    "seized_at",
    "seized_at_local",
    "seizing_officer",
    "created_at",
)
STATE_FIELDS = (
    "custodian",
    "seal",
    "location",
    "status",
    "pending_receiver",
    "condition",
    "disposal",
    "last_event_at",
    "events",
)


def item_rows(store: Store, *, case_no: str | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with store.read() as session:
        if case_no:
            case = session.get(Case, case_no)
            if case is None:
                raise NotFound(
                    f"Case {case_no} does not exist; list cases with 'custody case list'."
                )
            cases = [case]
        else:
            cases = list(session.exec(select(Case).order_by(col(Case.case_no))).all())
        for case in cases:
            seizure = load_seizure(session, case)
            for item in seizure.items:
                data = item.model_dump()
                data["other_ids"] = json.loads(item.other_ids or "{}")
                species = seizure.species[item.id]
                term = seizure.terms[item.id]
                data.update(
                    {
                        "species_reported": species.name,
                        "species_basis": species.basis,
                        "cites_term": term.term,
                        "cites_quantity": term.quantity,
                        "cites_unit": term.unit,
                    }
                )
                data.update(seizure.states[item.id].to_dict())
                rows.append({k: data.get(k) for k in (*ITEM_FIELDS, *STATE_FIELDS)})
    return rows


def _flat(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    return value


def export_items(store: Store, *, out: Path, fmt: str, case_no: str | None = None) -> ExportResult:
    if fmt not in ("csv", "json"):
        raise InvalidInput(f"'{fmt}' is not an item export format; use csv or json.")
    check_output(out)
    rows = item_rows(store, case_no=case_no)
    if fmt == "json":
        data = (json.dumps(rows, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    else:
        header = [*ITEM_FIELDS, *STATE_FIELDS]
        data = table_bytes(
            header, [[_flat(r.get(h)) for h in header] for r in rows], fmt="csv", title="Items"
        )
    digest = write_output(out, data)
    return ExportResult(
        path=out, sha256=digest, rows=len(rows), cases=sorted({r["case_no"] for r in rows})
    )
