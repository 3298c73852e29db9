"""Importing SMART patrols: confiscations become items, people become person entities.

Reads SMART patrol XML (schema 1.x; namespace
`http://www.smartconservationsoftware.org/xml/patrol.xsd` or
`http://www.smartconservationsoftware.org/xml/1.3/patrol`, or none) and SMART
Connect GeoJSON (a FeatureCollection whose features are waypoints or
observations: properties patrol id, waypoint id, date, time, x, y, category,
attributes).

Invariants:
- Untrusted XML is parsed with defusedxml: entity expansion, external entities
  and DTDs are refused. The whole file is read and checked before anything is
  written; a malformed or hostile file changes nothing.
- Seizure is an attribute, not a record type: an observation becomes an item
  when one of the map's seized attributes (default `actiontakenitems`,
  `trophiesseized`, `actiontakenliveanimals`, `actiontakencarcass`) has one of
  its seized values (default `confiscated`, `seized`, `true`). People
  observations (`humanactivity.people.`) become person entities whose names,
  ID numbers, phones, age and place of origin are nominal data (kept apart).
- SMART times carry no zone; the caller names it (`tz`). x is longitude, y
  latitude.
- Re-importing adds nothing: every item and entity remembers its patrol,
  waypoint and observation (`smart` other ID / entity source), and those
  already in the case are skipped.
- Items, entities and one `smart-import` event (file hash, patrol, leader, what
  was created) are written in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session

from custody import codes
from custody.domain import EventType
from custody.errors import InvalidInput, NotFound
from custody.events import Signer, Writer, check_permission
from custody.models import Item, ItemCreate
from custody.store import Store

NAMESPACES = (
    "http://www.smartconservationsoftware.org/xml/patrol.xsd",
    "http://www.smartconservationsoftware.org/xml/1.3/patrol",
)
MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAP: dict[str, Any] = {
    "seized": {
        "attributes": [
            "actiontakenitems",
            "trophiesseized",
            "actiontakenliveanimals",
            "actiontakencarcass",
        ],
        "values": ["confiscated", "seized", "true"],
    },
    "quantity": {
        "count": ["numberofitems", "count", "quantity", "numberofanimals", "number"],
        "weight_kg": ["weightkg", "weight", "mass"],
    },
    "people": {
        "categories": ["humanactivity.people."],
        "arrested": {"actiontakenpeople": ["arrested", "detained"]},
        "fields": {
            "name": ["name", "fullname", "personname"],
            "id_number": ["idnumber", "nationalid", "nationalidnumber"],
            "phone": ["phone", "phonenumber", "mobile"],
            "age": ["age"],
            "place_of_origin": ["placeoforigin", "origin", "village"],
        },
        "nationality": ["nationality", "countryoforigin"],
    },
}


@dataclass
class Observation:
    patrol: str
    waypoint: str
    index: int
    category: str
    attributes: dict[str, str]
    time_local: str  # ISO without zone
    x: float | None
    y: float | None
    comment: str = ""

    @property
    def key(self) -> str:
        return f"{self.patrol}/{self.waypoint}/{self.index}"


@dataclass
class Patrol:
    id: str
    leader: str = ""
    patrol_type: str = ""
    observations: list[Observation] = field(default_factory=list)


@dataclass
class SmartImport:
    patrol: str
    items: list[str] = field(default_factory=list)
    persons: list[str] = field(default_factory=list)
    skipped: int = 0  # observations already imported
    ignored: int = 0  # observations that are neither seizures nor people
    event: int | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if _local(c.tag) == name]


def _attr_value(el: Any) -> str:
    for name in ("sValue", "dValue", "itemKey", "bValue"):
        if el.get(name) is not None:
            return str(el.get(name))
        for child in el:
            if _local(child.tag) == name and child.text is not None:
                return child.text.strip()
    return ""


def _number(text: str | None, *, what: str, where: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(
            f"The {what} '{text}' of {where} is not a number; fix the file."
        ) from None
    if not math.isfinite(value):
        raise InvalidInput(f"The {what} '{text}' of {where} is not a finite number; fix the file.")
    return value


def parse_patrol_xml(data: bytes, *, name: str) -> Patrol:
    """A patrol from SMART patrol XML, parsed safely; raises `InvalidInput`."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InvalidInput(
            f"{name} declares a DTD or entities ({exc.__class__.__name__}), which a SMART "
            f"export never does; it was refused and nothing was imported."
        ) from None
    except (ParseError, ValueError, UnicodeError) as exc:
        raise InvalidInput(
            f"{name} is not well-formed XML ({str(exc).splitlines()[0] if str(exc) else 'unreadable'}); "
            f"nothing was imported."
        ) from None
    if _local(root.tag) != "patrol" or _ns(root.tag) not in ("", *NAMESPACES):
        raise InvalidInput(
            f"{name} is not a SMART patrol file (its root is <{_local(root.tag)}>, expected "
            f"<patrol> in the SMART patrol namespace); nothing was imported."
        )
    patrol_id = (root.get("id") or "").strip()
    if not patrol_id:
        raise InvalidInput(f"{name} has a patrol without an id; nothing was imported.")
    patrol = Patrol(id=patrol_id, patrol_type=root.get("patrolType") or "")
    for leg in _children(root, "legs"):
        for member in _children(leg, "members"):
            if (member.get("isLeader") or "").lower() == "true" and not patrol.leader:
                names = " ".join(
                    v for v in (member.get("givenName"), member.get("familyName")) if v
                )
                employee = member.get("employeeId") or ""
                patrol.leader = f"{names} ({employee})" if employee else names
        for day in _children(leg, "days"):
            date = (day.get("date") or "").strip()
            for wp in _children(day, "waypoints"):
                wp_id = (wp.get("id") or "").strip()
                where = f"waypoint {wp_id or '?'} of patrol {patrol_id}"
                if not wp_id:
                    raise InvalidInput(
                        f"{name} has a waypoint without an id in patrol {patrol_id}."
                    )
                time = (wp.get("time") or wp.get("dateTime") or "").strip()
                if time and "T" not in time and date:
                    time = f"{date}T{time}"
                comment = " ".join((c.text or "").strip() for c in _children(wp, "comment"))
                n = 0
                for group in _children(wp, "groups"):
                    for obs in _children(group, "observations"):
                        n += 1
                        attrs = {
                            (a.get("attributeKey") or "").strip().lower(): _attr_value(a)
                            for a in _children(obs, "attributes")
                        }
                        patrol.observations.append(
                            Observation(
                                patrol=patrol_id,
                                waypoint=wp_id,
                                index=n,
                                category=(obs.get("categoryKey") or "").strip(),
                                attributes=attrs,
                                time_local=time,
                                x=_number(wp.get("x"), what="x (longitude)", where=where),
                                y=_number(wp.get("y"), what="y (latitude)", where=where),
                                comment=comment,
                            )
                        )
    return patrol


