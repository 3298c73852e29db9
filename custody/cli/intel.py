"""`custody seizure ...`, `custody entity ...` and `custody codes`: seizure facts,
CITES trade terms, and the persons, organisations, conveyances and shipments of a case."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from custody.cli.common import AS_HELP, AT_HELP, done, open_store, out, print_id, print_json, signer

AS = typer.Option(None, "--as", envvar="CUSTODY_ACTOR", help=AS_HELP)
AT = typer.Option(None, "--at", help=AT_HELP)
CASE = typer.Argument(..., help="Case number, e.g. KWS-2026-0042.")
JSON = typer.Option(False, "--json", help="Machine-readable output.")

seizure_app = typer.Typer(
    help="Seizure facts of a case and the CITES trade terms of its items.", no_args_is_help=True
)
entity_app = typer.Typer(
    help="Persons, organisations, conveyances and shipments of a case; their personal data.",
    no_args_is_help=True,
)


@seizure_app.command("set")
def seizure_set(
    case_no: str = CASE,
    detecting_agency: str | None = typer.Option(None, help="Agency that detected the seizure."),
    detection_method: str | None = typer.Option(None, help="e.g. 'x-ray', 'sniffer dog'."),
    location_type: str | None = typer.Option(
        None, help="airport, seaport, land-border, mail, inland or online."
    ),
    location: str | None = typer.Option(None, help="Location of the incident."),
    point_of_seizure: str | None = typer.Option(None, help="import, export, transit or internal."),
    transport_mode: str | None = typer.Option(
        None, help="air, sea, road, rail, mail, on-foot or other."
    ),
    concealment: str | None = typer.Option(None, help="Method of concealment."),
    reason: str | None = typer.Option(None, help="Reason for seizure, e.g. 'no CITES permit'."),
    origin: str | None = typer.Option(None, help="Alleged countries of origin (ISO, comma list)."),
    transit: str | None = typer.Option(None, help="Countries of transit (ISO, comma list)."),
    destination: str | None = typer.Option(None, help="Alleged final destination (ISO)."),
    value: float | None = typer.Option(None, help="Estimated value in the country."),
    currency: str | None = typer.Option(None, help="Currency of the value (ISO 4217)."),
    law: str | None = typer.Option(None, help="Law under which charges were brought."),
    disposal: str | None = typer.Option(None, help="Disposal of confiscated specimens."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Record or change seizure facts of a case (a signed event; an empty value clears a fact)."""
    from custody.facts import record_seizure_facts

    given = {
        "detecting_agency": detecting_agency,
        "detection_method": detection_method,
        "location_type": location_type,
        "location": location,
        "point_of_seizure": point_of_seizure,
        "transport_mode": transport_mode,
        "concealment": concealment,
        "reason": reason,
        "origin": origin,
        "transit": transit,
        "destination": destination,
        "value_amount": value,
        "value_currency": currency,
        "law": law,
        "disposal": disposal,
    }
    store = open_store()
    row = record_seizure_facts(
        store,
        case_no=case_no,
        signer=signer(store, actor),
        facts={k: v for k, v in given.items() if v is not None},
        at=at,
    )
    done(f"Recorded seizure facts (event {row.id}) on {row.chain}.")


@seizure_app.command("show")
def seizure_show(case_no: str = CASE, as_json: bool = JSON) -> None:
    """Show the current seizure facts of a case and the CITES terms of its items."""
    from custody.facts import seizure_facts, trade_terms

    store = open_store()
    facts = seizure_facts(store, case_no)
    terms = trade_terms(store, case_no)
    if as_json:
        print_json({**facts.to_dict(), "items": [t.to_dict() for t in terms.values()]})
        return
    for name, value in facts.facts.items():
        if value is None:
            continue
        shown = (
            ", ".join(value)
            if isinstance(value, list)
            else f"{value:g}"
            if isinstance(value, float)
            else value
        )
        out.print(f"{name.replace('_', ' '):18} {shown}  (event {facts.set_by[name]})")
    for term in terms.values():
        quantity = "" if term.quantity is None else f"{term.quantity:g}"
        unit = term.unit or "specimens"
        out.print(
            f"{term.item_id:24} {term.term} {quantity} {unit}"
            + ("  (derived)" if term.derived else "")
        )


