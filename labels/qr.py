"""QR codes for labels: building the module matrix and image, and decoding scans.

Label text (``CL1:`` + base45) is entirely in the QR alphanumeric set, so it is
encoded in alphanumeric mode. `qr_image` builds a stand-alone image with the
`qrcode` library; `qr_matrix`, which the PDF renderer draws from, uses zxing-cpp's
compiled encoder because `qrcode` (pure Python, 10-40 ms a symbol) alone would
take longer than the whole 1,000-label budget. Both choose the smallest version
for the error correction level; tests check that they agree on it.

Decoding uses zxing-cpp. `decode_file` accepts raster images (PNG, JPEG, TIFF,
GIF, WebP, BMP, ...; every frame) and PDFs (every page rendered at
`PDF_RENDER_DPI`). A first pass decodes the image as it is; only if it finds
nothing are harder variants tried (grayscale with contrast stretch, upscaling with
unsharp masking, global Otsu binarization), so a slightly rotated,
blurred, low-contrast or JPEG-compressed photo still decodes while clean scans
stay fast. Modules need roughly 3 pixels or more in the scan (0.375 mm modules at
300 dpi are 4.4 pixels).

Invariants: results are returned in reading order (top to bottom, then left to
right, page by page) with one entry per printed code, so two copies of the same
label on a sheet give two entries; every failure to read a file raises
`DecodeError` with the file name in the message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy
import pypdfium2 as pdfium
import qrcode
import zxingcpp
from PIL import Image, ImageFilter, ImageOps, ImageSequence, UnidentifiedImageError
from qrcode.util import MODE_ALPHA_NUM, QRData

from labels.errors import DecodeError, LabelError

PDF_RENDER_DPI = 300
_MAX_VARIANT_PIXELS = 24_000_000
_MAX_PAGE_PIXELS = 60_000_000
QUIET_ZONE = 4
_ERROR_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
_QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


@dataclass(frozen=True)
class QrMatrix:
    """The dark/light modules of a QR symbol, without quiet zone; rows top to bottom."""

    version: int
    error: str
    rows: tuple[tuple[bool, ...], ...]

    @property
    def size(self) -> int:
        """Modules per side, without quiet zone (21 for version 1, +4 per version)."""
        return len(self.rows)


@lru_cache(maxsize=256)
def qr_matrix(text: str, *, error: str = "M") -> QrMatrix:
    """Build (and cache) the smallest QR symbol for `text` at error correction `error`.

    Uses zxing-cpp's encoder (compiled, about 1 ms a symbol; it picks alphanumeric
    mode for label text), which keeps a 1,000-label print job fast.
    """
    _check_level(error)
    try:
        code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level=error)
    except ValueError:
        raise LabelError(
            f"Text of {len(text)} characters does not fit in any QR code at error "
            f"correction {error}; shorten it."
        ) from None
    pixels = numpy.asarray(code.to_image(scale=1, add_quiet_zones=False))
    rows = tuple(map(tuple, (pixels < 128).tolist()))
    return QrMatrix(version=(len(rows) - 17) // 4, error=error, rows=rows)


def qr_image(text: str, *, error: str = "M", scale: int = 10) -> Image.Image:
    """Return a black-on-white QR image of `text`, `scale` pixels per module, quiet zone 4.

    Built with the `qrcode` library; label text goes in alphanumeric mode.
    """
    code = qrcode.QRCode(error_correction=_check_level(error), box_size=scale, border=QUIET_ZONE)
    if text and set(text) <= _ALPHANUMERIC:
        code.add_data(QRData(text.encode("ascii"), mode=MODE_ALPHA_NUM))
    else:
        code.add_data(text)
    try:
        code.make(fit=True)
    except qrcode.exceptions.DataOverflowError:
        raise LabelError(
            f"Text of {len(text)} characters does not fit in any QR code at error "
            f"correction {error}; shorten it."
        ) from None
    image = code.make_image(fill_color="black", back_color="white").get_image()
    return image.convert("L")


def _check_level(error: str) -> int:
    level = _ERROR_LEVELS.get(error)
    if level is None:
        raise LabelError(
            f"QR error correction level {error!r} is unknown; use one of "
            f"{', '.join(_ERROR_LEVELS)}."
        )
    return level


def decode_image(image: Image.Image) -> list[str]:
    """Decode every QR code in one image, trying harder variants if the first pass fails."""
    image = _flatten(image)
    found = _read(image, factor=1.0)
    if found:
        return _in_reading_order(found)
    for variant, factor in _harder_variants(image):
        for hit in _read(variant, factor=factor):
            if not any(_same_code(hit, other) for other in found):
                found.append(hit)
    return _in_reading_order(found)


def decode_file(path: Path | str) -> list[str]:
    """Decode every QR code in an image or PDF file, in reading order.

    Raises DecodeError if the file is missing, is neither an image nor a PDF, or holds
    no QR code that can be read.
    """
    path = Path(path)
    texts: list[str] = []
    for page in _pages(path):
        texts.extend(decode_image(page))
    if not texts:
        raise DecodeError(
            f"No QR code found in {path}; rescan at higher resolution or check the label."
        )
    return texts


@dataclass(frozen=True)
class _Hit:
    text: str
    x: float
    y: float
    span: float


def _read(image: Image.Image, *, factor: float) -> list[_Hit]:
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    hits: list[_Hit] = []
    for code in zxingcpp.read_barcodes(image, formats=_QR_ONLY):
        corners = (
            code.position.top_left,
            code.position.top_right,
            code.position.bottom_right,
            code.position.bottom_left,
        )
        xs = [point.x / factor for point in corners]
        ys = [point.y / factor for point in corners]
        hits.append(
            _Hit(
                text=code.text,
                x=sum(xs) / 4,
                y=sum(ys) / 4,
                span=max(max(xs) - min(xs), max(ys) - min(ys), 1.0),
            )
        )
    return hits


def _same_code(a: _Hit, b: _Hit) -> bool:
    near = max(a.span, b.span) / 2
    return a.text == b.text and abs(a.x - b.x) < near and abs(a.y - b.y) < near


def _in_reading_order(hits: list[_Hit]) -> list[str]:
    if not hits:
        return []
    # Codes in one printed row differ in y by a little; band rows by half a code height.
    band = max(min(hit.span for hit in hits) / 2, 1.0)
    return [hit.text for hit in sorted(hits, key=lambda hit: (round(hit.y / band), hit.x))]


def _harder_variants(image: Image.Image) -> Iterator[tuple[Image.Image, float]]:
    """Cleaned-up versions of a photo, each with its scale factor against the original.

    Upscaling plus unsharp masking recovers blurred modules of 3-4 pixels; a global
    Otsu threshold helps on uneven low-contrast prints. Variants are capped at
    `_MAX_VARIANT_PIXELS` so a page without codes stays quick to give up on.
    """
    gray = image if image.mode == "L" else image.convert("L")
    stretched = ImageOps.autocontrast(gray, cutoff=1)
    yield stretched, 1.0
    area = stretched.width * stretched.height
    for wanted, radius, percent in ((2.0, 2.0, 200), (2.0, 3.0, 300), (3.0, 4.5, 400)):
        factor = min(wanted, (_MAX_VARIANT_PIXELS / area) ** 0.5)
        if factor < 1.25:
            factor, upscaled = 1.0, stretched
        else:
            size = (round(stretched.width * factor), round(stretched.height * factor))
            upscaled = stretched.resize(size, Image.Resampling.BICUBIC)
        sharpened = upscaled.filter(
            ImageFilter.UnsharpMask(radius=radius * factor / wanted, percent=percent, threshold=0)
        )
        yield sharpened, factor
        if radius == 2.0:
            level = _otsu(sharpened)
            table = [0] * (level + 1) + [255] * (255 - level)
            yield sharpened.point(table), factor


def _otsu(gray: Image.Image) -> int:
    histogram = gray.histogram()[:256]
    total = sum(histogram)
    weighted_total = sum(value * count for value, count in enumerate(histogram))
    best, best_threshold = -1.0, 128
    below = weighted_below = 0
    for value, count in enumerate(histogram):
        below += count
        if below == 0 or below == total:
            continue
        weighted_below += value * count
        above = total - below
        mean_below = weighted_below / below
        mean_above = (weighted_total - weighted_below) / above
        spread = below * above * (mean_below - mean_above) ** 2
        if spread > best:
            best, best_threshold = spread, value
    return best_threshold


def _pages(path: Path) -> Iterator[Image.Image]:
    if not path.is_file():
        raise DecodeError(f"File {path} does not exist or is not a file; check the path.")
    with path.open("rb") as handle:
        head = handle.read(1024)
    if b"%PDF-" in head:
        yield from _pdf_pages(path)
        return
    try:
        with Image.open(path) as opened:
            for frame in ImageSequence.Iterator(opened):
                yield ImageOps.exif_transpose(frame.copy())
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise DecodeError(
            f"File {path} is not an image or PDF that can be read ({exc.__class__.__name__}); "
            "export the scan as PNG, JPEG or PDF."
        ) from None


def _flatten(image: Image.Image) -> Image.Image:
    """Put transparent images on white paper (transparent pixels are often black)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return image


def _pdf_pages(path: Path) -> Iterator[Image.Image]:
    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        raise DecodeError(
            f"File {path} is not a PDF that can be read ({exc}); export it again as PDF."
        ) from None
    try:
        for index in range(len(document)):
            page = document[index]
            try:
                width, height = page.get_size()
                # Large pages (posters, A0 scans) are rendered below 300 dpi to bound memory.
                scale = min(PDF_RENDER_DPI / 72, (_MAX_PAGE_PIXELS / (width * height)) ** 0.5)
                bitmap = page.render(scale=scale, grayscale=True)
                yield bitmap.to_pil()
            finally:
                page.close()
    finally:
        document.close()
