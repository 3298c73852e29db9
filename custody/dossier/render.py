"""Render a court-ready evidence dossier PDF with reportlab (platypus).

The story is composed of one function per section (front matter, contents,
summary, each item with its receipts, photographs, sampling, timeline and
identifications, sign-off, integrity appendix); each returns its flowables.

Invariants:
- Every page carries the issuing agency, the report ID and "Page X of Y" (Y is
  known because pages are numbered when the document is saved); the last page
  carries an end-of-report mark.
- Tables are `FastTable`s of plain-text cells that wrap inside their box (long
  words such as hashes break between characters), split across pages and
  repeat their header; running text goes through escaped Paragraphs. Nothing
  runs off the page.
- The renderer reads only the prepared `DossierContent`, never the store; each
  entry's `item` is the item's signed record, not its (alterable) row, and a
  species identification is read through `custody.analysis.AnalysisResult`.
- What the record says now is what is shown: an item's particulars include its
  field corrections (each listed with the value first recorded, the correcting
  event and the reason); a withdrawn identification is marked WITHDRAWN wherever
  it appears and counts as no finding; a voided item is listed only among the
  voided items, never as evidence (no summary row, no section).
- A finding belongs to the sample it was run on: an item's summary row lists each
  analysed sample's own findings and names a finding for the item only when they
  agree. A combined finding whose markers contradict each other is stated as that
  disagreement, each marker's call named once, and never counts as agreement or as
  one analysis' identification. CITES listings are shown, dated, only for the species
  called or tied.
- Error rates and limitations are printed once per library version, in words
  true for it (validated or not); rule settings and alignments go to Appendix B.
- Case entities are listed with their signed facts and item links; their personal
  data is drawn only when the content carries it (`personal_data`), and otherwise a
  line counts the entities that hold some. It is never part of the bundle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.paragraph import cleanBlockQuotedText
from reportlab.platypus.tableofcontents import TableOfContents

from custody.analysis import (
    Analysis,
    AnalysisResult,
    CitesListing,
    CombinedFinding,
    DecisionRule,
    Level,
    LibraryValidation,
    MarkerFinding,
    QueryQC,
    QuerySource,
    RuleValue,
)
from custody.domain import EventRecord, EventType, UnreadableEvent
from custody.dossier.case import (
    ActorRecord,
    AgencyRecord,
    Attachment,
    CaseRow,
    ItemRecord,
    ReportDetails,
)
from custody.dossier.fasttable import Cell, FastTable
from custody.entities import KINDS, NOMINAL_FIELDS, Entity
from custody.species import LibraryCurationRecord, recorded_library_curation
from labels.fonts import draw_string, markup
from species_ref.combine import NO_MARKER, MarkerCall, disagreement
from species_ref.markers import gene_key, gene_name
from species_ref.vocab import DecisionLevel, level_words

if TYPE_CHECKING:
    from custody.findings import Finding, VerifyReport
    from custody.state import ItemState

PAGE_W, PAGE_H = A4
MARGIN = 18 * mm
CONTENT_W = PAGE_W - 2 * MARGIN
LIMITATIONS = (
    "Mitochondrial and plastid markers are inherited from one parent only: they cannot detect hybrids, "
    "and introgression can make one species carry another's sequence. A reference library can be "
    "incomplete (a species absent from it may be reported as a relative or not at all) and public "
    "records can be misidentified."
)
CONFIRMATION = (
    "Confirmation with an independent marker may be advisable where the result is contested."
)
STATEMENT = (
    "The results in this report relate only to the items tested as received. This report shall not "
    "be reproduced except in full. All times are UTC unless a zone is shown."
)
HOW_TO_CHECK = (
    "How to check this dossier without the issuing agency's database: open the embedded file "
    "case-bundle.json, compute its SHA-256 and compare it with the hash printed above and in the "
    "QR code; then recompute every event hash from the bundle and check each Ed25519 signature "
    "with the listed public keys ('custody dossier verify FILE.pdf' does all of this). The PDF "
    "itself carries a digital signature by the issuing actor covering the whole file."
)
METHOD = (
    "DNA barcode comparison: k-mer candidate search, then pairwise alignment (both strands) "
    "against the reference library"
)
WET_INK = "\n\n______________________________ Date: ____________"


@dataclass(frozen=True)
class ItemEntry:
    """One item as the dossier shows it."""

    item: ItemRecord  # as signed in its creating event
    state: ItemState  # replayed from its chain
    events: tuple[EventRecord, ...]  # its chain, by seq
    attachments: tuple[Attachment, ...] = ()  # recorded with its events
    analyses: tuple[Analysis, ...] = ()  # species identifications in its chain

    @property
    def depth(self) -> int:
        return self.item.depth

    @property
    def shown(self) -> ItemRecord:
        """The item as it now reads: the signed record with its field corrections."""
        if not self.state.field_corrections:
            return self.item
        return ItemRecord.from_mapping(self.state.record(self.item.columns()))

    @property
    def voided(self) -> bool:
        return self.state.voided

    def withdrawal(self, event_id: int) -> EventRecord | None:
        """The correction that withdrew event `event_id` (one without field changes)."""
        return next(
            (
                e
                for e in self.events
                if e.type == EventType.CORRECT
                and e.data.get("corrects") == event_id
                and not e.data.get("set")
            ),
            None,
        )

    @property
    def findings(self) -> list[Analysis]:
        """The identifications that count: those not withdrawn."""
        return [a for a in self.analyses if self.withdrawal(a.event.id) is None]

    @property
    def withdrawn(self) -> list[tuple[Analysis, EventRecord]]:
        """Withdrawn identifications with the correction that withdrew each."""
        out = []
        for a in self.analyses:
            by = self.withdrawal(a.event.id)
            if by is not None:
                out.append((a, by))
        return out

    @property
    def label(self) -> str:
        """The item's number within its case ("1", "1.2")."""
        return self.item.id.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class EntityEntry:
    """A case entity as the dossier shows it: its signed facts, and its personal data
    only when the dossier is built to print it (never in the embedded bundle)."""

    entity: Entity
    nominal: Mapping[str, str] | None = None  # checked against its commitment; None = not shown
    problem: str = ""  # why held personal data cannot be printed (it fails its commitment)

    @property
    def holds_personal_data(self) -> bool:
        return self.entity.commitment is not None and not self.entity.erased


@dataclass(frozen=True)
class DossierContent:
    report: ReportDetails
    agency: AgencyRecord | None
    case: CaseRow
    items: tuple[ItemEntry, ...]  # in item-number order
    actors: Mapping[str, ActorRecord]  # by handle
    verification: VerifyReport
    attachments: tuple[Attachment, ...]
    bundle_hash: str
    qr_text: str
    photo_path: Callable[[str], Path | None] = lambda sha: None
    event_problems: Mapping[int, list[str]] = field(default_factory=dict)  # event -> kinds
    entities: tuple[EntityEntry, ...] = ()  # persons, organisations, conveyances, shipments
    personal_data: bool = False  # built to print the entities' personal data

    @property
    def findings(self) -> list[Finding]:
        return self.verification.findings

    @property
    def agency_name(self) -> str:
        return (self.agency.name if self.agency else "") or self.case.agency_code or ""

    @property
    def evidence(self) -> tuple[ItemEntry, ...]:
        """The items that are evidence: every item not voided."""
        return tuple(e for e in self.items if not e.voided)

    @property
    def voided(self) -> tuple[ItemEntry, ...]:
        return tuple(e for e in self.items if e.voided)


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    body = ParagraphStyle(
        "body", parent=base["BodyText"], fontName="Helvetica", fontSize=9, leading=11.5
    )
    return {
        "title": ParagraphStyle(
            "title", parent=base["Title"], fontSize=20, leading=24, spaceAfter=6
        ),
        "subtitle": ParagraphStyle(
            "subtitle", parent=body, fontSize=12, leading=15, alignment=TA_CENTER
        ),
        "h1": ParagraphStyle(
            "h1",
            parent=base["Heading1"],
            fontSize=15,
            leading=18,
            spaceBefore=8,
            spaceAfter=6,
            keepWithNext=1,
        ),
        "h2": ParagraphStyle(
            "h2",
            parent=base["Heading2"],
            fontSize=12,
            leading=15,
            spaceBefore=8,
            spaceAfter=4,
            keepWithNext=1,
        ),
        "h3": ParagraphStyle(
            "h3",
            parent=base["Heading3"],
            fontSize=10,
            leading=13,
            spaceBefore=6,
            spaceAfter=3,
            keepWithNext=1,
        ),
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.2),
        "cell": ParagraphStyle("cell", parent=body, fontSize=7.5, leading=9),
        "call": ParagraphStyle(
            "call", parent=body, fontSize=11, leading=14, fontName="Helvetica-Bold"
        ),
        "alert": ParagraphStyle(
            "alert", parent=body, textColor=colors.HexColor("#9b1c1c"), fontName="Helvetica-Bold"
        ),
        "end": ParagraphStyle(
            "end", parent=body, alignment=TA_CENTER, fontName="Helvetica-Bold", fontSize=10
        ),
    }


S = _styles()

#: A table cell as given: text, a number, nothing, or (text, FastTable style).
CellValue = str | int | float | tuple[str, str] | None


def P(text: str, style: str = "cell") -> Paragraph:
    return Paragraph(markup(text).replace("\n", "<br/>"), S[style])


def _cell(value: CellValue) -> Cell:
    if isinstance(value, tuple):
        return value
    return "" if value is None else str(value)


def table(
    header: Sequence[str], rows: Iterable[Sequence[CellValue]], widths: Sequence[float]
) -> Flowable:
    """A grid table whose header repeats on every page it spans; widths are relative."""
    scale = CONTENT_W / sum(widths)
    return FastTable(
        [[_cell(c) for c in row] for row in rows],
        [w * scale for w in widths],
        header=list(header),
    )


def kv_table(pairs: Sequence[tuple[str, CellValue]], width: float = CONTENT_W) -> Flowable:
    """A two-column table of labelled values; empty values leave their row out."""
    rows = [[k, _cell(v)] for k, v in pairs if v not in (None, "")]
    return FastTable(rows, [width * 0.26, width * 0.74], key_column=True)


