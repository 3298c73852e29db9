"""Label sheets: every layout round trips through PDF, pixels and both QR decoders."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.pdfbase.pdfmetrics import stringWidth

from labels.errors import LayoutError
from labels.fonts import runs, string_width
from labels.layouts import LAYOUTS, Layout, get_layout
from labels.payload import LabelPayload, fingerprint_of, sign_label, verify_label
from labels.qr import decode_file
from labels.render import (
    BOLD,
    ELLIPSIS,
    LabelContent,
    LabelPlan,
    plan_label,
    printable,
    render_labels,
    text_width,
)
from tests.test_labels_payload import KEY, lookup_known

LAYOUT_NAMES = sorted(LAYOUTS)
TINY = ("letter-3x10", "thermal-2x1")
ROOMY = ("a4-3x8", "thermal-4x6")


def make_content(number: int = 1, *, reprint: int = 0, **overrides: object) -> LabelContent:
    item_id = f"KWS-2026-0042/{number}.1"
    seal = f"00447{number}"
    payload = LabelPayload(
        item_id=item_id,
        case_no="KWS-2026-0042",
        seal=seal,
        seized_at=datetime(2026, 3, 1, 10, 5, tzinfo=UTC),
        record_hash=hashlib.sha256(item_id.encode()).digest(),
        key_fingerprint=fingerprint_of(KEY),
        reprint=reprint,
    )
    fields: dict[str, object] = {
        "agency": "Kenya Wildlife Service",
        "case_no": "KWS-2026-0042",
        "item_id": item_id,
        "bag": f"Bag {number} of 5",
        "description": "Pangolin scales in a blue woven sack, tied with green nylon rope",
        "species": "Smutsia temminckii",
        "quantity": "1,240 scales, 3.4 kg",
        "seal": seal,
        "seized_at_utc": "2026-03-01 10:05 UTC",
        "seized_at_local": "13:05 EAT",
        "officer": "Cpl. Wanjiru Kamau, badge 4471",
        "place": "JKIA cargo shed 3 (-1.3192, 36.9278)",
        "other_ids": "CITES KE-2026-00017",
        "reprint": reprint,
        "qr_text": sign_label(payload, KEY),
    }
    fields.update(overrides)
    return LabelContent(**fields)  # type: ignore[arg-type]


def stress_content() -> LabelContent:
    return make_content(
        7,
        reprint=3,
        agency="Kenya Wildlife Service, Investigations and Intelligence Unit, Nairobi",
        bag="Bag 12 of 40",
        description=" ".join(["Raw ivory tusk fragments wrapped in newspaper"] * 12),
        species="Loxodonta africana (African savanna elephant) or Loxodonta cyclotis",
        quantity="214 fragments, 37.25 kg gross, 35.90 kg net",
        officer="Senior Sergeant Wanjiru Kamau-Otieno, badge KWS-004471-NRB",
        place="Jomo Kenyatta International Airport, cargo shed 3, bay 14 (-1.319200, 36.927800)",
        other_ids="CITES KE-2026-00017; microchip 900118000123456; ring ZA-4471",
        seized_at_local="2026-03-01 13:05 East Africa Time (UTC+03:00)",
    )


def largest_content() -> LabelContent:
    """Stress text plus the longest item ID, case and seal a payload allows."""
    item_id = "KWS-2026-004200-NAIROBI-CARGO/312.14.2"
    case_no = "KWS-2026-004200-NAIROBI-CARGO"
    seal = "TAMPER-SEAL-00447123456"
    payload = LabelPayload(
        item_id=item_id,
        case_no=case_no,
        seal=seal,
        seized_at=datetime(2026, 3, 1, 10, 5, tzinfo=UTC),
        record_hash=bytes(32),
        key_fingerprint=fingerprint_of(KEY),
        reprint=12,
    )
    return dataclasses.replace(
        stress_content(),
        item_id=item_id,
        case_no=case_no,
        seal=seal,
        reprint=12,
        qr_text=sign_label(payload, KEY),
    )


def page_images(pdf: Path, *, dpi: int = 300) -> list:
    document = pdfium.PdfDocument(pdf)
    try:
        return [document[i].render(scale=dpi / 72).to_pil() for i in range(len(document))]
    finally:
        document.close()


def pdf_text(pdf: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(pdf).pages]


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_every_layout_round_trips_through_pixels(tmp_path: Path, layout: str) -> None:
    contents = [make_content(1), make_content(2, reprint=1), make_content(3)]
    out = tmp_path / f"{layout}.pdf"
    report = render_labels(contents, layout=layout, out=out, copies=2)
    assert report.labels == 6
    assert report.layout == layout
    assert len(PdfReader(out).pages) == report.pages
    texts = decode_file(out)
    assert len(texts) == len(contents) * 2
    assert sorted(texts) == sorted(c.qr_text for c in contents for _ in range(2))
    checks = [verify_label(text, lookup_known) for text in texts]
    assert all(check.genuine for check in checks)
    assert {check.payload.item_id for check in checks if check.payload} == {
        c.item_id for c in contents
    }


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_every_layout_decodes_with_zbar_too(tmp_path: Path, layout: str) -> None:
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg (zbar-tools) is not installed; the independent decoder is skipped")
    contents = [make_content(1), make_content(2, reprint=1), make_content(3)]
    out = tmp_path / f"{layout}.pdf"
    render_labels(contents, layout=layout, out=out, copies=2)
    texts: list[str] = []
    for number, image in enumerate(page_images(out)):
        png = tmp_path / f"page{number}.png"
        image.save(png)
        run = subprocess.run(
            ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
            capture_output=True,
            text=True,
            check=False,
        )
        texts += [line for line in run.stdout.splitlines() if line]
    assert sorted(texts) == sorted(c.qr_text for c in contents for _ in range(2))
    assert all(verify_label(text, lookup_known).genuine for text in texts)


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_text_layer_shows_ids_seal_and_reprint_mark(tmp_path: Path, layout: str) -> None:
    contents = [make_content(1), make_content(2, reprint=2)]
    out = tmp_path / "job.pdf"
    render_labels(contents, layout=layout, out=out, copies=2)
    pages = pdf_text(out)
    text = "\n".join(pages)
    for content in contents:
        assert text.count(content.item_id) == 2
        assert content.seal in text
    assert text.count("REPRINT 2") == 2
    assert "REPRINT 1" not in text
    assert "Kenya Wildlife Service" in text
    if layout.startswith("thermal"):
        assert ["REPRINT" in page for page in pages] == [False, False, True, True]
    if layout in ROOMY:
        for value in (
            "Smutsia temminckii",
            "Cpl. Wanjiru Kamau",
            "JKIA cargo shed 3",
            "Bag 2 of 5",
        ):
            assert value in text


def test_names_and_places_in_any_script_print_as_written(tmp_path: Path) -> None:
    content = make_content(
        description="Řezník sample, Łódź port, 象牙 carving",
        place="Cửa khẩu Móng Cái",
        officer="Нгуен Ван Дык, 김민준",
    )
    out = tmp_path / "job.pdf"
    render_labels([content], layout="thermal-4x6", out=out)
    flat = "".join(pdf_text(out)[0].split())
    for written in ("Řezníksample,Łódźport,象牙carving", "CửakhẩuMóngCái", "НгуенВанДык,김민준"):
        assert written in flat, written
    fonts = {
        str(f.get_object()["/BaseFont"])
        for page in PdfReader(out).pages
        for f in (page["/Resources"].get("/Font") or {}).values()
    }
    assert any(f.endswith("+DejaVuSans") for f in fonts)
    assert {"/STSong-Light", "/HYSMyeongJo-Medium"} <= fonts
    # Only what no bundled font can draw is replaced (Thai is not in DejaVu Sans).
    assert printable("a\tb\n c") == "a b c"
    assert printable("Ščensko café, ก") == "Ščensko café, ?"


# --- fitting ------------------------------------------------------------------------------


def assert_plan_fits(plan: LabelPlan, layout: Layout) -> None:
    eps = 0.01
    pad = layout.padding
    for line in plan.lines:
        assert line.size >= layout.min_font - eps, line
        assert line.x >= pad - eps, line
        assert line.x + line.width <= layout.label_width - pad + eps, line
        assert line.bottom >= pad - eps, line
        assert line.top <= layout.label_height - pad + eps, line
        beside_qr = line.top > plan.qr_y and line.bottom < plan.qr_y + plan.qr_side
        if beside_qr:
            assert line.x >= plan.qr_x + plan.qr_side - eps, line
        expected = string_width(line.text, line.font, line.size)
        if line.prefix:
            expected += stringWidth(line.prefix, BOLD, line.size)
        if line.inverted:
            expected += 0.6 * line.size
        assert line.width == pytest.approx(expected, abs=1e-6)
    ordered = sorted(plan.lines, key=lambda line: -line.y)
    for upper, lower in zip(ordered, ordered[1:], strict=False):
        assert upper.bottom >= lower.top - eps, (upper, lower)
    # The QR box (quiet zone included) stays on the label.
    assert plan.qr_x >= 0 and plan.qr_x + plan.qr_side <= layout.label_width
    assert plan.qr_y >= 0 and plan.qr_y + plan.qr_side <= layout.label_height


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_typical_and_stress_content_fit_every_layout(layout: str) -> None:
    spec = get_layout(layout)
    contents = (make_content(1), make_content(2, reprint=1), stress_content(), largest_content())
    for content in contents:
        plan = plan_label(content, spec)
        assert_plan_fits(plan, spec)
        shown = {line.field for line in plan.lines}
        assert {"item_id", "case", "seal", "seized", "species"} <= shown
        if content.reprint:
            assert "reprint" in shown
        # Identity fields are never cut short: wrapped if need be, but whole.
        for name, whole in (("item_id", content.item_id), ("seal", "Seal " + content.seal)):
            lines = [line for line in plan.lines if line.field == name]
            assert "".join(line.prefix + line.text for line in lines) == whole
        case_text = "".join(line.text for line in plan.lines if line.field == "case")
        assert content.case_no in case_text.replace(" ", "")


@pytest.mark.parametrize("layout", ROOMY)
def test_roomy_layouts_show_every_field_whole(layout: str) -> None:
    plan = plan_label(make_content(2, reprint=1), get_layout(layout))
    assert plan.dropped == ()
    assert not any(line.clipped for line in plan.lines)
    assert plan.font_size >= 6


@pytest.mark.parametrize("layout", TINY)
def test_tiny_layouts_keep_priority_fields_and_may_drop_the_rest(layout: str) -> None:
    spec = get_layout(layout)
    plan = plan_label(stress_content(), spec)
    assert plan.font_size == spec.min_font
    shown = [line.field for line in plan.lines]
    assert shown[:2] == ["item_id", "reprint"]
    assert set(plan.dropped) <= {
        "agency",
        "officer",
        "place",
        "other_ids",
        "description",
        "quantity",
    }
    assert any(line.text.endswith(ELLIPSIS) for line in plan.lines)


short_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFF), max_size=120
)


@settings(max_examples=40, deadline=None)
@given(
    layout=st.sampled_from(LAYOUT_NAMES),
    agency=short_text,
    item_id=st.text(alphabet="ABCXYZ0123456789-/.", min_size=1, max_size=40),
    description=st.text(max_size=600),
    species=short_text,
    place=short_text,
    bag=short_text,
    seal=short_text,
)
def test_any_text_fits_inside_the_label(
    layout: str,
    agency: str,
    item_id: str,
    description: str,
    species: str,
    place: str,
    bag: str,
    seal: str,
) -> None:
    content = make_content(
        agency=agency,
        item_id=item_id,
        description=description,
        species=species,
        place=place,
        bag=bag,
        seal=seal,
    )
    spec = get_layout(layout)
    assert_plan_fits(plan_label(content, spec), spec)


def test_text_width_matches_reportlab() -> None:
    for text in ("KWS-2026-0042/3.1", "Šcensko café … ?", ""):
        for font in ("Helvetica", "Helvetica-Bold"):
            assert text_width(text, font=font, size=7.25) == pytest.approx(
                stringWidth(text, font, 7.25)
            )
    # Outside WinAnsi each run is measured in the font it is drawn in.
    for font in ("Helvetica", "Helvetica-Bold"):
        text = "Móng Cái 象牙 Ščensko"
        pieces = runs(text, font)
        assert len({f for _, f in pieces}) == 3
        assert text_width(text, font=font, size=7.25) == pytest.approx(
            sum(stringWidth(seg, f, 7.25) for seg, f in pieces)
        )


# --- print jobs ---------------------------------------------------------------------------


def test_start_position_skips_used_labels(tmp_path: Path) -> None:
    spec = get_layout("a4-3x8")
    out = tmp_path / "job.pdf"
    report = render_labels([make_content(1)], layout="a4-3x8", out=out, start=5)
    assert report.pages == 1
    dpi = 150
    (image,) = page_images(out, dpi=dpi)
    (code,) = zxingcpp.read_barcodes(image)
    scale = dpi / 72
    x, y = spec.slot_origin(4)  # slot 5: second row, middle column
    centre_x = code.position.top_left.x / scale
    centre_y = spec.page_height - code.position.top_left.y / scale
    assert x <= centre_x <= x + spec.label_width
    assert y <= centre_y <= y + spec.label_height


def test_jobs_spill_onto_new_sheets(tmp_path: Path) -> None:
    out = tmp_path / "job.pdf"
    contents = [make_content(n % 9 + 1) for n in range(15)]
    report = render_labels(contents, layout="a4-3x8", out=out, start=20, copies=2)
    # 5 labels finish the first sheet, 24 fill the second, 1 starts the third.
    assert (report.labels, report.pages) == (30, 3)
    assert len(PdfReader(out).pages) == 3
    report = render_labels(contents[:3], layout="thermal-2x1", out=out, copies=3)
    assert (report.labels, report.pages) == (9, 9)


def test_report_names_qr_size() -> None:
    spec = get_layout("thermal-2x1")
    plan = plan_label(make_content(), spec)
    assert plan.matrix.version == 8
    assert plan.module / 72 * 203 == pytest.approx(3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layout": "a5-2x4"}, "a4-3x8, letter-3x10, thermal-2x1, thermal-4x6"),
        ({"layout": "a4-3x8", "start": 25}, "use 1 to 24"),
        ({"layout": "letter-3x10", "start": 0}, "use 1 to 30"),
        ({"layout": "thermal-2x1", "start": 2}, "use 1 "),
        ({"layout": "a4-3x8", "copies": 0}, "at least 1"),
    ],
)
def test_bad_job_options_are_refused(tmp_path: Path, kwargs: dict, match: str) -> None:
    out = tmp_path / "job.pdf"
    with pytest.raises(LayoutError, match=match):
        render_labels([make_content()], out=out, **kwargs)
    assert not out.exists()


def test_empty_job_and_unsigned_label_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "job.pdf"
    with pytest.raises(LayoutError, match="no labels"):
        render_labels([], layout="a4-3x8", out=out)
    with pytest.raises(LayoutError, match="no QR text"):
        render_labels([make_content(qr_text="")], layout="a4-3x8", out=out)
    with pytest.raises(LayoutError, match="not a signed custody payload"):
        render_labels([make_content(qr_text="https://example.org")], layout="a4-3x8", out=out)
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="does not exist; create it"):
        render_labels([make_content()], layout="a4-3x8", out=tmp_path / "no" / "job.pdf")


@pytest.mark.parametrize(
    "overrides",
    [{"item_id": "KWS-2026-0042/9.1"}, {"seal": "999999"}, {"reprint": 1}, {"case_no": "X-1"}],
)
def test_printed_facts_must_match_the_signed_payload(tmp_path: Path, overrides: dict) -> None:
    with pytest.raises(LayoutError, match="differs from its signed QR payload"):
        content = dataclasses.replace(make_content(1), **overrides)
        render_labels([content], layout="a4-3x8", out=tmp_path / "j.pdf")


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_slots_stay_on_the_page_and_apart(layout: str) -> None:
    spec = get_layout(layout)
    boxes = [spec.slot_origin(slot) for slot in range(spec.per_page)]
    for x, y in boxes:
        assert 0 <= x and x + spec.label_width <= spec.page_width + 1e-6
        assert 0 <= y + 1e-6 and y + spec.label_height <= spec.page_height + 1e-6
    for index, (x, y) in enumerate(boxes):
        for other_x, other_y in boxes[index + 1 :]:
            apart_x = abs(x - other_x) >= spec.label_width - 1e-6
            apart_y = abs(y - other_y) >= spec.label_height - 1e-6
            assert apart_x or apart_y


@pytest.mark.parametrize(
    ("layout", "version", "module_mm"),
    [
        ("a4-3x8", 8, 0.456),
        ("a4-3x8", 10, 0.400),
        ("letter-3x10", 8, 0.428),
        ("letter-3x10", 10, 0.375),
        ("thermal-2x1", 8, 0.375),
        ("thermal-2x1", 10, 0.375),
        ("thermal-4x6", 8, 0.876),
        ("thermal-4x6", 10, 0.751),
    ],
)
def test_module_sizes_match_the_documented_table(
    layout: str, version: int, module_mm: float
) -> None:
    module = get_layout(layout).module_size(17 + 4 * version)
    assert module / 72 * 25.4 == pytest.approx(module_mm, abs=0.0006)
    assert module / 72 * 25.4 >= 0.37


def test_a_symbol_too_large_for_the_layout_is_refused() -> None:
    with pytest.raises(LayoutError, match="shorten the label payload"):
        get_layout("thermal-2x1").module_size(17 + 4 * 14)


@pytest.mark.parametrize(("layout", "dpi"), [("thermal-2x1", 203), ("thermal-4x6", 203)])
def test_thermal_labels_survive_the_printers_own_rasterisation(
    tmp_path: Path, layout: str, dpi: int
) -> None:
    content = make_content(1)
    out = tmp_path / "label.pdf"
    render_labels([content], layout=layout, out=out)
    document = pdfium.PdfDocument(out)
    try:
        bitmap = document[0].render(
            scale=dpi / 72, no_smoothpath=True, no_smoothtext=True, grayscale=True
        )
        dots = bitmap.to_pil().convert("L").point(lambda value: 255 if value > 127 else 0)
    finally:
        document.close()
    plan = plan_label(content, get_layout(layout))
    module_dots = round(plan.module / 72 * dpi)
    # A finder pattern is 7 modules wide: every module came out as whole printer dots.
    quiet = 4 * plan.module / 72 * dpi
    top = round((plan.qr_y + plan.qr_side) / 72 * dpi)
    row = round(dots.height - top + quiet + 3.5 * module_dots)
    left = round(plan.qr_x / 72 * dpi + quiet)
    pixels = [dots.getpixel((x, row)) for x in range(left - 3, left + 8 * module_dots)]
    runs = [len(list(group)) for _, group in itertools.groupby(pixels)]
    # Through its centre a finder pattern reads dark:light:dark:light:dark = 1:1:3:1:1.
    assert runs[1:6] == [module_dots * n for n in (1, 1, 3, 1, 1)]
    assert [code.text for code in zxingcpp.read_barcodes(dots)] == [content.qr_text]
    if shutil.which("zbarimg"):
        png = tmp_path / "dots.png"
        dots.save(png)
        run = subprocess.run(
            ["zbarimg", "--quiet", "--raw", str(png)], capture_output=True, text=True, check=False
        )
        assert run.stdout.splitlines() == [content.qr_text]


@pytest.mark.parametrize("layout", TINY)
def test_long_ids_wrap_after_separators(layout: str) -> None:
    plan = plan_label(largest_content(), get_layout(layout))
    lines = [line.text for line in plan.lines if line.field == "item_id"]
    assert "".join(lines) == largest_content().item_id
    assert all(text[-1] in "/-._:" for text in lines[:-1]), lines