def _norm(key: str) -> str:
    return "".join(ch for ch in key.lower() if ch.isalnum())


class _RawObservation(NamedTuple):
    """One observation of a GeoJSON feature: its category and attributes as the file has them."""

    category: str
    attributes: Mapping[str, Any]


#: Feature properties that describe the waypoint, not an observation's attributes.
_WAYPOINT_PROPERTIES = frozenset(
    {"patrolid", "patrol", "waypointid", "waypoint", "id", "x", "y", "date",
     "waypointdate", "time", "waypointtime", "category", "observationcategory",
     "leader", "patrolleader", "comment"}
)  # fmt: skip


def parse_geojson(data: bytes, *, name: str) -> Patrol:
    """A patrol from SMART Connect GeoJSON (one patrol per file)."""
    patrol: Patrol | None = None
    counters: dict[str, int] = {}
    for number, feature in enumerate(_features(data, name=name), start=1):
        where = f"feature {number} of {name}"
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            raise InvalidInput(f"The {where} has no properties; nothing was imported.")
        flat = {_norm(str(k)): v for k, v in props.items()}
        patrol_id, wp_id = _feature_ids(flat, where=where)
        if patrol is None:
            patrol = Patrol(
                id=patrol_id, leader=str(flat.get("leader") or flat.get("patrolleader") or "")
            )
        elif patrol.id != patrol_id:
            raise InvalidInput(
                f"{name} mixes patrols {patrol.id} and {patrol_id}; export one patrol per file."
            )
        x, y = _feature_point(flat, feature.get("geometry"))
        local = _feature_time(flat)
        for category, attrs in _feature_observations(props, flat, where=where):
            counters[wp_id] = counters.get(wp_id, 0) + 1
            patrol.observations.append(
                Observation(
                    patrol=patrol_id,
                    waypoint=wp_id,
                    index=counters[wp_id],
                    category=category.strip(),
                    attributes={
                        _norm(str(k)): "" if v is None else str(v) for k, v in attrs.items()
                    },
                    time_local=local,
                    x=_number(None if x is None else str(x), what="x (longitude)", where=where),
                    y=_number(None if y is None else str(y), what="y (latitude)", where=where),
                    comment=str(flat.get("comment") or ""),
                )
            )
    if patrol is None:
        raise InvalidInput(f"{name} holds no features; nothing was imported.")
    return patrol