def _numbered_canvas(report_id: str, agency: str) -> type[rl_canvas.Canvas]:
    class NumberedCanvas(rl_canvas.Canvas):
        """Defers page output until save, so each page can say "Page X of Y"."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab API)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self._furniture(number, total)
                super().showPage()
            super().save()

        def _furniture(self, number: int, total: int) -> None:
            self.saveState()
            self.setStrokeColor(colors.HexColor("#7a8590"))
            self.setLineWidth(0.5)
            self.line(MARGIN, PAGE_H - MARGIN + 4 * mm, PAGE_W - MARGIN, PAGE_H - MARGIN + 4 * mm)
            self.line(MARGIN, MARGIN - 5 * mm, PAGE_W - MARGIN, MARGIN - 5 * mm)
            self.setFont("Helvetica", 7.5)
            self.setFillColor(colors.HexColor("#39424c"))
            draw_string(
                self, MARGIN, PAGE_H - MARGIN + 6 * mm, agency[:110], font="Helvetica", size=7.5
            )
            self.drawRightString(PAGE_W - MARGIN, PAGE_H - MARGIN + 6 * mm, f"Report {report_id}")
            self.drawString(MARGIN, MARGIN - 9 * mm, f"Report {report_id}")
            self.drawCentredString(
                PAGE_W / 2, MARGIN - 9 * mm, "Not to be reproduced except in full"
            )
            self.drawRightString(PAGE_W - MARGIN, MARGIN - 9 * mm, f"Page {number} of {total}")
            self.restoreState()

    return NumberedCanvas


class _Doc(BaseDocTemplate):
    def __init__(self, target: Any, **kw: Any) -> None:
        super().__init__(
            target,
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN,
            **kw,
        )
        frame = Frame(MARGIN, MARGIN, CONTENT_W, PAGE_H - 2 * MARGIN, id="body")
        self.addPageTemplates([PageTemplate(id="page", frames=[frame])])
        self._pass = 0

    def beforeDocument(self) -> None:  # noqa: N802 (reportlab API)
        # The first pass only settles page numbers for the contents (its placeholder
        # entries guarantee a second pass), so tables skip drawing in it.
        self._pass += 1
        self.canv._layout_only = self._pass == 1  # type: ignore[attr-defined]

    def afterFlowable(self, flowable: Flowable) -> None:  # noqa: N802 (reportlab API)
        if isinstance(flowable, Paragraph) and getattr(flowable, "toc_level", None) is not None:
            key = getattr(flowable, "toc_key", None)
            self.notify(
                "TOCEntry", (flowable.toc_level, markup(flowable.getPlainText()), self.page, key)
            )
            if key:
                self.canv.bookmarkPage(key)
                self.canv.addOutlineEntry(
                    flowable.getPlainText(), key, level=flowable.toc_level, closed=True
                )


def heading(text: str, level: int, key: str) -> Paragraph:
    p = Paragraph(markup(text), S["h1" if level == 0 else "h2"])
    p.toc_level = level  # type: ignore[attr-defined]
    p.toc_key = key  # type: ignore[attr-defined]
    return p


def qr_flowable(text: str, size: float) -> Flowable:
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing

    widget = QrCodeWidget(text, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    d = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    d.add(widget)
    return d


def _actor(content: DossierContent, handle: str | None) -> str:
    """A person as every page names them: full name and handle ("Amina Otieno (aotieno)");
    role, badge and key are in the table of people in Appendix A."""
    if not handle:
        return ""
    a = content.actors.get(handle)
    if a is None:
        return handle
    return f"{a.name} ({handle})"


def _place(content: DossierContent, location: str | None) -> str:
    """A location as recorded; "with HANDLE" (an item wherever its holder is) names them."""
    text = location or ""
    if text.startswith("with ") and text[5:] in content.actors:
        return f"with {_actor(content, text[5:])}"
    return text


def _short_time(utc: str | None) -> str:
    return (utc or "").replace("T", " ")[:19]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2f} %"


def _pct_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _known(value: int | None) -> str:
    return "?" if value is None else str(value)


class _ItemTree:
    """Items by parent: a seized item's sub-samples, and theirs, and so on."""

    def __init__(self, entries: Sequence[ItemEntry]) -> None:
        self._children: dict[str, list[ItemEntry]] = {}
        for entry in entries:
            self._children.setdefault(entry.item.parent_id or "", []).append(entry)

    def children(self, item_id: str) -> list[ItemEntry]:
        return self._children.get(item_id, [])

    def below(self, entry: ItemEntry) -> list[ItemEntry]:
        """`entry` and every sub-sample under it."""
        out, stack, seen = [], [entry], set()
        while stack:
            current = stack.pop()
            if current.item.id in seen:
                continue
            seen.add(current.item.id)
            out.append(current)
            stack.extend(self.children(current.item.id))
        return out

    def outline(self, item_id: str) -> list[str]:
        """One line per sub-sample under `item_id`, indented by its depth below it."""
        lines: list[str] = []
        seen = {item_id}

        def walk(node: str, depth: int) -> None:
            for child in self.children(node):
                if child.item.id not in seen:
                    seen.add(child.item.id)
                    lines.append("    " * depth + f"- {child.item.id}: {child.item.description}")
                    walk(child.item.id, depth + 1)

        walk(item_id, 0)
        return lines


def render_dossier(content: DossierContent, out: Path) -> int:
    """Write the dossier PDF to `out`; returns the number of pages."""
    evidence = content.evidence
    tree = _ItemTree(evidence)
    libraries = _libraries(evidence)
    sections = len(evidence) + (1 if libraries else 0) + 2  # summary ... sign-off
    sections += 1 if content.entities else 0
    appendices = 2 if any(e.analyses for e in evidence) else 1
    story = [
        *_front_matter(content),
        *_contents(sections + appendices + (1 if content.voided else 0)),
        *_summary(content, tree),
    ]
    for number, entry in enumerate(evidence, start=1):
        story.extend(_item_section(content, entry, number=number, tree=tree))
    number = len(evidence) + 2
    if content.entities:
        story.extend(_entity_section(content, number=number))
        number += 1
    if libraries:
        story.extend(_library_section(content, libraries, number=number))
        number += 1
    story.extend(_sign_off(content, number=number))
    story.extend(_integrity_appendix(content, last=appendices == 1))
    if appendices == 2:
        story.extend(_identification_appendix(content))
    rid = content.report.report_id
    doc = _Doc(
        str(out),
        title=f"Evidence dossier {rid}",
        author=content.agency_name,
        subject=f"Case {content.case.case_no}",
    )
    doc.multiBuild(story, canvasmaker=_numbered_canvas(rid, content.agency_name), maxPasses=4)
    return int(doc.page)


# Front matter, contents and summary


def _front_matter(content: DossierContent) -> list[Flowable]:
    report, agency = content.report, content.agency
    code, country = (agency.code, agency.country) if agency else ("", "")
    story: list[Flowable] = [
        Spacer(1, 6 * mm),
        Paragraph("Wildlife forensic evidence dossier", S["title"]),
        P(f"{content.agency_name} ({code}, {country})", "subtitle"),
        Spacer(1, 5 * mm),
    ]
    if report.amendment:
        story += [
            P(
                f"Amendment {report.amendment} to report {report.supersedes} (the original stays on record).",
                "alert",
            ),
            P(f"Reason for the amendment: {report.reason or 'not stated'}", "body"),
            Spacer(1, 2 * mm),
        ]
    story += [_front_table(content), Spacer(1, 3 * mm), P(STATEMENT, "body")]
    if report.changes:
        story.append(Paragraph("Changes since the previous issue", S["h3"]))
        story += [P("• " + line, "body") for line in report.changes]
    if content.findings:
        story += [
            Spacer(1, 3 * mm),
            P(
                f"WARNING: verification found {len(content.findings)} problem(s) at issue. They are listed here and in the integrity appendix.",
                "alert",
            ),
            _findings_table(content.findings),
        ]
    return story


def _front_table(content: DossierContent) -> Flowable:
    """The report's particulars, with the QR code of its ID and bundle hash beside them."""
    report, case = content.report, content.case
    version = f" (amendment {report.amendment})" if report.amendment else " (original issue)"
    front = kv_table(
        [
            ("Report ID", report.report_id),
            ("Version", f"{report.version}{version}"),
            ("Date of issue", _short_time(report.issued_at) + " UTC"),
            ("Case number", case.case_no),
            ("Case title", case.title),
            ("Submitting agency", content.agency_name),
            ("Submitted by", _actor(content, case.opened_by)),
            ("Jurisdiction", case.jurisdiction),
            ("Legal basis", case.legal_basis),
            ("Prepared for", report.prepared_for),
            ("Issued by", _actor(content, report.issued_by)),
            ("Where the work was done", "; ".join(report.places)),
            ("Personal data", _personal_data_note(content)),
            ("Evidence bundle SHA-256", (content.bundle_hash, "mono")),
        ],
        width=CONTENT_W - 42 * mm,
    )
    qr = [qr_flowable(content.qr_text, 34 * mm), P("Scan: report ID and bundle hash", "small")]
    box = Table([[front, qr]], colWidths=[CONTENT_W - 40 * mm, 40 * mm], hAlign="LEFT")
    box.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    return box


def _personal_data_note(content: DossierContent) -> str:
    """Whether the entities' personal data is printed (empty when no entity holds any)."""
    holding = sum(1 for e in content.entities if e.holds_personal_data)
    if not holding:
        return ""
    if content.personal_data:
        return f"printed for {holding} entities (see the section on persons)"
    return f"left out ({holding} entities hold some)"


def _findings_table(findings: Sequence[Finding]) -> Flowable:
    return table(
        ["subject", "event", "finding", "detail"],
        [[f.subject, f.event or "", f.kind, f.message] for f in findings],
        [22, 8, 14, 56],
    )


def _contents(n_entries: int) -> list[Flowable]:
    toc = TableOfContents()
    toc.levelStyles = [
        ParagraphStyle(
            "toc0",
            fontName="Helvetica-Bold",
            fontSize=9,
            leading=12,
            leftIndent=4,
            firstLineIndent=0,
        ),
        ParagraphStyle(
            "toc1", fontName="Helvetica", fontSize=8, leading=10, leftIndent=16, firstLineIndent=0
        ),
    ]
    # Pre-size the contents with placeholder entries so page numbers settle in two passes.
    toc._entries = [(0, "placeholder", 999, None)] * n_entries
    return [PageBreak(), Paragraph("Contents", S["h1"]), toc, PageBreak()]


