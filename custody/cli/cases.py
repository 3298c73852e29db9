"""`custody case ...`: open, list and show cases."""

from __future__ import annotations

import typer

from custody.cli.common import (
    AS,
    AT_HELP,
    open_store,
    out,
    print_id,
    print_json,
    signer,
    styled,
)

app = typer.Typer(help="Open and inspect cases.", no_args_is_help=True)


@app.command("open")
def case_open(
    case_no: str = typer.Argument(..., help="Case number, e.g. KWS-2026-0042."),
    title: str = typer.Option(..., help="Short title of the case."),
    jurisdiction: str = typer.Option("", help="Court or jurisdiction."),
    legal_basis: str = typer.Option("", help="Statute or legal basis of the seizure."),
    agency: str | None = typer.Option(None, help="Agency code (default: the actor's agency)."),
    at: str | None = typer.Option(None, help=AT_HELP),
    actor: str | None = AS,
) -> None:
    """Open a case; prints the case number."""
    from custody.records import open_case

    store = open_store()
    case = open_case(
        store,
        case_no=case_no,
        title=title,
        signer=signer(store, actor),
        agency_code=agency,
        jurisdiction=jurisdiction,
        legal_basis=legal_basis,
        at=at,
    )
    print_id(case.case_no)


@app.command("list")
def case_list(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List cases."""
    from custody.records import list_cases

    cases = list_cases(open_store())
    if as_json:
        print_json([c.model_dump() for c in cases])
        return
    from rich.table import Table

    table = Table("case", "title", "agency", "opened at", "opened by")
    for c in cases:
        table.add_row(c.case_no, c.title, c.agency_code or "", c.opened_at, c.opened_by)
    out.print(table)


@app.command("show")
def case_show(
    case_no: str = typer.Argument(..., help="Case number."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show a case with its items and their current custody status."""
    from custody.dossier.build import issued_dossiers
    from custody.records import get_case, list_items

    store = open_store()
    case = get_case(store, case_no)
    views = list_items(store, case_no=case_no)
    issued = issued_dossiers(store, case_no)
    if as_json:
        print_json(
            {
                **case.model_dump(),
                "items": [v.shown() | {"id": v.item.id} for v in views],
                "dossiers": [
                    {**d.dossier.to_data(), "issued_at": d.at, "issued_by": d.by} for d in issued
                ],
            }
        )
        return
    out.print(styled((case.case_no, "bold"), f"  {case.title}"))
    out.print(
        f"agency {case.agency_code or '-'}  jurisdiction {case.jurisdiction or '-'}  legal basis {case.legal_basis or '-'}"
    )
    out.print(f"opened {case.opened_at} by {case.opened_by}")
    from rich.table import Table

    table = Table("item", "description", "species", "custodian", "seal", "status")
    for v in views:
        table.add_row(
            v.item.id,
            v.item.description,
            v.item.species,
            v.state.custodian or "",
            v.state.seal or "",
            v.state.status,
        )
    out.print(table)
    for d in issued:
        out.print(
            styled(
                (d.dossier.report_id, "bold"),
                f"  issued {d.at[:19].replace('T', ' ')} UTC by {d.by}, {d.dossier.pages} pages",
            )
        )
        out.print(f"  pdf    {d.dossier.pdf_sha256}")
        out.print(f"  bundle {d.dossier.bundle_hash}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="case")
