"""Decoding scans and photos of labels: tolerant of real-world damage, clear about failures."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance, ImageFilter
from reportlab.pdfgen.canvas import Canvas

from labels.errors import DecodeError, ForeignLabelError, LabelError
from labels.payload import parse_label, sign_label, verify_label
from labels.qr import decode_file, decode_image, qr_image
from labels.render import render_labels
from tests.test_labels_payload import KEY, lookup_known, make_payload
from tests.test_labels_render import LAYOUT_NAMES, make_content, page_images

Transform = Callable[[Image.Image], Image.Image]


def rotate(degrees: float) -> Transform:
    def apply(image: Image.Image) -> Image.Image:
        return image.convert("RGB").rotate(
            degrees, expand=True, fillcolor="white", resample=Image.Resampling.BICUBIC
        )

    return apply


def blur(radius: float) -> Transform:
    return lambda image: image.convert("RGB").filter(ImageFilter.GaussianBlur(radius))


def low_contrast(factor: float) -> Transform:
    # Grey ink on grey paper: contrast squeezed to `factor` around mid-grey, then lifted.
    def apply(image: Image.Image) -> Image.Image:
        squeezed = ImageEnhance.Contrast(image.convert("RGB")).enhance(factor)
        return ImageEnhance.Brightness(squeezed).enhance(1.15)

    return apply


def jpeg(quality: int) -> Transform:
    def apply(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue()))

    return apply


def chain(*steps: Transform) -> Transform:
    def apply(image: Image.Image) -> Image.Image:
        for step in steps:
            image = step(image)
        return image

    return apply


TRANSFORMS: dict[str, Transform] = {
    "rotate-5": rotate(5),
    "rotate-10": rotate(-10),
    "blur-1": blur(1),
    "contrast-40": low_contrast(0.4),
    "jpeg-40": jpeg(40),
    "photo": chain(rotate(7), blur(1), low_contrast(0.4), jpeg(60)),
}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_damaged_scans_of_every_layout_still_decode(
    tmp_path: Path, layout: str, transform: str
) -> None:
    content = make_content(3, reprint=1)
    pdf = tmp_path / "label.pdf"
    render_labels([content], layout=layout, out=pdf)
    (page,) = page_images(pdf, dpi=300)
    if page.width * page.height > 2000 * 2000:
        page = page.crop((0, 0, page.width // 2, page.height // 4))  # the sheet's first labels
    damaged = TRANSFORMS[transform](page)
    path = tmp_path / "scan.jpg"
    damaged.convert("RGB").save(path, quality=92)
    texts = decode_file(path)
    assert texts == [content.qr_text]
    assert verify_label(texts[0], lookup_known).genuine


def test_small_blurred_low_contrast_photo_decodes() -> None:
    # 4-pixel modules under a 2-pixel blur: zxing-cpp 3.1 alone finds nothing here; the
    # upscale-and-sharpen pass of decode_image recovers it.
    text = sign_label(make_payload(), KEY)
    photo = chain(blur(2.0), low_contrast(0.4), jpeg(30))(qr_image(text, scale=4))
    assert decode_image(photo) == [text]


def test_every_code_on_a_photo_is_returned_in_reading_order(tmp_path: Path) -> None:
    texts = [sign_label(make_payload(item_id=f"KWS-2026-0042/{n}.1"), KEY) for n in range(4)]
    tiles = [qr_image(text, scale=4) for text in texts]
    side = tiles[0].width
    sheet = Image.new("L", (side * 2 + 40, side * 2 + 40), 255)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, 2)
        sheet.paste(tile, (column * (side + 40), row * (side + 40) + column * 6))
    path = tmp_path / "sheet.png"
    sheet.save(path)
    assert decode_file(path) == texts


def test_every_frame_of_a_multi_page_tiff_is_read(tmp_path: Path) -> None:
    texts = [sign_label(make_payload(seal=f"00447{n}"), KEY) for n in range(2)]
    frames = [qr_image(text, scale=5) for text in texts]
    path = tmp_path / "scan.tiff"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert decode_file(path) == texts


def test_transparent_png_is_read_as_if_on_white_paper(tmp_path: Path) -> None:
    text = sign_label(make_payload(), KEY)
    code = qr_image(text, scale=5)
    transparent = Image.new("RGBA", code.size, (0, 0, 0, 0))
    transparent.putalpha(code.point(lambda value: 255 - value))
    path = tmp_path / "sticker.png"
    transparent.save(path)
    assert decode_file(path) == [text]


def test_foreign_qr_decodes_but_is_not_a_custody_label(tmp_path: Path) -> None:
    path = tmp_path / "url.png"
    qr_image("https://example.org/item/42").save(path)
    (text,) = decode_file(path)
    assert text == "https://example.org/item/42"
    with pytest.raises(ForeignLabelError, match="not a custody evidence label"):
        parse_label(text)
    assert not verify_label(text, lookup_known).genuine


# --- failures -----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="does not exist"):
        decode_file(tmp_path / "nowhere.png")


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("KWS-2026-0042/3.1 seal 004471\n")
    with pytest.raises(DecodeError, match=r"notes\.txt is not an image or PDF"):
        decode_file(path)


def test_corrupt_png_is_unreadable(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    qr_image("HELLO").save(buffer, "PNG")
    path = tmp_path / "broken.png"
    path.write_bytes(buffer.getvalue()[:80])
    with pytest.raises(DecodeError, match="broken.png"):
        decode_file(path)


def test_corrupt_pdf_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog\n")
    with pytest.raises(DecodeError, match="broken.pdf"):
        decode_file(path)


def test_pdf_without_codes(tmp_path: Path) -> None:
    path = tmp_path / "letter.pdf"
    canvas = Canvas(str(path))
    canvas.drawString(72, 720, "Covering letter: no labels here.")
    canvas.save()
    with pytest.raises(DecodeError) as caught:
        decode_file(path)
    assert str(caught.value) == (
        f"No QR code found in {path}; rescan at higher resolution or check the label."
    )


def test_blank_image_has_no_codes(tmp_path: Path) -> None:
    path = tmp_path / "blank.jpg"
    Image.new("RGB", (800, 600), "white").save(path)
    with pytest.raises(LabelError, match="No QR code found"):
        decode_file(path)