def _summary(content: DossierContent, tree: _ItemTree) -> list[Flowable]:
    rows = []
    for entry in content.evidence:
        state = entry.state
        held = f", held by {_actor(content, state.custodian)}" if state.custodian else ""
        finding, cites = _item_finding(tree.below(entry))
        rows.append(
            [
                "    " * entry.depth + entry.item.id,
                entry.shown.description,
                finding,
                cites,
                state.status + held,
            ]
        )
    out: list[Flowable] = [
        heading("1. Summary of items and findings", 0, "summary"),
        P(
            "Each analysed sample's own finding is listed on its item's row and on the rows of "
            'the items it was taken from ("1.2:" is sub-sample 1.2). A finding for the item as '
            "a whole is given only when all its samples agree. Withdrawn analyses do not count.",
            "small",
        ),
        table(
            [
                "item",
                "description",
                "species finding of each analysed sample",
                "CITES",
                "custody status",
            ],
            rows,
            [15, 24, 33, 15, 13],
        ),
    ]
    stale = sorted(
        {
            snapshot
            for entry in content.evidence
            for a in entry.findings
            for snapshot in stale_snapshots(a.result.relevant_listings, at=a.event.at)
        }
    )
    if stale:
        out.append(
            P(
                f"Caution: the CITES listings above come from the snapshot of {', '.join(stale)}, "
                "more than a year before the analyses. Listings change at each Conference of "
                "the Parties; the Appendices in force on the date of the offence must be checked.",
                "alert",
            )
        )
    out += _voided_items(content)
    return out


def _voided_items(content: DossierContent) -> list[Flowable]:
    if not content.voided:
        return []
    rows = []
    for entry in content.voided:
        void = entry.state.void or {}
        rows.append(
            [
                entry.item.id,
                entry.shown.description,
                f"{void.get('reason', '')}",
                f"event {void.get('event', '')}, {_short_time(void.get('at'))} UTC, "
                f"{_actor(content, void.get('by'))}",
            ]
        )
    return [
        heading("Voided items (entered in error)", 1, "voided"),
        P(
            "These items were recorded and later voided as entered in error. They are not "
            "evidence and have no section in this report; their signed records stay in the "
            "embedded bundle.",
            "small",
        ),
        table(
            ["item", "description", "reason for voiding", "voided by"],
            rows,
            [16, 30, 30, 24],
        ),
    ]


def _short_finding(r: AnalysisResult) -> str:
    """A finding in a few words: the taxon and the level's words (`level_words`)."""
    words = r.level_words.lower()
    if r.level is Level.AMBIGUOUS:
        names = _join([c.species for c in r.candidates])
        return f"{r.taxon or 'no genus'} ({words}{': ' + names if names else ''})"
    if r.level in (Level.SPECIES, Level.GENUS) and r.taxon:
        return f"{r.taxon} ({words})"
    if r.level is not None:
        return Level.NONE.words.lower()
    return r.statement or r.level_text or "result not readable"


@dataclass(frozen=True)
class _Unit:
    """One finding that counts towards an item's finding: an analysis, or the combined
    finding of one sample's markers (its marker analyses count once, through it)."""

    text: str  # as listed for the sample
    short: str  # the finding in a few words
    level_text: str
    taxon: str | None
    conflict: bool = False  # a combined finding whose markers contradict each other
    disagreeing: str = "markers"  # who contradicts whom: "markers", "reads of one marker" ...


def _units(found: Sequence[Analysis]) -> list[_Unit]:
    units: list[_Unit] = []
    groups: dict[tuple[str, str, str, str], tuple[CombinedFinding, list[str]]] = {}
    for a in found:
        r, c = a.result, a.result.combined
        if c is None:
            short = _short_finding(r)
            marker = ", ".join(r.markers)
            text = f"{short} [{marker}]" if len(found) > 1 and marker else short
            units.append(_Unit(text, short, r.level_text, r.taxon))
            continue
        key = (c.sample, c.level_text, c.taxon or "", c.statement)
        if key not in groups:
            groups[key] = (c, [])
            units.append(_Unit("", "", c.level_text, c.taxon))
        seen = groups[key][1]
        seen += [m for m in r.markers if m not in seen]
    combined = iter(groups.values())
    return [_combined_unit(*next(combined)) if not u.text else u for u in units]


def _combined_unit(c: CombinedFinding, hit_markers: Sequence[str]) -> _Unit:
    """A sample's combined finding in a few words; a contradiction between its markers
    (or between the reads of one marker) is stated as the CLI states it, never read as
    a finding they share.

    Markers are named as each marker's call recorded them, once each, and queries of
    one gene ("COI", "COI-5P") as that gene; the markers of the analyses' best
    alignments stand in only for a record that names none.
    """
    unit = _combined_words(c, hit_markers)
    if not c.flags:
        return unit
    flagged = f"{unit.text} (flag: {'; '.join(c.flags)})"
    return replace(unit, text=flagged)


def _combined_words(c: CombinedFinding, hit_markers: Sequence[str]) -> _Unit:
    markers = _gene_groups([m.marker for m in c.markers if m.marker]) or list(hit_markers)
    words = level_words(c.level_text).lower()
    if c.conflicts:
        found = disagreement([_marker_call_of(m) for m in c.markers])
        who = found.subject if found else "markers"
        if found:
            sep = "; " if found.who != "markers" else ", "
            calls = sep.join(found.calls)
        else:
            calls = ", ".join(dict.fromkeys(_marker_call(m) for m in c.markers))
        if not calls:
            calls = ", ".join(c.conflicts)
        if c.level_text == Level.GENUS and c.taxon:
            short = f"{c.taxon} ({words})"
            text = f"{short}: the {who} disagree on the species ({calls})"
            return _Unit(text, short, c.level_text, c.taxon, conflict=True, disagreeing=who)
        short = "no combined identification"
        text = f"{short}: the {who} disagree ({calls})"
        return _Unit(text, short, Level.NONE, None, conflict=True, disagreeing=who)
    short = f"{c.taxon} ({words})" if c.taxon else words
    text = f"{short}, combined over {_join(markers) or 'its markers'}"
    return _Unit(text, short, c.level_text, c.taxon)


def _gene_groups(markers: Sequence[str]) -> list[str]:
    """Marker names, once each, those of one gene as the gene ("COI (COI, COI-5P)")."""
    groups: dict[str, list[str]] = {}
    for m in dict.fromkeys(markers):
        groups.setdefault(gene_key(m), []).append(m)
    return [
        names[0] if len(names) == 1 else f"{gene_name(names[0])} ({', '.join(names)})"
        for names in groups.values()
    ]


def _marker_call_of(m: MarkerFinding) -> MarkerCall:
    """A recorded marker's call as combining reads it (an unknown level as none)."""
    level = m.level_text if m.level_text in set(DecisionLevel) else DecisionLevel.NONE
    return MarkerCall(
        m.query, m.marker or NO_MARKER, m.library, DecisionLevel(level), m.taxon, m.candidates
    )


def _marker_call(m: MarkerFinding) -> str:
    """What one marker called, in a few words ("cytb calls genus Cyprinus")."""
    marker = m.marker or "a marker without hits"
    if m.level_text == Level.SPECIES and m.taxon:
        return f"{marker} calls {m.taxon}"
    if m.level_text == Level.GENUS and m.taxon:
        return f"{marker} calls genus {m.taxon}"
    if m.level_text == Level.AMBIGUOUS and m.candidates:
        return f"{marker} is ambiguous between {_join(list(m.candidates))}"
    if m.taxon:
        return f"{marker} calls {m.taxon} ({m.level_words.lower()})"
    return f"{marker} makes no identification"


def _item_finding(samples: Sequence[ItemEntry]) -> tuple[str, str]:
    """Each analysed sample's findings, a combined finding when they agree, and the
    CITES listings of the species called or tied in them."""
    lines: list[str] = []
    counted: list[_Unit] = []
    analysed_samples = 0
    listings: dict[tuple[str, str, str], None] = {}
    for sample in sorted(samples, key=lambda e: item_sort_parts(e.item.id)):
        if not sample.analyses:
            continue
        found = sample.findings
        units = _units(found)
        shown = list(dict.fromkeys(u.text for u in units))
        counted += units
        for a in found:
            for x in a.result.relevant_listings:
                listings[(x.species, x.appendix, x.snapshot)] = None
        analysed_samples += bool(found)
        for a, by in sample.withdrawn:
            shown.append(f"analysis event {a.event.id} WITHDRAWN by event {by.id}")
        lines.append(f"{sample.label}: " + "; ".join(shown or ["no finding"]))
    if not lines:
        return "not analysed", ""
    lines += _agreement(counted, samples=analysed_samples)
    cites = [
        f"{sp}: {_appendix_words(appendix)}{_dated(snapshot, listed=_listed(appendix))}"
        for sp, appendix, snapshot in listings
    ]
    return "\n".join(lines), "\n".join(cites) or "no species called"


def _agreement(units: Sequence[_Unit], *, samples: int) -> list[str]:
    """Whether the counted findings agree, in one plain sentence (none for a lone one)."""
    if not units:
        return ["No finding counts: every analysis was withdrawn."]
    if any(u.conflict for u in units):
        if len(units) == 1:
            return []  # the finding itself says that its markers disagree
        said = {u.disagreeing for u in units if u.conflict}
        who = said.pop() if len(said) == 1 else "markers"
        if samples > 1:
            return [f"The {who} of a sample disagree: no finding for the item as a whole."]
        return [f"The {who} of this sample disagree: no single finding."]
    identified = [u for u in units if u.taxon]
    taxa = {(u.level_text, u.taxon) for u in identified}
    if len(taxa) > 1:
        if samples > 1:
            return ["The samples disagree: no finding for the item as a whole."]
        return ["The analyses of this sample disagree: no single finding."]
    if len(units) == 1:
        return []
    if identified and len(identified) < len(units):
        return [
            f"Not every analysis identifies: {identified[0].short} from "
            f"{len(identified)} of {len(units)} analyses; the others gave no identification."
        ]
    what = units[0].short
    if samples > 1:
        return [f"All {samples} analysed samples agree: {what}."]
    return [f"All {len(units)} analyses agree: {what}."]


def _appendix_words(appendix: str) -> str:
    if not appendix or appendix == "not listed":
        return "not listed"
    return f"App. {appendix}"


def _listed(appendix: str) -> bool:
    return bool(appendix) and appendix != "not listed"


def _dated(snapshot: str, *, listed: bool = True) -> str:
    """When the listing (or its absence) was taken from; the bundled snapshots answer
    "not listed" without a date."""
    if snapshot:
        return f" (listing of {snapshot})"
    return " (listing date not recorded)" if listed else " (in the bundled snapshots)"


