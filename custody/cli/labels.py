"""`custody label print` and `custody scan`: signed QR evidence labels."""

from __future__ import annotations

from pathlib import Path

import typer

from custody.cli.common import AS, done, fail, open_store, out, print_json, signer

app = typer.Typer(help="Print signed QR evidence labels.", no_args_is_help=True)


@app.command("print")
def label_print(
    items: list[str] = typer.Argument(None, help="Item IDs to label (or use --case)."),
    case: str | None = typer.Option(None, "--case", help="Label every item of this case."),
    layout: str = typer.Option("a4-3x8", help="a4-3x8, letter-3x10, thermal-2x1 or thermal-4x6."),
    start: int = typer.Option(
        1, help="First free label position on a partly used sheet (1-based)."
    ),
    copies: int = typer.Option(1, help="Copies of each label (inside and outside the package)."),
    reason: str = typer.Option("", help="Why labels are printed; required for a reprint."),
    output: Path = typer.Option(..., "-o", "--output", help="PDF file to write."),
    actor: str | None = AS,
) -> None:
    """Print signed labels to one PDF and record the print job on each item."""
    from rich.text import Text

    from custody.labelling import MAX_COPIES, print_labels

    if not 1 <= copies <= MAX_COPIES:
        fail(f"--copies must be between 1 and {MAX_COPIES}, not {copies}.", 2)
    store = open_store()
    job = print_labels(
        store,
        signer=signer(store, actor),
        out=output,
        item_ids=items or [],
        case_no=case,
        layout=layout,
        start=start,
        copies=copies,
        reason=reason,
    )
    done(f"Recorded label-print job {job.job} on {len(job.items)} item(s).")
    extra = (
        f"; reprints: {', '.join(f'{k} (#{v})' for k, v in job.reprints.items())}"
        if job.reprints
        else ""
    )
    # A Text object is never parsed as rich markup: paths and item IDs are user text.
    out.print(
        Text(
            f"{job.path}: {len(job.items) * job.copies} label(s), {job.layout}, "
            f"{job.pages} page(s){extra}"
        )
    )


def scan(
    source: Path | None = typer.Argument(None, help="Photo, scan or PDF holding label QR codes."),
    payload: str | None = typer.Option(
        None, "--payload", help="A label payload text instead of an image."
    ),
    public_key: list[str] = typer.Option(
        [],
        "--public-key",
        help="Trust this Ed25519 public key (hex) too, or name a certified key by its fingerprint; repeatable (offline check without a store).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Decode and verify label QR codes: GENUINE / NOT GENUINE / MISMATCH / VOID (exit 0 only if all genuine)."""
    from rich.text import Text

    from custody.errors import StoreProblem
    from custody.labelling import GENUINE, scan_texts

    if (source is None) == (payload is None):
        fail("Give an image or PDF to scan, or --payload TEXT (one of them, not both).", 2)
    if payload is not None:
        texts = [payload.strip()]
    else:
        from labels.qr import decode_file

        texts = decode_file(source)  # type: ignore[arg-type]
    try:
        store = open_store()
    except StoreProblem:
        if not public_key:
            raise
        store = None
    results = scan_texts(store, texts, public_keys=public_key)
    if as_json:
        print_json([r.to_dict() for r in results])
    else:
        colour = {"GENUINE": "green", "MISMATCH": "yellow", "VOID": "red"}
        for r in results:
            # Item IDs, seals, handles and reasons are user text: Text objects are
            # never parsed as rich markup.
            out.print(
                Text.assemble(
                    (r.verdict, f"bold {colour.get(r.verdict, 'red')}"),
                    f"  {r.item_id or '?'}  seal {r.seal or '-'}",
                    f"  signed by {r.signer}" if r.signer else "",
                )
            )
            if r.custodian or r.status:
                out.print(
                    Text(
                        f"  now: custodian {r.custodian or ''}, status {r.status or ''}, "
                        f"seal {r.current_seal or '-'}"
                    )
                )
            for reason in r.reasons:
                out.print(Text(f"  {reason}"))
    raise typer.Exit(0 if results and all(r.verdict == GENUINE for r in results) else 1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="label")
    root.command("scan")(scan)
