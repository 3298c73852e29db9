"""Shared CLI plumbing: options, opening the store, error mapping, output helpers.

Expected errors of every library (CustodyError, SpeciesRefError, LabelError)
become `error: <message>` on stderr and exit 1, here and nowhere else.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

from custody.errors import CustodyError
from labels.errors import LabelError
from species_ref.errors import SpeciesRefError

if TYPE_CHECKING:
    from custody.events import Signer
    from custody.store import Store

EXPECTED = (CustodyError, SpeciesRefError, LabelError)


class _LazyConsole:
    """A rich Console created on first use, so `--help` never pays for importing rich."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def _get(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


# Markup is off: user text (seal numbers, descriptions) is printed as it is, never
# interpreted; styling goes through `styled`.
out: Any = _LazyConsole(highlight=False, soft_wrap=True, markup=False)
err: Any = _LazyConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)


def styled(*parts: str | tuple[str, str]) -> Any:
    """A line from plain strings and (text, style) pairs; nothing in it is parsed as markup."""
    from rich.text import Text

    return Text.assemble(*parts)


AS_HELP = "Acting actor's handle (or set CUSTODY_ACTOR)."
AT_HELP = "When it happened, ISO-8601 with zone (default: now)."
#: The acting actor and the time of the act, shared by every command that writes.
AS = typer.Option(None, "--as", envvar="CUSTODY_ACTOR", help=AS_HELP)
AT = typer.Option(None, "--at", help=AT_HELP)


class Settings:
    """What the root callback parsed: where the store is."""

    db: str | None = None


SETTINGS = Settings()


class ErrorMappingGroup(TyperGroup):
    """Root command group that turns expected errors into one-line messages and exit 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EXPECTED as exc:
            err.print(styled(("error:", "bold red"), f" {exc}"))
            raise typer.Exit(1) from None
        except OSError as exc:
            err.print(
                styled(
                    ("error:", "bold red"),
                    f" {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
                )
            )
            raise typer.Exit(1) from None


def open_store(*, create: bool = False) -> Store:
    from custody.store import open_store as _open

    return _open(SETTINGS.db, create=create)


def signer(store: Store, handle: str | None) -> Signer:
    from custody.events import load_signer

    return load_signer(store, handle)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def print_id(value: str) -> None:
    """New IDs go alone on stdout so scripts can capture them."""
    sys.stdout.write(value + "\n")


def done(message: str) -> None:
    err.print(message)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(styled(("error:", "bold red"), f" {message}"))
    raise typer.Exit(code)
