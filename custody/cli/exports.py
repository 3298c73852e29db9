"""`custody export ...`: the CITES AITR, non-nominal seizure records, i2 charts, item tables."""

from __future__ import annotations

from pathlib import Path

import typer

from custody.cli.common import AS_HELP, AT_HELP, done, open_store, signer

AS = typer.Option(None, "--as", envvar="CUSTODY_ACTOR", help=AS_HELP)
AT = typer.Option(None, "--at", help=AT_HELP + " Recorded as the time of the disclosure.")
OUT = typer.Option(..., "-o", "--out", help="Output file (never overwritten).")

app = typer.Typer(
    help="Reports and exchange files: AITR, shared seizure records, i2 charts, item tables.",
    no_args_is_help=True,
)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _said(result: object, what: str) -> None:
    paths = [result.path, *result.extra_paths]  # type: ignore[attr-defined]
    events = result.events  # type: ignore[attr-defined]
    recorded = f"; recorded as event {', '.join(map(str, events))}" if events else ""
    done(
        f"Wrote {what} ({_plural(result.rows, 'row')}) to {', '.join(map(str, paths))}"  # type: ignore[attr-defined]
        f" {result.sha256[:23]}…{recorded}."  # type: ignore[attr-defined]
    )


@app.command("aitr")
def export_aitr(
    year: int = typer.Option(..., "--year", help="Calendar year of the seizures, e.g. 2026."),
    out: Path = OUT,
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Write the CITES Annual Illegal Trade Report of a year (.xlsx or .csv)."""
    from custody.exports.aitr import export_aitr as run

    store = open_store()
    _said(run(store, year=year, out=out, signer=signer(store, actor), at=at), f"the {year} AITR")


@app.command("seizures")
def export_seizures(
    recipient: str = typer.Option(..., help="Receiving body, e.g. 'EU-TWIX' or 'WCO CEN'."),
    out: Path = OUT,
    case: list[str] = typer.Option([], "--case", help="Only this case; repeatable."),
    year: int | None = typer.Option(None, help="Only items seized in this year."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Write non-nominal seizure records for another agency (.csv or .xlsx); no personal data."""
    from custody.exports.shared import export_seizures as run

    store = open_store()
    result = run(
        store,
        recipient=recipient,
        out=out,
        signer=signer(store, actor),
        case_nos=case,
        year=year,
        at=at,
    )
    _said(result, f"non-nominal seizure records for {recipient}")


@app.command("i2")
def export_i2(
    case: str = typer.Option(..., "--case", help="Case number."),
    out: Path = OUT,
    fmt: str = typer.Option(
        "anx", "--format", help="anx (chart) or csv (OUT-entities.csv and OUT-links.csv)."
    ),
    no_nominal: bool = typer.Option(
        False, "--no-nominal", help="Leave personal data out (entities show their IDs)."
    ),
    writer: str = typer.Option(
        "auto",
        "--writer",
        help="ANX writer: auto (anxwritter when installed, from the 'i2' extra; else custody's own), anxwritter or custody.",
    ),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Write a case as an i2 Analyst's Notebook chart (ANX) or entity and link tables."""
    from custody.exports.i2 import export_i2 as run

    store = open_store()
    result = run(
        store,
        case_no=case,
        out=out,
        signer=signer(store, actor),
        fmt=fmt,
        nominal=not no_nominal,
        writer=None if writer == "auto" else writer,
        at=at,
    )
    _said(result, f"the i2 chart of {case}")


@app.command("items")
def export_items(
    out: Path = OUT,
    case: str | None = typer.Option(None, "--case", help="Only items of this case."),
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
) -> None:
    """Write every item, one row each, with its state, species and CITES term (csv or json)."""
    from custody.exports.items import export_items as run

    _said(run(open_store(), out=out, fmt=fmt, case_no=case), "the item table")


@app.command("log")
def export_log(
    case: str | None = typer.Option(None, "--case", help="Only disclosures of this case."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List every recorded export: when, who, to whom, what and the file's hash."""
    from custody.cli.common import out, print_json
    from custody.exports.common import disclosure_log

    entries = disclosure_log(open_store(), case_no=case)
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    for e in entries:
        files = ", ".join(f"{f['file']} {f['sha256'][:23]}…" for f in e.files)
        out.print(
            f"{e.at[:19].replace('T', ' ')}  event {e.event}  {e.case_no}  {e.actor} -> "
            f"{e.recipient}  {e.export}, {len(e.items)} item(s): {files}"
        )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="export")