def _join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def item_sort_parts(item_id: str) -> tuple[int, ...]:
    """Numeric order of an item number's parts ("1.10" after "1.9")."""
    tail = item_id.rsplit("/", 1)[-1]
    return tuple(int(p) if p.isdigit() else 0 for p in tail.split("."))


# One item


def _item_section(
    content: DossierContent, entry: ItemEntry, *, number: int, tree: _ItemTree
) -> list[Flowable]:
    out: list[Flowable] = [
        CondPageBreak(60 * mm),
        heading(f"{number + 1}. Item {entry.item.id}", 0, f"item-{number}"),
        _description(content, entry),
    ]
    out += _corrections(content, entry)
    out += _receipts(content, entry)
    out += _photographs(content, entry)
    out += _sampling(content, entry, tree=tree)
    out += _timeline(content, entry)
    for analysis in entry.analyses:
        by = entry.withdrawal(analysis.event.id)
        if by is None:
            out += _identification(content, analysis)
        else:
            out += _withdrawn_identification(content, analysis, by=by)
    return out


def _description(content: DossierContent, entry: ItemEntry) -> Flowable:
    item, state = entry.shown, entry.state
    corrected = set(state.field_corrections)

    def mark(text: str, *fields: str) -> str:
        return f"{text} (corrected; see below)" if corrected & set(fields) and text else text

    quantity = []
    if item.count is not None:
        quantity.append(f"{item.count} piece(s)")
    if item.weight is not None:
        quantity.append(f"{item.weight} {item.unit}".strip())
    located = item.lat is not None and item.lon is not None
    coords = f" ({item.lat:.5f}, {item.lon:.5f})" if located else ""
    parent = f" (sub-sample of {item.parent_id})" if item.parent_id else ""
    origin = state.origin
    if item.parent_id and origin:
        provenance: list[tuple[str, CellValue]] = [
            (
                "Taken from",
                f"{origin.get('item')} on {_short_time(origin.get('at'))} UTC by "
                f"{_actor(content, origin.get('by'))}",
            ),
        ]
    else:
        provenance = [
            ("Place seized", mark(f"{item.place}{coords}", "place", "lat", "lon")),
            (
                "Seized at",
                mark(
                    f"{_short_time(item.seized_at)} UTC (local {item.seized_at_local})",
                    "seized_at",
                    "seized_at_local",
                ),
            ),
            ("Seizing officer", _actor(content, item.seizing_officer)),
        ]
    custodian = _actor(content, state.custodian) or "-"
    return kv_table(
        [
            ("Item number", item.id + parent),
            ("Description", mark(item.description, "description")),
            ("Claimed species", mark(item.species, "species")),
            ("Count / weight", mark(", ".join(quantity), "count", "weight", "unit")),
            ("Packaging", mark(item.packaging, "packaging")),
            (
                "Bag",
                mark(f"{item.bag_no} of {item.bag_total}", "bag_no", "bag_total")
                if item.bag_no
                else "",
            ),
            ("Seal at seizure", item.seal_at_seizure),
            ("Current seal", state.seal or "unsealed"),
            ("Other IDs", "; ".join(f"{k}: {v}" for k, v in item.other_id_pairs)),
            *provenance,
            (
                "Custody status",
                f"{state.status}; custodian {custodian}; "
                f"location {_place(content, state.location) or '-'}",
            ),
        ]
    )


def _corrections(content: DossierContent, entry: ItemEntry) -> list[Flowable]:
    """Each corrected field: the value shown, the value recorded, and why."""
    corrections = entry.state.field_corrections
    if not corrections:
        return []
    signed = entry.item.columns()
    rows: list[list[CellValue]] = []
    for name, c in corrections.items():
        by = next((e for e in entry.events if e.id == c.event), None)
        who = f", {_actor(content, by.actor)}, {_short_time(by.at)} UTC" if by else ""
        rows.append(
            [
                name.replace("_", " "),
                _value(c.value),
                _value(signed.get(name)),
                f"event {c.event}{who}",
                c.reason,
            ]
        )
    return [
        Paragraph("Corrected particulars", S["h3"]),
        P(
            "The values above include these corrections. The value as first recorded stays "
            "in the signed record of the item's creation and in the custody history.",
            "small",
        ),
        table(
            ["field", "corrected value", "as first recorded", "corrected by", "reason"],
            rows,
            [12, 15, 15, 28, 30],
        ),
    ]


def _value(value: object) -> str:
    return "(none)" if value in (None, "") else str(value)


def _receipts(content: DossierContent, entry: ItemEntry) -> list[Flowable]:
    receipts = [e for e in entry.events if e.type == EventType.RECEIVE]
    if not receipts:
        shown = P("No receipt recorded (the item has not changed hands).", "body")
    else:
        shown = table(
            ["time (UTC)", "received by", "condition"],
            [
                [_short_time(e.at), _actor(content, e.actor), e.data.get("condition")]
                for e in receipts
            ],
            [18, 30, 52],
        )
    return [Paragraph("Condition on receipt", S["h3"]), shown]


def _photographs(content: DossierContent, entry: ItemEntry) -> list[Flowable]:
    if not entry.attachments:
        return []
    out: list[Flowable] = [Paragraph("Photographs as recorded", S["h3"])]
    for a in entry.attachments:
        path = content.photo_path(a.sha256)
        picture = (
            _picture(path)
            if path is not None and a.is_image
            else P("(file not available for display)")
        )
        caption = P(f"{a.name}\n{a.size} bytes, {a.media_type}\nSHA-256 {a.sha256}", "small")
        row = Table([[picture, caption]], colWidths=[75 * mm, CONTENT_W - 75 * mm])
        row.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
        out.append(row)
    return out


def _picture(path: Path) -> Flowable:
    try:
        from PIL import Image as PILImage

        with PILImage.open(path) as im:
            w, h = im.size
        width = min(70 * mm, w)
        return Image(str(path), width=width, height=width * h / w)
    except Exception:  # an unreadable image is reported, not fatal
        return P("(image could not be rendered)")


def _sampling(content: DossierContent, entry: ItemEntry, *, tree: _ItemTree) -> list[Flowable]:
    """Where a sub-sample came from, the samples taken from this item, and the tree below it."""
    item = entry.item
    samples = [e for e in entry.events if e.type == EventType.SAMPLE and "child" in e.data]
    children = tree.children(item.id)
    if not (samples or children or item.parent_id):
        return []
    out: list[Flowable] = [Paragraph("Sampling plan and sub-samples", S["h3"])]
    voided = {v.item.id for v in content.voided}
    origin = next(
        (e for e in entry.events if e.type == EventType.SAMPLE and e.data.get("parent")), None
    )
    if item.parent_id and origin:
        out.append(
            P(
                f"Taken from {item.parent_id} on {_short_time(origin.at)} UTC by {_actor(content, origin.actor)}. Reason: {origin.data.get('reason') or 'not stated'}.",
                "body",
            )
        )
    if samples:
        out.append(
            table(
                ["sub-sample", "taken (UTC)", "by", "what", "why"],
                [
                    [
                        e.data["child"]
                        + (" (VOIDED: not evidence)" if e.data["child"] in voided else ""),
                        _short_time(e.at),
                        _actor(content, e.actor),
                        e.data.get("description"),
                        e.data.get("reason") or "not stated",
                    ]
                    for e in samples
                ],
                [14, 15, 22, 24, 25],
            )
        )
    if children:
        out.append(P("Sub-sample tree:\n" + "\n".join(tree.outline(item.id)), "small"))
    return out


TIMELINE_HEADER = (
    "#",
    "time (UTC)",
    "event",
    "actor / released by",
    "received by",
    "location",
    "seal",
    "details",
    "signatures",
)


def _timeline(content: DossierContent, entry: ItemEntry) -> list[Flowable]:
    rows = []
    seal: str | None = entry.item.seal_at_seizure or None
    results = {a.event.id: a.result for a in entry.analyses}
    photos: dict[int, list[str]] = {}
    for att in entry.attachments:
        photos.setdefault(att.event, []).append(att.name)
    for e in entry.events:
        before = seal
        if e.type == EventType.SEAL:
            seal = e.data.get("seal")
        elif e.type == EventType.UNSEAL:
            seal = None
        details = _event_details(e, results.get(e.id))
        by = entry.withdrawal(e.id)
        if by is not None:
            details = f"WITHDRAWN by event {by.id} ({by.data.get('reason', '')}): {details}"
        if e.witness:
            details += f"; witnessed by {_actor(content, e.witness)}"
        if photos.get(e.id):
            details += "; photographs: " + ", ".join(photos[e.id])
        rows.append(_timeline_row(content, e, details=details, seal_before=before, seal_after=seal))
    return [
        Paragraph("Custody timeline", S["h3"]),
        table(TIMELINE_HEADER, rows, [4, 10, 9, 12, 12, 9, 13, 18, 13]),
    ]


def _timeline_row(
    content: DossierContent,
    e: EventRecord,
    *,
    details: str,
    seal_before: str | None,
    seal_after: str | None,
) -> list[CellValue]:
    released = e.actor if e.type == EventType.TRANSFER else ""
    if e.type == EventType.TRANSFER:
        received = e.counterparty
    else:
        received = e.actor if e.type == EventType.RECEIVE else ""
    problems = content.event_problems.get(e.id)
    status = "verified" if not problems else "NOT VERIFIED: " + "; ".join(problems)
    signatures = f"{status}\n{_signers(e)}{_recorded_elsewhere(content, e)}"
    if seal_before != seal_after:
        seal = f"{seal_before or '-'} -> {seal_after or '-'}"
    else:
        seal = seal_after or "-"
    acting = released or ("" if received else e.actor)
    return [
        str(e.id),
        _short_time(e.at),
        e.type,
        _actor(content, acting),
        _actor(content, received),
        _place(content, e.data.get("location")),
        seal,
        _spaced(details),
        (signatures, "alert") if problems else signatures,
    ]


_BREAK = "\ue000"  # a private-use character stands for a line break while spaces are cleaned


def _spaced(text: str) -> str:
    """`text` spaced as a paragraph prints it: runs of spaces and tabs as one space,
    none at the ends of a line; line breaks kept (free text typed by users)."""
    return cleanBlockQuotedText(text.replace("\n", _BREAK)).replace(_BREAK, "\n")


def _recorded_elsewhere(content: DossierContent, e: EventRecord) -> str:
    """For an event brought in with another agency's custody bundle: which agency recorded it."""
    if e.origin_id is None:
        return ""
    actor = content.actors.get(e.actor)
    agency = (actor.agency_code if actor else None) or "another agency"
    return f"\nrecorded by {agency} (event {e.origin_id} there)"