def _features(data: bytes, *, name: str) -> list[Any]:
    """The features of a GeoJSON FeatureCollection, as parsed (checked one by one later)."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeError, RecursionError):
        raise InvalidInput(f"{name} is not readable JSON; nothing was imported.") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InvalidInput(
            f"{name} is not a GeoJSON FeatureCollection (a SMART Connect query export); "
            f"nothing was imported."
        )
    features = doc.get("features")
    if not isinstance(features, list):
        raise InvalidInput(f"{name} has no list of features; nothing was imported.")
    return features


def _feature_ids(flat: Mapping[str, Any], *, where: str) -> tuple[str, str]:
    """The patrol ID and waypoint ID a feature's (normalised) properties name."""
    patrol_id = str(flat.get("patrolid") or flat.get("patrol") or "").strip()
    wp_id = str(flat.get("waypointid") or flat.get("waypoint") or flat.get("id") or "").strip()
    if not patrol_id or not wp_id:
        raise InvalidInput(f"The {where} names no patrol id or waypoint id; nothing was imported.")
    return patrol_id, wp_id


def _feature_point(flat: Mapping[str, Any], geometry: Any) -> tuple[Any, Any]:
    """x and y as the properties give them, else from a Point geometry (unchecked)."""
    x, y = flat.get("x"), flat.get("y")
    if (x is None or y is None) and isinstance(geometry, dict):
        coords = geometry.get("coordinates")
        if geometry.get("type") == "Point" and isinstance(coords, list) and len(coords) >= 2:
            x, y = coords[0], coords[1]
    return x, y


def _feature_time(flat: Mapping[str, Any]) -> str:
    """The waypoint's local time (ISO, no zone) from its date and time properties."""
    date = str(flat.get("waypointdate") or flat.get("date") or "").strip()
    time = str(flat.get("waypointtime") or flat.get("time") or "").strip()
    return time if "T" in time else (f"{date}T{time}" if date and time else date)


def _feature_observations(
    props: Mapping[str, Any], flat: Mapping[str, Any], *, where: str
) -> list[_RawObservation]:
    """A feature's observations: its list of them, or the feature itself as one."""
    groups = props.get("observations")
    if not isinstance(groups, list):
        attrs = {k: v for k, v in flat.items() if k not in _WAYPOINT_PROPERTIES}
        category = str(flat.get("category") or flat.get("observationcategory") or "")
        return [_RawObservation(category, attrs)]
    observations: list[_RawObservation] = []
    for obs in groups:
        if not isinstance(obs, dict):
            raise InvalidInput(f"The {where} has an observation that is not an object.")
        attrs = obs.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise InvalidInput(f"The {where} has attributes that are not an object.")
        observations.append(
            _RawObservation(str(obs.get("category") or obs.get("categoryKey") or ""), attrs)
        )
    return observations


