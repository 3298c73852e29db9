"""Canonical encoding and hashing: the one definition every hash in custody uses.

Invariants: `canonical_json` is the only function that turns a record into the
bytes that get hashed or signed. It sorts keys, uses compact separators, keeps
non-ASCII text as UTF-8, and renders datetimes as UTC ISO-8601 with a trailing
"Z". Hashes are written as "sha256:<hex>" so the algorithm travels with them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

HASH_PREFIX = "sha256:"


def utc_iso(value: datetime) -> str:
    """Render an aware datetime as UTC ISO-8601 with microseconds and a Z suffix."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes cannot be encoded canonically")
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot encode {type(value).__name__} canonically")


def canonical_json(value: Any) -> bytes:
    """Encode `value` canonically: sorted keys, compact, UTF-8, UTC times."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return HASH_PREFIX + hashlib.sha256(data).hexdigest()


def hash_record(value: Any) -> str:
    """The "sha256:<hex>" hash of a record's canonical encoding."""
    return sha256_hex(canonical_json(value))
