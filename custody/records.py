"""Agencies, actors, cases and items: creating and reading them.

Invariants:
- Case and item rows are written together with the event that creates them
  (`case-open`, `seize`, `sample`), whose signed data repeats the whole row; the
  rows are never updated afterwards.
- Item IDs are `<CASE>/<n>`; sub-items and samples `<PARENT>.<m>` at any depth,
  numbered in order of creation within their parent.
- Imports validate every row before writing any: all rows or none.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from custody import attachments as cas
from custody.chain import actor_message, actor_record
from custody.domain import GENESIS_TYPES, EventType
from custody.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied, StoreProblem
from custody.events import (
    FUTURE_TOLERANCE,
    Draft,
    Recorded,
    Signer,
    Writer,
    check_permission,
    check_transition,
    correctable_event,
    event_time,
    get_item,
    record_correction,
)
from custody.keys import create_key
from custody.models import (
    ROLES,
    Actor,
    Agency,
    Case,
    Event,
    Item,
    ItemCreate,
    StoreMeta,
)
from custody.seals import check_seal_unused
from custody.state import ItemState, replay
from custody.store import Store, open_store
from custody.timeutil import now_utc, parse_time, to_utc_text
from custody.units import check_unit

MAX_COUNT = 10**9
#: Largest weight or quantity in any unit (a trillion grams is a million tonnes):
#: larger is a typing error.
MAX_QUANTITY = 1e12
CASE_NO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
AGENCY_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,15}$")


def init_store(
    url_or_path: str | None,
    *,
    agency_code: str | None = None,
    agency_name: str | None = None,
    country: str = "",
    home: Path | None = None,
    root_passphrase: str | None = None,
) -> Store:
    """Create (or upgrade) the store, optionally register the home agency, and create the
    agency root key on this machine when the store has none (`custody.trust`)."""
    from custody.trust import create_root, store_root

    store = open_store(url_or_path, create=True, home=home)
    with store.write() as session:
        if session.get(StoreMeta, "store_id") is None:
            session.add(StoreMeta(key="store_id", value=str(uuid.uuid4())))
            session.add(StoreMeta(key="created_at", value=to_utc_text(now_utc())))
        if agency_code:
            _add_agency(session, code=agency_code, name=agency_name or agency_code, country=country)
        if store_root(session) is None:
            code = agency_code or next(iter(session.exec(select(Agency.code)).all()), "")
            create_root(session, home=store.home, agency_code=code, passphrase=root_passphrase)
    return store


def root_fingerprint(store: Store) -> str | None:
    """The fingerprint of the agency root the store names (None before 'custody init')."""
    from custody.trust import store_root

    with store.read() as session:
        root = store_root(session)
    return root.fingerprint if root else None


def _add_agency(session: Session, *, code: str, name: str, country: str) -> Agency:
    if not AGENCY_RE.match(code):
        raise InvalidInput(
            f"Agency code '{code}' is not valid; use upper-case letters, digits, '-' or '_' (e.g. KWS)."
        )
    existing = session.get(Agency, code)
    if existing is not None:
        if existing.name != name or existing.country != country.upper():
            raise AlreadyExists(
                f"Agency {code} exists already as '{existing.name}' ({existing.country}); "
                f"agency records are not changed after creation."
            )
        return existing
    agency = Agency(code=code, name=name, country=country.upper())
    session.add(agency)
    return agency


def add_actor(
    store: Store,
    *,
    handle: str,
    name: str,
    role: str,
    badge: str = "",
    agency_code: str | None = None,
    passphrase: str | None = None,
    authority: Signer | None = None,
) -> Actor:
    """Register an actor and create their Ed25519 key pair (private key in home/keys).

    An act of the agency: signed into the trust log by the agency root (its key on this
    machine) or by `authority`, an admin the root certified; refused before anything is
    written otherwise.
    """
    from custody.trust import TrustLog, store_root

    if not HANDLE_RE.match(handle):
        raise InvalidInput(
            f"Handle '{handle}' is not valid; use lower-case letters, digits, '.', '-' or '_'."
        )
    if role not in ROLES:
        raise InvalidInput(f"Role '{role}' does not exist; use one of {', '.join(ROLES)}.")
    if not name.strip():
        raise InvalidInput("An actor needs a name; pass --name.")
    with store.read() as session:
        if session.get(Actor, handle) is not None:
            raise AlreadyExists(f"Actor '{handle}' exists already; choose another handle.")
        if agency_code and session.get(Agency, agency_code) is None:
            raise NotFound(
                f"Agency {agency_code} does not exist; create it with 'custody init --agency-code'."
            )
        if session.get(StoreMeta, "store_id") is None:
            raise StoreProblem("The store was not initialised; run 'custody init' first.")
        acting = agency_authority(store, session, authority)
    key = create_key(store.home, handle, passphrase=passphrase)
    created = to_utc_text(now_utc())
    record = actor_record(
        handle=handle,
        name=name.strip(),
        role=role,
        badge=badge,
        agency_code=agency_code,
        public_key=key.public_hex,
        created_at=created,
    )
    actor = Actor(
        handle=handle,
        name=name.strip(),
        role=role,
        badge=badge,
        agency_code=agency_code,
        public_key=key.public_hex,
        key_fingerprint=key.fingerprint,
        created_at=created,
        registration_signature=key.sign(actor_message(record)),
    )
    with store.write() as session:
        session.add(actor)
        session.flush()
        root = store_root(session)
        assert root is not None
        TrustLog(session, root).issue(
            kind="register", actor=actor, issuer=acting.issuer, key=acting.key
        )
        session.expunge(actor)
    return actor


def agency_authority(store: Store, session: Session, authority: Signer | None) -> Any:
    """The root key here, or `authority` as a certified admin (`custody.trust.Authority`)."""
    from custody.trust import admin_authority, root_authority

    if authority is None:
        return root_authority(store.home, session)
    return admin_authority(session, handle=authority.actor.handle, key=authority.key)


def change_role(store: Store, *, handle: str, role: str, authority: Signer | None = None) -> None:
    """Give an actor another role from now on (a certificate; earlier acts keep the old role)."""
    from custody.trust import change_role as certify

    with store.read() as session:
        acting = agency_authority(store, session, authority)
    with store.write() as session:
        certify(session, handle=handle, role=role, authority=acting)


def revoke_actor(
    store: Store, *, handle: str, reason: str, authority: Signer | None = None
) -> None:
    """Revoke an actor's key from now on; it signs nothing more (earlier acts stay valid)."""
    from custody.trust import revoke_actor as revoke

    with store.read() as session:
        acting = agency_authority(store, session, authority)
    with store.write() as session:
        revoke(session, handle=handle, reason=reason, authority=acting)


