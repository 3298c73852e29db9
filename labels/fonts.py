"""Fonts of labels and dossiers: names, places and notes in any script print as written.

Labels and the dossier are set in the standard PDF fonts (Helvetica, Courier),
which are fast to lay out but show only the WinAnsi (cp1252) characters;
anything else would print as a black box. Text is therefore cut into runs:
WinAnsi runs stay in the standard font, other runs take a fallback:
- DejaVu Sans (bundled in `fonts/`, embedded as a subset) for Latin Extended
  (Vietnamese, Polish, Turkish ...), Greek, Cyrillic, Arabic letters and most
  symbols;
- the Adobe Asian fonts STSong-Light (Chinese, Japanese kana) and
  HYSMyeongJo-Medium (Korean), which every PDF reader provides.

`shown` tells whether any of these fonts has a glyph for a character (DejaVu
Sans by its character map, the Asian fonts by their Unicode blocks); callers
replace the rest before drawing, so nothing prints as an empty box.

Invariants: a text that is all WinAnsi is drawn exactly as before (one run,
the caller's font), so the common case costs nothing; fonts are registered
once, on first use; bold text falls back to DejaVu Sans Bold, or to DejaVu
Sans for the few characters only the regular face has. The module lives in
`labels` (which never imports `custody`) so that both labels and the
dossier use it.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

FONT_DIR = Path(__file__).parent / "fonts"
SANS, SANS_BOLD = "DejaVuSans", "DejaVuSans-Bold"
CHINESE, KOREAN = "STSong-Light", "HYSMyeongJo-Medium"

_registered = False
_sans_chars: frozenset[int] = frozenset()
_sans_bold_chars: frozenset[int] = frozenset()


def register_fonts() -> None:
    """Register the fallback fonts with reportlab (idempotent)."""
    global _registered, _sans_chars, _sans_bold_chars
    if _registered:
        return
    sans = TTFont(SANS, str(FONT_DIR / "DejaVuSans.ttf"))
    sans_bold = TTFont(SANS_BOLD, str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    _sans_chars = frozenset(sans.face.charToGlyph)
    _sans_bold_chars = frozenset(sans_bold.face.charToGlyph)
    pdfmetrics.registerFont(sans)
    pdfmetrics.registerFont(sans_bold)
    pdfmetrics.registerFontFamily(
        SANS, normal=SANS, bold=SANS_BOLD, italic=SANS, boldItalic=SANS_BOLD
    )
    for cid in (CHINESE, KOREAN):
        pdfmetrics.registerFont(UnicodeCIDFont(cid))
        pdfmetrics.registerFontFamily(cid, normal=cid, bold=cid, italic=cid, boldItalic=cid)
    _registered = True


def is_standard(text: str) -> bool:
    """True when the standard PDF fonts show every character of `text` (WinAnsi)."""
    if text.isascii():
        return True
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _asian(code: int) -> str | None:
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
        return KOREAN
    if (
        0x2E80 <= code <= 0x2FFF  # CJK radicals
        or 0x3000 <= code <= 0x30FF  # CJK punctuation, kana
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
    ):
        return CHINESE
    return None


def _fallback(ch: str, *, bold: bool) -> str | None:
    """The font for one character, or None when the standard font shows it."""
    if is_standard(ch):
        return None
    code = ord(ch)
    asian = _asian(code)
    if asian:
        return asian
    if bold and code in _sans_bold_chars:
        return SANS_BOLD
    return SANS


def shown(ch: str) -> bool:
    """True when the standard fonts or a fallback font have a glyph for `ch`."""
    if is_standard(ch):
        return ch.isprintable()
    register_fonts()
    code = ord(ch)
    return _asian(code) is not None or (code in _sans_chars and ch.isprintable())


def runs(text: str, font: str) -> list[tuple[str, str]]:
    """`text` cut into (segment, font) runs; one run in `font` when it is all WinAnsi."""
    if is_standard(text):
        return [(text, font)]
    register_fonts()
    bold = "Bold" in font
    out: list[tuple[str, str]] = []
    for ch in text:
        chosen = _fallback(ch, bold=bold) or font
        if out and out[-1][1] == chosen:
            out[-1] = (out[-1][0] + ch, chosen)
        else:
            out.append((ch, chosen))
    return out


def markup(text: str) -> str:
    """Paragraph markup of plain `text`: escaped, non-WinAnsi runs in a fallback face.

    The face is named by family, so a bold paragraph style gets the bold variant.
    """
    if is_standard(text):
        return escape(text)
    parts = []
    for segment, font in runs(text, "Helvetica"):
        if font == "Helvetica":
            parts.append(escape(segment))
        else:
            face = SANS if font in (SANS, SANS_BOLD) else font
            parts.append(f'<font face="{face}">{escape(segment)}</font>')
    return "".join(parts)


def string_width(text: str, font: str, size: float) -> float:
    """Width of `text` in points as `draw_string` draws it."""
    return sum(pdfmetrics.stringWidth(seg, f, size) for seg, f in runs(text, font))


def draw_string(canvas: Canvas, x: float, y: float, text: str, *, font: str, size: float) -> None:
    """Draw `text` from (x, y), switching to fallback fonts where needed."""
    pieces = runs(text, font)
    if len(pieces) == 1 and pieces[0][1] == font:
        canvas.setFont(font, size)
        canvas.drawString(x, y, text)
        return
    for segment, f in pieces:
        canvas.setFont(f, size)
        canvas.drawString(x, y, segment)
        x += pdfmetrics.stringWidth(segment, f, size)
    canvas.setFont(font, size)
