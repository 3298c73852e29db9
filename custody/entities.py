"""Case entities: persons, organisations, conveyances and shipments, their links
to items, and their personal (nominal) data kept apart from the signed record.

Invariants:
- An entity exists by its `entity-add` event on the case chain; `entity-update`,
  `entity-link` and `nominal-erase` events change it. Its current state is the
  replay of those events, never a stored row.
- Signed event bodies hold only non-nominal facts (kind, category, nationality
  or country) and a salted commitment to the nominal data:
  `sha256(canonical({"entity", "salt", "data"}))`. Names, dates of birth, ID and
  passport numbers, phones, e-mail and postal addresses, plates and consignment
  numbers live in `nominal_records` with their salt.
- Correcting nominal data records a new commitment; erasing it (end of
  retention) records a `nominal-erase` event and clears data and salt, so
  `custody verify` stays intact, while a nominal row edited outside custody no
  longer matches its commitment and is reported (`nominal_findings`).
- Person categories follow the EU Law Enforcement Directive, Art. 6.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

from sqlmodel import Session, col, select

from custody import codes
from custody.canonical import canonical_json, hash_record
from custody.caselog import append_case_event, case_events, require_case
from custody.domain import EventRecord, FindingKind
from custody.errors import InvalidInput, NotFound
from custody.events import Signer, Writer, event_time, get_item
from custody.findings import Finding
from custody.models import Event, NominalRecord
from custody.store import Store
from custody.timeutil import now_utc, to_utc_text

KINDS: dict[str, tuple[str, ...]] = {
    "person": ("suspect", "convicted", "victim", "witness", "other"),
    "organisation": ("company", "government", "ngo", "other"),
    "conveyance": ("vehicle", "vessel", "flight"),
    "shipment": ("airway-bill", "bill-of-lading", "container"),
}
PREFIX = {"person": "P", "organisation": "O", "conveyance": "V", "shipment": "S"}
#: Non-nominal attributes each kind may carry in signed events (country codes).
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "person": ("nationality",),
    "organisation": ("country",),
    "conveyance": ("country",),
    "shipment": ("origin", "destination"),
}
#: Nominal fields each kind may carry (never in a signed body, never shared).
NOMINAL_FIELDS: dict[str, tuple[str, ...]] = {
    "person": (
        "name",
        "dob",
        "age",
        "id_number",
        "passport",
        "phone",
        "email",
        "address",
        "place_of_origin",
    ),
    "organisation": ("name", "registration", "phone", "email", "address"),
    "conveyance": ("identifier", "owner"),
    "shipment": ("number", "consignor", "consignee"),
}
RELATIONS = ("found-in", "owned-by", "carried-by", "sent-by", "received-by", "seized-from")
ENTITY_EVENTS = ("entity-add", "entity-update", "entity-link", "nominal-erase")
MAX_FIELD = 300


class EntityLink(TypedDict):
    """An entity's link to an item of its case, as signed events carry it."""

    item: str
    relation: str  # one of RELATIONS


@dataclass(frozen=True)
class Erasure:
    """When, by whom and why an entity's personal data was erased (its signed event)."""

    at: str
    by: str  # actor handle
    reason: str


@dataclass
class Entity:
    """A case entity as its events describe it (no personal data)."""

    id: str
    case_no: str
    kind: str
    category: str
    attributes: dict[str, str] = field(default_factory=dict)
    commitment: str | None = None  # of the current nominal data; None when there is none
    erased: bool = False
    links: list[EntityLink] = field(default_factory=list)
    added_at: str = ""
    source: str = ""  # provenance, e.g. a SMART patrol and waypoint
    erasure: Erasure | None = None  # the erasure of its personal data, while it stands

    @property
    def label(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "case_no": self.case_no,
            "kind": self.kind,
            "category": self.category,
            "attributes": dict(self.attributes),
            "has_nominal": self.commitment is not None and not self.erased,
            "erased": self.erased,
            "links": list(self.links),
            "added_at": self.added_at,
            "source": self.source,
        }


def commitment(entity_id: str, *, salt: str, data: Mapping[str, Any]) -> str:
    """The salted hash a signed event carries in place of the nominal data."""
    return hash_record({"entity": entity_id, "salt": salt, "data": dict(data)})


def _check_kind(kind: str, category: str) -> tuple[str, str]:
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise InvalidInput(f"'{kind}' is not an entity kind; use one of {', '.join(KINDS)}.")
    category = category.strip().lower().replace(" ", "-").replace("_", "-")
    if category not in KINDS[kind]:
        raise InvalidInput(
            f"'{category}' is not a {kind} category; use one of {', '.join(KINDS[kind])}."
        )
    return kind, category


