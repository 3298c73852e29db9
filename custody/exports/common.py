"""What several exports read: seizures (cases with their top-level items), the
species each item was identified as, tables as CSV or XLSX, and export records.

Invariants: species come from signed `analyse` events (species identifications
of the item or of samples taken from it) and else from the claimed species,
which is then marked as claimed; nothing here writes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from sqlmodel import Session, col, select

from custody.entities import Entity, read_entities
from custody.events import Writer
from custody.exports import remove_output, write_output
from custody.facts import SeizureFacts, TradeTerm, read_facts, read_trade_terms
from custody.models import Agency, Case, Event, Item
from custody.state import ItemState, replay

IDENTIFIED_LEVELS = ("species", "genus")


@dataclass
class ExportResult:
    path: Path
    sha256: str
    rows: int
    cases: list[str] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    extra_paths: list[Path] = field(default_factory=list)


@dataclass
class ItemSpecies:
    name: str
    basis: str  # "identified" (DNA) | "claimed" | ""

    @property
    def label(self) -> str:
        if self.basis == "claimed" and self.name:
            return f"{self.name} (claimed)"
        return self.name


@dataclass
class Seizure:
    """One case as a seizure: its facts, items, their state, species, terms and entities."""

    case: Case
    agency: Agency | None
    facts: SeizureFacts
    items: list[Item]  # every item of the case, top-level first
    states: dict[str, ItemState]
    species: dict[str, ItemSpecies]
    terms: dict[str, TradeTerm]
    entities: dict[str, Entity]
    events: list[Event] = field(default_factory=list)

    @property
    def top_items(self) -> list[Item]:
        return [i for i in self.items if i.parent_id is None]


def identified_species(events: Sequence[Event], items: Sequence[Item]) -> dict[str, list[str]]:
    """Item ID -> taxa it (or a sample taken from it) was identified as, in order."""
    own: dict[str, list[str]] = {}
    for ev in events:
        if ev.type != "analyse" or ev.item_id is None or ev.chain != ev.item_id:
            continue
        data = json.loads(ev.data)
        if data.get("analysis") != "species-identification":
            continue
        if data.get("level") in IDENTIFIED_LEVELS and data.get("taxon"):
            names = own.setdefault(ev.item_id, [])
            if data["taxon"] not in names:
                names.append(str(data["taxon"]))
    parents = {i.id: i.parent_id for i in items}
    out: dict[str, list[str]] = {}
    for item_id, names in own.items():
        node: str | None = item_id
        while node is not None:  # a sample's species is its parent's too
            target = out.setdefault(node, [])
            for name in names:
                if name not in target:
                    target.append(name)
            node = parents.get(node)
    return out


def species_of(item: Item, identified: dict[str, list[str]]) -> ItemSpecies:
    names = identified.get(item.id)
    if names:
        # Species-level names before genus-level ones, which they refine.
        full = [n for n in names if " " in n] or names
        return ItemSpecies(name=" / ".join(full), basis="identified")
    if item.species.strip():
        return ItemSpecies(name=item.species.strip(), basis="claimed")
    return ItemSpecies(name="", basis="")


def load_seizure(session: Session, case: Case) -> Seizure:
    items = list(session.exec(select(Item).where(Item.case_no == case.case_no)).all())
    items.sort(key=lambda i: (i.parent_id is not None, _sort_key(i.id)))
    events = list(
        session.exec(
            select(Event).where(Event.case_no == case.case_no).order_by(col(Event.id))
        ).all()
    )
    by_chain: dict[str, list[Event]] = {}
    for ev in events:
        by_chain.setdefault(ev.chain, []).append(ev)
    identified = identified_species(events, items)
    return Seizure(
        case=case,
        agency=session.get(Agency, case.agency_code) if case.agency_code else None,
        facts=read_facts(session, case.case_no),
        items=items,
        states={
            i.id: replay(i.id, sorted(by_chain.get(i.id, []), key=lambda e: e.seq)) for i in items
        },
        species={i.id: species_of(i, identified) for i in items},
        terms=read_trade_terms(session, case.case_no),
        entities=read_entities(session, case.case_no),
        events=events,
    )


def _sort_key(item_id: str) -> tuple[Any, ...]:
    from custody.records import item_sort_key

    return item_sort_key(item_id)


def seizure_date(seizure: Seizure, items: Sequence[Item]) -> str:
    """The local date of the earliest seizure among `items` (YYYY-MM-DD)."""
    first = min(items, key=lambda i: i.seized_at)
    return first.seized_at_local[:10]


def table_bytes(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, fmt: str, title: str
) -> bytes:
    """A table as CSV (UTF-8 with BOM, so spreadsheet programs read it right) or XLSX."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else _safe_cell(v) for v in row])
        return buf.getvalue().encode("utf-8-sig")
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_safe_cell(v) for v in row])
    for column in sheet.columns:
        width = max(len(str(c.value or "")) for c in column)
        sheet.column_dimensions[column[0].column_letter].width = min(max(10, width + 2), 60)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not _is_number(value):
        return "'" + value  # never a formula: cell text comes from users and other agencies
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_of(path_suffix: str, allowed: tuple[str, ...]) -> str:
    from custody.errors import InvalidInput

    fmt = path_suffix.lower().lstrip(".")
    if fmt not in allowed:
        raise InvalidInput(
            f"'.{fmt}' is not an export format here; name the output file "
            f"{' or '.join('.' + a for a in allowed)}."
        )
    return fmt


