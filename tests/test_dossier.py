"""Court dossiers: content read back from the PDF, embedded bundle, signature, tampering."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from pypdf import PdfReader, PdfWriter
from typer.testing import CliRunner

from custody import events as ev
from custody.cli.main import app
from custody.dossier.build import DossierRefused, build_dossier, verify_dossier
from custody.records import record_sample
from custody.species import (
    BUNDLED_LIBRARY,
    bundled_data,
    identify_files,
    record_identifications,
    reference_store,
)
from tests.conftest import CASE, World


def _build_case(world: World, tmp_path: Path) -> None:
    from PIL import Image

    from custody.models import ItemCreate
    from custody.records import add_item

    photo = tmp_path / "bag1.jpg"
    Image.new("RGB", (320, 240), (150, 120, 80)).save(photo, "JPEG")
    a = add_item(
        world.store,
        case_no=CASE,
        spec=ItemCreate(
            description="Sack of pangolin scales",
            species="Manis sp.",
            weight=3.2,
            unit="kg",
            seal="S-1",
            place="JKIA",
            lat=-1.3,
            lon=36.9,
            bag_no=1,
            bag_total=2,
        ),
        signer=world.officer,
        photos=[photo],
    ).id
    b = world.item(description="Second sack of scales", seal="S-2", bag_no=2, bag_total=2)
    ev.record_transfer(
        world.store,
        item_id=a,
        signer=world.officer,
        receiver=world.analyst,
        witness=world.custodian,
        purpose="DNA analysis",
    )
    ev.record_receive(world.store, item_id=a, signer=world.analyst, condition="Seal S-1 intact")
    ev.record_unseal(world.store, item_id=a, signer=world.analyst, seal="S-1", reason="sampling")
    child = record_sample(
        world.store,
        item_id=a,
        signer=world.analyst,
        description="one scale",
        reason="uniform contents",
    ).id
    ev.record_seal(world.store, item_id=a, signer=world.analyst, seal="S-3")
    reference_store(world.store).import_version(
        BUNDLED_LIBRARY, [bundled_data("demo_library.fasta")]
    )
    query = tmp_path / "q.fasta"
    query.write_text(
        "".join(
            ">" + r
            for r in bundled_data("demo_queries.fasta").read_text().split(">")
            if r.startswith("demo_Manis_pentadactyla_12S")
        )
    )
    results = identify_files(world.store, files=[query], library=BUNDLED_LIBRARY)
    record_identifications(world.store, item_id=child, signer=world.analyst, results=results)
    ev.record_store(world.store, item_id=b, signer=world.officer, location="Vault B")


_TEMPLATE: dict[str, Path] = {}


@pytest.fixture
def case_world(world: World, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The case is built once per session and copied for each test (identification is slow)."""
    import shutil

    from custody.events import load_signer
    from custody.store import open_store

    if "dir" not in _TEMPLATE:
        _build_case(world, tmp_path)
        world.store.close()
        saved = tmp_path_factory.mktemp("dossier-template")
        for name in ("custody.db", "home", "attachments", "references"):
            src = tmp_path / name
            if src.is_dir():
                shutil.copytree(src, saved / name)
            elif src.exists():
                shutil.copy2(src, saved / name)
        _TEMPLATE["dir"] = saved
    else:
        world.store.close()
        for name in ("custody.db", "custody.db-wal", "custody.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        shutil.rmtree(tmp_path / "home")
        for name in ("custody.db", "home", "attachments", "references"):
            src = _TEMPLATE["dir"] / name
            if src.is_dir():
                shutil.copytree(src, tmp_path / name, dirs_exist_ok=True)
            elif src.exists():
                shutil.copy2(src, tmp_path / name)
    store = open_store(str(tmp_path / "custody.db"), home=tmp_path / "home")
    signers = [load_signer(store, h) for h in ("aotieno", "jmwangi", "wkamau", "pnjeri")]
    return World(store, *signers, db_path=tmp_path / "custody.db", home=tmp_path / "home")


def _text(pdf: Path) -> list[str]:
    return [p.extract_text() or "" for p in PdfReader(str(pdf)).pages]


def test_dossier_content_pages_and_bundle(case_world: World, tmp_path: Path) -> None:
    out = tmp_path / "dossier.pdf"
    result = build_dossier(
        case_world.store,
        case_no=CASE,
        out=out,
        signer=case_world.prosecutor,
        prepared_for="Milimani court",
    )
    pages = _text(out)
    assert len(pages) == result.pages >= 5
    for number, text in enumerate(pages, start=1):
        assert result.report_id in text
        assert f"Page {number} of {len(pages)}" in text
    assert "End of report" in pages[-1]
    everything = "\n".join(pages)
    flat = re.sub(r"\s+", "", everything)
    con = sqlite3.connect(case_world.db_path)
    for (item_id,) in con.execute("SELECT id FROM items"):
        assert f"Item {item_id}" in everything
    for at, kind in con.execute("SELECT at, type FROM events WHERE chain != ?", (f"case:{CASE}",)):
        assert at.replace("T", " ")[:19] in everything, (at, kind)
    assert "consistent with Manis pentadactyla" in everything
    assert "Milimani court" in everything
    assert result.bundle_hash.removeprefix("sha256:") in flat
    assert "not to be reproduced except in full" in everything.lower()
    check = verify_dossier(out)
    assert check.valid, (check.problems, check.findings)
    assert check.signature["signed"] and check.signature["covers_whole_file"]
    bundle = json.loads(PdfReader(str(out)).attachments["case-bundle.json"][0])
    assert {i["id"] for i in bundle["items"]} == {r[0] for r in con.execute("SELECT id FROM items")}
    assert any(
        json.loads(e["data"]).get("analysis") == "species-identification" for e in bundle["events"]
    )
    # The issue is recorded in the case chain with the bundle hash.
    issued = con.execute("SELECT data FROM events WHERE type = 'dossier-issue'").fetchone()
    assert json.loads(issued[0])["bundle_hash"] == result.bundle_hash


def test_rendered_pages_show_ink(case_world: World, tmp_path: Path) -> None:
    out = tmp_path / "dossier.pdf"
    build_dossier(case_world.store, case_no=CASE, out=out, signer=case_world.prosecutor)
    doc = pdfium.PdfDocument(str(out))
    for page in doc:
        img = page.render(scale=0.5).to_pil().convert("L")
        dark = sum(img.histogram()[:128])
        assert dark > 500  # text on every page, no blank pages


def test_changed_bundle_or_content_is_detected(case_world: World, tmp_path: Path) -> None:
    out = tmp_path / "dossier.pdf"
    build_dossier(case_world.store, case_no=CASE, out=out, signer=case_world.prosecutor)
    # 1. One byte of the embedded bundle changed, PDF rewritten around it.
    reader = PdfReader(str(out))
    data = bytearray(reader.attachments["case-bundle.json"][0])
    pos = data.index(b"Second sack")
    data[pos] = ord("T")
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.add_metadata(dict(reader.metadata or {}))
    for name, parts in reader.attachments.items():
        writer.add_attachment(name, bytes(data) if name == "case-bundle.json" else parts[0])
    forged = tmp_path / "forged.pdf"
    with forged.open("wb") as fh:
        writer.write(fh)
    check = verify_dossier(forged)
    assert not check.valid
    assert any("bundle" in p for p in check.problems)
    assert any(f.kind == "altered" for f in check.findings)
    # 2. One byte of the signed file flipped in place.
    raw = bytearray(out.read_bytes())
    idx = raw.index(b"/Producer")
    raw[idx + 2] ^= 0x01
    flipped = tmp_path / "flipped.pdf"
    flipped.write_bytes(bytes(raw))
    assert not verify_dossier(flipped).valid


def test_findings_refuse_the_build_unless_allowed(case_world: World, tmp_path: Path) -> None:
    con = sqlite3.connect(case_world.db_path)
    con.execute("UPDATE items SET description = 'Bag of dried fish' WHERE id = ?", (f"{CASE}/2",))
    con.commit()
    before = con.execute("SELECT count(*) FROM events").fetchone()[0]
    out = tmp_path / "refused.pdf"
    with pytest.raises(DossierRefused, match="--allow-findings"):
        build_dossier(case_world.store, case_no=CASE, out=out, signer=case_world.prosecutor)
    assert not out.exists()
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == before
    result = build_dossier(
        case_world.store, case_no=CASE, out=out, signer=case_world.prosecutor, allow_findings=True
    )
    assert result.findings
    text = "\n".join(_text(out))
    assert "WARNING: verification found" in text and "description" in text


def test_amendment_references_the_previous_issue(case_world: World, tmp_path: Path) -> None:
    first = build_dossier(
        case_world.store, case_no=CASE, out=tmp_path / "r1.pdf", signer=case_world.prosecutor
    )
    ev.record_note(
        case_world.store, item_id=f"{CASE}/2", signer=case_world.officer, text="photographed again"
    )
    second = build_dossier(
        case_world.store, case_no=CASE, out=tmp_path / "r2.pdf", signer=case_world.prosecutor
    )
    assert second.amendment == 1 and second.supersedes == first.report_id
    text = "\n".join(_text(tmp_path / "r2.pdf"))
    assert f"Amendment 1 to report {first.report_id}" in text
    assert "note on" in text and f"{CASE}/2" in text
    assert verify_dossier(tmp_path / "r1.pdf").valid and verify_dossier(tmp_path / "r2.pdf").valid


def test_cli_dossier_build_and_verify(case_world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.pdf"
    result = runner.invoke(app, ["dossier", "build", CASE, "-o", str(out), "--as", "pnjeri"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{CASE}-R1")
    good = runner.invoke(app, ["dossier", "verify", str(out), "--json"])
    assert good.exit_code == 0 and json.loads(good.stdout)["valid"]
    appended = tmp_path / "appended.pdf"
    appended.write_bytes(out.read_bytes() + b"\n%extra\n")
    bad = runner.invoke(app, ["dossier", "verify", str(appended)])
    assert bad.exit_code == 1 and "NOT VALID" in bad.stdout
    junk = tmp_path / "junk.pdf"
    junk.write_text("not a pdf at all")
    assert runner.invoke(app, ["dossier", "verify", str(junk)]).exit_code == 1
    officer = runner.invoke(
        app, ["dossier", "build", CASE, "-o", str(tmp_path / "x.pdf"), "--as", "aotieno"]
    )
    assert officer.exit_code == 1 and "needs one of" in officer.stderr
