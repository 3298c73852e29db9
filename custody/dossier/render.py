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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    DecisionRule,
    LibraryValidation,
    QueryQC,
    QuerySource,
    SpeciesStats,
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
from labels.fonts import draw_string, markup

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
    "records can be misidentified. The error rates quoted were measured on the library itself "
    "(leave-one-out and leave-species-out) and are estimates for similar material. Confirmation with "
    "an independent marker may be advisable where the result is contested."
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

    @property
    def findings(self) -> list[Finding]:
        return self.verification.findings

    @property
    def agency_name(self) -> str:
        return (self.agency.name if self.agency else "") or self.case.agency_code or ""


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
    if not handle:
        return ""
    a = content.actors.get(handle)
    if a is None:
        return handle
    badge = f", {a.badge}" if a.badge else ""
    return f"{a.name} ({a.role}{badge})"


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
    tree = _ItemTree(content.items)
    story = [*_front_matter(content), *_contents(len(content.items)), *_summary(content, tree)]
    for number, entry in enumerate(content.items, start=1):
        story.extend(_item_section(content, entry, number=number, tree=tree))
    story.extend(_sign_off(content))
    story.extend(_integrity_appendix(content))
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


def _findings_table(findings: Sequence[Finding]) -> Flowable:
    return table(
        ["subject", "event", "finding", "detail"],
        [[f.subject, f.event or "", f.kind, f.message] for f in findings],
        [22, 8, 14, 56],
    )


def _contents(n_items: int) -> list[Flowable]:
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
    toc._entries = [(0, "placeholder", 999, None)] * (n_items + 4)
    return [PageBreak(), Paragraph("Contents", S["h1"]), toc, PageBreak()]


def _summary(content: DossierContent, tree: _ItemTree) -> list[Flowable]:
    rows = []
    for entry in content.items:
        # A seized item shows the latest finding on it or any of its sub-samples.
        below = tree.below(entry) if entry.depth == 0 else [entry]
        analyses = sorted((a for e in below for a in e.analyses), key=lambda a: a.event.id)
        finding, appendix = _finding(analyses[-1].result if analyses else None)
        state = entry.state
        held = f", held by {state.custodian}" if state.custodian else ""
        rows.append(
            [
                "    " * entry.depth + entry.item.id,
                entry.item.description,
                finding,
                appendix,
                state.status + held,
            ]
        )
    return [
        heading("1. Summary of items and findings", 0, "summary"),
        table(
            ["item", "description", "species finding", "CITES appendix", "custody status"],
            rows,
            [16, 28, 30, 11, 15],
        ),
    ]


def _finding(result: AnalysisResult | None) -> tuple[str, str]:
    """A species finding in a few words, and the CITES appendix of the species called."""
    if result is None:
        return "not analysed", ""
    return f"{result.level_words}: {result.statement}", (
        result.called_appendix or "not listed / n.a."
    )


# One item


def _item_section(
    content: DossierContent, entry: ItemEntry, *, number: int, tree: _ItemTree
) -> list[Flowable]:
    out: list[Flowable] = [
        CondPageBreak(60 * mm),
        heading(f"{number + 1}. Item {entry.item.id}", 0, f"item-{number}"),
        _description(content, entry),
    ]
    out += _receipts(content, entry)
    out += _photographs(content, entry)
    out += _sampling(content, entry, tree=tree)
    out += _timeline(content, entry)
    for analysis in entry.analyses:
        out += _identification(content, analysis)
    return out


def _description(content: DossierContent, entry: ItemEntry) -> Flowable:
    item, state = entry.item, entry.state
    quantity = []
    if item.count is not None:
        quantity.append(f"{item.count} piece(s)")
    if item.weight is not None:
        quantity.append(f"{item.weight} {item.unit}".strip())
    located = item.lat is not None and item.lon is not None
    coords = f" ({item.lat:.5f}, {item.lon:.5f})" if located else ""
    parent = f" (sub-item of {item.parent_id})" if item.parent_id else ""
    return kv_table(
        [
            ("Item number", item.id + parent),
            ("Description", item.description),
            ("Claimed species", item.species),
            ("Count / weight", ", ".join(quantity)),
            ("Packaging", item.packaging),
            ("Bag", f"{item.bag_no} of {item.bag_total}" if item.bag_no else ""),
            ("Seal at seizure", item.seal_at_seizure),
            ("Current seal", state.seal or "unsealed"),
            ("Other IDs", "; ".join(f"{k}: {v}" for k, v in item.other_id_pairs)),
            ("Place seized", f"{item.place}{coords}"),
            ("Seized at", f"{_short_time(item.seized_at)} UTC (local {item.seized_at_local})"),
            ("Seizing officer", _actor(content, item.seizing_officer)),
            (
                "Custody status",
                f"{state.status}; custodian {state.custodian}; location {state.location or '-'}",
            ),
        ]
    )


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
                        e.data["child"],
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
    for e in entry.events:
        before = seal
        if e.type == EventType.SEAL:
            seal = e.data.get("seal")
        elif e.type == EventType.UNSEAL:
            seal = None
        details = _event_details(e, results.get(e.id))
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
    if e.witness:
        details += f"; witness {e.witness}"
    if seal_before != seal_after:
        seal = f"{seal_before or '-'} -> {seal_after or '-'}"
    else:
        seal = seal_after or "-"
    return [
        str(e.id),
        _short_time(e.at),
        e.type,
        _actor(content, released) if released else e.actor if not received else "",
        _actor(content, received),
        e.data.get("location") or "",
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
        return f"corrects event {d.get('corrects')}: {d.get('reason')}"
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
        kv_table(_method_rows(content, analysis)),
    ]
    out += _hits(r)
    if r.species_stats is not None:
        out.append(P(_coverage_sentence(r.species_stats), "small"))
    out += _cites_listings(r)
    out += [
        Paragraph("Flags", S["h3"]),
        P("\n".join(f"• {f}" for f in r.flags) if r.flags else "None.", "body"),
    ]
    out += _error_rates(r.validation)
    out += [Paragraph("Limitations", S["h3"]), P(LIMITATIONS, "small")]
    return out


