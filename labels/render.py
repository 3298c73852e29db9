"""Rendering evidence labels to a PDF print job with reportlab.

This module owns what a label says and where each piece of text goes. `plan_label`
computes the placement of the QR code and of every text line for one label on a
layout; `render_labels` draws the plans of a whole print job into one PDF.

Text fitting: the font size starts at the layout's maximum and shrinks (binary
search in 0.25 pt steps) until every field fits whole; failing that, the largest
size at which every field but the description fits whole (the description ends in
an ellipsis after `Layout.description_lines` lines). If nothing fits at the layout's
minimum size, fields are added in priority order (item ID, reprint mark, case and
bag, seal, seizure time, species, quantity, description, officer, place, agency,
other IDs) while they fit: item ID, case and seal whole, the others on one line
first, extra lines given back in priority order while they fit; what does not fit
is left out and named in `LabelPlan.dropped`. Long words break inside the
word and a field that still runs long ends in an ellipsis. Widths come from
reportlab's font metrics, so the plan is exactly what the PDF shows.

Speed: a QR code is built once per distinct payload text and drawn as a PDF form
XObject (one filled path of merged horizontal runs), so copies cost a reference
and 1,000 distinct labels render in well under the 5 s budget (bench/labels_bench.py).

Invariants:

- No text line leaves the label's padded box and none overlaps the QR box, which
  includes its 4-module quiet zone.
- A label with `reprint > 0` shows a visible inverted "REPRINT n" mark.
- The printed item ID, case number, seal and reprint generation equal those signed
  in the label's QR payload; `render_labels` refuses a job where they differ.
- The PDF is written to a temporary name and moved into place, so a failed job
  leaves no file behind.
- Text is drawn in the standard Helvetica fonts; characters outside WinAnsi
  (Vietnamese, Cyrillic, Chinese ...) print as written in the fallback fonts of
  `labels.fonts`, and widths are measured in the font each character is drawn
  in. A character no font has is reduced to its base letter where Unicode
  allows, otherwise shown as "?".
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

import numpy
from reportlab import rl_config
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from labels.errors import LabelError, LayoutError
from labels.fonts import draw_string, is_standard, shown, string_width
from labels.layouts import Layout, get_layout
from labels.payload import parse_label
from labels.qr import QUIET_ZONE, QrMatrix, qr_matrix

REGULAR = "Helvetica"
BOLD = "Helvetica-Bold"
ELLIPSIS = "\u2026"
_LEADING = 1.2
_BASELINE = 0.95
_QR_GAP = 0.5 * mm
_WHOLE = frozenset({"item_id", "case", "seal"})


@dataclass
class LabelContent:
    """Everything printed on one label; `qr_text` is the signed payload (`sign_label`)."""

    agency: str
    case_no: str
    item_id: str
    bag: str
    description: str
    species: str
    quantity: str
    seal: str
    seized_at_utc: str
    seized_at_local: str
    officer: str
    place: str
    other_ids: str
    reprint: int
    qr_text: str


@dataclass(frozen=True)
class RenderReport:
    """What `render_labels` wrote."""

    pages: int
    labels: int
    layout: str
    path: Path
    qr_version_max: int
    module_mm_min: float
    dropped: dict[str, tuple[str, ...]] = field(default_factory=dict)


class PlacedLine(NamedTuple):
    """One line of text; x and baseline y in points from the label's bottom-left corner."""

    field: str
    x: float
    y: float
    size: float
    prefix: str
    text: str
    font: str
    width: float
    inverted: bool = False
    clipped: bool = False

    @property
    def top(self) -> float:
        """Upper edge of the line's box (ascender and inverted-mark padding included)."""
        return self.y + (0.85 if self.inverted else 0.75) * self.size

    @property
    def bottom(self) -> float:
        """Lower edge of the line's box (descender and inverted-mark padding included)."""
        return self.y - (0.25 if self.inverted else 0.21) * self.size


@dataclass(frozen=True)
class LabelPlan:
    """Placement of the QR code and text on one label, in label coordinates."""

    qr_x: float
    qr_y: float
    qr_side: float
    module: float
    matrix: QrMatrix
    font_size: float
    lines: tuple[PlacedLine, ...]
    dropped: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class _Field:
    name: str
    prefix: str
    text: str
    priority: int
    max_lines: int
    font: str = REGULAR
    scale: float = 1.0
    inverted: bool = False

    @property
    def words(self) -> tuple[tuple[str, float], ...]:
        """The text's words with their widths at 1 pt."""
        return _word_widths(self.text, self.font)


