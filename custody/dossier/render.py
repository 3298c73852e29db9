"""Render a court-ready evidence dossier PDF with reportlab (platypus).

Invariants:
- Every page carries the issuing agency, the report ID and "Page X of Y" (Y is
  known because pages are numbered when the document is saved); the last page
  carries an end-of-report mark.
- Text goes through Paragraphs (escaped), so it wraps inside its box and never
  runs off the page; long tables split across pages and repeat their header.
- The renderer reads only the prepared `DossierContent`, never the store; each
  entry's "item" is the item's signed record, not its (alterable) row.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
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
from reportlab.platypus.tableofcontents import TableOfContents

from custody.dossier.fasttable import FastTable
from labels.fonts import draw_string, is_standard, markup

PAGE_W, PAGE_H = A4
MARGIN = 18 * mm
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


@dataclass
class DossierContent:
    report: dict[str, Any]
    agency: dict[str, Any]
    case: dict[str, Any]
    items: list[dict[str, Any]]  # each: item (its signed record), state, events, depth
    actors: dict[str, dict[str, Any]]
    findings: list[dict[str, Any]]
    verification: dict[str, Any]
    attachments: list[dict[str, Any]]
    bundle_hash: str
    qr_text: str
    photo_path: Callable[[str], Path | None] = lambda sha: None
    event_problems: dict[int, list[str]] = field(default_factory=dict)


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
        "cellb": ParagraphStyle(
            "cellb", parent=body, fontSize=7.5, leading=9, fontName="Helvetica-Bold"
        ),
        "mono": ParagraphStyle("mono", parent=body, fontName="Courier", fontSize=7, leading=8.6),
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


def P(text: Any, style: str = "cell") -> Paragraph:
    return Paragraph(markup("" if text is None else str(text)).replace("\n", "<br/>"), S[style])


def Praw(markup: str, style: str = "body") -> Paragraph:
    return Paragraph(markup, S[style])


GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 7.5, 9),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7.5, 9),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9aa3ad")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4e9ef")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
)
KV = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 7.5, 9),
        ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 7.5, 9),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#c4cbd3")),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f1f4f7")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
)
CONTENT_W = PAGE_W - 2 * MARGIN


CELL_FONT, CELL_SIZE, CELL_PAD = "Helvetica", 7.5, 6.5


def _cell(value: Any, width: float) -> Any:
    """A plain string when it fits on one line (cheap to lay out), else a wrapping Paragraph."""
    if isinstance(value, Flowable):
        return value
    text = "" if value is None else str(value)
    if (
        "\n" not in text
        and is_standard(text)
        and stringWidth(text, CELL_FONT, CELL_SIZE) <= width - CELL_PAD
    ):
        return text
    return P(text)


_FONT_TAG = re.compile(r'<font face="[^"]*">|</font>')


def _fast_cell(value: Any) -> Any:
    if isinstance(value, tuple):
        return value
    if isinstance(value, Paragraph):
        from xml.sax.saxutils import unescape

        return unescape(_FONT_TAG.sub("", str(value.text)).replace("<br/>", "\n"))
    return "" if value is None else str(value)


def table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float]
) -> Flowable:
    """A grid table whose header repeats on every page it spans."""
    scale = CONTENT_W / sum(widths)
    return FastTable(
        [[_fast_cell(c) for c in row] for row in rows],
        [w * scale for w in widths],
        header=list(header),
    )


def kv_table(pairs: Sequence[tuple[str, Any]], width: float = CONTENT_W) -> Flowable:
    rows = [[k, _fast_cell(v)] for k, v in pairs if v not in (None, "")]
    if any(isinstance(v, Flowable) and not isinstance(v, Paragraph) for _, v in pairs):
        data = [
            [_cell(k, width * 0.26), _cell(v, width * 0.74)]
            for k, v in pairs
            if v not in (None, "")
        ]
        t = Table(data, colWidths=[width * 0.26, width * 0.74])
        t.setStyle(KV)
        return t
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
    if not a:
        return handle
    badge = f", {a['badge']}" if a.get("badge") else ""
    return f"{a['name']} ({a['role']}{badge})"


def _short_time(utc: str | None) -> str:
    return (utc or "").replace("T", " ")[:19]


def _level_word(r: dict[str, Any]) -> str:
    return {
        "species": "Species",
        "ambiguous": "Ambiguous",
        "genus": "Genus only",
        "none": "No identification",
    }.get(r.get("level", ""), str(r.get("level")))


def _finding_for(item_id: str, events: list[dict[str, Any]]) -> tuple[str, str]:
    """Summary: the latest species finding of an item or its sub-samples, and its CITES appendix."""
    ids = [
        e
        for e in events
        if e["type"] == "analyse" and e["data"].get("analysis") == "species-identification"
    ]
    if not ids:
        return "not analysed", ""
    r = ids[-1]["data"]
    cites = r.get("cites") or {}
    appendix = cites.get(r.get("taxon") or "", "") if isinstance(cites, dict) else ""
    if not appendix and cites and isinstance(cites, dict):
        appendix = "; ".join(f"{k}: {v}" for k, v in cites.items())
    return f"{_level_word(r)}: {r.get('statement', '')}", appendix or "not listed / n.a."


def render_dossier(content: DossierContent, out: Path) -> int:
    """Write the dossier PDF to `out`; returns the number of pages."""
    story: list[Flowable] = []
    report = content.report
    rid = report["report_id"]
    agency_name = content.agency.get("name") or content.case.get("agency_code") or ""

    # Front matter
    story.append(Spacer(1, 6 * mm))
    story.append(Paragraph("Wildlife forensic evidence dossier", S["title"]))
    story.append(
        P(
            f"{agency_name} ({content.agency.get('code', '')}, {content.agency.get('country', '')})",
            "subtitle",
        )
    )
    story.append(Spacer(1, 5 * mm))
    if report.get("amendment"):
        story.append(
            P(
                f"Amendment {report['amendment']} to report {report['supersedes']} (the original stays on record).",
                "alert",
            )
        )
        story.append(P(f"Reason for the amendment: {report.get('reason') or 'not stated'}", "body"))
        story.append(Spacer(1, 2 * mm))
    front = kv_table(
        [
            ("Report ID", rid),
            (
                "Version",
                f"{report.get('version', 1)}"
                + (
                    f" (amendment {report['amendment']})"
                    if report.get("amendment")
                    else " (original issue)"
                ),
            ),
            ("Date of issue", _short_time(report["issued_at"]) + " UTC"),
            ("Case number", content.case["case_no"]),
            ("Case title", content.case["title"]),
            ("Submitting agency", agency_name),
            ("Submitted by", _actor(content, content.case.get("opened_by"))),
            ("Jurisdiction", content.case.get("jurisdiction")),
            ("Legal basis", content.case.get("legal_basis")),
            ("Prepared for", report.get("prepared_for")),
            ("Issued by", _actor(content, report.get("issued_by"))),
            ("Where the work was done", "; ".join(report.get("places", []))),
            ("Evidence bundle SHA-256", (content.bundle_hash, "mono")),
        ],
        width=CONTENT_W - 42 * mm,
    )
    qr = Table(
        [
            [
                front,
                [
                    qr_flowable(content.qr_text, 34 * mm),
                    P("Scan: report ID and bundle hash", "small"),
                ],
            ]
        ],
        colWidths=[CONTENT_W - 40 * mm, 40 * mm],
        hAlign="LEFT",
    )
    qr.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    story.append(qr)
    story.append(Spacer(1, 3 * mm))
    story.append(P(STATEMENT, "body"))
    if report.get("changes"):
        story.append(Paragraph("Changes since the previous issue", S["h3"]))
        for line in report["changes"]:
            story.append(P("• " + line, "body"))
    if content.findings:
        story.append(Spacer(1, 3 * mm))
        rows = [
            [f["subject"], f.get("event") or "", f["kind"], f["message"]] for f in content.findings
        ]
        story.append(
            P(
                f"WARNING: verification found {len(content.findings)} problem(s) at issue. They are listed here and in the integrity appendix.",
                "alert",
            )
        )
        story.append(table(["subject", "event", "finding", "detail"], rows, [22, 8, 14, 56]))

    story.append(PageBreak())
    story.append(Paragraph("Contents", S["h1"]))
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
    toc._entries = [(0, "placeholder", 999, None)] * (len(content.items) + 4)
    story.append(toc)
    story.append(PageBreak())

    # Summary
    story.append(heading("1. Summary of items and findings", 0, "summary"))
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for entry in content.items:
        by_parent.setdefault(entry["item"].get("parent_id") or "", []).append(entry)

    def subtree_events(item_id: str) -> list[dict[str, Any]]:
        out = []
        stack = [item_id]
        while stack:
            current = stack.pop()
            for e in content.items:
                if e["item"]["id"] == current:
                    out.extend(e["events"])
            stack.extend(child["item"]["id"] for child in by_parent.get(current, []))
        return sorted(out, key=lambda e: e["id"])

    rows = []
    for entry in content.items:
        item = entry["item"]
        finding, appendix = _finding_for(
            item["id"], subtree_events(item["id"]) if entry["depth"] == 0 else entry["events"]
        )
        indent = "    " * entry["depth"]
        rows.append(
            [
                indent + item["id"],
                item["description"],
                finding,
                appendix,
                entry["state"]["status"]
                + (
                    f", held by {entry['state']['custodian']}"
                    if entry["state"].get("custodian")
                    else ""
                ),
            ]
        )
    story.append(
        table(
            ["item", "description", "species finding", "CITES appendix", "custody status"],
            rows,
            [16, 28, 30, 11, 15],
        )
    )

    # Items
    for number, entry in enumerate(content.items, start=1):
        story.extend(_item_section(content, entry, number, by_parent))

    # Sign-off
    story.append(CondPageBreak(70 * mm))
    story.append(heading(f"{len(content.items) + 2}. Analyst and authoriser", 0, "signoff"))
    analysts = sorted(
        {e["actor"] for entry in content.items for e in entry["events"] if e["type"] == "analyse"}
    )
    blocks = [("Analyst", h) for h in analysts] + [
        ("Authorised and issued by", report.get("issued_by"))
    ]
    for role, handle in blocks:
        a = content.actors.get(handle or "", {})
        fpr = a.get("key_fingerprint", "")
        story.append(
            KeepTogether(
                [
                    Paragraph(markup(role), S["h3"]),
                    kv_table(
                        [
                            ("Name", a.get("name", handle)),
                            ("Role and badge", f"{a.get('role', '')} {a.get('badge', '')}".strip()),
                            ("Agency", a.get("agency_code")),
                            ("Key fingerprint (SHA-256)", (fpr, "mono")),
                            (
                                "Deviations from the method",
                                "none recorded" if role == "Analyst" else "",
                            ),
                            (
                                "Wet-ink signature",
                                P(
                                    "\n\n______________________________     Date: ____________",
                                    "body",
                                ),
                            ),
                        ]
                    ),
                ]
            )
        )

    # Integrity appendix
    story.append(PageBreak())
    story.append(heading("Appendix A. Integrity of the record", 0, "integrity"))
    v = content.verification
    verdict = (
        "INTACT: every hash, chain link and signature verified"
        if not content.findings
        else f"{len(content.findings)} FINDING(S)"
    )
    story.append(
        kv_table(
            [
                ("Fresh verification at issue", verdict),
                ("Events verified", v.get("events_checked")),
                ("Chains verified", v.get("chains_checked")),
                (
                    "Store log head",
                    f"event {v.get('log_head', {}).get('seq')}: {v.get('log_head', {}).get('hash')}",
                ),
                (
                    "Evidence bundle",
                    (f"embedded file case-bundle.json, {content.bundle_hash}", "mono"),
                ),
            ]
        )
    )
    if content.findings:
        story.append(
            table(
                ["subject", "event", "finding", "detail"],
                [
                    [f["subject"], f.get("event") or "", f["kind"], f["message"]]
                    for f in content.findings
                ],
                [22, 8, 14, 56],
            )
        )
    story.append(Paragraph("Chain heads (hash of the last event of each chain)", S["h3"]))
    story.append(
        table(
            ["chain", "head hash"],
            [[k, (h, "mono")] for k, h in sorted(v.get("heads", {}).items())],
            [25, 75],
        )
    )
    story.append(Paragraph("Signers and their public-key fingerprints", S["h3"]))
    story.append(
        table(
            ["actor", "name", "role", "key fingerprint (SHA-256 of the Ed25519 public key)"],
            [
                [h, a["name"], a["role"], (a["key_fingerprint"], "mono")]
                for h, a in sorted(content.actors.items())
            ],
            [12, 22, 12, 54],
        )
    )
    story.append(Paragraph("Attachment manifest", S["h3"]))
    if content.attachments:
        story.append(
            table(
                ["item", "event", "file", "bytes", "SHA-256"],
                [
                    [a.get("item") or "", a["event"], a["name"], a["size"], (a["sha256"], "mono")]
                    for a in content.attachments
                ],
                [16, 7, 18, 8, 51],
            )
        )
    else:
        story.append(P("No attachments.", "body"))
    story.append(
        P(
            "How to check this dossier without the issuing agency's database: open the embedded file "
            "case-bundle.json, compute its SHA-256 and compare it with the hash printed above and in the "
            "QR code; then recompute every event hash from the bundle and check each Ed25519 signature "
            "with the listed public keys ('custody dossier verify FILE.pdf' does all of this). The PDF "
            "itself carries a digital signature by the issuing actor covering the whole file.",
            "body",
        )
    )
    story.append(Spacer(1, 10 * mm))
    story.append(P(f"— End of report {rid} —", "end"))

    doc = _Doc(
        str(out),
        title=f"Evidence dossier {rid}",
        author=agency_name,
        subject=f"Case {content.case['case_no']}",
    )
    doc.multiBuild(story, canvasmaker=_numbered_canvas(rid, agency_name), maxPasses=4)
    return int(doc.page)


def _item_section(
    content: DossierContent,
    entry: dict[str, Any],
    number: int,
    by_parent: dict[str, list[dict[str, Any]]],
) -> list[Flowable]:
    item = entry["item"]
    events = entry["events"]
    state = entry["state"]
    out: list[Flowable] = [
        CondPageBreak(60 * mm),
        heading(f"{number + 1}. Item {item['id']}", 0, f"item-{number}"),
    ]
    import json as _json

    other = _json.loads(item.get("other_ids") or "{}")
    quantity = []
    if item.get("count") is not None:
        quantity.append(f"{item['count']} piece(s)")
    if item.get("weight") is not None:
        quantity.append(f"{item['weight']} {item.get('unit', '')}".strip())
    coords = f" ({item['lat']:.5f}, {item['lon']:.5f})" if item.get("lat") is not None else ""
    officer = _actor(content, item.get("seizing_officer"))
    out.append(
        kv_table(
            [
                (
                    "Item number",
                    item["id"]
                    + (f" (sub-item of {item['parent_id']})" if item.get("parent_id") else ""),
                ),
                ("Description", item["description"]),
                ("Claimed species", item.get("species")),
                ("Count / weight", ", ".join(quantity)),
                ("Packaging", item.get("packaging")),
                ("Bag", f"{item['bag_no']} of {item['bag_total']}" if item.get("bag_no") else ""),
                ("Seal at seizure", item.get("seal_at_seizure")),
                ("Current seal", state.get("seal") or "unsealed"),
                ("Other IDs", "; ".join(f"{k}: {v}" for k, v in sorted(other.items()))),
                ("Place seized", f"{item.get('place', '')}{coords}"),
                (
                    "Seized at",
                    f"{_short_time(item['seized_at'])} UTC (local {item.get('seized_at_local', '')})",
                ),
                ("Seizing officer", officer),
                (
                    "Custody status",
                    f"{state.get('status')}; custodian {state.get('custodian')}; location {state.get('location') or '-'}",
                ),
            ]
        )
    )
    receipts = [e for e in events if e["type"] == "receive"]
    out.append(Paragraph("Condition on receipt", S["h3"]))
    if receipts:
        out.append(
            table(
                ["time (UTC)", "received by", "condition"],
                [
                    [_short_time(e["at"]), _actor(content, e["actor"]), e["data"].get("condition")]
                    for e in receipts
                ],
                [18, 30, 52],
            )
        )
    else:
        out.append(P("No receipt recorded (the item has not changed hands).", "body"))

    photos = [a for e in events for a in (e["data"].get("attachments") or [])]
    if photos:
        out.append(Paragraph("Photographs as recorded", S["h3"]))
        for a in photos:
            path = content.photo_path(a["sha256"])
            cells: list[Any] = []
            if path is not None and a.get("media_type", "").startswith("image/"):
                try:
                    from PIL import Image as PILImage

                    with PILImage.open(path) as im:
                        w, h = im.size
                    width = min(70 * mm, w)
                    cells.append(Image(str(path), width=width, height=width * h / w))
                except Exception:  # an unreadable image is reported, not fatal
                    cells.append(P("(image could not be rendered)"))
            else:
                cells.append(P("(file not available for display)"))
            cells.append(
                P(
                    f"{a['name']}\n{a['size']} bytes, {a.get('media_type', '')}\nSHA-256 {a['sha256']}",
                    "small",
                )
            )
            t = Table([cells], colWidths=[75 * mm, CONTENT_W - 75 * mm])
            t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
            out.append(t)

    samples = [e for e in events if e["type"] == "sample" and "child" in e["data"]]
    children = by_parent.get(item["id"], [])
    if samples or children or item.get("parent_id"):
        out.append(Paragraph("Sampling plan and sub-samples", S["h3"]))
        if item.get("parent_id"):
            origin = next(
                (e for e in events if e["type"] == "sample" and e["data"].get("parent")), None
            )
            if origin:
                out.append(
                    P(
                        f"Taken from {item['parent_id']} on {_short_time(origin['at'])} UTC by {_actor(content, origin['actor'])}. Reason: {origin['data'].get('reason') or 'not stated'}.",
                        "body",
                    )
                )
        if samples:
            out.append(
                table(
                    ["sub-sample", "taken (UTC)", "by", "what", "why"],
                    [
                        [
                            e["data"]["child"],
                            _short_time(e["at"]),
                            _actor(content, e["actor"]),
                            e["data"].get("description"),
                            e["data"].get("reason") or "not stated",
                        ]
                        for e in samples
                    ],
                    [14, 15, 22, 24, 25],
                )
            )
        if children:
            tree = []

            def walk(node: str, depth: int) -> None:
                for child in by_parent.get(node, []):
                    tree.append(
                        "    " * depth + f"- {child['item']['id']}: {child['item']['description']}"
                    )
                    walk(child["item"]["id"], depth + 1)

            walk(item["id"], 0)
            out.append(P("Sub-sample tree:\n" + "\n".join(tree), "small"))

    out.append(Paragraph("Custody timeline", S["h3"]))
    rows = []
    seal: str | None = item.get("seal_at_seizure") or None
    for e in events:
        d = e["data"]
        before = seal
        if e["type"] == "seal":
            seal = d.get("seal")
        elif e["type"] == "unseal":
            seal = None
        released = e["actor"] if e["type"] == "transfer" else ""
        received = (
            e["counterparty"]
            if e["type"] == "transfer"
            else (e["actor"] if e["type"] == "receive" else "")
        )
        problems = content.event_problems.get(e["id"])
        status = "verified" if not problems else "NOT VERIFIED: " + "; ".join(problems)
        sigs = ", ".join(f"{s['role']} {s['handle']}" for s in e.get("signatures", []))
        details = _event_details(e)
        if e.get("witness"):
            details += f"; witness {e['witness']}"
        rows.append(
            [
                str(e["id"]),
                _short_time(e["at"]),
                e["type"],
                _actor(content, released) if released else e["actor"] if not received else "",
                _actor(content, received),
                d.get("location") or "",
                f"{before or '-'} -> {seal or '-'}" if before != seal else (seal or "-"),
                P(details),
                (f"{status}\n{sigs}", "alert") if problems else f"{status}\n{sigs}",
            ]
        )
    out.append(
        table(
            [
                "#",
                "time (UTC)",
                "event",
                "actor / released by",
                "received by",
                "location",
                "seal",
                "details",
                "signatures",
            ],
            rows,
            [4, 10, 9, 12, 12, 9, 13, 18, 13],
        )
    )

    for e in events:
        if e["type"] == "analyse" and e["data"].get("analysis") == "species-identification":
            out.extend(_identification(content, e))
    return out


def _event_details(e: dict[str, Any]) -> str:
    d = e["data"]
    t = e["type"]
    if t == "seize":
        return "seized and logged"
    if t == "case-open":
        return "case opened"
    if t == "transfer":
        return "; ".join(
            x for x in (f"purpose: {d.get('purpose')}" if d.get("purpose") else "",) if x
        )
    if t == "sample":
        return (
            f"sub-sample {d['child']}: {d.get('description', '')}"
            if "child" in d
            else f"taken from {d.get('parent')}"
        )
    if t == "analyse":
        return f"{d.get('statement', 'analysis')} (query {d.get('query', '')})"
    if t == "label-print":
        return (
            f"{d.get('copies')} label(s), {d.get('layout')}"
            + (f", REPRINT {d['reprint']}" if d.get("reprint") else "")
            + (f"; {d['reason']}" if d.get("reason") else "")
        )
    if t == "correct":
        return f"corrects event {d.get('corrects')}: {d.get('reason')}"
    if t == "dispose":
        return f"{d.get('method')}; authority: {d.get('authority')}"
    keys = ("condition", "reason", "text", "location")
    return "; ".join(
        f"{k}: {d[k]}" for k in keys if d.get(k) and not (k == "location" and t == "store")
    )


def _pct(value: Any) -> str:
    return "" if value is None else f"{value:.2f} %"


def _identification(content: DossierContent, e: dict[str, Any]) -> list[Flowable]:
    r = e["data"]
    out: list[Flowable] = [
        CondPageBreak(50 * mm),
        Paragraph(
            markup(f"Species identification (event {e['id']}): {r.get('query', '')}"), S["h2"]
        ),
    ]
    out.append(Praw(f"{markup(_level_word(r))}: {markup(r.get('statement', ''))}", "call"))
    src = r.get("source") or {}
    qc = r.get("qc") or {}
    markers = sorted({h.get("marker") for h in r.get("top_hits", []) if h.get("marker")})
    qc_bits = [f"length {qc.get('length', r.get('query_length'))} bp"]
    if qc.get("raw_length") is not None:
        qc_bits.append(f"raw {qc['raw_length']} bp")
    if qc.get("mean_quality") is not None:
        qc_bits.append(f"mean quality Q{qc['mean_quality']:.1f}")
    if qc.get("ambiguous_fraction") is not None:
        qc_bits.append(f"{100 * qc['ambiguous_fraction']:.2f} % ambiguous bases")
    if qc.get("trimmed"):
        qc_bits.append("Mott quality-trimmed")
    out.append(
        kv_table(
            [
                (
                    "Method",
                    "DNA barcode comparison: k-mer candidate search, then pairwise alignment (both strands) against the reference library",
                ),
                ("Marker(s) matched", ", ".join(markers) or "see hits"),
                (
                    "Query source",
                    f"{src.get('file', '')} ({src.get('format', '')}), file {src.get('file_sha256', '')}",
                ),
                ("Query sequence SHA-256", (r.get("query_sha256", ""), "mono")),
                (
                    "Trimming and quality",
                    "; ".join(qc_bits)
                    + ("; " + "; ".join(qc.get("warnings", [])) if qc.get("warnings") else ""),
                ),
                (
                    "Base calls",
                    "; ".join(f"{k}: {v}" for k, v in sorted((src.get("details") or {}).items())),
                ),
                (
                    "Identity / coverage",
                    f"{_pct(r.get('identity'))} identity over {_pct(r.get('coverage'))} of the query",
                ),
                ("Distance to next species", _pct(r.get("next_species_distance"))),
                (
                    "Reference library",
                    f"{r.get('library_name')} version {r.get('library_version_number')}",
                ),
                ("Library content hash", (r.get("library_version", ""), "mono")),
                ("Decision rule", _rule_text(r.get("rule") or {})),
                ("Analyst", f"{_actor(content, e['actor'])}, {_short_time(e['at'])} UTC"),
            ]
        )
    )
    hits = r.get("hits") or []
    if hits:
        out.append(Paragraph("Hits grouped by species (best per species)", S["h3"]))
        cites = r.get("cites") or {}
        out.append(
            table(
                [
                    "species",
                    "identity",
                    "aligned length",
                    "query coverage",
                    "gaps",
                    "refs (supporting)",
                    "accessions",
                    "CITES",
                ],
                [
                    [
                        h["species"],
                        _pct(h.get("best_identity")),
                        f"{h.get('aligned_length')} bp",
                        _pct(h.get("coverage")),
                        h.get("gaps"),
                        f"{h.get('n_refs')} ({h.get('n_supporting', '')})",
                        ", ".join(h.get("accessions", [])[:6]),
                        cites.get(h["species"], "") if isinstance(cites, dict) else "",
                    ]
                    for h in hits[:12]
                ],
                [20, 9, 10, 10, 6, 10, 26, 9],
            )
        )
    stats = r.get("species_stats") or {}
    if stats:
        out.append(P(_coverage_sentence(stats), "small"))
    listings = r.get("cites_listings") or []
    if listings:
        out.append(Paragraph("CITES listing of the called species and candidates", S["h3"]))
        out.append(
            table(
                ["species", "appendix", "listed under", "snapshot", "statement"],
                [
                    [
                        x["species"],
                        x["appendix"],
                        x.get("listed_under", ""),
                        x.get("snapshot", ""),
                        x["statement"],
                    ]
                    for x in listings
                ],
                [18, 9, 18, 11, 44],
            )
        )
    flags = r.get("flags") or []
    out.append(Paragraph("Flags", S["h3"]))
    out.append(P("\n".join(f"• {f}" for f in flags) if flags else "None.", "body"))
    validation = r.get("validation")
    out.append(Paragraph("Measured error rates of this library version", S["h3"]))
    if validation:
        out.append(kv_table(_rate_rows(validation)))
    else:
        out.append(
            P(
                "This library version has not been validated ('custody ref validate'); no measured error rate is available.",
                "alert",
            )
        )
    out.append(Paragraph("Limitations", S["h3"]))
    out.append(P(LIMITATIONS, "small"))
    return out


def _pct_rate(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f} %"


def _rate_rows(validation: dict[str, Any]) -> list[tuple[str, Any]]:
    """The measured rates in the words a court needs, percentages first."""
    s = validation.get("summary") or {}
    rows: list[tuple[str, Any]] = [
        (
            "Correct species calls (species in the library)",
            _pct_rate(s.get("correct_species_rate")),
        ),
        ("Wrong species calls (species in the library)", _pct_rate(s.get("wrong_species_rate"))),
        (
            "False species calls (species absent from the library)",
            _pct_rate(s.get("false_species_rate_absent")),
        ),
        (
            "Test queries",
            f"{s.get('n_present', '?')} of species in the library, {s.get('n_absent', '?')} of species held out",
        ),
        ("How measured", validation.get("method", "")),
    ]
    if validation.get("sampled"):
        rows.append(
            (
                "Sampling",
                f"at most {validation.get('max_queries')} queries per experiment (seed {validation.get('seed')})",
            )
        )
    rule = (validation.get("rule") or {}).get("name")
    if rule:
        rows.append(("Rule measured", rule))
    return rows


def _coverage_sentence(stats: dict[str, Any]) -> str:
    """How well the library covers the matched species and its relatives, in words."""
    name = stats.get("species", "the matched species")
    parts = [f"The library holds {stats.get('n_refs', '?')} reference sequence(s) of {name}"]
    if stats.get("intra_max") is not None and (stats.get("n_refs") or 0) > 1:
        parts.append(f"they differ from each other by up to {float(stats['intra_max']):.1f} %")
    if stats.get("nn_species"):
        dist = stats.get("nn_distance")
        at = f" at {float(dist):.1f} % distance" if dist is not None else ""
        parts.append(f"its nearest other species in the library is {stats['nn_species']}{at}")
    return "; ".join(parts) + "."


def _rule_text(rule: dict[str, Any]) -> str:
    name = rule.get("name", "")
    values = ", ".join(
        f"{k.replace('_', ' ')} {v}" for k, v in rule.items() if k not in ("name", "description")
    )
    return f"{name}: {values}"


def png_pages(pdf: Path, scale: float = 1.0) -> list[bytes]:
    """Render pages to PNG bytes (for previews and tests)."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    out = []
    for page in doc:
        buf = io.BytesIO()
        page.render(scale=scale).to_pil().save(buf, "PNG")
        out.append(buf.getvalue())
    return out