def rotate_key(
    store: Store, *, handle: str, passphrase: str | None = None, authority: Signer | None = None
) -> tuple[Actor, str]:
    """Give an actor a new key from now on; returns the actor and the old key's fingerprint.

    An act of the agency (the root key here, or `authority` as a certified admin): the new
    key is certified in the trust log (a `rotate` certificate under the actor's current
    role), the actor's row names it with a fresh self-signed registration, and its private
    key is written beside the old one (`<handle>.<fingerprint16>.pem`). The old key stays
    good for what it signed before the rotation and signs nothing after it.
    """
    from custody.trust import TrustLog, current_role, is_revoked, store_root

    with store.read() as session:
        actor = session.get(Actor, handle)
        if actor is None:
            raise NotFound.actor(handle)
        if is_revoked(session, actor.key_fingerprint) is not None:
            raise PermissionDenied(
                f"Actor '{handle}''s key is revoked; register a new actor instead of rotating it."
            )
        acting = agency_authority(store, session, authority)
        role = current_role(session, actor)
        session.expunge(actor)
    old = actor.key_fingerprint
    key = create_key(store.home, handle, passphrase=passphrase)
    record = actor_record(
        handle=actor.handle,
        name=actor.name,
        role=actor.role,
        badge=actor.badge,
        agency_code=actor.agency_code,
        public_key=key.public_hex,
        created_at=actor.created_at,
    )
    with store.write() as session:
        row = session.get(Actor, handle)
        assert row is not None
        row.public_key = key.public_hex
        row.key_fingerprint = key.fingerprint
        row.registration_signature = key.sign(actor_message(record))
        session.add(row)
        session.flush()
        root = store_root(session)
        assert root is not None
        certified = Actor(**{**row.model_dump(), "role": role})
        TrustLog(session, root).issue(
            kind="rotate",
            actor=certified,
            issuer=acting.issuer,
            key=acting.key,
            reason=f"replaces key {old}",
        )
        session.expunge(row)
    return row, old


