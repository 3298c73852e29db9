"""`custody item find`, `custody location ...` and `custody audit`: the evidence room."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from custody.cli.common import AS_HELP, AT_HELP, done, open_store, out, print_json, signer

location_app = typer.Typer(
    help="Storage locations: building > room > shelf > box.", no_args_is_help=True
)


def item_find(
    seal: str | None = typer.Option(None, help="Seal number (current or earlier)."),
    text: str | None = typer.Option(None, help="Text in the ID, description, place or other IDs."),
    species: str | None = typer.Option(None, help="Species, claimed or identified (part of name)."),
    case: str | None = typer.Option(None, "--case", help="Only items of this case."),
    status: str | None = typer.Option(None, help="in custody, in transit or disposed."),
    location: str | None = typer.Option(
        None, help="Storage location code or name (includes what is inside it)."
    ),
    seized_from: str | None = typer.Option(None, "--from", help="Seized on or after (YYYY-MM-DD)."),
    seized_to: str | None = typer.Option(None, "--to", help="Seized on or before (YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Find items by seal, text, species, case, status, location or seizure dates."""
    from custody.room import find_items

    found = find_items(
        open_store(),
        seal=seal,
        text=text,
        species=species,
        case_no=case,
        status=status,
        location=location,
        seized_from=seized_from,
        seized_to=seized_to,
    )
    if as_json:
        print_json([f.to_dict() for f in found])
        return
    from rich.table import Table

    table = Table("item", "description", "species", "seal", "location", "status", "seized")
    for f in found:
        species_text = " / ".join(f.identified) if f.identified else f.item.species
        table.add_row(
            f.item.id,
            f.item.description,
            species_text,
            f.state.seal or "",
            f.state.location,
            f.state.status,
            f.item.seized_at_local[:10],
        )
    out.print(table)
    done(f"{len(found)} item(s) found.")


@location_app.command("add")
def location_add(
    code: str = typer.Argument(..., help="Short code printed on the shelf or box, e.g. EV1-S3."),
    name: str = typer.Option(..., help="Name, e.g. 'Evidence room 1, shelf 3'."),
    kind: str = typer.Option(..., help="building, room, shelf or box."),
    parent: str | None = typer.Option(None, help="Code of the location it sits in."),
) -> None:
    """Register a storage location (store items there with 'custody store ITEM --location CODE')."""
    from custody.room import add_location

    row = add_location(open_store(), code=code, name=name, kind=kind, parent=parent)
    done(f"Location {row.code} ({row.kind}) added.")


@location_app.command("list")
def location_list(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List storage locations as a tree."""
    from custody.room import list_locations

    rows = list_locations(open_store())
    if as_json:
        print_json([r.model_dump() for r in rows])
        return
    children: dict[str | None, list[object]] = {}
    for r in rows:
        children.setdefault(r.parent, []).append(r)

    def show(parent: str | None, depth: int) -> None:
        for r in children.get(parent, []):
            out.print(f"{'  ' * depth}{r.code}  {r.name} ({r.kind})")  # type: ignore[attr-defined]
            show(r.code, depth + 1)  # type: ignore[attr-defined]

    show(None, 0)


def _read_found(path: Path) -> list[str]:
    from custody.errors import InvalidInput, NotFound

    if str(path) == "-":
        return sys.stdin.read().splitlines()
    if not path.exists():
        raise NotFound(f"The list of found items {path} does not exist; check the path.")
    if not path.is_file():
        raise InvalidInput(f"The list of found items {path} is not a regular file.")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise InvalidInput(f"The list of found items {path} is not UTF-8 text.") from None


def audit(
    location: str = typer.Argument(..., help="Location code, e.g. EV1-S3."),
    found: Path | None = typer.Option(
        None,
        "--found",
        help="File with one scanned or typed code per line (item ID, label QR text or seal); '-' reads stdin.",
    ),
    item: list[str] = typer.Option([], "--item", help="A code found there; repeatable."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    at: str | None = typer.Option(None, "--at", help=AT_HELP),
    actor: str | None = typer.Option(None, "--as", envvar="CUSTODY_ACTOR", help=AS_HELP),
) -> None:
    """List what a location should hold; with --found/--item, record the audit and its discrepancies."""
    from custody.room import audit_location

    store = open_store()
    codes = None
    if found is not None or item:
        codes = [*(_read_found(found) if found is not None else []), *item]
    result = audit_location(
        store,
        location=location,
        found=codes,
        signer=signer(store, actor) if codes is not None else None,
        at=at,
    )
    if as_json:
        print_json(result.to_dict())
        return
    out.print(result.path)
    out.print(f"recorded here: {', '.join(result.expected) or 'nothing'}")
    if codes is None:
        return
    out.print(f"found: {', '.join(result.found) or 'nothing'}")
    for d in result.discrepancies:
        out.print(f"  {d['kind']:10} {d['item'] or '-':24} {d['detail']}")
    done(
        f"Audit of {location} recorded ({len(result.discrepancies)} "
        f"{'discrepancy' if len(result.discrepancies) == 1 else 'discrepancies'}) as event "
        f"{', '.join(map(str, result.events))}."
    )


def register(root: typer.Typer) -> None:
    from custody.cli.items import app as items_app

    items_app.command("find")(item_find)
    root.add_typer(location_app, name="location")
    root.command("audit")(audit)