@lru_cache(maxsize=4096)
def _word_widths(text: str, font: str) -> tuple[tuple[str, float], ...]:
    return tuple((word, text_width(word, font=font, size=1)) for word in text.split(" "))


def plan_label(content: LabelContent, layout: Layout) -> LabelPlan:
    """Place the QR code and fit the text of one label on `layout`."""
    if not content.qr_text:
        raise LayoutError(f"Label for item {content.item_id!r} has no QR text; sign it first.")
    matrix = qr_matrix(content.qr_text)
    module = layout.module_size(matrix.size)
    side = (matrix.size + 2 * QUIET_ZONE) * module
    qr_y = _snap(layout.label_height - layout.edge - side, layout)
    if layout.text_beside_qr:
        qr_x = _snap(layout.edge, layout)
        flow = _Flow(
            layout=layout,
            qr_right=qr_x + side + _QR_GAP,
            qr_bottom=qr_y,
            top=layout.label_height - layout.padding,
        )
    else:
        qr_x = _snap((layout.label_width - side) / 2, layout)
        flow = _Flow(layout=layout, qr_right=layout.padding, qr_bottom=qr_y, top=qr_y)
    fields = _fields(content, layout)
    size, lines = _fit(flow, fields)
    shown = {line.field for line in lines}
    dropped = tuple(f.name for f in fields if f.name not in shown)
    return LabelPlan(
        qr_x=qr_x,
        qr_y=qr_y,
        qr_side=side,
        module=module,
        matrix=matrix,
        font_size=size,
        lines=tuple(lines),
        dropped=dropped,
    )


def _snap(points: float, layout: Layout) -> float:
    """Move a QR box edge onto the printer's dot grid so modules print as whole dots."""
    if not layout.printer_dpi:
        return points
    dot = 72 / layout.printer_dpi
    return math.floor(points / dot + 1e-6) * dot


def render_labels(
    contents: Sequence[LabelContent],
    *,
    layout: str,
    out: Path,
    start: int = 1,
    copies: int = 1,
    outlines: bool = False,
) -> RenderReport:
    """Render a print job: each label `copies` times in a row, from slot `start` on.

    `start` (1-based) skips used labels on a partly used sheet; `outlines` draws
    each label's border (for proofs on plain paper). Writes one PDF to `out`.
    """
    spec = get_layout(layout)
    if not contents:
        raise LayoutError("The print job has no labels; pass at least one LabelContent.")
    if copies < 1:
        raise LayoutError(f"Copies must be at least 1, not {copies}; pass copies=1 or more.")
    if not 1 <= start <= spec.per_page:
        valid = "1" if spec.per_page == 1 else f"1 to {spec.per_page}"
        raise LayoutError(
            f"Start position {start} is not on a {spec.name} page; use {valid} "
            f"({spec.description})."
        )
    out = Path(out)
    if not out.parent.is_dir():
        raise LayoutError(
            f"Folder {out.parent} for the label PDF does not exist; create it or choose "
            "another output path."
        )
    for content in contents:
        _check_payload_matches(content)
    plans = [plan_label(content, spec) for content in contents]
    partial = out.with_name(f".{out.name}.partial")
    canvas = Canvas(str(partial), pagesize=(spec.page_width, spec.page_height), pageCompression=1)
    canvas.setTitle("Evidence labels")
    canvas.setCreator("custody labels")
    forms: dict[str, str] = {}
    slot = start - 1
    pages = 1
    placed = 0
    for content, plan in zip(contents, plans, strict=True):
        form = forms.get(content.qr_text)
        if form is None:
            form = forms[content.qr_text] = _define_qr_form(canvas, plan.matrix, content.qr_text)
        for _ in range(copies):
            if slot == spec.per_page:
                canvas.showPage()
                pages += 1
                slot = 0
            x, y = spec.slot_origin(slot)
            _draw_label(canvas, plan=plan, form=form, origin=(x, y), spec=spec, outline=outlines)
            slot += 1
            placed += 1
    canvas.showPage()
    try:
        with _binary_streams():
            canvas.save()
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return RenderReport(
        pages=pages,
        labels=placed,
        layout=spec.name,
        path=out,
        qr_version_max=max(plan.matrix.version for plan in plans),
        module_mm_min=min(plan.module for plan in plans) / mm,
        dropped={
            content.item_id: plan.dropped
            for content, plan in zip(contents, plans, strict=True)
            if plan.dropped
        },
    )