def _check_attributes(kind: str, attributes: Mapping[str, str | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in attributes.items():
        if name not in ATTRIBUTES[kind]:
            raise InvalidInput(
                f"A {kind} has no attribute '{name}'; use {', '.join(ATTRIBUTES[kind])}."
            )
        if value:
            out[name] = codes.check_country(value, where=name)
    return out


def _check_nominal(kind: str, nominal: Mapping[str, str | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in nominal.items():
        if name not in NOMINAL_FIELDS[kind]:
            raise InvalidInput(
                f"A {kind} has no personal-data field '{name}'; use "
                f"{', '.join(NOMINAL_FIELDS[kind])}."
            )
        text = (value or "").strip()
        if len(text) > MAX_FIELD:
            raise InvalidInput(f"The {name} is longer than {MAX_FIELD} characters; shorten it.")
        if text:
            out[name] = text
    return out


def replay_entities(events: Sequence[Event], *, skip_malformed: bool = False) -> dict[str, Entity]:
    """Entities of one case from its case-chain events (stored rows), in chain order.

    `skip_malformed` passes over an event body altered out of shape (verification's
    own findings report it) instead of raising.
    """
    parse: Callable[[str], Any] = _parsed if skip_malformed else json.loads
    return _replay(
        ((ev.type, parse(ev.data), ev.case_no, ev.at, ev.actor) for ev in events),
        skip_malformed=skip_malformed,
    )


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def replay_entity_records(events: Iterable[EventRecord]) -> dict[str, Entity]:
    """Entities of one case from its typed event records (a dossier's case file), in order.

    An event body that is not an entity event's shape (altered outside custody, which
    verification reports) is passed over, so a dossier built with findings still renders.
    """
    return _replay(
        ((ev.type, ev.data, ev.case_no, ev.at, ev.actor) for ev in events), skip_malformed=True
    )


def _replay(
    events: Iterable[tuple[str, Mapping[str, Any], str, str, str]],
    *,
    skip_malformed: bool = False,
) -> dict[str, Entity]:
    out: dict[str, Entity] = {}
    for kind, data, case_no, at, actor in events:
        if kind not in ENTITY_EVENTS:
            continue
        try:
            _apply(out, kind=kind, data=data, case_no=case_no, at=at, actor=actor)
        except (KeyError, TypeError, AttributeError, ValueError):
            if not skip_malformed:
                raise
    return out


def _apply(
    out: dict[str, Entity], *, kind: str, data: Mapping[str, Any], case_no: str, at: str, actor: str
) -> None:
    """Apply one entity event to the entities replayed so far."""
    if kind == "entity-add":
        spec = data["entity"]
        out[spec["id"]] = Entity(
            id=spec["id"],
            case_no=case_no,
            kind=spec["kind"],
            category=spec["category"],
            attributes=dict(spec.get("attributes", {})),
            commitment=data.get("nominal"),
            links=[cast(EntityLink, dict(link)) for link in data.get("links", [])],
            added_at=at,
            source=str(spec.get("source", "")),
        )
        return
    entity = out.get(data.get("entity", ""))
    if entity is None:
        return
    if kind == "entity-update":
        entity.category = data.get("category", entity.category)
        entity.attributes.update(data.get("attributes", {}))
        entity.attributes = {k: v for k, v in entity.attributes.items() if v}
        if "nominal" in data:
            entity.commitment = data["nominal"]
            entity.erased = False
            entity.erasure = None
    elif kind == "entity-link":
        link = EntityLink(item=data["item"], relation=data["relation"])
        if data.get("removed"):
            entity.links = [x for x in entity.links if x != link]
        elif link not in entity.links:
            entity.links.append(link)
    elif kind == "nominal-erase":
        entity.erased = True
        entity.erasure = Erasure(at=at, by=actor, reason=str(data.get("reason", "")))


def read_entities(session: Session, case_no: str) -> dict[str, Entity]:
    return replay_entities(case_events(session, case_no, ENTITY_EVENTS))


def list_entities(store: Store, case_no: str) -> list[Entity]:
    with store.read() as session:
        require_case(session, case_no)
        return list(read_entities(session, case_no).values())


def _case_of(entity_id: str) -> str:
    case_no, sep, label = entity_id.rpartition("/")
    if not sep or label[:1] not in PREFIX.values():
        raise NotFound(
            f"'{entity_id}' is not an entity ID; entity IDs look like KWS-2026-0042/P1 "
            f"(see 'custody entity list CASE')."
        )
    return case_no


def _get_entity(session: Session, entity_id: str) -> Entity:
    case_no = _case_of(entity_id)
    entity = read_entities(session, case_no).get(entity_id)
    if entity is None:
        raise NotFound(
            f"Entity {entity_id} does not exist; list entities with 'custody entity list {case_no}'."
        )
    return entity


def get_entity(store: Store, entity_id: str) -> Entity:
    with store.read() as session:
        return _get_entity(session, entity_id)


def _check_links(
    session: Session, *, case_no: str, links: Sequence[tuple[str, str]]
) -> list[EntityLink]:
    out: list[EntityLink] = []
    for item_id, relation in links:
        relation = relation.strip().lower()
        if relation not in RELATIONS:
            raise InvalidInput(
                f"'{relation}' is not a link relation; use one of {', '.join(RELATIONS)}."
            )
        item = get_item(session, item_id)
        if item.case_no != case_no:
            raise InvalidInput(
                f"Item {item_id} belongs to case {item.case_no}, not {case_no}; link entities "
                f"only to items of their own case."
            )
        link = EntityLink(item=item_id, relation=relation)
        if link not in out:
            out.append(link)
    return out


def _write_nominal(session: Session, *, entity_id: str, case_no: str, data: dict[str, str]) -> str:
    salt = secrets.token_hex(16)
    row = session.get(NominalRecord, entity_id) or NominalRecord(
        entity_id=entity_id, case_no=case_no, updated_at=""
    )
    row.salt = salt
    row.data = canonical_json(data).decode("utf-8")
    row.updated_at = to_utc_text(now_utc())
    session.add(row)
    return commitment(entity_id, salt=salt, data=data)


def add_entity_in(
    session: Session,
    writer: Writer,
    *,
    case_no: str,
    kind: str,
    category: str,
    signer: Signer,
    attributes: Mapping[str, str | None] | None = None,
    nominal: Mapping[str, str | None] | None = None,
    links: Sequence[tuple[str, str]] = (),
    source: str = "",
    at: str | None = None,
) -> Entity:
    """Add an entity inside an open write transaction (used by imports too)."""
    kind, category = _check_kind(kind, category)
    attrs = _check_attributes(kind, attributes or {})
    personal = _check_nominal(kind, nominal or {})
    checked_links = _check_links(session, case_no=case_no, links=links)
    existing = read_entities(session, case_no)
    prefix = PREFIX[kind]
    numbers = [
        int(e.label[1:])
        for e in existing.values()
        if e.label[:1] == prefix and e.label[1:].isdigit()
    ]
    entity_id = f"{case_no}/{prefix}{max(numbers, default=0) + 1}"
    commit = (
        _write_nominal(session, entity_id=entity_id, case_no=case_no, data=personal)
        if personal
        else None
    )
    spec: dict[str, Any] = {
        "id": entity_id,
        "kind": kind,
        "category": category,
        "attributes": attrs,
    }
    if source:
        spec["source"] = source
    row = append_case_event(
        writer,
        case_no=case_no,
        kind="entity-add",
        signer=signer,
        data={"entity": spec, "nominal": commit, "links": checked_links},
        at=at,
    )
    return Entity(
        id=entity_id,
        case_no=case_no,
        kind=kind,
        category=category,
        attributes=attrs,
        commitment=commit,
        links=checked_links,
        added_at=row.at,
        source=source,
    )


def add_entity(
    store: Store,
    *,
    case_no: str,
    kind: str,
    category: str,
    signer: Signer,
    attributes: Mapping[str, str | None] | None = None,
    nominal: Mapping[str, str | None] | None = None,
    links: Sequence[tuple[str, str]] = (),
    at: str | None = None,
) -> Entity:
    """Add a person, organisation, conveyance or shipment to a case (one signed event)."""
    when = event_time(at)
    with store.write() as session:
        require_case(session, case_no)
        writer = Writer(session)
        entity = add_entity_in(
            session,
            writer,
            case_no=case_no,
            kind=kind,
            category=category,
            signer=signer,
            attributes=attributes,
            nominal=nominal,
            links=links,
            at=when,
        )
        writer.finish()
    return entity


def update_entity(
    store: Store,
    *,
    entity_id: str,
    signer: Signer,
    category: str | None = None,
    attributes: Mapping[str, str | None] | None = None,
    nominal: Mapping[str, str | None] | None = None,
    at: str | None = None,
) -> Entity:
    """Change an entity's category or attributes, or correct its personal data.

    Nominal fields given are merged into the current data ("" removes a field);
    the event records the new commitment only.
    """
    when = event_time(at)
    with store.write() as session:
        entity = _get_entity(session, entity_id)
        data: dict[str, Any] = {"entity": entity_id}
        if category is not None:
            data["category"] = _check_kind(entity.kind, category)[1]
        if attributes:
            for name in attributes:
                if name not in ATTRIBUTES[entity.kind]:
                    raise InvalidInput(
                        f"A {entity.kind} has no attribute '{name}'; use "
                        f"{', '.join(ATTRIBUTES[entity.kind])}."
                    )
            data["attributes"] = {
                k: (codes.check_country(v, where=k) if v else "") for k, v in attributes.items()
            }
        if nominal:
            _check_nominal(entity.kind, nominal)
            current = _read_nominal_row(session, entity) or {}
            merged = {**current}
            for name, value in nominal.items():
                if value is None:
                    continue
                if value.strip():
                    merged[name] = value.strip()
                else:
                    merged.pop(name, None)
            merged = _check_nominal(entity.kind, merged)
            data["nominal"] = (
                _write_nominal(session, entity_id=entity_id, case_no=entity.case_no, data=merged)
                if merged
                else None
            )
            if not merged:
                _clear_nominal(session, entity_id)
        if len(data) == 1:
            raise InvalidInput(
                f"Nothing to change for entity {entity_id}; give a category, attribute or "
                f"personal-data field."
            )
        writer = Writer(session)
        append_case_event(
            writer,
            case_no=entity.case_no,
            kind="entity-update",
            signer=signer,
            data=data,
            at=when,
        )
        writer.finish()
        return read_entities(session, entity.case_no)[entity_id]


def link_entity(
    store: Store,
    *,
    entity_id: str,
    item_id: str,
    relation: str,
    signer: Signer,
    remove: bool = False,
    at: str | None = None,
) -> Entity:
    """Link an entity to an item of its case ("owned-by", "found-in" ...), or remove the link."""
    when = event_time(at)
    with store.write() as session:
        entity = _get_entity(session, entity_id)
        link = _check_links(session, case_no=entity.case_no, links=[(item_id, relation)])[0]
        if remove and link not in entity.links:
            raise InvalidInput(
                f"Entity {entity_id} has no '{link['relation']}' link to item {item_id}; "
                f"nothing to remove."
            )
        if not remove and link in entity.links:
            raise InvalidInput(
                f"Entity {entity_id} is already linked to item {item_id} as '{link['relation']}'."
            )
        writer = Writer(session)
        data: dict[str, Any] = {"entity": entity_id, **link}
        if remove:
            data["removed"] = True
        append_case_event(
            writer,
            case_no=entity.case_no,
            kind="entity-link",
            signer=signer,
            data=data,
            at=when,
        )
        writer.finish()
        return read_entities(session, entity.case_no)[entity_id]


def _clear_nominal(session: Session, entity_id: str) -> None:
    row = session.get(NominalRecord, entity_id)
    if row is not None:
        row.salt = None
        row.data = None
        row.updated_at = to_utc_text(now_utc())
        session.add(row)


def erase_nominal(
    store: Store, *, entity_id: str, signer: Signer, reason: str, at: str | None = None
) -> Entity:
    """Erase an entity's personal data (end of retention); the chain stays intact."""
    if not reason.strip():
        raise InvalidInput(
            "Erasing personal data needs a reason (e.g. the retention rule); pass --reason."
        )
    when = event_time(at)
    with store.write() as session:
        entity = _get_entity(session, entity_id)
        if entity.commitment is None or entity.erased:
            raise InvalidInput(f"Entity {entity_id} holds no personal data; nothing to erase.")
        writer = Writer(session)
        append_case_event(
            writer,
            case_no=entity.case_no,
            kind="nominal-erase",
            signer=signer,
            data={"entity": entity_id, "erased": entity.commitment, "reason": reason.strip()},
            at=when,
        )
        _clear_nominal(session, entity_id)
        writer.finish()
        return read_entities(session, entity.case_no)[entity_id]


class NominalMismatch(InvalidInput):
    """Stored personal data no longer matches the commitment in the signed record."""


def _read_nominal_row(session: Session, entity: Entity) -> dict[str, str] | None:
    """The entity's checked personal data; None when it has none or it was erased."""
    if entity.commitment is None or entity.erased:
        return None
    row = session.get(NominalRecord, entity.id)
    if row is None or row.data is None or row.salt is None:
        raise NominalMismatch(
            f"The personal data of entity {entity.id} is missing although no erasure was "
            f"recorded; run 'custody verify --case {entity.case_no}'."
        )
    try:
        data = json.loads(row.data)
    except ValueError:
        data = None
    if (
        not isinstance(data, dict)
        or commitment(entity.id, salt=row.salt, data=data) != entity.commitment
    ):
        raise NominalMismatch(
            f"The personal data of entity {entity.id} does not match its signed commitment; "
            f"it was changed outside custody (run 'custody verify --case {entity.case_no}')."
        )
    return {str(k): str(v) for k, v in data.items()}


def nominal_data(store: Store, entity_id: str) -> dict[str, str] | None:
    """An entity's personal data, checked against its commitment (None when erased/none)."""
    with store.read() as session:
        return _read_nominal_row(session, _get_entity(session, entity_id))


def case_nominal(store: Store, case_no: str) -> dict[str, dict[str, str]]:
    """Checked personal data of every entity of a case that has some."""
    with store.read() as session:
        require_case(session, case_no)
        out: dict[str, dict[str, str]] = {}
        for entity in read_entities(session, case_no).values():
            data = _read_nominal_row(session, entity)
            if data:
                out[entity.id] = data
    return out


def checked_nominal(
    store: Store, entities: Iterable[Entity]
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Personal data of `entities`, each checked against its signed commitment.

    Returns the data by entity ID (entities with none or erased are absent) and, for
    data missing or changed outside custody, a sentence by entity ID instead: a reader
    that prints personal data never prints data the signed record does not vouch for.
    """
    data: dict[str, dict[str, str]] = {}
    problems: dict[str, str] = {}
    with store.read() as session:
        for entity in entities:
            try:
                found = _read_nominal_row(session, entity)
            except NominalMismatch as exc:
                problems[entity.id] = str(exc)
                continue
            if found:
                data[entity.id] = found
    return data, problems


def nominal_findings(store: Store, events: Sequence[EventRecord]) -> list[Finding]:
    """Verification of the personal data of the cases whose chains are in `events`.

    Returns findings:
    data that no longer matches its commitment (altered), data removed without a
    recorded erasure (missing), data still present after an erasure or for no
    entity (inserted).
    """
    cases = sorted({e.chain[5:] for e in events if e.chain.startswith("case:")})
    if not cases:
        return []
    out: list[Finding] = []
    with store.read() as session:
        stored = {
            r.entity_id: r
            for r in session.exec(
                select(NominalRecord).where(col(NominalRecord.case_no).in_(cases))
            ).all()
        }
        for case_no in cases:
            entities = replay_entities(
                case_events(session, case_no, ENTITY_EVENTS), skip_malformed=True
            )
            chain = f"case:{case_no}"
            for entity in entities.values():
                row = stored.pop(entity.id, None)
                has_data = row is not None and row.data is not None
                if entity.commitment is None or entity.erased:
                    if has_data:
                        out.append(
                            Finding(
                                chain,
                                None,
                                FindingKind.INSERTED,
                                f"Entity {entity.id} holds personal data although its record says "
                                f"it has none or it was erased.",
                            )
                        )
                    continue
                if not has_data:
                    out.append(
                        Finding(
                            chain,
                            None,
                            FindingKind.MISSING,
                            f"The personal data of entity {entity.id} was removed without a "
                            f"recorded erasure.",
                        )
                    )
                    continue
                try:
                    _read_nominal_row(session, entity)
                except NominalMismatch:
                    out.append(
                        Finding(
                            chain,
                            None,
                            FindingKind.ALTERED,
                            f"The personal data of entity {entity.id} does not match the "
                            f"commitment in its signed record: it was changed outside custody.",
                        )
                    )
        for entity_id, row in sorted(stored.items()):
            if row.data is not None and row.case_no in cases:
                out.append(
                    Finding(
                        f"case:{row.case_no}",
                        None,
                        FindingKind.INSERTED,
                        f"Personal data for {entity_id} belongs to no entity of case "
                        f"{row.case_no}: it was inserted outside custody.",
                    )
                )
    return out


def persons_nationalities(
    entities: Mapping[str, Entity], *, offenders_only: bool = True
) -> list[str]:
    """Nationalities of the case's suspects and convicted persons (non-nominal)."""
    out: list[str] = []
    for e in entities.values():
        if e.kind != "person":
            continue
        if offenders_only and e.category not in ("suspect", "convicted"):
            continue
        nat = e.attributes.get("nationality")
        if nat and nat not in out:
            out.append(nat)
    return out


def kinds_help() -> str:
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in KINDS.items())
