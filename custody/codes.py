"""Code lists that seizure reports are written in: CITES terms, units, purposes and
sources, and ISO 3166-1 alpha-2 country codes.

Invariants: the lists ship with the package (`custody/data`), are read once, and
every code a command stores has passed `check_*` here; a code outside its list
is an `InvalidInput` naming the code and where to look it up.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from custody.errors import InvalidInput

DATA = Path(__file__).parent / "data"
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")

#: What a recorded weight or volume unit means as a CITES unit, and the factor to it.
MEASURE_UNITS: dict[str, tuple[str, float]] = {
    "mg": ("KIL", 1e-6),
    "g": ("KIL", 1e-3),
    "kg": ("KIL", 1.0),
    "t": ("KIL", 1000.0),
    "ml": ("LTR", 1e-3),
    "l": ("LTR", 1.0),
}

#: Words in an item description that name a CITES trade term, most specific first.
TERM_WORDS: tuple[tuple[str, str], ...] = (
    ("ivory carving", "IVC"),
    ("ivory piece", "IVP"),
    ("tusk", "TUS"),
    ("ivory", "IVP"),
    ("scale", "SCA"),
    ("bushmeat", "MEA"),
    ("meat", "MEA"),
    ("skin", "SKI"),
    ("hide", "SKI"),
    ("horn", "HOR"),
    ("skull", "SKU"),
    ("bone", "BON"),
    ("claw", "CLA"),
    ("teeth", "TEE"),
    ("tooth", "TEE"),
    ("feather", "FEA"),
    ("shell", "SHE"),
    ("egg", "EGG"),
    ("carcass", "BOD"),
    ("live", "LIV"),
    ("timber", "TIM"),
    ("log", "LOG"),
    ("trophy", "TRO"),
    ("fin", "FIN"),
    ("caviar", "CAV"),
)


@lru_cache(maxsize=1)
def cites_codes() -> dict[str, dict[str, str]]:
    """field ("term", "unit", "purpose", "source") -> code -> description."""
    out: dict[str, dict[str, str]] = {}
    lines = (DATA / "cites_codes.tsv").read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        field, code, description = line.split("\t", 2)
        out.setdefault(field, {})[code] = description
    return out


@lru_cache(maxsize=1)
def countries() -> frozenset[str]:
    return frozenset((DATA / "iso3166_alpha2.txt").read_text(encoding="ascii").split())


def check_cites(field: str, code: str, *, where: str = "") -> str:
    """The upper-cased CITES `field` code; raises for a code not in the list."""
    value = code.strip().upper()
    at = f" ({where})" if where else ""
    if value not in cites_codes()[field]:
        raise InvalidInput(
            f"'{code}'{at} is not a CITES {field} code; see 'custody codes {field}' for the list."
        )
    return value


def check_unit(code: str, *, where: str = "") -> str:
    """A CITES unit code, or "" for a number of specimens."""
    return check_cites("unit", code, where=where) if code.strip() else ""


def check_country(code: str, *, where: str = "") -> str:
    value = code.strip().upper()
    at = f" ({where})" if where else ""
    if value not in countries():
        raise InvalidInput(
            f"'{code}'{at} is not an ISO 3166-1 alpha-2 country code; use two letters such as KE, VN or CN."
        )
    return value


def check_countries(codes: list[str] | tuple[str, ...], *, where: str = "") -> list[str]:
    out: list[str] = []
    for code in codes:
        for part in code.replace(";", ",").split(","):
            if part.strip():
                value = check_country(part, where=where)
                if value not in out:
                    out.append(value)
    return out


def check_currency(code: str, *, where: str = "") -> str:
    value = code.strip().upper()
    if not CURRENCY_RE.match(value):
        at = f" ({where})" if where else ""
        raise InvalidInput(
            f"'{code}'{at} is not an ISO 4217 currency code; use three letters such as KES or USD."
        )
    return value


def default_term(description: str) -> str:
    """The CITES term a description names (e.g. "scales" -> SCA), else UNS."""
    text = description.lower()
    for word, term in TERM_WORDS:
        if re.search(rf"\b{re.escape(word)}", text):
            return term
    return "UNS"


def default_quantity(
    *, count: int | None, weight: float | None, unit: str
) -> tuple[float | None, str]:
    """(quantity, CITES unit) from what was recorded: a weight in g/kg -> KIL, a
    volume -> LTR, else the count with a blank unit (number of specimens)."""
    measure = MEASURE_UNITS.get(unit.strip().lower())
    if weight is not None and measure is not None:
        return round(weight * measure[1], 6), measure[0]
    if count is not None:
        return float(count), ""
    return None, ""


def convert_quantity(
    *, count: int | None, weight: float | None, unit: str, cites_unit: str
) -> float | None:
    """The recorded amount expressed in `cites_unit` (None when it cannot be)."""
    if not cites_unit:
        return float(count) if count is not None else None
    measure = MEASURE_UNITS.get(unit.strip().lower())
    if weight is not None and measure is not None:
        if measure[0] == cites_unit:
            return round(weight * measure[1], 6)
        if cites_unit == "GRM" and measure[0] == "KIL":
            return round(weight * measure[1] * 1000, 6)
    if count is not None and cites_unit in ("PCS", "ITE", "SET", "PAI", "SKI", "BAG", "BOX"):
        return float(count)
    return None
