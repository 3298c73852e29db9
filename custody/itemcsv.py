"""Importing seized items from CSV: headers in any case, `,` or `;` (or tab) as
separator, every bad row reported at once, and still all rows or none.

Invariants: the whole file is read and every row checked (numbers, bag,
coordinates, times, photos, parent items) before anything is written; one
`InvalidInput` names every bad row by its line number and reason; the rows are
then written by `records.add_items` in one transaction.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from custody import files
from custody.errors import CustodyError, InvalidInput
from custody.events import Signer
from custody.models import Item, ItemCreate
from custody.store import Store

CSV_COLUMNS = (
    "description",
    "species",
    "count",
    "weight",
    "unit",
    "packaging",
    "bag",
    "seal",
    "place",
    "lat",
    "lon",
    "seized_at",
    "ring",
    "microchip",
    "cites_permit",
    "other_ids",
    "photos",
    "parent",
)
DELIMITERS = (",", ";", "\t")
MAX_REPORTED = 50


def _canonical(header: str) -> str:
    return "_".join(header.strip().lower().replace("-", " ").split())


def detect_delimiter(first_line: str) -> str:
    """The separator of a header line: the most frequent of , ; and tab outside quotes."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in first_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_text(csv_path: Path) -> str:
    text = files.read_text(csv_path, what="CSV file")
    if "\x00" in text:
        raise InvalidInput(
            f"The CSV file {csv_path} contains NUL bytes; it is not a text CSV file."
        )
    return text


def _number(row: Mapping[str, str], *, key: str, kind: type) -> Any:
    value = row.get(key, "")
    if not value:
        return None
    try:
        return kind(value.replace(",", ".") if kind is float else value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise InvalidInput(f"the {key} '{value}' is not {what}") from None


class ItemRow(NamedTuple):
    """One checked CSV row: the item to log and the photos to attach to it."""

    spec: ItemCreate
    photos: list[Path]


def parse_items_csv(csv_path: Path, *, known_items: set[str]) -> list[ItemRow]:
    """Every row as an item spec with its photos; raises one error naming every bad row."""
    table = _read_table(csv_path)
    header = _check_header(csv_path, table[0])
    problems: list[str] = []
    rows: list[ItemRow] = []
    for number, values in enumerate(table[1:], start=2):
        if not any(v.strip() for v in values):
            continue  # blank line
        where = f"line {number}"
        if len(values) > len(header):
            problems.append(
                f"{where} has more fields than the header (check its separators and quotes)"
            )
            continue
        row = {h: v.strip() for h, v in zip(header, values, strict=False)}
        try:
            rows.append(_item_row(row, csv_path=csv_path, where=where, known_items=known_items))
        except CustodyError as exc:
            reason = str(exc).rstrip(".")
            problems.append(reason if where in reason else f"{where}: {reason}")
    if problems:
        shown = problems[:MAX_REPORTED]
        more = f"; and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise InvalidInput(
            f"The CSV file {csv_path} has {len(problems)} bad row{'s' if len(problems) > 1 else ''} "
            f"and nothing was imported: {'; '.join(shown)}{more}."
        )
    if not rows:
        raise InvalidInput(f"The CSV file {csv_path} has no rows; nothing was imported.")
    return rows


def _read_table(csv_path: Path) -> list[list[str]]:
    """The CSV file's rows, split at the separator its header line uses."""
    text = _read_text(csv_path)
    lines = text.splitlines()
    if not lines:
        raise InvalidInput(f"The CSV file {csv_path} is empty; nothing was imported.")
    delimiter = detect_delimiter(lines[0])
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        return list(reader)
    except csv.Error as exc:
        raise InvalidInput(
            f"The CSV file {csv_path} is malformed near line {reader.line_num} ({exc}); fix its quoting."
        ) from None


def _check_header(csv_path: Path, raw: list[str]) -> list[str]:
    """The header's column names in canonical form; each known, none twice, a description."""
    header = [_canonical(h) for h in raw]
    if "description" not in header:
        raise InvalidInput(
            f"The CSV file {csv_path} has no 'description' column; the header must name columns "
            f"from: {', '.join(CSV_COLUMNS)}."
        )
    unknown = [name for name, h in zip(raw, header, strict=True) if h not in CSV_COLUMNS]
    if unknown:
        raise InvalidInput(
            f"The CSV file {csv_path} has unknown columns {', '.join(unknown)}; "
            f"allowed (in any case): {', '.join(CSV_COLUMNS)}."
        )
    doubled = sorted({h for h in header if header.count(h) > 1})
    if doubled:
        raise InvalidInput(
            f"The CSV file {csv_path} names the column {', '.join(doubled)} more than once; "
            "keep one column of each name."
        )
    return header


def _item_row(
    row: Mapping[str, str], *, csv_path: Path, where: str, known_items: set[str]
) -> ItemRow:
    """One row checked as an item; raises a `CustodyError` naming the first problem."""
    from custody.records import _validated, parse_bag, parse_other_ids

    bag_no, bag_total = parse_bag(row.get("bag", ""), where=where)
    other = parse_other_ids(row.get("other_ids", "").split(";"), where=where)
    for kind in ("ring", "microchip", "cites_permit"):
        if row.get(kind):
            other[kind] = row[kind]
    parent = row.get("parent") or None
    if parent and parent not in known_items:
        raise InvalidInput(f"the parent item {parent} does not exist in this case")
    # Attachment paths resolve inside the CSV's folder only: no '..', absolute
    # paths, symbolic links or special files (a key file must never be pulled in).
    photos = [
        files.attachment_inside(csv_path.parent, p, where=where)
        for p in row.get("photos", "").split(";")
        if p.strip()
    ]
    spec = ItemCreate(
        description=row.get("description", ""),
        species=row.get("species", ""),
        count=_number(row, key="count", kind=int),
        weight=_number(row, key="weight", kind=float),
        unit=row.get("unit", ""),
        packaging=row.get("packaging", ""),
        bag_no=bag_no,
        bag_total=bag_total,
        other_ids=json.dumps(other, sort_keys=True),
        place=row.get("place", ""),
        lat=_number(row, key="lat", kind=float),
        lon=_number(row, key="lon", kind=float),
        seized_at=row.get("seized_at") or None,
        seal=row.get("seal", ""),
        parent_id=parent,
    )
    _validated(spec, where=where)
    return ItemRow(spec=spec, photos=photos)


def import_items_csv(
    store: Store,
    *,
    case_no: str,
    csv_path: Path,
    signer: Signer,
    allow_duplicate_seal: bool = False,
) -> list[Item]:
    """Import items from CSV (header row; see CSV_COLUMNS). All rows or none."""
    from sqlmodel import select

    from custody.caselog import require_case
    from custody.records import add_items

    with store.read() as session:
        require_case(session, case_no)
        known = set(session.exec(select(Item.id).where(Item.case_no == case_no)).all())
    specs = parse_items_csv(csv_path, known_items=known)
    return add_items(
        store,
        case_no=case_no,
        specs=specs,
        signer=signer,
        allow_duplicate_seal=allow_duplicate_seal,
    )
