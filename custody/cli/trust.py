"""`custody trust export|add|list`: agency roots exchanged between agencies."""

from __future__ import annotations

from pathlib import Path

import typer

from custody.cli.common import done, open_store, out, print_json, shown

app = typer.Typer(
    help="Agency roots of trust: export this agency's entry, pin other agencies' roots.",
    no_args_is_help=True,
)


@app.command("export")
def trust_export(
    output: Path = typer.Option(..., "-o", "--output", help="Trust entry file to write (JSON)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Write this agency's trust entry (code, name, country, root public key, validity), signed by its root."""
    import json

    from custody.files import check_output, write_output
    from custody.trust import export_entry, short

    check_output(output, what="trust entry file", force=force)
    entry = export_entry(open_store())
    text = json.dumps(entry, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    write_output(output, text.encode("utf-8"), what="trust entry file", force=force)
    done(
        f"Trust entry of {entry['agency']['code']} written to {output}; other agencies pin it "
        f"with 'custody trust add {output}' after comparing the root fingerprint "
        f"{short(entry['root_fingerprint'])}."
    )


@app.command("add")
def trust_add(
    entry: Path = typer.Argument(..., help="Trust entry (or list) of another agency."),
    yes: bool = typer.Option(
        False, "--yes", help="Pin without asking (after comparing the fingerprint elsewhere)."
    ),
) -> None:
    """Pin another agency's root after showing its fingerprint to compare."""
    from custody.trust import add_trusted, read_trust_list, short

    entries = read_trust_list(entry)
    for e in entries:
        out.print(
            f"{shown(e.code)} {shown(e.name)} ({shown(e.country)}): root {short(e.fingerprint)}"
        )
    if not yes and not typer.confirm(
        "Does this fingerprint match the one the agency gave you by another channel?",
        default=False,
    ):
        out.print("Nothing pinned.")
        raise typer.Exit(1)
    pinned = add_trusted(open_store(), entries)
    done(f"Pinned {len(pinned)} agency root(s).")


@app.command("list")
def trust_list(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List this agency's root and the other agencies' roots pinned in the store."""
    from custody.trust import list_trusted

    rows = list_trusted(open_store())
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("agency", "name", "country", "root fingerprint", "")
    for r in rows:
        table.add_row(
            r["agency"],
            r["name"],
            r["country"],
            r["fingerprint"],
            "this agency" if r["own"] else "",
        )
    out.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="trust")
