"""`custody item ...`: log seized items, import them from CSV, list and show them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from custody.cli.common import AS, open_store, out, print_id, print_json, signer, styled

if TYPE_CHECKING:
    from custody.records import ItemView

app = typer.Typer(help="Log and inspect seized items and sub-samples.", no_args_is_help=True)


@app.command("add")
def item_add(
    case_no: str = typer.Argument(..., help="Case number the item belongs to."),
    description: str = typer.Option(..., help="What was seized."),
    species: str = typer.Option("", help="Claimed or suspected species."),
    count: int | None = typer.Option(None, help="Number of pieces."),
    weight: float | None = typer.Option(None, help="Weight (with --unit)."),
    unit: str = typer.Option(
        "", help="Unit of the quantity: SI (g, kg, ml, l, m ...), a count (pcs) or a CITES code."
    ),
    packaging: str = typer.Option("", help="Packaging, e.g. 'sealed evidence bag'."),
    bag: str = typer.Option("", help="Bag n of N, written n/N, e.g. 2/5."),
    seal: str = typer.Option("", help="Number of the seal applied at seizure."),
    allow_duplicate_seal: bool = typer.Option(
        False,
        "--allow-duplicate-seal",
        help="Accept a seal number already recorded on another item.",
    ),
    other_id: list[str] = typer.Option(
        [], "--other-id", help="Other ID KIND=VALUE (ring, microchip, cites_permit); repeatable."
    ),
    place: str = typer.Option("", help="Place name of the seizure."),
    lat: float | None = typer.Option(None, help="Latitude (WGS84)."),
    lon: float | None = typer.Option(None, help="Longitude (WGS84)."),
    seized_at: str | None = typer.Option(
        None, help="Seizure time, ISO-8601 with zone (default: now)."
    ),
    photo: list[Path] = typer.Option(
        [], "--photo", help="Photo to attach (hashed at capture); repeatable."
    ),
    parent: str | None = typer.Option(None, help="Parent item, to log a sub-item."),
    actor: str | None = AS,
) -> None:
    """Log a seized item (a `seize` event); prints the new item ID."""
    from custody.models import ItemCreate
    from custody.records import add_item, parse_bag, parse_other_ids

    bag_no, bag_total = parse_bag(bag)
    spec = ItemCreate(
        description=description,
        species=species,
        count=count,
        weight=weight,
        unit=unit,
        packaging=packaging,
        bag_no=bag_no,
        bag_total=bag_total,
        other_ids=json.dumps(parse_other_ids(other_id), sort_keys=True),
        place=place,
        lat=lat,
        lon=lon,
        seized_at=seized_at,
        seal=seal,
        parent_id=parent,
    )
    store = open_store()
    item = add_item(
        store,
        case_no=case_no,
        spec=spec,
        signer=signer(store, actor),
        photos=photo,
        allow_duplicate_seal=allow_duplicate_seal,
    )
    print_id(item.id)


@app.command("import")
def item_import(
    case_no: str = typer.Argument(..., help="Case number."),
    csv_file: Path = typer.Argument(
        ...,
        help="CSV with a header row (description, species, count, weight, unit, packaging, bag, seal, place, lat, lon, seized_at, ring, microchip, cites_permit, other_ids, photos, parent).",
    ),
    allow_duplicate_seal: bool = typer.Option(
        False,
        "--allow-duplicate-seal",
        help="Accept a seal number already recorded on another item.",
    ),
    actor: str | None = AS,
) -> None:
    """Import seized items from CSV: all rows or none; prints the new item IDs."""
    from custody.records import import_items

    store = open_store()
    for item in import_items(
        store,
        case_no=case_no,
        csv_path=csv_file,
        signer=signer(store, actor),
        allow_duplicate_seal=allow_duplicate_seal,
    ):
        print_id(item.id)


def _item_dict(view: ItemView) -> dict[str, Any]:
    return view.shown()


@app.command("list")
def item_list(
    case: str | None = typer.Option(None, "--case", help="Only items of this case."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List items with their current custodian, seal and status."""
    from custody.records import list_items

    views = list_items(open_store(), case_no=case)
    if as_json:
        print_json([_item_dict(v) for v in views])
        return
    from rich.table import Table

    table = Table("item", "description", "species", "custodian", "seal", "location", "status")
    for v in views:
        shown = v.shown()
        table.add_row(
            v.item.id,
            shown["description"],
            shown["species"],
            v.state.custodian or "",
            v.state.seal or "",
            v.state.location,
            v.state.status,
        )
    out.print(table)


@app.command("show")
def item_show(
    item_id: str = typer.Argument(..., help="Item ID, e.g. KWS-2026-0042/3."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one item: its seizure record and current state."""
    from custody.events import item_history
    from custody.records import ItemView

    item, _events, state = item_history(open_store(), item_id)
    data = ItemView(item=item, state=state).shown()
    if as_json:
        print_json(data)
        return
    corrections = data.pop("corrections", {})
    origin = data.pop("taken_from", None)
    for key, value in data.items():
        if key == "state" or value in (None, "", {}):
            continue
        line = str(value)
        if key in corrections:
            c = corrections[key]
            line += f"  (corrected by event {c['event']}: {c['reason']}; recorded as {str(c['recorded'])})"
        out.print(styled((f"{key:16}", "bold"), f" {line}"))
    if origin:
        out.print(
            styled(
                (f"{'taken from':16}", "bold"),
                f" {origin['item']} at {origin['at']} by {origin['by']}",
            )
        )
    for key, value in state.to_dict().items():
        if value not in (None, "", {}):
            out.print(styled((f"{key:16}", "bold"), f" {str(value)}"))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="item")