def _signers(e: EventRecord) -> str:
    try:
        signatures = e.signatures()
    except UnreadableEvent:  # verification reports it; the row says so too
        return "signatures unreadable"
    return ", ".join(f"{s.get('role', '')} {s.get('handle', '')}" for s in signatures)


def _event_details(e: EventRecord, result: AnalysisResult | None = None) -> str:
    """What the event did, in a few words; `result` is its identification, when it is one."""
    d, t = e.data, e.type
    if t == EventType.SEIZE:
        return "seized and logged"
    if t == EventType.CASE_OPEN:
        return "case opened"
    if t == EventType.TRANSFER:
        return f"purpose: {d['purpose']}" if d.get("purpose") else ""
    if t == EventType.SAMPLE:
        if "child" in d:
            return f"sub-sample {d['child']}: {d.get('description', '')}"
        return f"taken from {d.get('parent')}"
    if t == EventType.ANALYSE:
        result = result or AnalysisResult.from_data(d)
        return f"{result.statement or 'analysis'} (query {result.query})"
    if t == EventType.LABEL_PRINT:
        return (
            f"{d.get('copies')} label(s), {d.get('layout')}"
            + (f", REPRINT {d['reprint']}" if d.get("reprint") else "")
            + (f"; {d['reason']}" if d.get("reason") else "")
        )
    if t == EventType.CORRECT:
        changes = d.get("set")
        if isinstance(changes, dict) and changes:
            sets = ", ".join(f"{k} to {v}" for k, v in changes.items())
            return f"corrects event {d.get('corrects')}: sets {sets}; reason: {d.get('reason')}"
        return f"withdraws event {d.get('corrects')}; reason: {d.get('reason')}"
    if t == EventType.VOID:
        return f"item VOIDED as entered in error; reason: {d.get('reason')}"
    if t == EventType.DISPOSE:
        return f"{d.get('method')}; authority: {d.get('authority')}"
    keys = ("condition", "reason", "text", "location")
    return "; ".join(
        f"{k}: {d[k]}" for k in keys if d.get(k) and not (k == "location" and t == EventType.STORE)
    )


# Species identification


def _identification(content: DossierContent, analysis: Analysis) -> list[Flowable]:
    e, r = analysis.event, analysis.result
    out: list[Flowable] = [
        CondPageBreak(50 * mm),
        Paragraph(markup(f"Species identification (event {e.id}): {r.query}"), S["h2"]),
        P(f"{r.level_words}: {r.statement}", "call"),
        *_synonym_note(r),
        *_combined_finding(r),
        Paragraph("Error rate of this call", S["h3"]),
        P(_error_rate_words(r), "body"),
        kv_table(_method_rows(content, analysis)),
        Paragraph("Decision rule", S["h3"]),
        P(_rule_words(r), "body"),
        Paragraph("Distances to other species", S["h3"]),
        P(" ".join(_distance_sentences(r)), "body"),
    ]
    out += _hits(r)
    out += _cites_listings(r, at=e.at)
    out += [
        Paragraph("Flags", S["h3"]),
        P(
            "\n".join(f"• {_dated_flag(f, r.relevant_listings)}" for f in r.flags)
            if r.flags
            else "None.",
            "body",
        ),
        P(
            f"Error rates and limitations of {_library_name(r)}: see the section on the "
            "reference libraries used. Rule settings, the alignments and the query sequence: "
            "Appendix B.",
            "small",
        ),
    ]
    return out


def _synonym_note(r: AnalysisResult) -> list[Flowable]:
    """The other names the library files under the called species, when it files any."""
    if not (r.synonyms and r.taxon):
        return []
    names = _join(list(r.synonyms))
    return [
        P(
            f"The library files {names} under {r.taxon}: its curation treats them as one "
            f"species, so this call covers {'them' if len(r.synonyms) > 1 else 'it'} as well. "
            f"Each such decision, with its reviewer, reason and source, is in the manifest of "
            f"{_library_name(r)}.",
            "body",
        )
    ]


def _combined_finding(r: AnalysisResult) -> list[Flowable]:
    """The sample's finding over all its markers, when this result is one of them."""
    c = r.combined
    if c is None:
        return []
    lines = [
        f"• {m.marker or 'no marker'} ({m.query}, {m.library}): {_marker_words(m)}"
        for m in c.markers
    ]
    return [
        Paragraph(markup(f"Combined finding for sample {c.sample}"), S["h3"]),
        P(c.statement, "body"),
        P("Per marker:\n" + "\n".join(lines), "small") if lines else Spacer(1, 0),
        P(
            "A combined finding has no measured error rate of its own: validations measure "
            "the calls of one marker at a time. Each marker's call states its own error rate "
            f"in its section; the one given in this section is that of query {r.query} alone.",
            "body",
        ),
    ]


def _marker_words(m: MarkerFinding) -> str:
    if m.level_text == Level.AMBIGUOUS and m.candidates:
        return f"{m.level_words.lower()} between {_join(list(m.candidates))}"
    if m.taxon:
        return f"{m.taxon} ({m.level_words.lower()})"
    return m.level_words.lower()


def _error_rate_words(r: AnalysisResult) -> str:
    """The measured error rate of calls like this one, or why none can be given."""
    if r.error_rate is not None and r.error_rate.statement:
        return r.error_rate.statement
    if r.validation is None:
        return (
            f"The library version ({_library_name(r)}) was not validated under this rule "
            "when the call was made, so no error rate of this call can be given."
        )
    return (
        "This result was recorded before error rates of individual calls were kept; the "
        "library's overall error rates are in the section on the reference libraries used."
    )


def _withdrawn_identification(
    content: DossierContent, analysis: Analysis, *, by: EventRecord
) -> list[Flowable]:
    """A withdrawn identification: named, with what withdrew it; it is no finding."""
    e, r = analysis.event, analysis.result
    return [
        CondPageBreak(30 * mm),
        Paragraph(markup(f"Species identification (event {e.id}): {r.query} (WITHDRAWN)"), S["h2"]),
        P(
            f"WITHDRAWN by event {by.id} on {_short_time(by.at)} UTC by "
            f"{_actor(content, by.actor)}. Reason: {by.data.get('reason') or 'not stated'}.",
            "alert",
        ),
        P(
            f"This analysis no longer counts as a finding and is not used anywhere in this "
            f"report. For the record only, it had been recorded by {_actor(content, e.actor)} "
            f"on {_short_time(e.at)} UTC as: {r.level_words}: {r.statement}.",
            "body",
        ),
    ]


def _library_name(r: AnalysisResult) -> str:
    return f"{r.library_name} version {_known(r.library_version_number)}"


def _method_rows(content: DossierContent, analysis: Analysis) -> list[tuple[str, CellValue]]:
    """Method, query, quality, results with units, library: what a re-run needs."""
    e, r = analysis.event, analysis.result
    src = r.source or QuerySource()
    best = r.best_hit
    support = ""
    if best is not None and r.level is Level.SPECIES:
        support = (
            f"{_known(best.n_refs)} reference(s) of {best.species} aligned, "
            f"{_known(best.n_supporting)} at or above the species threshold: "
            + ", ".join(best.accessions)
        )
    return [
        ("Method", METHOD),
        ("Marker(s) matched", ", ".join(r.markers) or "see hits"),
        ("Query source", f"{src.file} ({src.format}), file {src.file_sha256}"),
        ("Query sequence SHA-256", (r.query_sha256, "mono")),
        ("Trimming and quality", _quality(r)),
        ("Base calls", "; ".join(f"{k}: {v}" for k, v in sorted(src.details.items()))),
        (
            "Identity / coverage",
            f"{_pct(r.identity)} identity over {_pct(r.coverage)} of the query",
        ),
        ("Supporting references", support),
        ("Reference library", _library_name(r)),
        ("Library content hash", (r.library_version, "mono")),
        ("Decision rule", f"'{r.rule.name}' (in words below; every setting in Appendix B)"),
        ("Analyst", f"{_actor(content, e.actor)}, {_short_time(e.at)} UTC"),
    ]


def _quality(r: AnalysisResult) -> str:
    qc = r.qc or QueryQC()
    bits = [f"length {r.query_bases} bp"]
    if qc.raw_length is not None:
        bits.append(f"raw {qc.raw_length} bp")
    if qc.mean_quality is not None:
        bits.append(f"mean quality Q{qc.mean_quality:.1f}")
    if qc.ambiguous_fraction is not None:
        bits.append(f"{100 * qc.ambiguous_fraction:.2f} % ambiguous bases")
    if qc.trimmed:
        bits.append("Mott quality-trimmed")
    return "; ".join([*bits, *qc.warnings])


def _num(value: float | None, default: float) -> str:
    return f"{default if value is None else value:g}"


def _rule_words(r: AnalysisResult) -> str:
    """What had to be true for this call under its rule, and that it was."""
    rule = r.rule
    species_id = _num(rule.number("species_identity"), 98.5)
    gap = _num(rule.number("species_gap"), 1.0)
    floor = _num(rule.number("genus_floor"), 95.0)
    identity = _pct(r.identity) or "not recorded"
    name = f"Rule '{rule.name}'" if rule.name else "The rule recorded"
    species_needs = (
        f"{name} calls a species only when (1) the best match reaches {species_id} % identity, "
        f"(2) no other species comes within {gap} percentage points of it (the barcode gap)"
    )
    if rule.value("use_library_stats") is not False:
        species_needs += (
            ", and (3) the query lies within the variation the library shows for that "
            "species and clearly closer to it than that species is to its nearest other "
            "species in the library (a species known from only one or two references needs "
            "more: see Appendix B)"
        )
    species_needs += "."
    if r.level is Level.SPECIES:
        held = _species_held(
            r, species_id=species_id, gap=gap, library=rule.value("use_library_stats") is not False
        )
        return f"{species_needs} {held}"
    if r.level is Level.AMBIGUOUS:
        names = _join([c.species for c in r.candidates])
        within = f"all match within {gap} percentage points of the best match ({identity})"
        bases = _num(rule.number("min_gap_bases"), 0)
        if (
            r.next_species_distance is not None
            and r.next_species_distance >= float(gap)
            and bases not in ("", "0")
        ):
            within = (
                f"match within {r.next_species_distance:.2f} percentage points of the best "
                f"match ({identity}), fewer than the {bases} differing bases the rule asks for "
                "on a query this short"
            )
        return (
            f"{species_needs} Here condition (2) failed: {names} {within}, so the marker does "
            "not tell them apart for this query. "
            + (
                f"They share the genus {r.taxon}, which is reported."
                if r.taxon
                else "They belong to different genera, so no genus is reported."
            )
        )
    if r.level is Level.GENUS:
        held = (
            f"the closest species all belong to {r.taxon}, so the result is genus {r.taxon} only."
        )
        failed = r.flags_coded(*_LIBRARY_REFUSALS)
        if r.identity is not None and r.identity < (rule.number("species_identity") or 98.5):
            why = f"Here the best match is at {identity}, below the {species_id} % needed for a species"
        elif failed:
            why = (
                f"Here the best match, at {identity}, reached the species threshold, but condition "
                f"(3) failed: {failed[0]}"
            )
        else:
            why = (
                f"Here the best match is at {identity}, and a condition for a species call did "
                "not hold (the reason is listed under Flags)"
            )
        return (
            f"{species_needs} A genus is reported when the best match lies at or above "
            f"{floor} % and the closest species share one genus. {why}; {held}"
        )
    if r.level is Level.NONE and not r.has_candidates:
        return (
            f"{species_needs} Even a genus needs a best match at or above {floor} %. Here "
            f"the best match is at {identity}, below that floor: no species or genus is "
            "identified, and the species that matched best are not candidates."
        )
    if r.level is Level.NONE:
        return (
            f"{species_needs} A genus is reported only when the closest species share one "
            f"genus. Here the best match is at {identity} and the closest species belong to "
            "different genera: no identification."
        )
    return f"The rule recorded is '{rule.name}'. {rule.description}".strip()