def _method_rows(content: DossierContent, analysis: Analysis) -> list[tuple[str, CellValue]]:
    """Method, query, quality, results with units, library and rule: what a re-run needs."""
    e, r = analysis.event, analysis.result
    src = r.source or QuerySource()
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
        ("Distance to next species", _pct(r.next_species_distance)),
        ("Reference library", f"{r.library_name} version {r.library_version_number}"),
        ("Library content hash", (r.library_version, "mono")),
        ("Decision rule", _rule_text(r.rule)),
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
        "CITES",
    ]
    rows: list[list[CellValue]] = [
        [
            h.species,
            _pct(h.best_identity),
            f"{h.aligned_length} bp",
            _pct(h.coverage),
            h.gaps,
            f"{h.n_refs} ({'' if h.n_supporting is None else h.n_supporting})",
            ", ".join(h.accessions[:6]),
            r.appendix_of(h.species),
        ]
        for h in r.hits[:12]
    ]
    return [
        Paragraph("Hits grouped by species (best per species)", S["h3"]),
        table(header, rows, [20, 9, 10, 10, 6, 10, 26, 9]),
    ]


def _coverage_sentence(stats: SpeciesStats) -> str:
    """How well the library covers the matched species and its relatives, in words."""
    name = stats.species or "the matched species"
    parts = [f"The library holds {_known(stats.n_refs)} reference sequence(s) of {name}"]
    if stats.intra_max is not None and (stats.n_refs or 0) > 1:
        parts.append(f"they differ from each other by up to {stats.intra_max:.1f} %")
    if stats.nn_species:
        dist = stats.nn_distance
        at = f" at {dist:.1f} % distance" if dist is not None else ""
        parts.append(f"its nearest other species in the library is {stats.nn_species}{at}")
    return "; ".join(parts) + "."


def _cites_listings(r: AnalysisResult) -> list[Flowable]:
    if not r.cites_listings:
        return []
    return [
        Paragraph("CITES listing of the called species and candidates", S["h3"]),
        table(
            ["species", "appendix", "listed under", "snapshot", "statement"],
            [
                [x.species, x.appendix, x.listed_under, x.snapshot, x.statement]
                for x in r.cites_listings
            ],
            [18, 9, 18, 11, 44],
        ),
    ]


def _error_rates(validation: LibraryValidation | None) -> list[Flowable]:
    heading_ = Paragraph("Measured error rates of this library version", S["h3"])
    if validation is None:
        return [
            heading_,
            P(
                "This library version has not been validated ('custody ref validate'); no measured error rate is available.",
                "alert",
            ),
        ]
    return [heading_, kv_table(_rate_rows(validation))]


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


def _rule_text(rule: DecisionRule) -> str:
    values = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rule.settings)
    return f"{rule.name}: {values}"


# Sign-off and integrity appendix


def _sign_off(content: DossierContent) -> list[Flowable]:
    analysts = sorted(
        {e.actor for entry in content.items for e in entry.events if e.type == EventType.ANALYSE}
    )
    blocks = [
        _signature_block(content, title="Analyst", handle=h, deviations="none recorded")
        for h in analysts
    ]
    blocks.append(
        _signature_block(content, title="Authorised and issued by", handle=content.report.issued_by)
    )
    return [
        CondPageBreak(70 * mm),
        heading(f"{len(content.items) + 2}. Analyst and authoriser", 0, "signoff"),
        *blocks,
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


def _integrity_appendix(content: DossierContent) -> list[Flowable]:
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
    out += [
        P(HOW_TO_CHECK, "body"),
        Spacer(1, 10 * mm),
        P(f"— End of report {content.report.report_id} —", "end"),
    ]
    return out


def _heads_and_signers(content: DossierContent) -> list[Flowable]:
    heads = sorted(content.verification.heads.items())
    actors = sorted(content.actors.values(), key=lambda a: a.handle)
    return [
        Paragraph("Chain heads (hash of the last event of each chain)", S["h3"]),
        table(["chain", "head hash"], [[k, (h, "mono")] for k, h in heads], [25, 75]),
        Paragraph("Signers and their public-key fingerprints", S["h3"]),
        table(
            ["actor", "name", "role", "key fingerprint (SHA-256 of the Ed25519 public key)"],
            [[a.handle, a.name, a.role, (a.key_fingerprint, "mono")] for a in actors],
            [12, 22, 12, 54],
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
