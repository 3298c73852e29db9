"""`custody verify`: re-check every hash, link and signature; exit 1 on findings."""

from __future__ import annotations

from pathlib import Path

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
    checkpoint: list[Path] = typer.Option(
        [],
        "--checkpoint",
        help="A checkpoint file from 'custody checkpoint' (repeatable): the store must still hold the history it vouches for.",
    ),
) -> None:
    """Verify custody chains and signatures (exit 0 intact, 1 with findings)."""
    from custody.errors import InvalidInput
    from custody.files import read_text
    from custody.verify import read_checkpoint
    from custody.verify import verify as run_verify

    if item and case:
        err.print(styled(("error:", "bold red"), " give an ITEM or --case, not both."))
        raise typer.Exit(2)
    trusted: frozenset[str] | None = None
    if trusted_keys is not None:
        lines = read_text(trusted_keys, what="trusted key file").splitlines()
        trusted = frozenset(
            x.split("#", 1)[0].strip().lower() for x in lines if x.split("#", 1)[0].strip()
        )
        if not trusted or any(
            len(f) != 64 or any(c not in "0123456789abcdef" for c in f) for f in trusted
        ):
            raise InvalidInput(
                f"The trusted key file {trusted_keys} must hold 64-hex-digit key fingerprints, one per line."
            )
    checkpoints = []
    for path in checkpoint:
        raw = read_text(path, what="checkpoint file")
        checkpoints.append(read_checkpoint(raw, name=path.name))
    report = run_verify(
        open_store(), item_id=item, case_no=case, trusted_keys=trusted, checkpoints=checkpoints
    )
    if as_json:
        print_json(report.to_dict())
    elif report.intact:
        out.print(
            styled(
                ("INTACT", "green"),
                f": {report.scope}: {report.events_checked} events in {report.chains_checked} chains verified; store log head {report.log_head.get('seq')}.",
            )
        )
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


def checkpoint(
    output: Path = typer.Option(..., "-o", "--output", help="Checkpoint file to write (JSON)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing checkpoint file."),
) -> None:
    """Write the signed head of the store log to a file to keep outside this machine.

    A later 'custody verify --checkpoint FILE' then detects a store re-created from
    nothing, restored from an older copy, or rewritten together with its own head,
    which the store cannot show by itself.
    """
    import json

    from custody.cli.common import done
    from custody.files import check_output, write_output
    from custody.verify import take_checkpoint

    check_output(output, what="checkpoint file", force=force)
    data = take_checkpoint(open_store())
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    write_output(output, text.encode("utf-8"), what="checkpoint file", force=force)
    done(
        f"Checkpoint of store log entry {data['seq']} (signed by {data['signed_by']}) written to "
        f"{output}; keep a copy off this machine (with the prosecutor, on paper)."
    )