def record_export(
    writer: Any,
    *,
    case_nos: Sequence[str],
    signer: Any,
    data: dict[str, Any],
    at: str | None = None,
) -> list[Event]:
    """One signed `share-export` event per case whose records left in the file."""
    from custody.caselog import append_case_event

    return [
        append_case_event(
            writer, case_no=case_no, kind="share-export", signer=signer, data=data, at=at
        )
        for case_no in case_nos
    ]


def write_recorded(
    store: Any,
    *,
    out: Path,
    data: bytes,
    signer: Any,
    cases: list[str],
    at: str | None,
    record: dict[str, Any],
    items: dict[str, list[str]],
    n_rows: int,
) -> ExportResult:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    written = False
    try:
        with store.write() as session:
            writer = Writer(session)
            rows: list[Event] = []
            for case_no in cases:
                rows.extend(
                    record_export(
                        writer,
                        case_nos=[case_no],
                        signer=signer,
                        data={
                            **record,
                            "file": out.name,
                            "sha256": digest,
                            "items": items[case_no],
                        },
                        at=at,
                    )
                )
            writer.finish()
            write_output(out, data)
            written = True
            ids = [r.id for r in rows]
    except BaseException:
        if written:
            remove_output(out)
        raise
    return ExportResult(path=out, sha256=digest, rows=n_rows, cases=cases, events=ids)


class ExportedFile(TypedDict):
    """A file an export wrote, by name and hash."""

    file: str
    sha256: str


@dataclass
class Disclosure:
    """One recorded export: when, who, to whom, what and the file's hash."""

    event: int
    case_no: str
    at: str
    actor: str
    export: str
    recipient: str
    files: list[ExportedFile]
    items: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "case_no": self.case_no,
            "at": self.at,
            "actor": self.actor,
            "export": self.export,
            "recipient": self.recipient,
            "files": self.files,
            "items": self.items,
        }


def disclosure_log(store: Any, *, case_no: str | None = None) -> list[Disclosure]:
    """Every `share-export` event (of one case), oldest first: the log of disclosures."""
    from custody.errors import NotFound

    with store.read() as session:
        query = select(Event).where(Event.type == "share-export")
        if case_no:
            if session.get(Case, case_no) is None:
                raise NotFound(
                    f"Case {case_no} does not exist; list cases with 'custody case list'."
                )
            query = query.where(Event.case_no == case_no)
        rows = list(session.exec(query.order_by(col(Event.id))).all())
    out: list[Disclosure] = []
    for ev in rows:
        data = json.loads(ev.data)
        files = data.get("files") or [
            {"file": data.get("file", ""), "sha256": data.get("sha256", "")}
        ]
        out.append(
            Disclosure(
                event=ev.id,
                case_no=ev.case_no,
                at=ev.at,
                actor=ev.actor,
                export=str(data.get("export", "")),
                recipient=str(data.get("recipient", "")),
                files=[
                    ExportedFile(file=str(f.get("file", "")), sha256=str(f.get("sha256", "")))
                    for f in files
                ],
                items=[str(i) for i in data.get("items", [])],
            )
        )
    return out
