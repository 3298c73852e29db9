"""Label stock geometry: page size, label grid, QR box and font range per layout.

All lengths are PDF points (1/72 inch); the PDF origin is the bottom-left corner of
the page, label slots are numbered 1.. from the top-left, row by row.

On small labels the QR code (with its 4-module quiet zone) sits in the top-left
corner, `edge` from the label's border; text starts right of the QR box and flows
to the full label width once it is below the QR box. On the 4x6 label
(`text_beside_qr=False`) the QR code is centred at the top and the text runs the
full width below it.

QR module size (the quiet zone counts: a version-v symbol needs 17 + 4v + 8 modules
across). Thermal layouts snap modules to whole printer dots at `printer_dpi` so the
printer never rounds a module unevenly. Measured for payloads of `labels.payload`
(typical: version 8 at error correction M; largest allowed: version 10):

    layout         QR box limit   typical (v8)                  largest (v10)
    a4-3x8         26.0 mm        0.456 mm/module, box 26.0 mm  0.400 mm, box 26.0 mm
    letter-3x10    24.4 mm        0.428 mm/module, box 24.4 mm  0.375 mm, box 24.4 mm
    thermal-2x1    24.4 mm        3 dots = 0.375 mm, box 21.4   3 dots = 0.375 mm, box 24.4
    thermal-4x6    55.0 mm        7 dots = 0.876 mm, box 49.9   6 dots = 0.751 mm, box 48.8

(box = symbol plus quiet zone; sheet layouts assume a 600 dpi office printer,
where even 0.375 mm is 8.9 dots.)

`MIN_MODULE_MM` is the floor: a QR code that would need smaller modules on a layout
is refused with a LayoutError rather than printed unreadably.

Invariant: slots of a layout never overlap and never leave the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import inch, mm

from labels.errors import LayoutError
from labels.qr import QUIET_ZONE

MIN_MODULE_MM = 0.37


@dataclass(frozen=True)
class Layout:
    """Geometry of one kind of label stock."""

    name: str
    description: str
    page_width: float
    page_height: float
    label_width: float
    label_height: float
    columns: int
    rows: int
    left: float
    top: float
    pitch_x: float
    pitch_y: float
    qr_limit: float
    edge: float
    padding: float
    max_font: float
    min_font: float
    printer_dpi: int | None = None
    text_beside_qr: bool = True
    description_lines: int = 4
    id_scale: float = 1.25

    @property
    def per_page(self) -> int:
        """Labels on one page (sheet) of this stock."""
        return self.columns * self.rows

    def slot_origin(self, slot: int) -> tuple[float, float]:
        """Bottom-left corner (PDF points) of 0-based slot `slot` on a page."""
        row, column = divmod(slot, self.columns)
        x = self.left + column * self.pitch_x
        y = self.page_height - self.top - row * self.pitch_y - self.label_height
        return x, y

    def module_size(self, modules: int) -> float:
        """Side of one QR module in points for a symbol `modules` wide (without quiet zone).

        Raises LayoutError if the modules would be smaller than MIN_MODULE_MM.
        """
        across = modules + 2 * QUIET_ZONE
        if self.printer_dpi:
            dots = math.floor(self.qr_limit / 72 * self.printer_dpi / across)
            size = dots * 72 / self.printer_dpi
        else:
            size = self.qr_limit / across
        if size < MIN_MODULE_MM * mm:
            raise LayoutError(
                f"A QR code {modules} modules wide does not fit layout {self.name} with "
                f"modules of at least {MIN_MODULE_MM} mm; shorten the label payload or "
                "use a larger layout."
            )
        return size


def _sheet_margins(
    page: tuple[float, float], *, width: float, height: float, columns: int, rows: int
) -> tuple[float, float]:
    return (page[0] - columns * width) / 2, (page[1] - rows * height) / 2


_A4_LEFT, _A4_TOP = _sheet_margins(A4, width=70 * mm, height=37 * mm, columns=3, rows=8)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            name="a4-3x8",
            description="A4 sheet of 3 x 8 adhesive labels, 70 x 37 mm",
            page_width=A4[0],
            page_height=A4[1],
            label_width=70 * mm,
            label_height=37 * mm,
            columns=3,
            rows=8,
            left=_A4_LEFT,
            top=_A4_TOP,
            pitch_x=70 * mm,
            pitch_y=37 * mm,
            qr_limit=26 * mm,
            edge=0.5 * mm,
            padding=1.5 * mm,
            max_font=8,
            min_font=5,
        ),
        Layout(
            name="letter-3x10",
            description="US Letter sheet of 3 x 10 labels, 2.625 x 1 in (Avery 5160)",
            page_width=LETTER[0],
            page_height=LETTER[1],
            label_width=2.625 * inch,
            label_height=1 * inch,
            columns=3,
            rows=10,
            left=0.1875 * inch,
            top=0.5 * inch,
            pitch_x=2.75 * inch,
            pitch_y=1 * inch,
            qr_limit=1 * inch - 1 * mm,
            edge=0.5 * mm,
            padding=1.2 * mm,
            max_font=7,
            min_font=5,
            id_scale=1.1,
        ),
        Layout(
            name="thermal-2x1",
            description="thermal roll, one 2 x 1 in label per page, 203 dpi",
            page_width=2 * inch,
            page_height=1 * inch,
            label_width=2 * inch,
            label_height=1 * inch,
            columns=1,
            rows=1,
            left=0,
            top=0,
            pitch_x=2 * inch,
            pitch_y=1 * inch,
            qr_limit=1 * inch - 1 * mm,
            edge=0.5 * mm,
            padding=1.2 * mm,
            max_font=7,
            min_font=5,
            printer_dpi=203,
            id_scale=1.1,
        ),
        Layout(
            name="thermal-4x6",
            description="thermal roll, one 4 x 6 in label per page, 203 dpi",
            page_width=4 * inch,
            page_height=6 * inch,
            label_width=4 * inch,
            label_height=6 * inch,
            columns=1,
            rows=1,
            left=0,
            top=0,
            pitch_x=4 * inch,
            pitch_y=6 * inch,
            qr_limit=55 * mm,
            edge=2 * mm,
            padding=3 * mm,
            max_font=16,
            min_font=7,
            printer_dpi=203,
            text_beside_qr=False,
            description_lines=12,
        ),
    )
}


def get_layout(name: str) -> Layout:
    """Return the layout called `name`; raise LayoutError listing the valid names."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise LayoutError(
            f"Label layout {name!r} is unknown; use one of {', '.join(sorted(LAYOUTS))}."
        ) from None
