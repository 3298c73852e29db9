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
UTF-16 with a byte-order mark, as Analyst's Notebook writes it.

Two writers turn the same `Chart` into ANX: `anxwritter` (the optional extra
`custody[i2]`, pinned to one minor version because it changes its API between
minor versions before 2.0; it also lays the chart out), used when it is
installed, else our own (`anx_bytes`, the standard library's ElementTree; text
values are escaped by it). Both give the same entities, types, labels,
attributes and links; the export event names the writer used.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlmodel import select

from custody.domain import EventType
from custody.entities import Entity, _read_nominal_row
from custody.errors import CustodyError, InvalidInput, NotFound
from custody.events import Signer, Writer, check_permission, event_time
from custody.exports import check_output, remove_output, write_output
from custody.exports.common import ExportResult, Seizure, load_seizure, record_export
from custody.models import Actor, Agency, Case, Event, Item
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


def _source(seizure: Seizure, ev: Event) -> str:
    """A link's source reference: the case, the event's ID and the start of its hash."""
    return f"{seizure.case.case_no} event {ev.id} {ev.hash[:23]}"


class _Taxon(NamedTuple):
    """The taxon a species identification named, as a chart entity needs it."""

    name: str
    level: str
    rank: str


def build_chart(
    seizure: Seizure,
    *,
    actors: Mapping[str, Actor],
    agencies: Mapping[str, Agency],
    nominal: Mapping[str, dict[str, str] | None],
) -> Chart:
    """The chart of one case (`nominal`: entity ID -> checked personal data or None).

    Entities enter in a fixed order (case and agency, items and their places,
    then officers, laboratories and species as the events name them, then the
    case's entities), which fixes the numbering of the chart's items.
    """
    chart = Chart()
    case_id = _add_case(chart, seizure)
    for item in seizure.items:
        _add_item(chart, item, seizure=seizure, case_id=case_id)
    for ev in seizure.events:
        if ev.item_id is None or ev.chain != ev.item_id:
            continue
        _add_event_link(chart, ev, seizure=seizure, actors=actors, agencies=agencies)
    for entity in seizure.entities.values():
        _add_case_entity(chart, entity, personal=nominal.get(entity.id) or {})
    return chart


def _add_case(chart: Chart, seizure: Seizure) -> str:
    """The case entity (and the agency investigating it); returns the case's key."""
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
    return case_id


def _officer(chart: Chart, handle: str | None, *, actors: Mapping[str, Actor]) -> str:
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


def _place(chart: Chart, name: str) -> str:
    return chart.entity(ChartEntity(identity=f"place:{name}", type="Location", label=name))


def _add_item(chart: Chart, item: Item, *, seizure: Seizure, case_id: str) -> None:
    """An evidence item, what it is part of or a sample of, and where it was seized."""
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
        at_place = _place(chart, item.place)
        if item.lat is not None and item.lon is not None:
            chart.entities[at_place].attributes.update(
                {"latitude": f"{item.lat}", "longitude": f"{item.lon}"}
            )
        chart.link(
            ChartLink(item_key, at_place, "Seized at", "seized at", date_time=item.seized_at)
        )


def _add_event_link(
    chart: Chart,
    ev: Event,
    *,
    seizure: Seizure,
    actors: Mapping[str, Actor],
    agencies: Mapping[str, Agency],
) -> None:
    """The link (and any entity it needs) one event of an item's chain adds to the chart."""
    data = json.loads(ev.data)
    source = _source(seizure, ev)
    item_key = f"item:{ev.item_id}"
    if ev.type == "seize":
        seizer = _officer(chart, ev.actor, actors=actors)
        chart.link(ChartLink(item_key, seizer, "Seized by", "seized by", ev.at, source))
    elif ev.type == "transfer":
        releaser = _officer(chart, ev.actor, actors=actors)
        receiver = _officer(chart, ev.counterparty, actors=actors)
        label = f"transfer of {ev.item_id}" + (
            f" ({data['purpose']})" if data.get("purpose") else ""
        )
        chart.link(ChartLink(releaser, receiver, "Custody transfer", label, ev.at, source))
    elif ev.type == "store" and data.get("location"):
        stored = _place(chart, str(data["location"]))
        chart.link(ChartLink(item_key, stored, "Stored at", "stored at", ev.at, source))
    elif ev.type == "analyse" and data.get("analysis") == "species-identification":
        lab = _laboratory(chart, ev.actor, actors=actors, agencies=agencies)
        chart.link(ChartLink(item_key, lab, "Analysed by", "analysed by", ev.at, source))
        taxon = _identified_taxon(data)
        if taxon is not None:
            key = chart.entity(
                ChartEntity(
                    identity=f"species:{taxon.name}",
                    type="Species",
                    label=taxon.name,
                    attributes={"rank": taxon.rank},
                )
            )
            label = f"identified as ({taxon.level})"
            chart.link(ChartLink(item_key, key, "Identified as", label, ev.at, source))