def _all_rows(store: Store, model: Any, order: Any) -> list[Any]:
    with store.read() as session:
        rows = list(session.exec(select(model).order_by(order)).all())
        for row in rows:
            session.expunge(row)
    return rows


def list_actors(store: Store) -> list[Actor]:
    return _all_rows(store, Actor, col(Actor.handle))


def case_record(case: Case) -> dict[str, Any]:
    return case.model_dump()


def item_record(item: Item) -> dict[str, Any]:
    return item.model_dump()


def open_case(
    store: Store,
    *,
    case_no: str,
    title: str,
    signer: Signer,
    agency_code: str | None = None,
    jurisdiction: str = "",
    legal_basis: str = "",
    at: str | None = None,
) -> Case:
    if not CASE_NO_RE.match(case_no):
        raise InvalidInput(
            f"Case number '{case_no}' is not valid; use letters, digits, '.', '-' or '_' "
            f"(no '/'), e.g. KWS-2026-0042."
        )
    if not title.strip():
        raise InvalidInput("A case needs a title; pass --title.")
    check_permission(signer.actor, EventType.CASE_OPEN)
    when = event_time(at)
    agency_code = agency_code or signer.actor.agency_code
    with store.write() as session:
        if session.get(Case, case_no) is not None:
            raise AlreadyExists(f"Case {case_no} exists already; choose another case number.")
        agency = session.get(Agency, agency_code) if agency_code else None
        if agency_code and agency is None:
            raise NotFound(f"Agency {agency_code} does not exist; register it with 'custody init'.")
        when = when or to_utc_text(now_utc())
        case = Case(
            case_no=case_no,
            title=title.strip(),
            agency_code=agency_code,
            jurisdiction=jurisdiction,
            legal_basis=legal_basis,
            opened_at=when,
            opened_by=signer.actor.handle,
        )
        session.add(case)
        session.flush()
        writer = Writer(session)
        draft = Draft(
            chain=f"case:{case_no}",
            case_no=case_no,
            type=EventType.CASE_OPEN,
            data={"case": case_record(case), "agency": agency.model_dump() if agency else None},
            at=when,
        )
        writer.append(draft, signer=signer)
        writer.finish()
        session.expunge(case)
    return case


def get_case(store: Store, case_no: str) -> Case:
    with store.read() as session:
        case = session.get(Case, case_no)
        if case is None:
            raise NotFound.case(case_no)
        session.expunge(case)
    return case


def list_cases(store: Store) -> list[Case]:
    return _all_rows(store, Case, col(Case.case_no))


def _child_number(ids: Sequence[str], prefix: str) -> int:
    numbers = []
    for value in ids:
        rest = value[len(prefix) :]
        if rest.isdigit():
            numbers.append(int(rest))
    return max(numbers, default=0) + 1


def next_item_id(session: Session, case_no: str, parent_id: str | None) -> str:
    if parent_id is None:
        prefix = f"{case_no}/"
        ids = session.exec(
            select(Item.id).where(Item.case_no == case_no, col(Item.parent_id).is_(None))
        ).all()
    else:
        prefix = f"{parent_id}."
        ids = session.exec(select(Item.id).where(Item.parent_id == parent_id)).all()
    return f"{prefix}{_child_number(list(ids), prefix)}"