@dataclass(frozen=True)
class PeopleMap:
    """Which observations are people, and which of their attributes say what."""

    categories: Sequence[str]  # category prefixes of people observations
    arrested: Mapping[str, Sequence[str]]  # attribute -> values meaning arrested
    fields: Mapping[str, Sequence[str]]  # personal-data field -> attributes holding it
    nationality: Sequence[str]  # attributes holding the nationality


@dataclass(frozen=True)
class SmartMap:
    """What a patrol's attributes mean (see DEFAULT_MAP, the TOML map file's shape)."""

    seized_attributes: Sequence[str]
    seized_values: Sequence[str]
    count: Sequence[str]  # attributes holding a number of items
    weight_kg: Sequence[str]  # attributes holding a weight in kg
    people: PeopleMap

    @classmethod
    def from_sections(cls, sections: Mapping[str, Any]) -> SmartMap:
        """From the map's sections as DEFAULT_MAP and the TOML file give them."""
        people = sections["people"]
        return cls(
            seized_attributes=sections["seized"]["attributes"],
            seized_values=sections["seized"]["values"],
            count=sections["quantity"]["count"],
            weight_kg=sections["quantity"]["weight_kg"],
            people=PeopleMap(
                categories=people["categories"],
                arrested=people["arrested"],
                fields=people["fields"],
                nationality=people["nationality"],
            ),
        )


def load_map(path: Path | None) -> SmartMap:
    """The default attribute map, overridden by a TOML map file."""
    merged = json.loads(json.dumps(DEFAULT_MAP))
    if path is None:
        return SmartMap.from_sections(merged)
    try:
        custom = tomllib.loads(_read(path, what="map file").decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeError) as exc:
        raise InvalidInput(f"The map file {path} is not valid TOML ({exc}).") from None
    for section, values in custom.items():
        if section not in merged or not isinstance(values, dict):
            raise InvalidInput(
                f"The map file {path} has an unknown section [{section}]; use [seized], "
                f"[quantity] or [people]."
            )
        for key, value in values.items():
            if key not in merged[section]:
                raise InvalidInput(f"The map file {path} has an unknown key {section}.{key}.")
            if not isinstance(value, type(merged[section][key])):
                raise InvalidInput(
                    f"The map file {path} gives {section}.{key} as {type(value).__name__}; "
                    f"it must be a {type(merged[section][key]).__name__}."
                )
            if isinstance(value, list) and not all(isinstance(v, str) for v in value):
                raise InvalidInput(
                    f"The map file {path} gives {section}.{key} with entries that are not "
                    "text; write every entry in quotes."
                )
            merged[section][key] = value
    return SmartMap.from_sections(merged)


def _read(path: Path, *, what: str) -> bytes:
    if not path.exists():
        raise NotFound(f"The {what} {path} does not exist; check the path.")
    if not path.is_file():
        raise InvalidInput(
            f"The {what} {path} is not a regular file; give a file exported by SMART."
        )
    if path.stat().st_size > MAX_BYTES:
        raise InvalidInput(
            f"The {what} {path} is larger than {MAX_BYTES // 2**20} MB; split the export."
        )
    return path.read_bytes()


def _first(attrs: Mapping[str, str], keys: Sequence[str]) -> str:
    for key in keys:
        value = attrs.get(_norm(key)) or attrs.get(key)
        if value:
            return value
    return ""


def _is_seized(obs: Observation, mapping: SmartMap) -> bool:
    values = {str(v).lower() for v in mapping.seized_values}
    return any(_first(obs.attributes, [key]).lower() in values for key in mapping.seized_attributes)


def _is_person(obs: Observation, mapping: SmartMap) -> bool:
    return any(obs.category.startswith(prefix) for prefix in mapping.people.categories)


def _species_word(value: str) -> str:
    """`chordata_rl.mammalia_rl....pantherapardus_rl15954.` -> `pantherapardus`."""
    last = [p for p in value.strip(".").split(".") if p][-1:] or [""]
    word = last[0]
    return word.split("_rl", 1)[0] if "_rl" in word else word


def _category_words(category: str) -> str:
    parts = [p for p in category.strip(".").split(".") if p]
    return " / ".join(parts[-2:]) if parts else "observation"