def _check_payload_matches(content: LabelContent) -> None:
    """Refuse a label whose printed facts differ from the signed facts in its QR code."""
    if not content.qr_text:
        raise LayoutError(f"Label for item {content.item_id!r} has no QR text; sign it first.")
    try:
        payload = parse_label(content.qr_text).payload
    except LabelError as exc:
        raise LayoutError(
            f"The QR text of the label for item {content.item_id!r} is not a signed custody "
            f"payload ({exc}); pass the text returned by sign_label."
        ) from None
    printed = (content.item_id, content.case_no, content.seal, content.reprint)
    signed = (payload.item_id, payload.case_no, payload.seal, payload.reprint)
    if printed != signed:
        raise LayoutError(
            f"The label text (item, case, seal, reprint = {printed}) differs from its signed "
            f"QR payload ({signed}); sign the payload from the record being printed."
        )


def printable(text: str) -> str:
    """Collapse whitespace and replace the characters no label font can show."""
    text = " ".join(text.split())
    if is_standard(text):
        return text
    out: list[str] = []
    for char in text:
        if shown(char):
            out.append(char)
            continue
        base = "".join(
            part
            for part in unicodedata.normalize("NFKD", char)
            if not unicodedata.combining(part) and shown(part)
        )
        out.append(base or "?")
    return "".join(out)


class _CharWidths(dict[str, float]):
    """Advance widths at 1 pt of characters drawn in one font (or its fallback for the
    character), filled from reportlab's metrics on first use."""

    def __init__(self, font: str) -> None:
        super().__init__()
        self.font = font

    def __missing__(self, char: str) -> float:
        width = self[char] = string_width(char, self.font, 1)
        return width


_WIDTHS = {font: _CharWidths(font) for font in (REGULAR, BOLD)}


def text_width(text: str, *, font: str, size: float) -> float:
    """Width of `text` in points as drawn: reportlab's widths in the standard font, or
    in the fallback font of each character outside it.

    reportlab applies no kerning, so the width is the sum of the characters'
    advance widths; summing cached widths is many times faster than stringWidth.
    """
    widths = _WIDTHS.get(font)
    if widths is None:
        return string_width(text, font, size)
    return sum(map(widths.__getitem__, text)) * size


def _fields(content: LabelContent, layout: Layout) -> list[_Field]:
    case = content.case_no + (f"  \u00b7  {content.bag}" if content.bag else "")
    seized = content.seized_at_utc
    if content.seized_at_local:
        seized += f" ({content.seized_at_local})"
    reprint = f"REPRINT {content.reprint}" if content.reprint > 0 else ""
    species = f"{content.species} (claimed)" if content.species else ""
    rows: list[tuple[str, str, str, int, int]] = [
        # name, prefix, text, priority (0 = kept longest), most lines
        ("agency", "", content.agency, 10, 1),
        ("item_id", "", content.item_id, 0, 3),
        ("reprint", "", reprint, 1, 1),
        ("case", "Case ", case, 2, 2),
        ("seal", "Seal ", content.seal or "none", 3, 2),
        ("seized", "Seized ", seized, 4, 2),
        ("species", "Species ", species, 5, 3),
        ("quantity", "Qty ", content.quantity, 6, 2),
        ("description", "", content.description, 7, layout.description_lines),
        ("officer", "Officer ", content.officer, 8, 2),
        ("place", "Place ", content.place, 9, 2),
        ("other_ids", "IDs ", content.other_ids, 11, 2),
    ]
    return [
        _Field(
            name=name,
            prefix=prefix,
            text=printable(text),
            priority=priority,
            max_lines=lines,
            font=BOLD if name in ("agency", "item_id", "reprint") else REGULAR,
            scale=layout.id_scale if name == "item_id" else 1.0,
            inverted=name == "reprint",
        )
        for name, prefix, text, priority, lines in rows
        if text.strip()
    ]


