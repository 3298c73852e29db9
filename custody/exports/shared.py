"""Non-nominal seizure records for sharing (WCO CEN, EU-TWIX, AFRICA-TWIX style).

Invariants:
- Nothing nominal leaves: no names, dates of birth, ID, passport or licence
  numbers, phones, e-mail or postal addresses, plates, consignment numbers,
  free-text descriptions, places or notes, photos, or the names of officers.
  Persons, organisations, conveyances and shipments appear as keyed
  pseudonyms: HMAC-SHA256 under a key kept in the store for that recipient
  only, over the entity's identifying data (passport, ID number, else name and
  date of birth; plate; consignment number), so the same person links across
  exports to one recipient and to no other. Nationality and countries stay.
- GPS is coarsened to 0.1 degree (about 11 km).
- Every export is recorded as a signed `share-export` event on each case it
  carries: who (the signer), to whom, what (items, rows), the file's hash.
- Personal data that no longer matches its signed commitment refuses the export.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from custody.domain import EventType
from custody.entities import Entity, _read_nominal_row
from custody.errors import InvalidInput, NotFound
from custody.events import Signer, Writer, check_permission, event_time
from custody.exports import check_output, remove_output, write_output
from custody.exports.common import ExportResult, format_of, load_seizure, record_export, table_bytes
from custody.models import Case, ExportKey
from custody.store import Store
from custody.timeutil import now_utc, to_utc_text

SHARED_COLUMNS = (
    "record",
    "seizure_date",
    "reporting_country",
    "detecting_agency",
    "location_type",
    "point_of_seizure",
    "latitude_0.1",
    "longitude_0.1",
    "detection_method",
    "transport_mode",
    "concealment",
    "reason",
    "origin",
    "transit",
    "destination",
    "species",
    "species_basis",
    "cites_term",
    "quantity",
    "cites_unit",
    "estimated_value",
    "currency",
    "persons",
    "person_categories",
    "person_nationalities",
    "organisations",
    "organisation_countries",
    "conveyances",
    "conveyance_types",
    "conveyance_countries",
    "shipments",
    "shipment_types",
    "shipment_routes",
    "disposal",
)
RECIPIENT_RE = re.compile(r"^[\w .,()&/-]{2,100}$")
PSEUDONYM_PREFIX = {"person": "P", "organisation": "O", "conveyance": "V", "shipment": "S"}
IDENTITY_FIELDS = {
    "person": (("passport",), ("id_number",), ("name", "dob"), ("name",)),
    "organisation": (("registration",), ("name",)),
    "conveyance": (("identifier",),),
    "shipment": (("number",),),
}


def check_recipient(name: str) -> str:
    value = " ".join(name.split())
    if not RECIPIENT_RE.match(value):
        raise InvalidInput(
            f"Recipient '{name}' is not a usable name; give the receiving body, e.g. 'EU-TWIX' "
            f"or 'WCO CEN' (letters, digits, spaces and . , ( ) & / -)."
        )
    return value


def recipient_key(session: Session, recipient: str, *, create: bool) -> bytes | None:
    """The recipient's HMAC key; created on its first export."""
    row = session.get(ExportKey, recipient.casefold())
    if row is None:
        if not create:
            return None
        row = ExportKey(
            recipient=recipient.casefold(),
            key=secrets.token_hex(32),
            created_at=to_utc_text(now_utc()),
        )
        session.add(row)
        session.flush()
    return bytes.fromhex(row.key)