def _item_spec(obs: Observation, mapping: SmartMap, *, tz: ZoneInfo, leader: str) -> ItemCreate:
    where = f"waypoint {obs.waypoint} of patrol {obs.patrol}"
    if not obs.time_local:
        raise InvalidInput(f"The {where} has no time; SMART waypoints need one to be imported.")
    try:
        local = datetime.fromisoformat(obs.time_local)
    except ValueError:
        raise InvalidInput(f"The time '{obs.time_local}' of {where} is not an ISO time.") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=tz)
    count_text = _first(obs.attributes, mapping.count)
    weight_text = _first(obs.attributes, mapping.weight_kg)
    count = _number(count_text, what="count", where=where)
    weight = _number(weight_text, what="weight", where=where)
    if count is not None and (count < 0 or not count.is_integer()):
        raise InvalidInput(f"The count {count_text} of {where} is not a whole number.")
    if obs.y is not None and not -90 <= obs.y <= 90:
        raise InvalidInput(f"The latitude (y) {obs.y} of {where} is outside -90..90.")
    if obs.x is not None and not -180 <= obs.x <= 180:
        raise InvalidInput(f"The longitude (x) {obs.x} of {where} is outside -180..180.")
    species = _species_word(_first(obs.attributes, ["species", "speciesname"]))
    details = ", ".join(
        f"{k} {_species_word(v) if k == 'species' else v}"
        for k, v in sorted(obs.attributes.items())
        if v
    )
    description = (
        f"SMART {_category_words(obs.category)}: {details}"
        if details
        else f"SMART {_category_words(obs.category)}"
    )
    other = {"smart": obs.key, "smart_patrol": obs.patrol, "smart_waypoint": obs.waypoint}
    if leader:
        other["smart_leader"] = leader
    return ItemCreate(
        description=description[:500],
        species=f"{species} (SMART)" if species else "",
        count=int(count) if count is not None else None,
        weight=weight,
        unit="kg" if weight is not None else "",
        other_ids=json.dumps(other, sort_keys=True),
        place=f"SMART waypoint {obs.waypoint}" + (f": {obs.comment}" if obs.comment else ""),
        lat=obs.y,
        lon=obs.x,
        seized_at=local.isoformat(),
    )


class PersonSpec(NamedTuple):
    """A person entity to add from a people observation."""

    category: str  # "suspect" when an arrested attribute says so, else "other"
    attributes: dict[str, str]  # non-nominal: the nationality, when it is a country code
    nominal: dict[str, str]  # personal data, kept apart from the signed record


def _person(obs: Observation, mapping: SmartMap) -> PersonSpec:
    people = mapping.people
    category = "other"
    for key, values in people.arrested.items():
        if _first(obs.attributes, [key]).lower() in {str(v).lower() for v in values}:
            category = "suspect"
    nominal = {f: _first(obs.attributes, keys) for f, keys in people.fields.items()}
    nationality = _first(obs.attributes, people.nationality).strip().upper()
    attrs = {"nationality": nationality} if nationality in codes.countries() else {}
    return PersonSpec(category, attrs, {k: v for k, v in nominal.items() if v})


def read_patrol(path: Path) -> tuple[Patrol, str]:
    data = _read(path, what="SMART file")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        return parse_geojson(data, name=path.name), digest
    return parse_patrol_xml(data, name=path.name), digest


class _PlannedItem(NamedTuple):
    obs: Observation
    spec: ItemCreate
    seized_utc: str
    seized_local: str


class _Plan(NamedTuple):
    """A patrol's observations sorted and checked before anything is written."""

    items: list[_PlannedItem]  # seizures
    persons: list[tuple[Observation, PersonSpec]]  # people
    ignored: int  # observations that are neither


