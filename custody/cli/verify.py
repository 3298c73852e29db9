"""`custody verify`: re-check every hash, link and signature; exit 1 on findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from custody.cli.common import err, open_store, out, print_json, styled


def verify(
    item: str | None = typer.Argument(None, help="Only this item's chain."),
    case: str | None = typer.Option(None, "--case", help="Only this case's chains."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    trusted_keys: Path | None = typer.Option(
        None,
        "--trusted-keys",
        help="File of trusted key fingerprints, one per line (e.g. from 'custody actor list --fingerprints'); other signers are findings.",
    ),
    trust: list[Path] = typer.Option(
        [],
        "--trust",
        help="Trust list kept outside the store (entries from 'custody trust export'): every signer must chain to one of its roots; repeatable (the entries of every file are trusted).",
    ),
    checkpoint: list[Path] = typer.Option(
        [],
        "--checkpoint",
        help="A checkpoint file from 'custody checkpoint' (repeatable): the store must still hold the history it vouches for.",
    ),
) -> None:
    """Verify custody chains and signatures (exit 0 intact, 1 with findings)."""
    from custody.checkpoints import read_checkpoint_file
    from custody.registrations import read_trusted_keys
    from custody.trust import read_trust_lists
    from custody.verify import verify as run_verify

    if item and case:
        err.print(styled(("error:", "bold red"), " give an ITEM or --case, not both."))
        raise typer.Exit(2)
    trusted = read_trusted_keys(trusted_keys) if trusted_keys is not None else None
    checkpoints = [read_checkpoint_file(path) for path in checkpoint]
    entries = read_trust_lists(trust)
    report = run_verify(
        open_store(),
        item_id=item,
        case_no=case,
        trusted_keys=trusted,
        checkpoints=checkpoints,
        trust=entries,
    )
    if as_json:
        print_json(report.to_dict())
    elif report.intact:
        out.print(
            styled(
                ("INTACT", "green"),
                f": {report.scope}: {report.events_checked} events in {report.chains_checked} chains verified; store log head {report.log_head.seq}.",
            )
        )
        out.print(_anchor_line(report))
    else:
        from rich.table import Table

        table = Table(
            "subject",
            "event",
            "finding",
            "detail",
            title=f"{len(report.findings)} finding(s) in {report.scope}",
        )
        for f in report.findings:
            table.add_row(f.subject, str(f.event or ""), f.kind, f.message)
        out.print(table)
    raise typer.Exit(0 if report.intact else 1)


def _anchor_line(report: Any) -> str:
    """Which root the signatures chain to, and what anchors it."""
    root = (report.root or "")[:16]
    if report.anchor == "trust list":
        return f"TRUSTED: every signer chains to agency root {root}… in the trust list."
    if report.anchor == "root key here":
        return f"Every signer chains to agency root {root}… (its key is on this machine)."
    return (
        f"Every signer chains to agency root {root}…, named by the store only: "
        f"pass --trust FILE to check it against a trust list."
    )


def checkpoint(
    output: Path = typer.Option(..., "-o", "--output", help="Checkpoint file to write (JSON)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing checkpoint file."),
) -> None:
    """Write the signed head of the store log to a file to keep outside this machine.

    A later 'custody verify --checkpoint FILE' then detects a store re-created from
    nothing, restored from an older copy, or rewritten together with its own head,
    which the store cannot show by itself.
    """
    from custody.checkpoints import take_checkpoint
    from custody.cli.common import done
    from custody.files import check_output, write_output

    check_output(output, what="checkpoint file", force=force)
    data = take_checkpoint(open_store())
    write_output(output, data.to_json().encode("utf-8"), what="checkpoint file", force=force)
    done(
        f"Checkpoint of store log entry {data.seq} (signed by {data.signed_by}) written to "
        f"{output}; keep a copy off this machine (with the prosecutor, on paper)."
    )


def register(root: typer.Typer) -> None:
    root.command("verify")(verify)
    root.command("checkpoint")(checkpoint)