def _validated(spec: ItemCreate, *, where: str = "") -> tuple[ItemCreate, str, str]:
    """Check an item's fields; returns the spec and its seizure time (UTC, local)."""
    at = f" ({where})" if where else ""
    if not spec.description.strip():
        raise InvalidInput(f"An item needs a description{at}; pass --description.")
    if spec.count is not None and not 0 <= spec.count <= MAX_COUNT:
        raise InvalidInput(f"The count {spec.count}{at} is outside 0..{MAX_COUNT}; check it.")
    for label, number in (("weight", spec.weight), ("latitude", spec.lat), ("longitude", spec.lon)):
        if number is not None and not math.isfinite(number):
            raise InvalidInput(
                f"The {label} {number}{at} is not a finite number; give a real value."
            )
    spec = spec.model_copy(update={"unit": check_unit(spec.unit, where=where)})
    if spec.weight is not None:
        if spec.weight < 0:
            raise InvalidInput(f"The weight {spec.weight}{at} is negative; give a positive weight.")
        if spec.weight > MAX_QUANTITY:
            raise InvalidInput(
                f"The weight {spec.weight:g}{at} is beyond any seizure (at most {MAX_QUANTITY:g} "
                "in any unit); check it."
            )
        if not spec.unit:
            raise InvalidInput(
                f"The weight {spec.weight}{at} has no unit; pass --unit (g, kg ...)."
            )
    if (spec.lat is None) != (spec.lon is None):
        raise InvalidInput(
            f"Coordinates need both latitude and longitude{at}; pass --lat and --lon."
        )
    if spec.lat is not None and not -90 <= spec.lat <= 90:
        raise InvalidInput(f"Latitude {spec.lat}{at} is outside -90..90; check the coordinates.")
    if spec.lon is not None and not -180 <= spec.lon <= 180:
        raise InvalidInput(f"Longitude {spec.lon}{at} is outside -180..180; check the coordinates.")
    if (spec.bag_no is None) != (spec.bag_total is None):
        raise InvalidInput(f"A bag number needs both n and N{at}, e.g. --bag 2/5.")
    if spec.bag_no is not None and spec.bag_total is not None:
        if not 1 <= spec.bag_no <= spec.bag_total:
            raise InvalidInput(
                f"Bag {spec.bag_no} of {spec.bag_total}{at} is impossible; check it."
            )
    try:
        other = json.loads(spec.other_ids or "{}")
    except json.JSONDecodeError:
        raise InvalidInput(
            f"The other IDs{at} are not a JSON object; use --other-id KIND=VALUE."
        ) from None
    if not isinstance(other, dict):
        raise InvalidInput(f"The other IDs{at} are not a set of KIND=VALUE pairs.")
    if spec.seized_at:
        when = parse_time(spec.seized_at, what="seizure time")
        local = when.isoformat()
    else:
        when = now_utc()
        local = when.isoformat()
    if when - now_utc() > FUTURE_TOLERANCE:
        raise InvalidInput(f"The seizure time {spec.seized_at}{at} lies in the future; check it.")
    spec = spec.model_copy(update={"other_ids": json.dumps(other, sort_keys=True)})
    return spec, to_utc_text(when), local