def _normal(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def pseudonym(key: bytes, entity: Entity, nominal: dict[str, str] | None) -> str:
    """A keyed pseudonym: same identifying data and key -> same value, nothing else."""
    identity = f"entity:{entity.id}"
    for fields in IDENTITY_FIELDS[entity.kind]:
        if nominal and all(nominal.get(f) for f in fields):
            identity = "|".join(f"{f}:{_normal(nominal[f])}" for f in fields)
            break
    digest = hmac.new(key, f"{entity.kind}|{identity}".encode(), hashlib.sha256).hexdigest()
    return f"{PSEUDONYM_PREFIX[entity.kind]}-{digest[:16]}"


def coarse(value: float | None) -> float | None:
    return None if value is None else round(value, 1) + 0.0  # 0.0: no "-0.0"


def _join(values: Any) -> str:
    if not values:
        return ""
    return ";".join(str(v) for v in values) if isinstance(values, list) else str(values)


def _entity_columns(entities: Sequence[Entity], keys: dict[str, str]) -> dict[str, str]:
    def of(kind: str) -> list[Entity]:
        return [e for e in entities if e.kind == kind]

    persons, orgs = of("person"), of("organisation")
    convs, ships = of("conveyance"), of("shipment")
    return {
        "persons": _join([keys[e.id] for e in persons]),
        "person_categories": _join([e.category for e in persons]),
        "person_nationalities": _join([e.attributes.get("nationality", "") for e in persons]),
        "organisations": _join([keys[e.id] for e in orgs]),
        "organisation_countries": _join([e.attributes.get("country", "") for e in orgs]),
        "conveyances": _join([keys[e.id] for e in convs]),
        "conveyance_types": _join([e.category for e in convs]),
        "conveyance_countries": _join([e.attributes.get("country", "") for e in convs]),
        "shipments": _join([keys[e.id] for e in ships]),
        "shipment_types": _join([e.category for e in ships]),
        "shipment_routes": _join(
            [
                f"{e.attributes.get('origin', '?')}>{e.attributes.get('destination', '?')}"
                for e in ships
            ]
        ),
    }


def shared_rows(
    session: Session, *, key: bytes, cases: Sequence[Case], year: int | None
) -> tuple[list[list[Any]], dict[str, list[str]]]:
    rows: list[list[Any]] = []
    items_out: dict[str, list[str]] = {}
    for case in cases:
        seizure = load_seizure(session, case)
        items = [i for i in seizure.top_items if year is None or i.seized_at_local[:4] == str(year)]
        if not items:
            continue
        keys = {
            e.id: pseudonym(key, e, _read_nominal_row(session, e))
            for e in seizure.entities.values()
        }
        facts = seizure.facts
        unlinked = [e for e in seizure.entities.values() if not e.links]
        for item in items:
            linked = [
                e for e in seizure.entities.values() if any(x["item"] == item.id for x in e.links)
            ]
            species = seizure.species[item.id]
            term = seizure.terms[item.id]
            state = seizure.states[item.id]
            values: dict[str, Any] = {
                "record": item.id,
                "seizure_date": item.seized_at_local[:10],
                "reporting_country": seizure.agency.country if seizure.agency else "",
                "detecting_agency": facts.get("detecting_agency")
                or (seizure.agency.name if seizure.agency else ""),
                "location_type": facts.get("location_type", ""),
                "point_of_seizure": facts.get("point_of_seizure", ""),
                "latitude_0.1": coarse(item.lat),
                "longitude_0.1": coarse(item.lon),
                "detection_method": facts.get("detection_method", ""),
                "transport_mode": facts.get("transport_mode", ""),
                "concealment": facts.get("concealment", ""),
                "reason": facts.get("reason", ""),
                "origin": _join(facts.get("origin")),
                "transit": _join(facts.get("transit")),
                "destination": _join(facts.get("destination")),
                "species": species.name,
                "species_basis": species.basis,
                "cites_term": term.term,
                "quantity": term.quantity,
                "cites_unit": term.unit,
                "estimated_value": facts.get("value_amount"),
                "currency": facts.get("value_currency", ""),
                "disposal": (state.disposal or {}).get("method", ""),
                **_entity_columns(linked + [e for e in unlinked if e not in linked], keys),
            }
            rows.append([values[c] for c in SHARED_COLUMNS])
        items_out[case.case_no] = [i.id for i in items]
    return rows, items_out


def export_seizures(
    store: Store,
    *,
    recipient: str,
    out: Path,
    signer: Signer,
    case_nos: Sequence[str] = (),
    year: int | None = None,
    at: str | None = None,
) -> ExportResult:
    """Write non-nominal seizure records for `recipient` and record the disclosure."""
    fmt = format_of(out.suffix, ("csv", "xlsx"))
    name = check_recipient(recipient)
    if year is not None:
        from custody.exports.aitr import check_year

        check_year(year)
    check_output(out)
    check_permission(signer.actor, EventType("share-export"))
    when = event_time(at)
    written = False
    try:
        with store.write() as session:
            if case_nos:
                cases = []
                for case_no in dict.fromkeys(case_nos):
                    case = session.get(Case, case_no)
                    if case is None:
                        raise NotFound(
                            f"Case {case_no} does not exist; list cases with 'custody case list'."
                        )
                    cases.append(case)
            else:
                cases = list(session.exec(select(Case).order_by(col(Case.case_no))).all())
            key = recipient_key(session, name, create=True)
            assert key is not None
            rows, items = shared_rows(session, key=key, cases=cases, year=year)
            if not rows:
                raise InvalidInput(
                    "No seized items match the cases and year given; nothing was exported."
                )
            data = table_bytes(SHARED_COLUMNS, rows, fmt=fmt, title="Seizures")
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            writer = Writer(session)
            events = []
            for case_no, item_ids in items.items():
                events.extend(
                    record_export(
                        writer,
                        case_nos=[case_no],
                        signer=signer,
                        data={
                            "export": "seizures-non-nominal",
                            "recipient": name,
                            "format": fmt,
                            "file": out.name,
                            "sha256": digest,
                            "rows": len(rows),
                            "items": item_ids,
                            "year": year,
                        },
                        at=when,
                    )
                )
            writer.finish()
            write_output(out, data)
            written = True
            ids = [e.id for e in events]
    except BaseException:
        if written:
            remove_output(out)
        raise
    return ExportResult(path=out, sha256=digest, rows=len(rows), cases=list(items), events=ids)