@dataclass(frozen=True)
class _Flow:
    layout: Layout
    qr_right: float
    qr_bottom: float
    top: float

    def place(
        self, fields: Sequence[_Field], size: float, *, strict: bool = False, spare: str = ""
    ) -> list[PlacedLine] | None:
        """Lay the fields out top to bottom at font size `size`; None if they do not fit.

        With `strict`, a field that would need a word split or an ellipsis does not fit,
        except the field named `spare`, which may be cut short.
        """
        pad = self.layout.padding
        right = self.layout.label_width - pad
        cursor = self.top
        lines: list[PlacedLine] = []
        for f in fields:
            fsize = size * f.scale
            lead = fsize * (_LEADING + (0.15 if f.inverted else 0.0))
            prefix_width = text_width(f.prefix, font=BOLD, size=fsize) if f.prefix else 0.0
            mark = 0.6 * fsize if f.inverted else 0.0
            words: Sequence[tuple[str, float]] = f.words
            for number in range(f.max_lines):
                if cursor - lead < pad - 0.01:
                    return None
                # A line that reaches above the QR box's bottom edge sits beside it.
                left = self.qr_right if cursor > self.qr_bottom else pad
                prefix = f.prefix if number == 0 else ""
                room = right - left - (prefix_width if number == 0 else 0.0) - mark
                last = number == f.max_lines - 1
                text, words, clipped, width = _take_line(
                    words, font=f.font, size=fsize, room=room, last=last
                )
                if text is None or (strict and clipped and f.name != spare):
                    return None
                lines.append(
                    PlacedLine(
                        field=f.name,
                        x=left,
                        y=cursor - _BASELINE * fsize,
                        size=fsize,
                        prefix=prefix,
                        text=text,
                        font=f.font,
                        width=(prefix_width if prefix else 0.0) + width * fsize + mark,
                        inverted=f.inverted,
                        clipped=clipped,
                    )
                )
                cursor -= lead
                if not words:
                    break
        return lines


def _take_line(
    words: Sequence[tuple[str, float]], *, font: str, size: float, room: float, last: bool
) -> tuple[str | None, Sequence[tuple[str, float]], bool, float]:
    """Fill one line greedily from `words` (word, width at 1 pt).

    Returns the line (None if there is no room at all), the words left over,
    whether a word had to be split or the text ellipsized, and the line's width at 1 pt.
    """
    if room <= size:
        return None, words, True, 0.0
    limit = room / size
    space = _WIDTHS[font][" "] if font in _WIDTHS else text_width(" ", font=font, size=1)
    total = 0.0
    count = 0
    for _, width in words:
        added = width + (space if count else 0.0)
        if total + added > limit:
            break
        total += added
        count += 1
    clipped = False
    rest: Sequence[tuple[str, float]]
    if count == 0:
        head, tail = _split_word(words[0][0], font=font, size=size, room=room)
        text = head
        total = text_width(head, font=font, size=1)
        rest = ((tail, text_width(tail, font=font, size=1)), *words[1:])
        clipped = True
    else:
        text = " ".join(word for word, _ in words[:count])
        rest = words[count:]
    if rest and last:
        whole = " ".join([text, *(word for word, _ in rest)])
        text = _ellipsize(whole, font=font, size=size, room=room)
        return text, (), True, text_width(text, font=font, size=1)
    return text, rest, clipped, total


def _split_word(word: str, *, font: str, size: float, room: float) -> tuple[str, str]:
    """Break a word too long for a line, after a separator (/ - . _ :) where possible."""
    cut = 1
    while cut < len(word) and text_width(word[: cut + 1], font=font, size=size) <= room:
        cut += 1
    natural = max(word.rfind(mark, 0, cut) for mark in "/-._:")
    if natural > 0 and natural + 1 < cut + 1:
        cut = natural + 1
    return word[:cut], word[cut:]


def _ellipsize(text: str, *, font: str, size: float, room: float) -> str:
    widths = _WIDTHS.get(font)
    if widths is None:
        while text and text_width(text + ELLIPSIS, font=font, size=size) > room:
            text = text[:-1]
        return text.rstrip() + ELLIPSIS
    limit = room / size
    running = list(accumulate(map(widths.__getitem__, text)))
    if not running or running[-1] <= limit:
        return text
    cut = bisect_right(running, limit - widths[ELLIPSIS])
    return text[:cut].rstrip() + ELLIPSIS


def _fit(flow: _Flow, fields: list[_Field]) -> tuple[float, list[PlacedLine]]:
    """Largest font size at which every field fits whole; else the fallbacks above."""
    for spare in ("", "description"):
        found = _largest(flow, fields, spare=spare)
        if found is not None:
            return found
    size = flow.layout.min_font
    loose = flow.place(fields, size)
    if loose is not None:
        return size, loose
    # Tiny labels: item ID, case and seal whole, then as many other fields as fit on
    # one line each, in priority order; then clipped fields get their extra lines
    # while they still fit.
    order = {f.name: index for index, f in enumerate(fields)}
    chosen: dict[str, _Field] = {}
    lines: list[PlacedLine] = []
    by_priority = sorted(fields, key=lambda f: f.priority)
    for f in by_priority:
        # Identity fields are only shortened to one line if they cannot fit whole.
        variants = (f, _one_line(f)) if f.name in _WHOLE else (_one_line(f),)
        for variant in variants:
            trial = sorted([*chosen.values(), variant], key=lambda f: order[f.name])
            placed = flow.place(trial, size)
            if placed is not None:
                chosen[f.name] = variant
                lines = placed
                break
    for f in by_priority:
        clipped = any(line.clipped for line in lines if line.field == f.name)
        if f.name not in chosen or f.max_lines == 1 or not clipped:
            continue
        trial = sorted({**chosen, f.name: f}.values(), key=lambda f: order[f.name])
        placed = flow.place(trial, size)
        if placed is not None:
            chosen[f.name] = f
            lines = placed
    return size, lines


