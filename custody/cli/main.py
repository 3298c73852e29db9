"""The `custody` command: a thin layer over the library.

Heavy libraries (SQLAlchemy, cryptography, Biopython, reportlab) are imported
inside the commands that need them, so `custody --help` starts fast.
"""

from __future__ import annotations

import typer

from custody import __version__
from custody.cli import backup as backup_cli
from custody.cli import cases, custody_events, demo, dossier, intel, items, labels, setup, species
from custody.cli import exchange as exchange_cli
from custody.cli import exports as exports_cli
from custody.cli import room as room_cli
from custody.cli import trust as trust_cli
from custody.cli import verify as verify_cli
from custody.cli.common import SETTINGS, ErrorMappingGroup

app = typer.Typer(
    cls=ErrorMappingGroup,
    help="custody: wildlife forensic evidence, signed chain of custody, species ID, labels and dossiers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help renders fast; rich is loaded only to print results
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"custody {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    db: str | None = typer.Option(
        None,
        "--db",
        envvar="CUSTODY_DB",
        help="Store: a SQLite path or SQLAlchemy URL (default: CUSTODY_HOME/custody.db).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Wildlife forensic evidence and chain-of-custody tracker."""
    SETTINGS.db = db


# Each command module registers its own commands and groups, in the order help lists them.
for module in (
    setup, cases, items, custody_events, verify_cli, trust_cli, exchange_cli, backup_cli, species,
    labels, dossier, demo, intel, exports_cli, room_cli,
):  # fmt: skip
    module.register(app)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
