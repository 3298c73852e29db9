"""A case as an i2 Analyst's Notebook chart: ANX exchange XML, or entity and link
tables for an import specification.

Entities: the case, its items, persons, organisations, conveyances, shipments,
places (of seizure and storage), agencies, laboratories, officers and the
species identified. Links: custody transfers (officer to officer, naming the
item), "seized by", "seized at", "stored at", "found in", "owned by" (and the
other entity relations), "sample of", "identified as", "analysed by" and
"part of", each with its date and the custody event it comes from as source
reference (`<case> event <id> <hash>`).

Invariants: the chart is built only from signed events, item rows and
personal data checked against its commitment; personal data is in it unless
`nominal=False` (then persons show their entity IDs only). The ANX file is
UTF-16 with a byte-order mark, as Analyst's Notebook writes it. Built with the
standard library's ElementTree; text values are escaped by it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import select

from custody.domain import EventType
from custody.entities import _read_nominal_row
from custody.errors import InvalidInput, NotFound
from custody.events import Signer, Writer, check_permission, event_time
from custody.exports import check_output, remove_output, write_output
from custody.exports.common import ExportResult, Seizure, load_seizure, record_export
from custody.models import Actor, Agency, Case
from custody.store import Store

ENTITY_TYPES = (
    "Case",
    "Evidence item",
    "Person",
    "Organisation",
    "Vehicle",
    "Vessel",
    "Flight",
    "Shipment",
    "Location",
    "Agency",
    "Laboratory",
    "Officer",
    "Species",
)
CONVEYANCE_TYPES = {"vehicle": "Vehicle", "vessel": "Vessel", "flight": "Flight"}
LINK_WORDS = {
    "found-in": "found in",
    "owned-by": "owned by",
    "carried-by": "carried by",
    "sent-by": "sent by",
    "received-by": "received by",
    "seized-from": "seized from",
}
ENTITY_COLUMNS = ("entity_id", "type", "label", "description", "date_time", "source", "attributes")
LINK_COLUMNS = ("link_id", "from_id", "to_id", "type", "label", "date_time", "source")


@dataclass
class ChartEntity:
    identity: str
    type: str
    label: str
    description: str = ""
    date_time: str = ""
    source: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class ChartLink:
    end1: str
    end2: str
    type: str
    label: str
    date_time: str = ""
    source: str = ""


@dataclass
class Chart:
    entities: dict[str, ChartEntity] = field(default_factory=dict)
    links: list[ChartLink] = field(default_factory=list)

    def entity(self, entity: ChartEntity) -> str:
        if entity.identity not in self.entities:
            self.entities[entity.identity] = entity
        return entity.identity

    def link(self, link: ChartLink) -> None:
        self.links.append(link)


def _source(seizure: Seizure, event_id: int, event_hash: str) -> str:
    return f"{seizure.case.case_no} event {event_id} {event_hash[:23]}"


def build_chart(
    seizure: Seizure,
    *,
    actors: dict[str, Actor],
    agencies: dict[str, Agency],
    nominal: dict[str, dict[str, str] | None],
) -> Chart:
    """The chart of one case (`nominal`: entity ID -> checked personal data or None)."""
    chart = Chart()
    case = seizure.case
    case_id = chart.entity(
        ChartEntity(
            identity=f"case:{case.case_no}",
            type="Case",
            label=case.case_no,
            description=case.title,
            date_time=case.opened_at,
            attributes={"jurisdiction": case.jurisdiction, "legal basis": case.legal_basis},
        )
    )
    if seizure.agency is not None:
        agency_id = chart.entity(
            ChartEntity(
                identity=f"agency:{seizure.agency.code}",
                type="Agency",
                label=seizure.agency.name,
                attributes={"code": seizure.agency.code, "country": seizure.agency.country},
            )
        )
        chart.link(ChartLink(case_id, agency_id, "Investigated by", "investigated by"))

    def officer(handle: str | None) -> str:
        actor = actors.get(handle or "")
        label = actor.name if actor else str(handle)
        return chart.entity(
            ChartEntity(
                identity=f"officer:{handle}",
                type="Officer",
                label=label,
                attributes={
                    "handle": str(handle),
                    "role": actor.role if actor else "",
                    "agency": (actor.agency_code or "") if actor else "",
                },
            )
        )

    def place(name: str) -> str:
        return chart.entity(ChartEntity(identity=f"place:{name}", type="Location", label=name))

    for item in seizure.items:
        species = seizure.species[item.id]
        term = seizure.terms[item.id]
        state = seizure.states[item.id]
        item_key = chart.entity(
            ChartEntity(
                identity=f"item:{item.id}",
                type="Evidence item",
                label=item.id,
                description=item.description,
                date_time=item.seized_at,
                attributes={
                    "species": species.label,
                    "CITES term": term.term,
                    "quantity": "" if term.quantity is None else f"{term.quantity:g}",
                    "CITES unit": term.unit,
                    "seal": state.seal or "",
                    "status": state.status,
                    "custodian": state.custodian or "",
                },
            )
        )
        chart.link(ChartLink(item_key, case_id, "Part of", "part of"))
        if item.parent_id:
            chart.link(ChartLink(item_key, f"item:{item.parent_id}", "Sample of", "sample of"))
        if item.place:
            at_place = place(item.place)
            if item.lat is not None and item.lon is not None:
                chart.entities[at_place].attributes.update(
                    {"latitude": f"{item.lat}", "longitude": f"{item.lon}"}
                )
            chart.link(
                ChartLink(item_key, at_place, "Seized at", "seized at", date_time=item.seized_at)
            )
    for ev in seizure.events:
        if ev.item_id is None or ev.chain != ev.item_id:
            continue
        data = json.loads(ev.data)
        source = _source(seizure, ev.id, ev.hash)
        item_key = f"item:{ev.item_id}"
        if ev.type == "seize":
            chart.link(
                ChartLink(item_key, officer(ev.actor), "Seized by", "seized by", ev.at, source)
            )
        elif ev.type == "transfer":
            chart.link(
                ChartLink(
                    officer(ev.actor),
                    officer(ev.counterparty),
                    "Custody transfer",
                    f"transfer of {ev.item_id}"
                    + (f" ({data['purpose']})" if data.get("purpose") else ""),
                    ev.at,
                    source,
                )
            )
        elif ev.type == "store" and data.get("location"):
            chart.link(
                ChartLink(
                    item_key, place(str(data["location"])), "Stored at", "stored at", ev.at, source
                )
            )
        elif ev.type == "analyse" and data.get("analysis") == "species-identification":
            actor = actors.get(ev.actor)
            code = (actor.agency_code if actor else None) or "unknown"
            agency = agencies.get(code)
            lab = chart.entity(
                ChartEntity(
                    identity=f"lab:{code}",
                    type="Laboratory",
                    label=agency.name if agency else code,
                    attributes={"agency": code},
                )
            )
            chart.link(ChartLink(item_key, lab, "Analysed by", "analysed by", ev.at, source))
            if data.get("taxon") and data.get("level") in ("species", "genus"):
                taxon = chart.entity(
                    ChartEntity(
                        identity=f"species:{data['taxon']}",
                        type="Species",
                        label=str(data["taxon"]),
                        attributes={"rank": str(data.get("rank") or data.get("level"))},
                    )
                )
                chart.link(
                    ChartLink(
                        item_key,
                        taxon,
                        "Identified as",
                        f"identified as ({data.get('level')})",
                        ev.at,
                        source,
                    )
                )
    for entity in seizure.entities.values():
        personal = nominal.get(entity.id) or {}
        if entity.kind == "person":
            kind = "Person"
        elif entity.kind == "organisation":
            kind = "Organisation"
        elif entity.kind == "conveyance":
            kind = CONVEYANCE_TYPES[entity.category]
        else:
            kind = "Shipment"
        label = (
            personal.get("name")
            or personal.get("identifier")
            or personal.get("number")
            or entity.id
        )
        key = chart.entity(
            ChartEntity(
                identity=f"entity:{entity.id}",
                type=kind,
                label=label,
                description=entity.category,
                date_time=entity.added_at,
                source=entity.source or entity.id,
                attributes={
                    "entity": entity.id,
                    "category": entity.category,
                    **entity.attributes,
                    **personal,
                },
            )
        )
        for link in entity.links:
            word = LINK_WORDS.get(link["relation"], link["relation"])
            chart.link(
                ChartLink(f"item:{link['item']}", key, word.capitalize(), word, source=entity.id)
            )
    return chart


def _anx_time(text: str) -> str:
    """ANX DateTime from a stored UTC time: YYYY-MM-DDTHH:MM:SS.000."""
    return text[:19] + ".000"


def anx_bytes(chart: Chart) -> bytes:
    root = ET.Element("Chart", {"IdReferenceLinking": "false", "Rigorous": "true"})
    ET.SubElement(
        root, "ApplicationVersion", {"Major": "9", "Minor": "0", "Point": "0", "Build": "0"}
    )
    strengths = ET.SubElement(root, "StrengthCollection")
    ET.SubElement(
        strengths, "Strength", {"Id": "Default", "Name": "Default", "DotStyle": "DotStyleSolid"}
    )
    type_ids = ET.SubElement(root, "EntityTypeCollection")
    used_types = sorted({e.type for e in chart.entities.values()})
    for n, name in enumerate(used_types, start=1):
        ET.SubElement(type_ids, "EntityType", {"Id": f"ET{n}", "Name": name})
    et_ref = {name: f"ET{n}" for n, name in enumerate(used_types, start=1)}
    link_types = sorted({lk.type for lk in chart.links})
    ltc = ET.SubElement(root, "LinkTypeCollection")
    for n, name in enumerate(link_types, start=1):
        ET.SubElement(ltc, "LinkType", {"Id": f"LT{n}", "Name": name})
    lt_ref = {name: f"LT{n}" for n, name in enumerate(link_types, start=1)}
    attr_names = sorted({k for e in chart.entities.values() for k, v in e.attributes.items() if v})
    acc = ET.SubElement(root, "AttributeClassCollection")
    for n, name in enumerate(attr_names, start=1):
        ET.SubElement(
            acc,
            "AttributeClass",
            {
                "Id": f"AC{n}",
                "Name": name,
                "Type": "AttText",
                "IsUser": "true",
                "UserCanAdd": "true",
                "UserCanRemove": "true",
                "ShowValue": "true",
                "Visible": "true",
            },
        )
    ac_ref = {name: f"AC{n}" for n, name in enumerate(attr_names, start=1)}
    items = ET.SubElement(root, "ChartItemCollection")
    entity_ids: dict[str, str] = {}
    for n, entity in enumerate(chart.entities.values(), start=1):
        entity_ids[entity.identity] = str(n)
        attrs = {"Id": f"CI{n}", "Label": entity.label}
        if entity.description:
            attrs["Description"] = entity.description
        if entity.source:
            attrs["SourceReference"] = entity.source
        if entity.date_time:
            attrs.update(
                {"DateSet": "true", "TimeSet": "true", "DateTime": _anx_time(entity.date_time)}
            )
        item = ET.SubElement(items, "ChartItem", attrs)
        end = ET.SubElement(item, "End", {"X": "0", "Y": "0", "Z": "0"})
        ent = ET.SubElement(
            end,
            "Entity",
            {"EntityId": str(n), "Identity": entity.identity, "LabelIsIdentity": "false"},
        )
        icon = ET.SubElement(ent, "Icon")
        ET.SubElement(
            icon, "IconStyle", {"Type": entity.type, "EntityTypeReference": et_ref[entity.type]}
        )
        values = [(k, v) for k, v in entity.attributes.items() if v]
        if values:
            coll = ET.SubElement(item, "AttributeCollection")
            for name, value in values:
                ET.SubElement(
                    coll,
                    "Attribute",
                    {
                        "AttributeClass": name,
                        "AttributeClassReference": ac_ref[name],
                        "Value": str(value),
                    },
                )
    offset = len(chart.entities)
    for n, link in enumerate(chart.links, start=offset + 1):
        attrs = {"Id": f"CI{n}", "Label": link.label}
        if link.source:
            attrs["SourceReference"] = link.source
        if link.date_time:
            attrs.update(
                {"DateSet": "true", "TimeSet": "true", "DateTime": _anx_time(link.date_time)}
            )
        item = ET.SubElement(items, "ChartItem", attrs)
        lk = ET.SubElement(
            item, "Link", {"End1Id": entity_ids[link.end1], "End2Id": entity_ids[link.end2]}
        )
        ET.SubElement(
            lk,
            "LinkStyle",
            {
                "Strength": "Default",
                "ArrowStyle": "ArrowOnHead",
                "Type": link.type,
                "LinkTypeReference": lt_ref[link.type],
            },
        )
    text = ET.tostring(root, encoding="unicode")
    return b"\xff\xfe" + ("<?xml version='1.0' encoding='utf-16'?>\n" + text).encode("utf-16-le")


def csv_tables(chart: Chart) -> tuple[bytes, bytes]:
    from custody.exports.common import _safe_cell

    ents = io.StringIO()
    writer = csv.writer(ents, lineterminator="\r\n")
    writer.writerow(ENTITY_COLUMNS)
    for e in chart.entities.values():
        writer.writerow(
            [
                _safe_cell(v)
                for v in (
                    e.identity,
                    e.type,
                    e.label,
                    e.description,
                    e.date_time,
                    e.source,
                    json.dumps({k: v for k, v in e.attributes.items() if v}, ensure_ascii=False),
                )
            ]
        )
    links = io.StringIO()
    writer = csv.writer(links, lineterminator="\r\n")
    writer.writerow(LINK_COLUMNS)
    for n, lk in enumerate(chart.links, start=1):
        writer.writerow(
            [
                _safe_cell(v)
                for v in (f"L{n}", lk.end1, lk.end2, lk.type, lk.label, lk.date_time, lk.source)
            ]
        )
    return ents.getvalue().encode("utf-8-sig"), links.getvalue().encode("utf-8-sig")


def csv_paths(out: Path) -> tuple[Path, Path]:
    stem = out.with_suffix("") if out.suffix.lower() == ".csv" else out
    return (
        stem.with_name(stem.name + "-entities.csv"),
        stem.with_name(stem.name + "-links.csv"),
    )


def export_i2(
    store: Store,
    *,
    case_no: str,
    out: Path,
    signer: Signer,
    fmt: str = "anx",
    nominal: bool = True,
    at: str | None = None,
) -> ExportResult:
    """Write the case's chart (ANX, or entity and link CSV tables) and record the export."""
    if fmt not in ("anx", "csv"):
        raise InvalidInput(f"'{fmt}' is not an i2 export format; use anx or csv.")
    if fmt == "anx" and out.suffix.lower() != ".anx":
        raise InvalidInput(f"The output {out} must end in .anx; name the chart file accordingly.")
    paths = [out] if fmt == "anx" else list(csv_paths(out))
    for path in paths:
        check_output(path)
    check_permission(signer.actor, EventType("share-export"))
    when = event_time(at)
    written: list[Path] = []
    try:
        with store.write() as session:
            case = session.get(Case, case_no)
            if case is None:
                raise NotFound(
                    f"Case {case_no} does not exist; list cases with 'custody case list'."
                )
            seizure = load_seizure(session, case)
            personal = {
                e.id: (_read_nominal_row(session, e) if nominal else None)
                for e in seizure.entities.values()
            }
            actors = {a.handle: a for a in session.exec(select(Actor)).all()}
            agencies = {a.code: a for a in session.exec(select(Agency)).all()}
            chart = build_chart(seizure, actors=actors, agencies=agencies, nominal=personal)
            blobs = [anx_bytes(chart)] if fmt == "anx" else list(csv_tables(chart))
            digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
            writer = Writer(session)
            events = record_export(
                writer,
                case_nos=[case_no],
                signer=signer,
                data={
                    "export": "i2-chart",
                    "recipient": "intelligence analysis (i2 Analyst's Notebook)",
                    "format": fmt,
                    "files": [
                        {"file": p.name, "sha256": d} for p, d in zip(paths, digests, strict=True)
                    ],
                    "nominal": nominal,
                    "entities": len(chart.entities),
                    "links": len(chart.links),
                    "items": [i.id for i in seizure.items],
                },
                at=when,
            )
            writer.finish()
            for path, blob in zip(paths, blobs, strict=True):
                write_output(path, blob)
                written.append(path)
            ids = [e.id for e in events]
    except BaseException:
        for path in written:
            remove_output(path)
        raise
    return ExportResult(
        path=paths[0],
        sha256=digests[0],
        rows=len(chart.entities) + len(chart.links),
        cases=[case_no],
        events=ids,
        extra_paths=paths[1:],
    )