def _largest(
    flow: _Flow, fields: list[_Field], *, spare: str
) -> tuple[float, list[PlacedLine]] | None:
    """Binary search (0.25 pt steps) for the largest size at which the fields fit."""
    layout = flow.layout
    best = flow.place(fields, layout.min_font, strict=True, spare=spare)
    if best is None:
        return None
    largest = flow.place(fields, layout.max_font, strict=True, spare=spare)
    if largest is not None:
        return layout.max_font, largest
    best_size = layout.min_font
    low, high = 1, round((layout.max_font - layout.min_font) * 4) - 1
    while low <= high:
        middle = (low + high) // 2
        size = layout.min_font + middle / 4
        attempt = flow.place(fields, size, strict=True, spare=spare)
        if attempt is None:
            high = middle - 1
        else:
            best, best_size = attempt, size
            low = middle + 1
    return best_size, best


def _one_line(f: _Field) -> _Field:
    return dataclasses.replace(f, max_lines=1)


@contextmanager
def _binary_streams() -> Iterator[None]:
    # reportlab ASCII85-encodes compressed streams by default, in pure Python unless
    # its optional C accelerator is installed; that alone took about half the render
    # time. Flate-only binary streams are also a fifth smaller. The setting is read
    # when the document is written, so it is switched off only around save().
    saved = rl_config.useA85
    rl_config.useA85 = 0
    try:
        yield
    finally:
        rl_config.useA85 = saved


def _define_qr_form(canvas: Canvas, matrix: QrMatrix, text: str) -> str:
    name = "qr" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    size = matrix.size
    dark = numpy.zeros((size, size + 2), dtype=numpy.int8)
    dark[:, 1:-1] = numpy.asarray(matrix.rows, dtype=numpy.int8)
    edges = numpy.diff(dark, axis=1)
    rows_start, starts = numpy.nonzero(edges == 1)
    _, ends = numpy.nonzero(edges == -1)
    # nonzero walks row by row, so the n-th start and the n-th end belong to one run.
    ops = ["0 g"]
    ops += [
        f"{start} {size - 1 - row} {end - start} 1 re"
        for row, start, end in zip(rows_start.tolist(), starts.tolist(), ends.tolist(), strict=True)
    ]
    ops.append("f")
    canvas.beginForm(name, 0, 0, size, size)
    canvas.addLiteral("\n".join(ops))
    canvas.endForm()
    return name


def _draw_label(
    canvas: Canvas,
    *,
    plan: LabelPlan,
    form: str,
    origin: tuple[float, float],
    spec: Layout,
    outline: bool,
) -> None:
    x0, y0 = origin
    if outline:
        canvas.setLineWidth(0.25)
        canvas.setStrokeGray(0.6)
        canvas.rect(x0, y0, spec.label_width, spec.label_height, stroke=1, fill=0)
    quiet = QUIET_ZONE * plan.module
    canvas.saveState()
    canvas.translate(x0 + plan.qr_x + quiet, y0 + plan.qr_y + quiet)
    canvas.scale(plan.module, plan.module)
    canvas.doForm(form)
    canvas.restoreState()
    for line in plan.lines:
        x, y = x0 + line.x, y0 + line.y
        if line.inverted:
            canvas.setFillGray(0)
            canvas.rect(x, y0 + line.bottom, line.width, line.top - line.bottom, stroke=0, fill=1)
            canvas.setFillGray(1)
            canvas.setFont(line.font, line.size)
            canvas.drawString(x + 0.3 * line.size, y, line.text)
            canvas.setFillGray(0)
            continue
        if line.prefix:
            canvas.setFont(BOLD, line.size)
            canvas.drawString(x, y, line.prefix)
            x += text_width(line.prefix, font=BOLD, size=line.size)
        draw_string(canvas, x, y, line.text, font=line.font, size=line.size)
