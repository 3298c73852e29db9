"""Parsing and rendering of times: everything stored is UTC, inputs must carry a zone."""

from __future__ import annotations

from datetime import UTC, datetime

from custody.errors import InvalidInput

MIN_YEAR = 1900  # custody records of seizures before this are data-entry errors
MAX_YEAR = 2200  # far beyond any real record; keeps every time convertible to UTC


def now_utc() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str, *, what: str = "time") -> datetime:
    """Parse an ISO-8601 time that carries a zone offset (or Z); refuse naive times."""
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise InvalidInput(
            f"The {what} '{text}' is not an ISO-8601 time; write it like 2026-03-01T14:30+03:00."
        ) from None
    if value.tzinfo is None:
        raise InvalidInput(
            f"The {what} '{text}' has no time zone; add one, e.g. {raw}+03:00 or {raw}Z."
        )
    # The year is checked before converting: 0001-01-01T00:00+14:00 has no UTC form.
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise InvalidInput(
            f"The {what} '{text}' is not a plausible date (year {value.year}, outside "
            f"{MIN_YEAR}..{MAX_YEAR}); check the year."
        )
    return value


def to_utc_text(value: datetime) -> str:
    """The stored form: UTC ISO-8601 with microseconds and Z (fixed width, so text order
    is time order)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
