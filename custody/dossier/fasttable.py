"""A lean table flowable for long dossiers: wraps plain text, splits across pages,
repeats its header, and draws with plain canvas calls.

Why not platypus Table + Paragraph: a 500-item case has tens of thousands of
cells, and Paragraph layout made the dossier many times slower. Cells here are
plain text (optionally bold, monospaced or alert-coloured); long words such as
hashes are broken between characters so nothing runs out of its box.
"""

from __future__ import annotations

from collections.abc import Sequence

from reportlab.lib import colors
from reportlab.platypus import Flowable

from labels.fonts import draw_string, is_standard, string_width

FONTS = {
    "plain": "Helvetica",
    "bold": "Helvetica-Bold",
    "mono": "Courier",
    "alert": "Helvetica-Bold",
}
PAD_X, PAD_Y = 3.0, 2.2
GRID_COLOUR = colors.HexColor("#9aa3ad")
HEAD_FILL = colors.HexColor("#e4e9ef")
KEY_FILL = colors.HexColor("#f1f4f7")
ALERT = colors.HexColor("#9b1c1c")

Cell = str | tuple[str, str]


_WIDTHS: dict[tuple[str, str, float], float] = {}


def _width(word: str, font: str, size: float) -> float:
    key = (word, font, size)
    value = _WIDTHS.get(key)
    if value is None:
        if len(_WIDTHS) > 200_000:
            _WIDTHS.clear()
        value = _WIDTHS[key] = string_width(word, font, size)
    return value


def wrap_text(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy word wrap; words wider than the box are broken between characters."""
    space = _width(" ", font, size)
    lines: list[str] = []
    for para in text.split("\n"):
        current: list[str] = []
        used = 0.0
        for word in para.split(" "):
            w = _width(word, font, size)
            if current and used + space + w <= width:
                current.append(word)
                used += space + w
                continue
            if not current and w <= width:
                current, used = [word], w
                continue
            if current:
                lines.append(" ".join(current))
            while w > width and len(word) > 1:
                cut = len(word) - 1
                while cut > 1 and string_width(word[:cut], font, size) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
                w = _width(word, font, size)
            current, used = [word], w
        lines.append(" ".join(current))
    return lines


class FastTable(Flowable):
    """Rows of plain-text cells with an optional repeated header row."""

    def __init__(
        self,
        rows: Sequence[Sequence[Cell]],
        col_widths: Sequence[float],
        *,
        header: Sequence[str] | None = None,
        size: float = 7.5,
        leading: float = 9.0,
        key_column: bool = False,
        _laid: list[tuple[float, list[tuple[str, list[str]]]]] | None = None,
    ) -> None:
        super().__init__()
        self.rows = rows
        self.col_widths = list(col_widths)
        self.header = header
        self.size = size
        self.leading = leading
        self.key_column = key_column
        self._laid = _laid
        self._head: tuple[float, list[tuple[str, list[str]]]] | None = None

    def _layout_row(
        self, cells: Sequence[Cell], *, bold: bool = False
    ) -> tuple[float, list[tuple[str, list[str]]]]:
        out = []
        tallest = 1
        for i, cell in enumerate(cells):
            text, style = (cell, "plain") if isinstance(cell, str) else cell
            if bold or (self.key_column and i == 0 and style == "plain"):
                style = "bold"
            lines = wrap_text(text, FONTS[style], self.size, self.col_widths[i] - 2 * PAD_X)
            tallest = max(tallest, len(lines))
            out.append((style, lines))
        return tallest * self.leading + 2 * PAD_Y, out

    def _ensure(self) -> None:
        if self._laid is None:
            self._laid = [
                self._layout_row([c if c is not None else "" for c in row]) for row in self.rows
            ]
        if self.header is not None and self._head is None:
            self._head = self._layout_row(list(self.header), bold=True)

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        self._ensure()
        assert self._laid is not None
        head = self._head[0] if self._head else 0.0
        self.width = sum(self.col_widths)
        self.height = head + sum(h for h, _ in self._laid)
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:  # noqa: N803
        self._ensure()
        assert self._laid is not None
        used = self._head[0] if self._head else 0.0
        count = 0
        for h, _ in self._laid:
            if used + h > availHeight:
                break
            used += h
            count += 1
        if count == 0:
            if (
                availHeight >= 300 and self._laid
            ):  # one row taller than a page: let it overflow once
                count = 1
            else:
                return []
        if count >= len(self._laid):
            return [self]
        kw = {
            "header": self.header,
            "size": self.size,
            "leading": self.leading,
            "key_column": self.key_column,
        }
        return [
            FastTable(self.rows[:count], self.col_widths, _laid=self._laid[:count], **kw),  # type: ignore[arg-type]
            FastTable(self.rows[count:], self.col_widths, _laid=self._laid[count:], **kw),  # type: ignore[arg-type]
        ]

    def draw(self) -> None:
        if getattr(self.canv, "_layout_only", False):
            return
        self._ensure()
        assert self._laid is not None
        c = self.canv
        y = self.height
        rows = ([(self._head, True)] if self._head else []) + [(r, False) for r in self._laid]
        c.setStrokeColor(GRID_COLOUR)
        c.setLineWidth(0.4)
        for (height, cells), is_head in rows:
            top = y
            y -= height
            x = 0.0
            for i, (style, lines) in enumerate(cells):
                w = self.col_widths[i]
                fill = HEAD_FILL if is_head else (KEY_FILL if self.key_column and i == 0 else None)
                if fill is not None:
                    c.setFillColor(fill)
                    c.rect(x, y, w, height, stroke=0, fill=1)
                c.setFillColor(ALERT if style == "alert" else colors.black)
                c.setFont(FONTS[style], self.size)
                ty = top - PAD_Y - self.size
                for line in lines:
                    if is_standard(line):
                        c.drawString(x + PAD_X, ty, line)
                    else:
                        draw_string(c, x + PAD_X, ty, line, font=FONTS[style], size=self.size)
                    ty -= self.leading
                x += w
            c.line(0, top, self.width, top)
            c.line(0, y, self.width, y)
        x = 0.0
        for w in [0.0, *self.col_widths]:
            x += w
            c.line(x, 0, x, self.height)
