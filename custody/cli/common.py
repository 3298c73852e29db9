"""Shared CLI plumbing: options, opening the store, error mapping, output helpers.

Expected errors of every library (CustodyError, SpeciesRefError, LabelError)
become `error: <message>` on stderr and exit 1, here and nowhere else.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from custody.errors import CustodyError
from labels.errors import LabelError
from species_ref.errors import SpeciesRefError

if TYPE_CHECKING:
    from custody.events import Signer
    from custody.store import Store

EXPECTED = (CustodyError, SpeciesRefError, LabelError)
T = TypeVar("T")


# Control characters (ESC starts terminal escape sequences), C1 controls, line and
# paragraph separators and bidirectional overrides in user text are shown escaped,
# never sent to the terminal as they are.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_KEEP_LINES = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)

_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: object) -> str:
    """User text made safe for one line of a terminal: control characters escaped."""
    return _CONTROL.sub(_escape, str(value))


def _safe(renderable: Any) -> Any:
    """`renderable` with control characters in its text escaped (line breaks kept)."""
    if isinstance(renderable, str):
        return _CONTROL_KEEP_LINES.sub(_escape, renderable)
    from rich.table import Table
    from rich.text import Text

    if isinstance(renderable, Text):
        if not _CONTROL_KEEP_LINES.search(renderable.plain):
            return renderable
        return Text(_CONTROL_KEEP_LINES.sub(_escape, renderable.plain), style=renderable.style)
    if isinstance(renderable, Table):
        for column in renderable.columns:
            column._cells = [_safe(cell) for cell in column._cells]
        if isinstance(renderable.title, str | Text):
            renderable.title = _safe(renderable.title)
    return renderable


class _LazyConsole:
    """A rich Console created on first use, so `--help` never pays for importing rich.

    Everything printed through it has its control characters escaped.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def _get(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def print(self, *objects: Any, **options: Any) -> None:
        self._get().print(*(_safe(o) for o in objects), **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


# Markup is off: user text (seal numbers, descriptions) is printed as it is, never
# interpreted; styling goes through `styled`.
out: Any = _LazyConsole(highlight=False, soft_wrap=True, markup=False)
err: Any = _LazyConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)


def styled(*parts: str | tuple[str, str]) -> Any:
    """A line from plain strings and (text, style) pairs; nothing in it is parsed as markup."""
    from rich.text import Text

    return Text.assemble(
        *(
            (_CONTROL_KEEP_LINES.sub(_escape, p[0]), p[1])
            if isinstance(p, tuple)
            else _CONTROL_KEEP_LINES.sub(_escape, p)
            for p in parts
        )
    )


AS_HELP = "Acting actor's handle (or set CUSTODY_ACTOR)."
AT_HELP = "When it happened, ISO-8601 with zone (default: now)."
#: The acting actor and the time of the act, shared by every command that writes.
AS = typer.Option(None, "--as", envvar="CUSTODY_ACTOR", help=AS_HELP)
AT = typer.Option(None, "--at", help=AT_HELP)


class Settings:
    """What the root callback parsed: where the store is."""

    db: str | None = None


SETTINGS = Settings()


# Integer options and arguments are stored in SQLite's signed 64-bit INTEGER.
MAX_INT = 2**63 - 1

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def finite(value: float | None) -> float | None:
    """Option callback: refuse nan and infinity, which pass any min/max range check."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number; give a number")
    return value


def one_line(message: object) -> str:
    """A message as one line: line breaks folded to spaces, control characters escaped."""
    return shown(" ".join(str(message).split()))


def _print_error(message: object) -> None:
    err.print(styled(("error:", "bold red"), " " + one_line(message)))


def _os_error_message(exc: OSError) -> str:
    from custody.files import os_reason

    reason = os_reason(exc)
    if exc.filename:
        return f"The file {exc.filename} cannot be used ({reason}); check the path."
    return f"A file could not be read or written ({reason}); check the paths given."


def _usage_message(exc: Any) -> str:
    text = " ".join(str(exc.format_message()).split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path} --help" if ctx is not None else "custody --help"
    return f"{text}; see '{where}'."


def _undecodable_argument(args: list[str]) -> str | None:
    """A sentence naming the first argument or CUSTODY_* variable that is not UTF-8 text."""
    for number, arg in enumerate(args, start=1):
        if _SURROGATE.search(arg):
            raw = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            return (
                f"Argument {number} ({raw}) is not valid UTF-8 text; retype it "
                f"(or rename the file it names) with UTF-8 characters only."
            )
    for name, value in os.environ.items():
        if name.startswith("CUSTODY_") and _SURROGATE.search(value):
            return f"The environment variable {name} is not valid UTF-8 text; set it again."
    return None


def _usage_error_types() -> tuple[type[Exception], ...]:
    """Usage errors of the command-line parser: typer's own (typer >= 0.2x vendors its
    parser) or click's (older typer)."""
    found: list[type[Exception]] = []
    try:
        from typer.exceptions import TyperException

        found.append(TyperException)
    except ImportError:
        pass
    try:
        from click.exceptions import ClickException  # type: ignore[import-not-found,unused-ignore]

        found.append(ClickException)
    except ImportError:
        pass
    return tuple(found)


