"""`custody backup`: a consistent copy of the store with its attachments and libraries."""

from __future__ import annotations

from pathlib import Path

import typer

from custody.cli.common import done, err, open_store, out, styled


def backup(
    output: Path = typer.Option(
        ..., "-o", "--output", help="New (or empty) folder to write the backup into."
    ),
) -> None:
    """Back up the store: database, attachments and reference libraries, with a manifest.

    The folder is itself a store: 'custody --db DIR/custody.db verify' checks it,
    and restoring is copying its contents into CUSTODY_HOME. Private keys are not
    included; each actor keeps a copy of their own key.
    """
    from custody.backup import backup_store

    report = backup_store(open_store(), output, progress=lambda m: err.print(styled((m, "dim"))))
    out.print(f"{report.path}: {report.files} files, {report.bytes} bytes")
    out.print(f"manifest {report.manifest_sha256}")
    for rel in report.damaged:
        err.print(styled(("WARNING", "bold red"), f" {rel} does not match its hash."))
    if report.pg_dump_command:
        done(
            f"The database is on PostgreSQL and was not copied; dump it into the backup with: "
            f"{report.pg_dump_command}"
        )
    else:
        done(
            f"Check the backup with 'custody --db {report.path / 'custody.db'} verify'; "
            f"restore it by copying its contents into an empty CUSTODY_HOME."
        )


def register(root: typer.Typer) -> None:
    root.command("backup")(backup)