#: Flag codes (`species_ref.vocab.FlagCode`) of the library checks that refuse a species call.
_LIBRARY_REFUSALS = ("outside-library-variation", "few-references", "genus-unresolved")
#: Flag codes of the exceptions that let a species known from few references be called.
_FEW_REFERENCES_RELIEF = ("identical-match", "genus-resolved")


def _species_held(r: AnalysisResult, *, species_id: str, gap: str, library: bool) -> str:
    """Why a species call's conditions held, including any exception the rule made (a sister
    within the gap outweighed by many close references; a short query identical to a reference
    one base from the next species; a species known from few references called because its
    genus is separated or the query is identical to a reference)."""
    nxt = r.next_hit
    parts = [f"Here the best match, {r.taxon}, is at {_pct(r.identity)}"]
    discounted = r.flags_coded("read-errors")
    if discounted and r.identity is not None and r.identity < float(species_id):
        parts.append(
            f"which reaches {species_id} % once {discounted[0].split(' at ')[0]} at sites "
            "conserved in every related reference are treated as probable read errors, as the "
            "rule allows"
        )
    dominant = r.flags_coded("dominant-support")
    one_base = r.flags_coded("separated-by-base")
    within = r.next_species_distance is not None and r.next_species_distance < float(gap)
    if nxt is None:
        parts.append("no other species matched")
    elif one_base:
        parts.append(
            f"{nxt.species} lies {_gap(r)} behind, closer than condition (2) allows on a "
            "query this short; the rule makes an exception for a short query identical to a "
            f"reference, which applied: {one_base[0]}"
        )
    elif within and dominant:
        parts.append(
            f"condition (2) did not hold, since {nxt.species} lies {_gap(r)} behind, within "
            "the gap; the rule makes an exception for a species matched by several references "
            f"closer than any other species', which applied: {dominant[0]}"
        )
    else:
        parts.append(f"the next species, {nxt.species}, matches {_gap(r)} less well")
    relief = r.flags_coded(*_FEW_REFERENCES_RELIEF)
    if library and relief:
        parts.append(
            "and the library checks passed through the exception the rule makes for a species "
            f"known from one or two references: {relief[0]}"
        )
    elif library:
        parts.append("and the library checks passed (any reservation is listed under Flags)")
    return "; ".join(parts) + ". The call is therefore at species level."


def _gap(r: AnalysisResult) -> str:
    return (
        f"{r.next_species_distance:.2f} percentage points"
        if r.next_species_distance is not None
        else "an unrecorded amount"
    )


def _distance_sentences(r: AnalysisResult) -> list[str]:
    """Every statement about distances, consistent with the call and with each other."""
    best, nxt = r.best_hit, r.next_hit
    out: list[str] = []
    if best is None:
        return ["No reference sequence overlapped the query enough to count."]
    if r.level is Level.NONE and not r.has_candidates:
        second = f" and {nxt.species} at {_pct(nxt.best_identity)}" if nxt else ""
        return [
            f"The closest species in the library match the query at only "
            f"{_pct(best.best_identity)} ({best.species}){second}. At such identities the "
            "query's species is not in the library, or the sequence is not usable; these "
            "species are not candidates, and distances between them say nothing about the "
            "item."
        ]
    if nxt is not None:
        out.append(
            f"Distance to the next species: {_gap(r).replace(' percentage points', ' %')}. "
            f"This means that the best reference of the next-closest species, {nxt.species}, is "
            f"{_pct(nxt.best_identity)} identical to the query, {_gap(r)} less than the "
            f"best reference of {best.species} ({_pct(best.best_identity)}). On this query's "
            f"{_known(best.aligned_length)} aligned bases that is about "
            f"{_bases(r, best.aligned_length)} more differing base(s)."
        )
    else:
        out.append(f"No species other than {best.species} matched the query.")
    out += _library_sentences(r)
    return out


def _bases(r: AnalysisResult, length: int | None) -> str:
    if r.next_species_distance is None or not length:
        return "?"
    return f"{r.next_species_distance / 100 * length:.0f}"


def _library_sentences(r: AnalysisResult) -> list[str]:
    """What the library itself shows about the best species, between its reference
    sequences (the query is not involved), reconciled with the query's distances."""
    stats = r.species_stats
    if stats is None or not stats.species:
        return []
    name = stats.species
    out = [f"The library holds {_known(stats.n_refs)} reference sequence(s) of {name}"]
    if stats.intra_max is not None and (stats.n_refs or 0) > 1:
        out[0] += f", which differ from each other by up to {stats.intra_max:.2f} %"
    out[0] += "."
    if stats.nn_species and stats.nn_distance is not None:
        out.append(
            f"Between reference sequences (not involving the query), the reference of another "
            f"species closest to any reference of {name} belongs to {stats.nn_species}, "
            f"{stats.nn_distance:.2f} % away."
        )
        other = r.hit_of(stats.nn_species)
        gap = r.next_species_distance
        # Only a species call can seem contradicted: the other calls already say that
        # the query is not told apart from its relatives.
        if r.level is Level.SPECIES and gap is not None and stats.nn_distance < gap:
            seen = (
                f"its best reference matches the query at {_pct(other.best_identity)}"
                if other is not None
                else "none of its references was among the query's matches"
            )
            why = (
                "two references of different species are identical there, which points to a "
                "misidentified or very short record in the library"
                if stats.nn_distance < 0.05
                else "those two references are closer than the query is to any other species"
            )
            out.append(
                f"This does not contradict the call: {why}, but the query itself is not close "
                f"to {stats.nn_species} ({seen})."
            )
    return out


def _hits(r: AnalysisResult) -> list[Flowable]:
    if not r.hits:
        return []
    header = [
        "species",
        "identity",
        "aligned length",
        "query coverage",
        "gaps",
        "refs (supporting)",
        "accessions",
        "CITES (listing of)",
    ]
    listed = {x.species: x for x in r.relevant_listings}
    rows: list[list[CellValue]] = [
        [
            h.species,
            _pct(h.best_identity),
            f"{h.aligned_length} bp",
            _pct(h.coverage),
            h.gaps,
            f"{h.n_refs} ({'' if h.n_supporting is None else h.n_supporting})",
            ", ".join(h.accessions[:6]),
            _listing_cell(listed.get(h.species)),
        ]
        for h in r.hits[:12]
    ]
    return [
        Paragraph("Hits grouped by species (best per species)", S["h3"]),
        table(header, rows, [17, 8, 8, 9, 5, 11, 24, 18]),
        P(
            "CITES is shown only for the species called or tied with the call (for a call "
            "that names no species, the species matched best); the other species matched "
            "less well and are not candidates.",
            "small",
        ),
    ]


def _listing_cell(listing: CitesListing | None) -> str:
    if listing is None:
        return ""
    return f"{_appendix_words(listing.appendix)}{_dated(listing.snapshot, listed=_listed(listing.appendix))}"


def _dated_flag(flag: str, listings: Sequence[CitesListing]) -> str:
    """A flag naming a CITES appendix, with the date of the listing it comes from."""
    for x in listings:
        named = f"{x.species} (Appendix {x.appendix})"
        if x.snapshot and named in flag:
            flag = flag.replace(
                named, f"{x.species} (Appendix {x.appendix}, listing of {x.snapshot})"
            )
    return flag


def _snapshot_date(snapshot: str) -> date | None:
    """The date of a CITES snapshot ("2017-04-21", or "2023-07" for a month)."""
    try:
        if len(snapshot) == 7:
            return date.fromisoformat(snapshot + "-01")
        return date.fromisoformat(snapshot[:10])
    except ValueError:
        return None


def stale_snapshots(listings: Iterable[CitesListing], *, at: str) -> list[str]:
    """The snapshots among `listings` older than the event at `at` by more than a year."""
    try:
        when = date.fromisoformat(at[:10])
    except ValueError:
        return []
    stale = []
    for x in listings:
        d = _snapshot_date(x.snapshot)
        if d is not None and (when - d).days > 365 and x.snapshot not in stale:
            stale.append(x.snapshot)
    return stale