_USAGE_ERRORS = _usage_error_types()


class ErrorMappingGroup(TyperGroup):
    """Root command group: expected errors become one line on stderr and exit 1, usage
    errors one line and exit 2."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        problem = _undecodable_argument(argv)
        if problem is not None:
            _print_error(problem)
            sys.exit(2)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, False, **extra)
        except typer.Abort:
            _print_error("The command was aborted; nothing more was done.")
            sys.exit(1)
        except _USAGE_ERRORS as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # the help text, as asked for
                exc.show()  # type: ignore[attr-defined]
            else:
                _print_error(_usage_message(exc))
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EXPECTED as exc:
            _print_error(exc)
            raise typer.Exit(1) from None
        except OSError as exc:
            _print_error(_os_error_message(exc))
            raise typer.Exit(1) from None


def open_store(*, create: bool = False) -> Store:
    from custody.store import open_store as _open

    return _open(SETTINGS.db, create=create)


@dataclass(frozen=True)
class ReferenceHome:
    """Where a store keeps its reference libraries, found without opening its database."""

    references_dir: Path


def reference_home() -> Any:
    """The store's reference-library home for commands that only read libraries.

    For a SQLite store (a path, the usual case) this follows the rules of
    `custody.store.open_store` (the database path from --db, CUSTODY_DB or
    CUSTODY_HOME; references beside the attachments, or beside
    CUSTODY_ATTACHMENTS) without importing SQLAlchemy or checking the schema,
    so `custody identify` starts at once; any other URL opens the store.
    """
    from custody.errors import StoreProblem

    value = SETTINGS.db or os.environ.get("CUSTODY_DB") or ""
    if "://" in value:
        return open_store()
    home_env = os.environ.get("CUSTODY_HOME")
    if home_env:
        home = Path(home_env).expanduser()
    else:
        from platformdirs import user_data_dir

        home = Path(user_data_dir("custody", appauthor=False))
    path = Path(value).expanduser().resolve() if value else (home / "custody.db").resolve()
    if not path.exists():
        raise StoreProblem(f"No custody store at {path}; run 'custody init' to create one.")
    attachments = os.environ.get("CUSTODY_ATTACHMENTS")
    base = Path(attachments) if attachments else path.parent / "attachments"
    return ReferenceHome(base.parent / "references")


def _terminal_attached() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def with_passphrase(unlock: Callable[[str | None], T], handle: str) -> T:
    """Run `unlock`; when the key is encrypted and no CUSTODY_PASSPHRASE is set, ask for
    the passphrase on the terminal (without echo) and run it again."""
    from custody.errors import PassphraseNeeded

    try:
        return unlock(None)
    except PassphraseNeeded:
        if not _terminal_attached():
            raise
    import getpass

    return unlock(getpass.getpass(f"Passphrase of the key of '{handle}': "))


def signer(store: Store, handle: str | None) -> Signer:
    from custody.events import load_signer

    return with_passphrase(
        lambda passphrase: load_signer(store, handle, passphrase=passphrase), handle or ""
    )


def print_json(value: Any) -> None:
    # json escapes C0 controls itself; C1 controls and bidi overrides are escaped too.
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def print_json_line(value: Any) -> None:
    """`value` as one line of JSON (JSON Lines), escaped as `print_json` escapes."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if not text.isascii() or "\x7f" in text:  # DEL is the only ASCII character escaped
        text = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    sys.stdout.write(text + "\n")


def print_id(value: str) -> None:
    """New IDs go alone on stdout so scripts can capture them."""
    sys.stdout.write(value + "\n")


def done(message: str) -> None:
    err.print(message)


def fail(message: str, code: int = 1) -> NoReturn:
    _print_error(message)
    raise typer.Exit(code)