def _laboratory(
    chart: Chart, handle: str, *, actors: Mapping[str, Actor], agencies: Mapping[str, Agency]
) -> str:
    """The laboratory entity of the agency the analysing officer belongs to."""
    actor = actors.get(handle)
    code = (actor.agency_code if actor else None) or "unknown"
    agency = agencies.get(code)
    return chart.entity(
        ChartEntity(
            identity=f"lab:{code}",
            type="Laboratory",
            label=agency.name if agency else code,
            attributes={"agency": code},
        )
    )


def _identified_taxon(data: Mapping[str, Any]) -> _Taxon | None:
    """The species or genus an identification's event body names; None below genus level."""
    if not (data.get("taxon") and data.get("level") in ("species", "genus")):
        return None
    return _Taxon(
        name=str(data["taxon"]),
        level=str(data["level"]),
        rank=str(data.get("rank") or data.get("level")),
    )


def _entity_type(entity: Entity) -> str:
    if entity.kind == "person":
        return "Person"
    if entity.kind == "organisation":
        return "Organisation"
    if entity.kind == "conveyance":
        return CONVEYANCE_TYPES[entity.category]
    return "Shipment"


def _add_case_entity(chart: Chart, entity: Entity, *, personal: Mapping[str, str]) -> None:
    """A person, organisation, conveyance or shipment of the case, with its links to items."""
    label = (
        personal.get("name") or personal.get("identifier") or personal.get("number") or entity.id
    )
    key = chart.entity(
        ChartEntity(
            identity=f"entity:{entity.id}",
            type=_entity_type(entity),
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


def _anx_time(text: str) -> str:
    """ANX DateTime from a stored UTC time: YYYY-MM-DDTHH:MM:SS.000."""
    return text[:19] + ".000"


class _AnxTypes(NamedTuple):
    """Reference IDs of the chart's entity types, link types and attribute classes."""

    entity_types: dict[str, str]
    link_types: dict[str, str]
    attribute_classes: dict[str, str]


def anx_bytes(chart: Chart) -> bytes:
    """The chart as ANX: UTF-16 XML with a byte-order mark, as Analyst's Notebook writes it."""
    root = ET.Element("Chart", {"IdReferenceLinking": "false", "Rigorous": "true"})
    ET.SubElement(
        root, "ApplicationVersion", {"Major": "9", "Minor": "0", "Point": "0", "Build": "0"}
    )
    types = _anx_type_collections(root, chart)
    items = ET.SubElement(root, "ChartItemCollection")
    entity_ids: dict[str, str] = {}
    for n, entity in enumerate(chart.entities.values(), start=1):
        entity_ids[entity.identity] = str(n)
        _anx_entity(items, entity, number=n, types=types)
    offset = len(chart.entities)
    for n, link in enumerate(chart.links, start=offset + 1):
        _anx_link(items, link, number=n, types=types, entity_ids=entity_ids)
    text = ET.tostring(root, encoding="unicode")
    return b"\xff\xfe" + ("<?xml version='1.0' encoding='utf-16'?>\n" + text).encode("utf-16-le")


ANXWRITTER = "anxwritter"
BUILTIN = "custody"
WRITERS = (ANXWRITTER, BUILTIN)


def anxwritter_version() -> str | None:
    """The installed anxwritter's version, None when it is not installed."""
    try:
        import anxwritter
    except ImportError:
        return None
    return str(getattr(anxwritter, "__version__", "") or "unknown")


def _split_time(text: str) -> tuple[str | None, str | None]:
    """anxwritter's date (yyyy-MM-dd) and time (HH:mm:ss) of a stored UTC time."""
    if not text:
        return None, None
    return text[:10], (text[11:19] or None)


def anxwritter_bytes(chart: Chart) -> bytes:
    """The chart as ANX written by anxwritter (UTF-16 with a byte-order mark)."""
    from anxwritter import ANXChart, ANXValidationError, Icon, Link

    anx = ANXChart()
    for name in sorted({e.type for e in chart.entities.values()}):
        anx.add_entity_type(name)
    for entity in chart.entities.values():
        date, time = _split_time(entity.date_time)
        anx.add(
            Icon(
                id=entity.identity,
                type=entity.type,
                label=entity.label,
                description=entity.description or None,
                date=date,
                time=time,
                source_ref=entity.source or None,
                attributes={k: str(v) for k, v in entity.attributes.items() if v},
            )
        )
    for link in chart.links:
        date, time = _split_time(link.date_time)
        anx.add(
            Link(
                from_id=link.end1,
                to_id=link.end2,
                type=link.type,
                label=link.label,
                arrow="ArrowOnHead",
                date=date,
                time=time,
                source_ref=link.source or None,
            )
        )
    try:
        return b"".join(anx.iter_anx_bytes())
    except ANXValidationError as exc:
        raise CustodyError(
            f"anxwritter refused the chart ({str(exc)[:300]}); export with the built-in "
            f"writer instead (uninstall anxwritter, or pass writer='{BUILTIN}')."
        ) from None


def chart_bytes(chart: Chart, *, writer: str | None = None) -> tuple[bytes, str]:
    """The chart as ANX and the writer that wrote it ("anxwritter X.Y.Z" or "custody").

    `writer` None picks anxwritter when it is installed, else the built-in writer.
    """
    if writer is not None and writer not in WRITERS:
        raise InvalidInput(f"'{writer}' is not an ANX writer; use {' or '.join(WRITERS)}.")
    version = anxwritter_version() if writer != BUILTIN else None
    if writer == ANXWRITTER and version is None:
        raise InvalidInput(
            "anxwritter is not installed; install the extra with \"pip install 'custody[i2]'\" "
            f"or use the built-in writer ('{BUILTIN}')."
        )
    if version is not None:
        return anxwritter_bytes(chart), f"{ANXWRITTER} {version}"
    return anx_bytes(chart), BUILTIN


def _numbered(parent: ET.Element, names: list[str], *, tag: str, prefix: str) -> dict[str, str]:
    """One `tag` element per name, IDs `prefix`1, 2 ...; returns name -> ID."""
    refs: dict[str, str] = {}
    for n, name in enumerate(names, start=1):
        refs[name] = f"{prefix}{n}"
        ET.SubElement(parent, tag, {"Id": refs[name], "Name": name})
    return refs


def _anx_type_collections(root: ET.Element, chart: Chart) -> _AnxTypes:
    """The strength, entity type, link type and attribute class collections."""
    strengths = ET.SubElement(root, "StrengthCollection")
    ET.SubElement(
        strengths, "Strength", {"Id": "Default", "Name": "Default", "DotStyle": "DotStyleSolid"}
    )
    entity_types = _numbered(
        ET.SubElement(root, "EntityTypeCollection"),
        sorted({e.type for e in chart.entities.values()}),
        tag="EntityType",
        prefix="ET",
    )
    link_types = _numbered(
        ET.SubElement(root, "LinkTypeCollection"),
        sorted({lk.type for lk in chart.links}),
        tag="LinkType",
        prefix="LT",
    )
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
    attribute_classes = {name: f"AC{n}" for n, name in enumerate(attr_names, start=1)}
    return _AnxTypes(entity_types, link_types, attribute_classes)


def _item_attributes(
    number: int, *, label: str, description: str = "", source: str, date_time: str
) -> dict[str, str]:
    """The XML attributes of a chart item: ID, label, and description, source and date if set."""
    attrs = {"Id": f"CI{number}", "Label": label}
    if description:
        attrs["Description"] = description
    if source:
        attrs["SourceReference"] = source
    if date_time:
        attrs.update({"DateSet": "true", "TimeSet": "true", "DateTime": _anx_time(date_time)})
    return attrs


def _anx_entity(items: ET.Element, entity: ChartEntity, *, number: int, types: _AnxTypes) -> None:
    attrs = _item_attributes(
        number,
        label=entity.label,
        description=entity.description,
        source=entity.source,
        date_time=entity.date_time,
    )
    item = ET.SubElement(items, "ChartItem", attrs)
    end = ET.SubElement(item, "End", {"X": "0", "Y": "0", "Z": "0"})
    ent = ET.SubElement(
        end,
        "Entity",
        {"EntityId": str(number), "Identity": entity.identity, "LabelIsIdentity": "false"},
    )
    icon = ET.SubElement(ent, "Icon")
    ET.SubElement(
        icon,
        "IconStyle",
        {"Type": entity.type, "EntityTypeReference": types.entity_types[entity.type]},
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
                    "AttributeClassReference": types.attribute_classes[name],
                    "Value": str(value),
                },
            )


def _anx_link(
    items: ET.Element,
    link: ChartLink,
    *,
    number: int,
    types: _AnxTypes,
    entity_ids: Mapping[str, str],
) -> None:
    attrs = _item_attributes(number, label=link.label, source=link.source, date_time=link.date_time)
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
            "LinkTypeReference": types.link_types[link.type],
        },
    )


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
    writer: str | None = None,
    at: str | None = None,
) -> ExportResult:
    """Write the case's chart (ANX, or entity and link CSV tables) and record the export.

    `writer` chooses the ANX writer ("anxwritter" or "custody"); None uses anxwritter
    when it is installed.
    """
    if writer is not None and writer not in WRITERS:
        raise InvalidInput(f"'{writer}' is not an ANX writer; use {' or '.join(WRITERS)}.")
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
            if fmt == "anx":
                anx, written_by = chart_bytes(chart, writer=writer)
                blobs = [anx]
            else:
                blobs, written_by = list(csv_tables(chart)), BUILTIN
            digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
            log = Writer(session)
            events = record_export(
                log,
                case_nos=[case_no],
                signer=signer,
                data={
                    "export": "i2-chart",
                    "recipient": "intelligence analysis (i2 Analyst's Notebook)",
                    "format": fmt,
                    "writer": written_by,
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
            log.finish()
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