def _cites_listings(r: AnalysisResult, *, at: str) -> list[Flowable]:
    title = Paragraph("CITES listing of the called species and tied candidates", S["h3"])
    listings = r.relevant_listings
    nearest_only = r.level is not Level.SPECIES and len(r.candidates) <= 1 and bool(listings)
    if nearest_only:
        title = Paragraph("CITES listing of the nearest species (no species called)", S["h3"])
    if not listings:
        return [
            title,
            P(
                "No species is called or tied with the call, so no CITES listing applies to "
                "this result.",
                "body",
            ),
        ]
    out: list[Flowable] = [
        title,
        table(
            ["species", "appendix", "listing date (snapshot)", "listed under", "statement"],
            [
                [
                    x.species,
                    _appendix_words(x.appendix),
                    x.snapshot or ("not recorded" if _listed(x.appendix) else "-"),
                    x.listed_under,
                    x.statement,
                ]
                for x in listings
            ],
            [18, 10, 13, 17, 42],
        ),
    ]
    if nearest_only:
        out.append(
            P(
                f"The call names no species ({r.statement}). The listing above is that of the "
                "species the query matched best, given for the reader's information: it is not "
                "the listing of the item's species, which the analysis did not determine.",
                "body",
            )
        )
    stale = stale_snapshots(listings, at=at)
    if stale:
        out.append(
            P(
                f"Caution: the CITES listing shown comes from the snapshot of {', '.join(stale)}, "
                f"more than a year before this analysis ({_short_time(at)[:10]}). Listings "
                "change at each Conference of the Parties; the Appendices in force on the date "
                "of the offence must be checked before relying on this listing.",
                "alert",
            )
        )
    if any(not x.snapshot and _listed(x.appendix) for x in listings):
        out.append(
            P(
                "The date of the CITES listing was not recorded with this analysis; the "
                "Appendices in force on the date of the offence must be checked.",
                "alert",
            )
        )
    return out


# The reference libraries used, once per library version


@dataclass(frozen=True)
class LibraryUse:
    """One reference library version used in the case, and the validations quoted with it."""

    name: str
    number: int | None
    content_hash: str
    events: tuple[int, ...]
    validations: tuple[tuple[str, LibraryValidation | None], ...]  # (rule, validation)
    #: whether the analyses recorded how the version was made (older ones did not)
    curation_recorded: bool = False
    curation: LibraryCurationRecord | None = None  # None: imported from files (or not recorded)
    manifest: Mapping[str, Any] = field(default_factory=dict)  # the signed manifest cited


def _libraries(entries: Sequence[ItemEntry]) -> list[LibraryUse]:
    """Each library version the counted identifications used, in first-use order."""
    found: dict[tuple[str, int | None, str], dict[str, Any]] = {}
    for entry in entries:
        for a in entry.findings:
            r = a.result
            key = (r.library_name, r.library_version_number, r.library_version)
            use = found.setdefault(key, {"events": [], "validations": {}})
            use["events"].append(a.event.id)
            use["validations"].setdefault(r.rule.name, r.validation)
            recorded, curation = recorded_library_curation(a.event.data)
            if recorded and "curation_recorded" not in use:
                use |= {"curation_recorded": True, "curation": curation}
            cited = a.event.data.get("library_manifest")
            if isinstance(cited, Mapping) and "manifest" not in use:
                use["manifest"] = cited
    return [
        LibraryUse(
            name=k[0],
            number=k[1],
            content_hash=k[2],
            events=tuple(v["events"]),
            validations=tuple(v["validations"].items()),
            curation_recorded=v.get("curation_recorded", False),
            curation=v.get("curation"),
            manifest=v.get("manifest", {}),
        )
        for k, v in found.items()
    ]


def _library_section(
    content: DossierContent, libraries: Sequence[LibraryUse], *, number: int
) -> list[Flowable]:
    out: list[Flowable] = [
        CondPageBreak(60 * mm),
        heading(f"{number}. Reference libraries, error rates and limitations", 0, "libraries"),
    ]
    for lib in libraries:
        out += [
            Paragraph(markup(f"Library {lib.name} version {_known(lib.number)}"), S["h2"]),
            kv_table(
                [
                    ("Content hash", (lib.content_hash, "mono")),
                    *_manifest_rows(content, lib),
                    *_curation_rows(lib),
                    ("Used by analyses", ", ".join(f"event {n}" for n in lib.events)),
                ]
            ),
        ]
        if lib.curation is not None:
            out.append(P(_curation_note(lib.curation), "small"))
        validated = False
        for rule, validation in lib.validations:
            out.append(Paragraph(markup(f"Measured error rates under rule '{rule}'"), S["h3"]))
            if validation is None:
                out.append(
                    P(
                        f"This library version was not validated under rule '{rule}': no error "
                        "rate has been measured for it, so how often it gives a wrong or false "
                        "species call is unknown.",
                        "alert",
                    )
                )
            else:
                validated = True
                out.append(kv_table(_rate_rows(validation)))
        out += [Paragraph("Limitations", S["h3"]), P(_limitations(validated), "small")]
    return out


def _manifest_rows(content: DossierContent, lib: LibraryUse) -> list[tuple[str, CellValue]]:
    """Who signed the version's manifest, as the analyses cite it."""
    signer = lib.manifest.get("signed_by")
    if not signer:
        return [("Manifest signed by", "Not signed: the analyses cite no signed manifest.")]
    return [
        ("Manifest signed by", _actor(content, str(signer))),
        ("Signer's key fingerprint", (str(lib.manifest.get("key") or "?"), "mono")),
        ("Manifest SHA-256", (str(lib.manifest.get("manifest_sha256") or "?"), "mono")),
    ]


def _curation_rows(lib: LibraryUse) -> list[tuple[str, CellValue]]:
    """How the version was made: imported from its sources, or curated from another version."""
    cur = lib.curation
    if cur is None:
        return [
            (
                "Curation",
                "None: imported from its source files."
                if lib.curation_recorded
                else "Not recorded with the analyses; the version's manifest states whether "
                "it was curated.",
            )
        ]
    rows: list[tuple[str, CellValue]] = [
        (
            "Curation",
            f"Curated version: made from version {_known(cur.curated_from)} of {lib.name} by "
            "applying a curation decisions file, not imported from source files.",
        ),
        (f"Content hash of version {_known(cur.curated_from)}", (cur.curated_from_hash, "mono")),
        ("Decisions file", cur.decisions_file or "(name not recorded)"),
        ("Decisions file SHA-256", (cur.decisions_sha256 or "?", "mono")),
        (
            "Decisions",
            f"{_counted(cur.applied, 'decision', 'decisions')} applied; "
            f"{_known(cur.skipped)} skipped (about records or names not in version "
            f"{_known(cur.curated_from)})",
        ),
        ("Records excluded", _known(cur.records_excluded)),
        (
            "Synonyms",
            f"{_counted(cur.names_merged, 'name', 'names')} merged as "
            f"{'a synonym' if cur.names_merged == 1 else 'synonyms'} under "
            f"{_counted(cur.accepted_names, 'accepted name', 'accepted names')}",
        ),
    ]
    if cur.earlier:
        rows.append(
            (
                "Earlier curation",
                "\n".join(
                    f"Version {_known(e.version)} made with {e.decisions_file or '?'} "
                    f"(SHA-256 {e.decisions_sha256 or '?'}): "
                    f"{_counted(e.applied, 'decision', 'decisions')} applied"
                    for e in cur.earlier
                ),
            )
        )
    return rows


def _counted(n: int | None, one: str, many: str) -> str:
    return f"{_known(n)} {one if n == 1 else many}"


def _curation_note(cur: LibraryCurationRecord) -> str:
    return (
        "Each decision (a record excluded, names filed as synonyms, records split off a name), "
        "with its reviewer, reason and source, is listed in this version's manifest, whose "
        f"SHA-256 is given above. Applying the decisions file to version {_known(cur.curated_from)} "
        "re-makes this version: its content hash must equal the one above."
    )


def _limitations(validated: bool) -> str:
    rates = (
        "The error rates quoted were measured on this library version itself (leave-one-out "
        "and leave-species-out) and are estimates for similar material."
        if validated
        else "No error rate was measured for this library version, so none can be quoted."
    )
    return f"{LIMITATIONS} {rates} {CONFIRMATION}"


def _rate_rows(v: LibraryValidation) -> list[tuple[str, CellValue]]:
    """The measured rates in the words a court needs, percentages first."""
    rows: list[tuple[str, CellValue]] = [
        ("Correct species calls (species in the library)", _pct_rate(v.correct_species_rate)),
        ("Wrong species calls (species in the library)", _pct_rate(v.wrong_species_rate)),
        (
            "False species calls (species absent from the library)",
            _pct_rate(v.false_species_rate_absent),
        ),
        (
            "Test queries",
            f"{_known(v.n_present)} of species in the library, {_known(v.n_absent)} of species held out",
        ),
        ("How measured", v.method),
    ]
    if v.sampled:
        rows.append(("Sampling", f"at most {v.max_queries} queries per experiment (seed {v.seed})"))
    if v.rule_name:
        rows.append(("Rule measured", v.rule_name))
    return rows


# Appendix B: rule settings, alignments and query sequences


def _identification_appendix(content: DossierContent) -> list[Flowable]:
    analyses = [(entry, a) for entry in content.evidence for a in entry.analyses]
    rules: dict[tuple[str, tuple[tuple[str, RuleValue], ...]], DecisionRule] = {}
    for _entry, a in analyses:
        rules.setdefault((a.result.rule.name, a.result.rule.settings), a.result.rule)
    named = {key: f"B.{n}" for n, key in enumerate(rules, start=1)}
    out: list[Flowable] = [
        PageBreak(),
        heading("Appendix B. Identification details: rules, alignments, queries", 0, "details"),
        P(
            "Every setting of each decision rule used, as recorded with the analyses; then, for "
            "each species identification, the best alignments of the query to reference "
            "sequences and the query sequence.",
            "body",
        ),
    ]
    for key, rule in rules.items():
        out += _rule_settings(rule, label=named[key])
    for entry, a in analyses:
        label = named[(a.result.rule.name, a.result.rule.settings)]
        out += _identification_details(entry, a, rule_label=label)
    out += [Spacer(1, 10 * mm), P(f"— End of report {content.report.report_id} —", "end")]
    return out


def _rule_name(rule: DecisionRule) -> str:
    return f"'{rule.name}'" if rule.name else "(name not recorded)"


def _rule_settings(rule: DecisionRule, *, label: str) -> list[Flowable]:
    out: list[Flowable] = [
        CondPageBreak(40 * mm),
        Paragraph(markup(f"{label}. Decision rule {_rule_name(rule)} as recorded"), S["h2"]),
    ]
    if rule.description:
        out.append(P(rule.description, "small"))
    if rule.settings:
        out.append(
            table(
                ["setting", "value", "setting", "value"],
                _two_columns([(k.replace("_", " "), _setting(v)) for k, v in rule.settings]),
                [32, 18, 32, 18],
            )
        )
    else:
        out.append(P("No setting was recorded with this rule.", "body"))
    return out