def import_smart(
    store: Store,
    *,
    path: Path,
    case_no: str,
    tz: str,
    signer: Signer,
    map_path: Path | None = None,
) -> SmartImport:
    """Import a SMART patrol file into a case; re-importing the same file adds nothing."""
    from custody.caselog import require_case
    from custody.entities import add_entity_in
    from custody.records import _insert_item

    zone = _zone(tz)
    mapping = load_map(map_path)
    patrol, digest = read_patrol(path)
    check_permission(signer.actor, EventType("seize"))
    check_permission(signer.actor, EventType("smart-import"))
    plan = _plan(patrol, mapping=mapping, zone=zone)
    result = SmartImport(patrol=patrol.id, ignored=plan.ignored)
    with store.write() as session:
        require_case(session, case_no)
        done_keys = _imported_keys(session, case_no)
        writer = Writer(session)
        by_waypoint: dict[tuple[str, str], list[str]] = {}
        for obs, spec, utc, local in plan.items:
            if obs.key in done_keys:
                result.skipped += 1
                continue
            item = _insert_item(
                session, writer, case_no=case_no, spec=spec, seized_utc=utc,
                seized_local=local, signer=signer, photos=[],
            )  # fmt: skip
            result.items.append(item.id)
            by_waypoint.setdefault((obs.patrol, obs.waypoint), []).append(item.id)
        for obs, person in plan.persons:
            if obs.key in done_keys:
                result.skipped += 1
                continue
            links = [(i, "seized-from") for i in by_waypoint.get((obs.patrol, obs.waypoint), [])]
            entity = add_entity_in(
                session, writer, case_no=case_no, kind="person", category=person.category,
                signer=signer, attributes=person.attributes, nominal=person.nominal, links=links,
                source=f"SMART {obs.key}",
            )  # fmt: skip
            result.persons.append(entity.id)
        if result.items or result.persons:
            result.event = _record_import(
                writer,
                result,
                case_no=case_no,
                signer=signer,
                path=path,
                digest=digest,
                leader=patrol.leader,
                tz=tz,
            )
            writer.finish()
    return result


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"'{tz}' is not a time zone name; SMART times carry no zone, so give one such as "
            f"Africa/Nairobi."
        ) from None


def _plan(patrol: Patrol, *, mapping: SmartMap, zone: ZoneInfo) -> _Plan:
    """Seizures as checked item specs and people as person specs; raises on the first bad one."""
    from custody.records import _validated

    seized = [
        o for o in patrol.observations if _is_seized(o, mapping) and not _is_person(o, mapping)
    ]
    people = [o for o in patrol.observations if _is_person(o, mapping)]
    items = [
        _PlannedItem(
            o,
            *_validated(
                _item_spec(o, mapping, tz=zone, leader=patrol.leader),
                where=f"waypoint {o.waypoint}",
            ),
        )
        for o in seized
    ]
    return _Plan(
        items=items,
        persons=[(o, _person(o, mapping)) for o in people],
        ignored=len(patrol.observations) - len(seized) - len(people),
    )


def _imported_keys(session: Session, case_no: str) -> set[str]:
    """SMART observation keys (patrol/waypoint/index) the case's items and entities came from."""
    from custody.entities import read_entities

    done_keys = set()
    for item in session.exec(_items_of(case_no)).all():
        key = json.loads(item.other_ids or "{}").get("smart")
        if key:
            done_keys.add(key)
    entities = read_entities(session, case_no)
    done_keys |= {e.source.removeprefix("SMART ") for e in entities.values() if e.source}
    return done_keys


def _record_import(
    writer: Writer,
    result: SmartImport,
    *,
    case_no: str,
    signer: Signer,
    path: Path,
    digest: str,
    leader: str,
    tz: str,
) -> int:
    """The signed `smart-import` event: the file, its patrol and what was created."""
    from custody.caselog import append_case_event

    row = append_case_event(
        writer,
        case_no=case_no,
        kind="smart-import",
        signer=signer,
        data={
            "file": path.name,
            "sha256": digest,
            "patrol": result.patrol,
            "leader": leader,
            "time_zone": tz,
            "items": result.items,
            "persons": result.persons,
            "skipped": result.skipped,
        },
        at=None,
    )
    return row.id


def _items_of(case_no: str) -> Any:
    from sqlmodel import select

    return select(Item).where(Item.case_no == case_no)