def _insert_item(
    session: Session,
    writer: Writer,
    *,
    case_no: str,
    spec: ItemCreate,
    seized_utc: str,
    seized_local: str,
    signer: Signer,
    photos: list[dict[str, Any]],
) -> Item:
    if spec.parent_id:
        parent = get_item(session, spec.parent_id)
        if parent.case_no != case_no:
            raise InvalidInput(
                f"Parent item {spec.parent_id} belongs to case {parent.case_no}, not {case_no}."
            )
        # Giving out a sub-item is a custody act of the parent's custodian, checked
        # by the same rule as every event (and replayed by verification).
        check_transition(
            writer.item_state(spec.parent_id), EventType.NOTE, signer.actor, {"sub_item": ""}
        )
    item_id = next_item_id(session, case_no, spec.parent_id)
    item = Item(
        id=item_id,
        case_no=case_no,
        parent_id=spec.parent_id,
        description=spec.description.strip(),
        species=spec.species.strip(),
        count=spec.count,
        weight=spec.weight,
        unit=spec.unit,
        packaging=spec.packaging,
        bag_no=spec.bag_no,
        bag_total=spec.bag_total,
        other_ids=spec.other_ids,
        place=spec.place,
        lat=spec.lat,
        lon=spec.lon,
        seized_at=seized_utc,
        seized_at_local=seized_local,
        seizing_officer=signer.actor.handle,
        seal_at_seizure=spec.seal.strip(),
        created_at=to_utc_text(now_utc()),
    )
    session.add(item)
    session.flush()
    if spec.parent_id:
        # The parent's own chain says that a sub-item was taken out of it.
        later = seized_utc > (writer.tail(spec.parent_id)[2] or "")
        note = Draft.on_item(
            spec.parent_id,
            case_no=case_no,
            type=EventType.NOTE,
            data={"text": f"sub-item {item_id} logged: {item.description}", "sub_item": item_id},
            at=seized_utc if later else None,
        )
        writer.append(note, signer=signer)
    seize = Draft.on_item(
        item_id,
        case_no=case_no,
        type=EventType.SEIZE,
        data={"item": item_record(item), "attachments": photos},
        at=seized_utc,
    )
    writer.append(seize, signer=signer)
    return item


def add_items(
    store: Store,
    *,
    case_no: str,
    specs: Sequence[tuple[ItemCreate, Sequence[Path]]],
    signer: Signer,
    allow_duplicate_seal: bool = False,
) -> list[Item]:
    """Log seized items (with photos) in one transaction: all or none.

    A seal number already on another item is refused unless `allow_duplicate_seal`.
    """
    check_permission(signer.actor, EventType.SEIZE)
    prepared = []
    for index, (spec, photos) in enumerate(specs, start=1):
        where = f"row {index}" if len(specs) > 1 else ""
        checked, utc, local = _validated(spec, where=where)
        prepared.append((checked, utc, local, [cas.describe(Path(p)) for p in photos], photos))
    items: list[Item] = []
    with store.write() as session:
        if session.get(Case, case_no) is None:
            raise NotFound(f"Case {case_no} does not exist; open it with 'custody case open'.")
        writer = Writer(session)
        seals: dict[str, int] = {}
        for index, (checked, *_rest) in enumerate(prepared, start=1):
            where = f"row {index}" if len(prepared) > 1 else ""
            seal = checked.seal.strip()
            if seal and not allow_duplicate_seal:
                if seal in seals:
                    raise InvalidInput(
                        f"Seal {seal} is given to rows {seals[seal]} and {index}; check the "
                        f"numbers, or pass --allow-duplicate-seal if two seals really carry it."
                    )
                seals[seal] = index
                check_seal_unused(session, seal, item_id=None, allow_duplicate=False, where=where)
        for checked, utc, local, manifest, _ in prepared:
            items.append(
                _insert_item(
                    session,
                    writer,
                    case_no=case_no,
                    spec=checked,
                    seized_utc=utc,
                    seized_local=local,
                    signer=signer,
                    photos=manifest,
                )
            )
        writer.finish()
        for _, _, _, manifest, photos in prepared:
            for path, entry in zip(photos, manifest, strict=True):
                cas.store_file(store.attachments_dir, Path(path), entry["sha256"])
        for item in items:
            session.expunge(item)
    return items


def add_item(
    store: Store,
    *,
    case_no: str,
    spec: ItemCreate,
    signer: Signer,
    photos: Sequence[Path] = (),
    allow_duplicate_seal: bool = False,
) -> Item:
    return add_items(
        store,
        case_no=case_no,
        specs=[(spec, photos)],
        signer=signer,
        allow_duplicate_seal=allow_duplicate_seal,
    )[0]