@seizure_app.command("term")
def seizure_term(
    items: list[str] = typer.Argument(..., help="Item IDs."),
    term: str | None = typer.Option(None, help="CITES term code, e.g. SCA (see 'custody codes')."),
    unit: str | None = typer.Option(
        None, help="CITES unit code, e.g. KIL; '-' for a number of specimens."
    ),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Set the CITES trade term and/or unit of items (a signed event per case)."""
    from custody.facts import record_trade_terms

    store = open_store()
    rows = record_trade_terms(
        store,
        item_ids=items,
        signer=signer(store, actor),
        term=term,
        unit="" if unit == "-" else unit,
        at=at,
    )
    for row in rows:
        done(f"Recorded trade terms (event {row.id}) on {row.chain}.")


def codes_cmd(
    field: str = typer.Argument("term", help="term, unit, purpose, source or country."),
) -> None:
    """List the CITES codes (terms, units, purposes, sources) or the country codes."""
    from custody import codes
    from custody.errors import InvalidInput

    if field == "country":
        for code in sorted(codes.countries()):
            out.print(code)
        return
    lists = codes.cites_codes()
    if field not in lists:
        raise InvalidInput(
            f"'{field}' is not a code list; use term, unit, purpose, source or country."
        )
    for code, description in lists[field].items():
        out.print(f"{code}  {description}")


NOMINAL_HELP = "Personal data, kept apart from the signed record and never shared."
CATEGORY_HELP = (
    "person: suspect, convicted, victim, witness, other; organisation: company, "
    "government, ngo, other; conveyance: vehicle, vessel, flight; shipment: airway-bill, "
    "bill-of-lading, container."
)
LINK_HELP = "ITEM=RELATION (found-in, owned-by, carried-by ...); repeatable."


@entity_app.command("add")
def entity_add(
    case_no: str = CASE,
    kind: str = typer.Option(..., help="person, organisation, conveyance or shipment."),
    category: str = typer.Option(..., help=CATEGORY_HELP),
    nationality: str | None = typer.Option(None, help="Person's nationality (ISO 3166)."),
    country: str | None = typer.Option(None, help="Country of an organisation or registration."),
    origin: str | None = typer.Option(None, help="Shipment origin (ISO 3166)."),
    destination: str | None = typer.Option(None, help="Shipment destination (ISO 3166)."),
    name: str | None = typer.Option(None, help=NOMINAL_HELP),
    dob: str | None = typer.Option(None, help="Date of birth. " + NOMINAL_HELP),
    id_number: str | None = typer.Option(None, help="National ID number. " + NOMINAL_HELP),
    passport: str | None = typer.Option(None, help="Passport number. " + NOMINAL_HELP),
    phone: str | None = typer.Option(None, help=NOMINAL_HELP),
    email: str | None = typer.Option(None, help=NOMINAL_HELP),
    address: str | None = typer.Option(None, help=NOMINAL_HELP),
    registration: str | None = typer.Option(None, help="Company registration. " + NOMINAL_HELP),
    identifier: str | None = typer.Option(
        None, help="Plate, vessel name or flight number. " + NOMINAL_HELP
    ),
    owner: str | None = typer.Option(None, help="Owner of a conveyance. " + NOMINAL_HELP),
    number: str | None = typer.Option(None, help="AWB, B/L or container number. " + NOMINAL_HELP),
    consignor: str | None = typer.Option(None, help=NOMINAL_HELP),
    consignee: str | None = typer.Option(None, help=NOMINAL_HELP),
    link: list[str] = typer.Option([], "--link", help=LINK_HELP),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Add a person, organisation, conveyance or shipment to a case; prints its ID."""
    from custody.entities import add_entity

    attributes = {
        "nationality": nationality,
        "country": country,
        "origin": origin,
        "destination": destination,
    }
    personal = {
        "name": name,
        "dob": dob,
        "id_number": id_number,
        "passport": passport,
        "phone": phone,
        "email": email,
        "address": address,
        "registration": registration,
        "identifier": identifier,
        "owner": owner,
        "number": number,
        "consignor": consignor,
        "consignee": consignee,
    }
    _check_options_fit(kind, attributes=attributes, personal=personal)
    links = _parse_links(link)
    store = open_store()
    entity = add_entity(
        store,
        case_no=case_no,
        kind=kind,
        category=category,
        signer=signer(store, actor),
        attributes={k: v for k, v in attributes.items() if v is not None},
        nominal={k: v for k, v in personal.items() if v is not None},
        links=links,
        at=at,
    )
    print_id(entity.id)


def _check_options_fit(
    kind: str, *, attributes: Mapping[str, str | None], personal: Mapping[str, str | None]
) -> None:
    """Refuse, by its flag, an option given that the entity's kind does not have."""
    from custody.entities import ATTRIBUTES, NOMINAL_FIELDS
    from custody.errors import InvalidInput

    kind_key = kind.strip().lower()
    allowed_attrs = ATTRIBUTES.get(kind_key, ())
    allowed_nominal = NOMINAL_FIELDS.get(kind_key, ())
    for key, value in attributes.items():
        if value is not None and key not in allowed_attrs and kind_key in ATTRIBUTES:
            raise InvalidInput(
                f"A {kind_key} has no --{key}; use {', '.join('--' + a for a in allowed_attrs)}."
            )
    for key, value in personal.items():
        if value is not None and key not in allowed_nominal and kind_key in NOMINAL_FIELDS:
            flag = "--" + key.replace("_", "-")
            raise InvalidInput(f"A {kind_key} has no {flag}; it is not among its personal data.")


def _parse_links(specs: list[str]) -> list[tuple[str, str]]:
    """`--link ITEM=RELATION` options as (item, relation) pairs."""
    from custody.errors import InvalidInput

    links = []
    for spec in specs:
        item, sep, relation = spec.partition("=")
        if not sep:
            raise InvalidInput(
                f"Link '{spec}' is not ITEM=RELATION, e.g. KWS-2026-0042/1=owned-by."
            )
        links.append((item.strip(), relation.strip()))
    return links


@entity_app.command("list")
def entity_list(
    case_no: str = CASE,
    nominal: bool = typer.Option(
        False, "--nominal", help="Show personal data too (checked against its commitment)."
    ),
    as_json: bool = JSON,
) -> None:
    """List the entities of a case (personal data only with --nominal)."""
    from custody.entities import case_nominal, list_entities

    store = open_store()
    entities = list_entities(store, case_no)
    personal = case_nominal(store, case_no) if nominal else {}
    if as_json:
        print_json(
            [
                {**e.to_dict(), **({"nominal": personal.get(e.id)} if nominal else {})}
                for e in entities
            ]
        )
        return
    for e in entities:
        attrs = ", ".join(f"{k} {v}" for k, v in e.attributes.items())
        links = ", ".join(f"{x['relation']} {x['item']}" for x in e.links)
        state = " (personal data erased)" if e.erased else ""
        out.print(
            f"{e.id:22} {e.kind:12} {e.category:14} {attrs}"
            + (f"  links: {links}" if links else "")
            + state
        )
        for key, value in (personal.get(e.id) or {}).items():
            out.print(f"{'':22}   {key}: {value}")


@entity_app.command("update")
def entity_update(
    entity_id: str = typer.Argument(..., help="Entity ID, e.g. KWS-2026-0042/P1."),
    category: str | None = typer.Option(None, help="New category."),
    nationality: str | None = typer.Option(None, help="Nationality (ISO 3166)."),
    country: str | None = typer.Option(None, help="Country (ISO 3166)."),
    origin: str | None = typer.Option(None, help="Shipment origin (ISO 3166)."),
    destination: str | None = typer.Option(None, help="Shipment destination (ISO 3166)."),
    field: list[str] = typer.Option(
        [],
        "--set",
        help="Correct personal data FIELD=VALUE (name, dob, passport, phone ...; empty value "
        "removes it); repeatable.",
    ),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Change an entity or correct its personal data (a signed event with the new commitment)."""
    from custody.entities import update_entity
    from custody.errors import InvalidInput

    attrs = {
        k: v
        for k, v in {
            "nationality": nationality,
            "country": country,
            "origin": origin,
            "destination": destination,
        }.items()
        if v is not None
    }
    personal: dict[str, str | None] = {}
    for spec in field:
        key, sep, value = spec.partition("=")
        if not sep:
            raise InvalidInput(f"'{spec}' is not FIELD=VALUE, e.g. --set phone=+254700000000.")
        personal[key.strip().replace("-", "_")] = value
    store = open_store()
    entity = update_entity(
        store,
        entity_id=entity_id,
        signer=signer(store, actor),
        category=category,
        attributes=attrs or None,
        nominal=personal or None,
        at=at,
    )
    done(f"Updated entity {entity.id}.")


@entity_app.command("link")
def entity_link(
    entity_id: str = typer.Argument(..., help="Entity ID, e.g. KWS-2026-0042/P1."),
    item: str = typer.Argument(..., help="Item ID of the same case."),
    relation: str = typer.Option(
        ..., help="found-in, owned-by, carried-by, sent-by, received-by or seized-from."
    ),
    remove: bool = typer.Option(False, "--remove", help="Remove this link instead."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Link an entity to an item (or remove the link): a signed event."""
    from custody.entities import link_entity

    store = open_store()
    link_entity(
        store,
        entity_id=entity_id,
        item_id=item,
        relation=relation,
        signer=signer(store, actor),
        remove=remove,
        at=at,
    )
    done(f"{'Removed' if remove else 'Recorded'} link {entity_id} {relation} {item}.")


@entity_app.command("erase")
def entity_erase(
    entity_id: str = typer.Argument(..., help="Entity ID, e.g. KWS-2026-0042/P1."),
    reason: str = typer.Option(..., help="Why, e.g. the retention rule that ended."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Erase an entity's personal data (end of retention); the signed record stays intact."""
    from custody.entities import erase_nominal

    store = open_store()
    erase_nominal(store, entity_id=entity_id, signer=signer(store, actor), reason=reason, at=at)
    done(f"Erased the personal data of {entity_id}; its signed record remains.")


smart_app = typer.Typer(
    help="Import SMART patrols (XML or SMART Connect GeoJSON).", no_args_is_help=True
)


@smart_app.command("import")
def smart_import(
    file: Path = typer.Argument(..., help="SMART patrol XML or SMART Connect GeoJSON file."),
    case: str = typer.Option(..., "--case", help="Case number to import into."),
    tz: str = typer.Option(
        ...,
        "--tz",
        help="Time zone of the patrol's times (SMART stores none), e.g. Africa/Nairobi.",
    ),
    map_file: Path | None = typer.Option(
        None, "--map", help="TOML map: which attributes and values mean seized, quantities, people."
    ),
    actor: str | None = AS,
) -> None:
    """Import a SMART patrol: confiscations become items, people become person entities."""
    from custody.smart import import_smart

    store = open_store()
    result = import_smart(
        store, path=file, case_no=case, tz=tz, signer=signer(store, actor), map_path=map_file
    )
    for item_id in result.items:
        print_id(item_id)
    done(
        f"Patrol {result.patrol}: {len(result.items)} item(s) and {len(result.persons)} person(s) "
        f"imported, {result.skipped} already imported, {result.ignored} observation(s) neither "
        f"seized nor people"
        + (f"; recorded as event {result.event}." if result.event else "; nothing was recorded.")
    )


def register(root: typer.Typer) -> None:
    root.add_typer(seizure_app, name="seizure")
    root.add_typer(entity_app, name="entity")
    root.command("codes")(codes_cmd)
    root.add_typer(smart_app, name="smart")