def _identification_details(
    entry: ItemEntry, analysis: Analysis, *, rule_label: str
) -> list[Flowable]:
    e, r = analysis.event, analysis.result
    withdrawn = " (WITHDRAWN)" if entry.withdrawal(e.id) is not None else ""
    out: list[Flowable] = [
        CondPageBreak(40 * mm),
        Paragraph(markup(f"Event {e.id}, item {entry.item.id}: {r.query}{withdrawn}"), S["h2"]),
        P(f"Decision rule: {_rule_name(r.rule)}, settings in {rule_label}.", "small"),
    ]
    out.append(Paragraph("Best alignments to reference sequences", S["h3"]))
    if r.top_hits:
        out.append(
            table(
                [
                    "reference",
                    "species",
                    "marker",
                    "identity",
                    "aligned",
                    "mismatches",
                    "gaps",
                    "query bases",
                    "reference bases",
                    "strand",
                ],
                [
                    [
                        h.seq_id,
                        h.species,
                        h.marker,
                        _pct(h.identity),
                        "" if h.aligned_length is None else f"{h.aligned_length} bp",
                        h.mismatches,
                        h.gaps,
                        _span(h.query_start, h.query_end),
                        _span(h.ref_start, h.ref_end),
                        h.strand,
                    ]
                    for h in r.top_hits[:5]
                ],
                [14, 17, 9, 9, 8, 9, 6, 10, 11, 7],
            )
        )
    else:
        out.append(P("No alignment was recorded with this analysis.", "body"))
    out.append(Paragraph("Query sequence", S["h3"]))
    if r.query_sequence:
        out.append(
            P(f"{r.query} ({len(r.query_sequence)} bases, SHA-256 {r.query_sha256}):", "small")
        )
        out.append(_sequence_block(r.query_sequence))
    else:
        src = r.source or QuerySource()
        out.append(
            P(
                "The sequence itself was not stored with this analysis. It is identified by its "
                f"SHA-256 {r.query_sha256}"
                + (
                    f" and is held in the file {src.file} ({src.file_sha256})." if src.file else "."
                ),
                "small",
            )
        )
    return out


def _two_columns(pairs: Sequence[tuple[str, str]]) -> list[list[CellValue]]:
    half = (len(pairs) + 1) // 2
    left, right = pairs[:half], pairs[half:]
    return [[*left[i], *(right[i] if i < len(right) else ("", ""))] for i in range(len(left))]


def _setting(value: RuleValue) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _span(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return ""
    return f"{start + 1}-{end}"


def _sequence_block(sequence: str) -> Flowable:
    """The sequence in numbered lines of 60 bases, monospaced."""
    lines = [f"{i + 1:>5} {sequence[i : i + 60]}" for i in range(0, len(sequence), 60)]
    return FastTable([[("\n".join(lines), "mono")]], [CONTENT_W])


# Case entities


NOMINAL_LABELS = {
    "name": "name",
    "dob": "date of birth",
    "age": "age",
    "id_number": "ID number",
    "passport": "passport",
    "phone": "phone",
    "email": "e-mail",
    "address": "address",
    "place_of_origin": "place of origin",
    "registration": "registration number",
    "identifier": "identifier",
    "owner": "owner",
    "number": "number",
    "consignor": "consignor",
    "consignee": "consignee",
}
PERSONAL_DATA_WORDS = "names, dates of birth, ID and passport numbers, phones, addresses"


def _entity_order(entry: EntityEntry) -> tuple[int, int, str]:
    e = entry.entity
    kind = list(KINDS).index(e.kind) if e.kind in KINDS else len(KINDS)
    number = e.label[1:]
    return kind, int(number) if number.isdigit() else 0, e.label


def _entity_section(content: DossierContent, *, number: int) -> list[Flowable]:
    entries = sorted(content.entities, key=_entity_order)
    holding = [e for e in entries if e.holds_personal_data]
    out: list[Flowable] = [
        CondPageBreak(60 * mm),
        heading(f"{number}. Persons, organisations, conveyances and shipments", 0, "entities"),
        P(
            "The case's entities and their links to items as their signed events record them. "
            "Persons are categorised as the EU Law Enforcement Directive (Art. 6) asks: "
            "suspect, convicted, victim, witness, other. Personal data is kept apart from the "
            "signed record: each event carries only a salted commitment to it, so it can be "
            "corrected, or erased at the end of its retention period, without breaking "
            "verification. The embedded evidence bundle holds the commitments, never the data.",
            "small",
        ),
    ]
    if content.personal_data:
        out.append(
            P(
                f"Personal data printed: this dossier was issued with personal data and shows "
                f"it for {len(holding)} of {len(entries)} entities, each checked against its "
                "signed commitment. Restrict its circulation to those entitled to that data.",
                "alert",
            )
        )
    elif holding:
        out.append(
            P(
                f"Personal data left out: {len(holding)} of {len(entries)} entities hold "
                f"personal data ({PERSONAL_DATA_WORDS}); this dossier was issued without it. "
                "A dossier built with 'custody dossier build --personal-data' prints it.",
                "body",
            )
        )
    else:
        out.append(P("No entity of this case holds personal data.", "body"))
    out.append(Spacer(1, 2 * mm))
    out.append(
        table(
            [
                "entity, recorded (UTC)",
                "kind and category",
                "facts",
                "linked items",
                "personal data",
            ],
            [_entity_row(content, entry) for entry in entries],
            [15, 15, 16, 22, 32],
        )
    )
    return out


def _entity_row(content: DossierContent, entry: EntityEntry) -> list[CellValue]:
    e = entry.entity
    facts = [f"{name}: {value}" for name, value in sorted(e.attributes.items())]
    if e.source:
        facts.append(f"source: {e.source}")
    links = [f"{link['item']} ({link['relation']})" for link in e.links]
    return [
        f"{e.label}\n{_short_time(e.added_at)[:16]}",
        f"{e.kind}, {e.category}",
        "\n".join(facts) or "none recorded",
        "\n".join(links) or "none",
        _personal_cell(content, entry),
    ]


def _personal_cell(content: DossierContent, entry: EntityEntry) -> CellValue:
    e = entry.entity
    if e.erasure is not None:
        why = f": {e.erasure.reason}" if e.erasure.reason else ""
        return f"erased on {_short_time(e.erasure.at)[:10]} by {_actor(content, e.erasure.by)}{why}"
    if e.erased:
        return "erased"
    if not entry.holds_personal_data:
        return "none recorded"
    if not content.personal_data:
        return "held; left out of this dossier"
    if entry.problem or entry.nominal is None:
        return ("not printed: it does not match its signed commitment", "alert")
    order = [*NOMINAL_FIELDS.get(e.kind, ()), *sorted(entry.nominal)]
    names = dict.fromkeys(n for n in order if n in entry.nominal)
    return "\n".join(f"{NOMINAL_LABELS.get(n, n)}: {entry.nominal[n]}" for n in names)


# Sign-off and integrity appendix


def _sign_off(content: DossierContent, *, number: int) -> list[Flowable]:
    analysts = sorted({a.event.actor for entry in content.evidence for a in entry.findings})
    blocks = [
        _signature_block(content, title="Analyst", handle=h, deviations="none recorded")
        for h in analysts
    ]
    blocks.append(
        _signature_block(content, title="Authorised and issued by", handle=content.report.issued_by)
    )
    # The section stays on one page: a signature block alone on a page could be taken
    # for, or swapped with, another report's.
    return [
        CondPageBreak(70 * mm),
        KeepTogether([heading(f"{number}. Analyst and authoriser", 0, "signoff"), *blocks]),
    ]


def _signature_block(
    content: DossierContent, *, title: str, handle: str, deviations: str = ""
) -> Flowable:
    a = content.actors.get(handle)
    rows: list[tuple[str, CellValue]] = [
        ("Name", a.name if a else handle),
        ("Role and badge", f"{a.role} {a.badge or ''}".strip() if a else ""),
        ("Agency", a.agency_code if a else None),
        ("Key fingerprint (SHA-256)", (a.key_fingerprint if a else "", "mono")),
        ("Deviations from the method", deviations),
        ("Wet-ink signature", WET_INK),
    ]
    return KeepTogether([Paragraph(markup(title), S["h3"]), kv_table(rows)])


def _integrity_appendix(content: DossierContent, *, last: bool = True) -> list[Flowable]:
    v = content.verification
    verdict = (
        "INTACT: every hash, chain link and signature verified"
        if not content.findings
        else f"{len(content.findings)} FINDING(S)"
    )
    log = f"event {v.log_head.seq}: {v.log_head.hash}"
    bundle = f"embedded file case-bundle.json, {content.bundle_hash}"
    out: list[Flowable] = [
        PageBreak(),
        heading("Appendix A. Integrity of the record", 0, "integrity"),
        kv_table(
            [
                ("Fresh verification at issue", verdict),
                ("Events verified", v.events_checked),
                ("Chains verified", v.chains_checked),
                ("Store log head", log),
                ("Evidence bundle", (bundle, "mono")),
            ]
        ),
    ]
    if content.findings:
        out.append(_findings_table(content.findings))
    out += _heads_and_signers(content)
    out += _attachment_manifest(content.attachments)
    out.append(P(HOW_TO_CHECK, "body"))
    if last:
        out += [Spacer(1, 10 * mm), P(f"— End of report {content.report.report_id} —", "end")]
    return out


def _heads_and_signers(content: DossierContent) -> list[Flowable]:
    heads = sorted(content.verification.heads.items())
    actors = sorted(content.actors.values(), key=lambda a: a.handle)
    return [
        Paragraph("Chain heads (hash of the last event of each chain)", S["h3"]),
        table(["chain", "head hash"], [[k, (h, "mono")] for k, h in heads], [25, 75]),
        Paragraph("People named in this report and their public-key fingerprints", S["h3"]),
        table(
            [
                "handle",
                "name",
                "role and badge",
                "agency",
                "key fingerprint (SHA-256 of the Ed25519 public key)",
            ],
            [
                [
                    a.handle,
                    a.name,
                    f"{a.role} {a.badge or ''}".strip(),
                    a.agency_code,
                    (a.key_fingerprint, "mono"),
                ]
                for a in actors
            ],
            [11, 19, 14, 8, 48],
        ),
    ]


def _attachment_manifest(attachments: Sequence[Attachment]) -> list[Flowable]:
    title = Paragraph("Attachment manifest", S["h3"])
    if not attachments:
        return [title, P("No attachments.", "body")]
    return [
        title,
        table(
            ["item", "event", "file", "bytes", "SHA-256"],
            [[a.item or "", a.event, a.name, a.size, (a.sha256, "mono")] for a in attachments],
            [16, 7, 18, 8, 51],
        ),
    ]