def parse_bag(text: str, *, where: str = "") -> tuple[int | None, int | None]:
    text = text.strip()
    if not text:
        return None, None
    match = re.fullmatch(r"([0-9]+)\s*(?:/|of)\s*([0-9]+)", text)
    if not match:
        at = f" ({where})" if where else ""
        raise InvalidInput(f"Bag '{text}'{at} is not of the form n/N, e.g. 2/5.")
    if len(match.group(1)) > 9 or len(match.group(2)) > 9:
        at = f" ({where})" if where else ""
        raise InvalidInput(f"Bag '{text}'{at} numbers more than {MAX_COUNT} bags; check it.")
    return int(match.group(1)), int(match.group(2))


def parse_other_ids(pairs: Sequence[str], *, where: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    at = f" ({where})" if where else ""
    for pair in pairs:
        if not pair.strip():
            continue
        if "=" not in pair:
            raise InvalidInput(f"Other ID '{pair}'{at} is not KIND=VALUE, e.g. microchip=9851200.")
        kind, value = pair.split("=", 1)
        out[kind.strip()] = value.strip()
    return out


def import_items(
    store: Store,
    *,
    case_no: str,
    csv_path: Path,
    signer: Signer,
    allow_duplicate_seal: bool = False,
) -> list[Item]:
    """Import items from CSV (header row; see `custody.itemcsv.CSV_COLUMNS`, in any case; `,` or `;`).

    Every bad row is reported at once; all rows or none (see `custody.itemcsv`).
    """
    from custody.itemcsv import import_items_csv

    return import_items_csv(
        store,
        case_no=case_no,
        csv_path=csv_path,
        signer=signer,
        allow_duplicate_seal=allow_duplicate_seal,
    )


def record_sample(
    store: Store,
    *,
    item_id: str,
    signer: Signer,
    description: str,
    reason: str = "",
    at: str | None = None,
) -> Item:
    """Take a sub-sample: a `sample` event on the parent and a new child item."""
    if not description.strip():
        raise InvalidInput("A sample needs a description; pass --description.")
    when = event_time(at)
    with store.write() as session:
        writer = Writer(session)
        parent = get_item(session, item_id)
        state = writer.item_state(item_id)
        check_transition(state, EventType.SAMPLE, signer.actor, {})
        child_id = next_item_id(session, parent.case_no, item_id)
        given = {"child": child_id, "description": description.strip(), "reason": reason}
        draft = Draft.on_item(
            item_id, case_no=parent.case_no, type=EventType.SAMPLE, data=given, at=when
        )
        writer.append(draft, signer=signer)
        child = Item(
            id=child_id,
            case_no=parent.case_no,
            parent_id=item_id,
            description=description.strip(),
            species=parent.species,
            other_ids="{}",
            place=state.location,
            seized_at=parent.seized_at,
            seized_at_local=parent.seized_at_local,
            seizing_officer=parent.seizing_officer,
            seal_at_seizure="",
            created_at=to_utc_text(now_utc()),
        )
        session.add(child)
        session.flush()
        parent_hash = writer.tail(item_id)[1]
        genesis = {
            "item": item_record(child),
            "parent": item_id,
            "parent_event": parent_hash,
            "reason": reason,
            "location": state.location,
        }
        draft = Draft.on_item(
            child_id, case_no=parent.case_no, type=EventType.SAMPLE, data=genesis, at=when
        )
        writer.append(draft, signer=signer)
        writer.finish()
        session.expunge(child)
    return child


#: Item fields that describe a seizure; a sub-sample was not seized but taken from
#: its parent, so these inherited values are not shown as its own.
SEIZURE_FIELDS = ("seized_at", "seized_at_local", "seizing_officer", "place", "lat", "lon")


@dataclass(frozen=True)
class ItemView:
    """An item as users see it: its record with field corrections applied, and its state."""

    item: Item
    state: ItemState

    def shown(self) -> dict[str, Any]:
        """The record as it now reads, with what was corrected, voided or inherited said."""
        data = self.state.record(item_record(self.item))
        data["other_ids"] = json.loads(data.get("other_ids") or "{}")
        if self.state.field_corrections:
            original = item_record(self.item)
            data["corrections"] = {
                name: {"recorded": original.get(name), "event": c.event, "reason": c.reason}
                for name, c in self.state.field_corrections.items()
            }
        if self.state.origin is not None:
            for name in SEIZURE_FIELDS:
                data.pop(name, None)
            data["taken_from"] = dict(self.state.origin)
        data["state"] = self.state.to_dict()
        return data


def list_items(store: Store, *, case_no: str | None = None) -> list[ItemView]:
    with store.read() as session:
        query = select(Item)
        if case_no:
            if session.get(Case, case_no) is None:
                raise NotFound.case(case_no)
            query = query.where(Item.case_no == case_no)
        items = list(session.exec(query).all())
        ev_query = select(Event).where(col(Event.item_id).is_not(None))
        if case_no:
            ev_query = ev_query.where(Event.case_no == case_no)
        events: dict[str, list[Event]] = {}
        for ev in session.exec(ev_query.order_by(col(Event.chain), col(Event.seq))).all():
            if ev.chain == ev.item_id:
                events.setdefault(ev.chain, []).append(ev)
        views = [ItemView(item=i, state=replay(i.id, events.get(i.id, []))) for i in items]
        for obj in items:
            session.expunge(obj)
    views.sort(key=lambda v: item_sort_key(v.item.id))
    return views


def item_sort_key(item_id: str) -> tuple[Any, ...]:
    case, _, rest = item_id.partition("/")
    return (case, tuple(int(p) if p.isdigit() else 0 for p in rest.split(".")))


#: Fields of an item's record that `correct EVENT --set FIELD=VALUE` may change.
CORRECTABLE_FIELDS: dict[str, type] = {
    "description": str,
    "species": str,
    "count": int,
    "weight": float,
    "unit": str,
    "packaging": str,
    "bag_no": int,
    "bag_total": int,
    "place": str,
    "lat": float,
    "lon": float,
}


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """`FIELD=VALUE` pairs as typed values (an empty value clears a number)."""
    out: dict[str, Any] = {}
    for text in assignments:
        name, sep, raw = text.partition("=")
        name = name.strip()
        if not sep or name not in CORRECTABLE_FIELDS:
            raise InvalidInput(
                f"'{text}' is not a field correction; use FIELD=VALUE with FIELD one of "
                f"{', '.join(CORRECTABLE_FIELDS)}."
            )
        kind = CORRECTABLE_FIELDS[name]
        try:
            out[name] = kind(raw.strip()) if raw.strip() or kind is str else None
        except ValueError:
            raise InvalidInput(
                f"The value '{raw.strip()}' for {name} is not a{'n integer' if kind is int else ' number'}; "
                "give a plain number."
            ) from None
    return out


def record_field_correction(
    store: Store,
    *,
    event_id: int,
    signer: Signer,
    reason: str,
    assignments: Sequence[str],
    at: str | None = None,
) -> Recorded:
    """Correct fields of an item's record (the creating event keeps the original)."""
    changes = parse_assignments(assignments)
    if not changes:
        raise InvalidInput("Name at least one field to correct with --set FIELD=VALUE.")
    with store.read() as session:
        target = correctable_event(session, event_id, signer.actor)
        if target.item_id is None or target.seq != 1 or target.type not in GENESIS_TYPES:
            raise InvalidInput(
                f"Event {event_id} ({target.type}) is not the creating event of an item, so it has "
                "no item fields; correct it with --reason alone and record the right event anew."
            )
        item = get_item(session, target.item_id)
        state = replay(item.id, session.exec(select(Event).where(Event.chain == item.id)).all())
    current = state.record(item_record(item))
    merged = {k: current[k] for k in CORRECTABLE_FIELDS} | changes
    _validated(ItemCreate(**merged, seized_at=current["seized_at_local"] or None))
    return record_correction(
        store, event_id=event_id, signer=signer, reason=reason, changes=changes, at=at
    )
