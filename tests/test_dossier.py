"""Court dossiers: content read back from the PDF, embedded bundle, signature, tampering."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from pypdf import PdfReader, PdfWriter
from typer.testing import CliRunner

from custody import events as ev
from custody.cli.main import app
from custody.dossier.build import DossierRefused, build_dossier, verify_dossier
from custody.errors import InvalidInput
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
    record_identifications(world.store, plan={child: results}, signer=world.analyst)
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


def _flat(pdf: Path) -> str:
    return re.sub(r"\s+", " ", "\n".join(_text(pdf)))


def _rewrite_bundle(pdf: Path, forged: Path, data: bytes) -> Path:
    """Copy a dossier with its embedded bundle replaced by `data` (the PDF rewritten around it)."""
    reader = PdfReader(str(pdf))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.add_metadata(dict(reader.metadata or {}))
    for name, parts in reader.attachments.items():
        writer.add_attachment(name, data if name == "case-bundle.json" else parts[0])
    with forged.open("wb") as fh:
        writer.write(fh)
    return forged


def _bundle(pdf: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PdfReader(str(pdf)).attachments["case-bundle.json"][0])
    return data


def _event_count(world: World) -> int:
    con = sqlite3.connect(world.db_path)
    try:
        return int(con.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        con.close()


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
    # A time may wrap inside its table cell: compare with whitespace runs as one space.
    spaced = re.sub(r"\s+", " ", everything)
    for at, kind in con.execute("SELECT at, type FROM events WHERE chain != ?", (f"case:{CASE}",)):
        assert at.replace("T", " ")[:19] in spaced, (at, kind)
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
        # text on every page, no blank pages and no page holding only a signature block
        # (header and footer alone give under 150 dark pixels, such a page about 280)
        assert dark > 500


def test_changed_bundle_or_content_is_detected(case_world: World, tmp_path: Path) -> None:
    out = tmp_path / "dossier.pdf"
    build_dossier(case_world.store, case_no=CASE, out=out, signer=case_world.prosecutor)
    # 1. One byte of the embedded bundle changed, PDF rewritten around it.
    data = bytearray(PdfReader(str(out)).attachments["case-bundle.json"][0])
    pos = data.index(b"Second sack")
    data[pos] = ord("T")
    forged = _rewrite_bundle(out, tmp_path / "forged.pdf", bytes(data))
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
    text = _flat(out)
    assert "WARNING: verification found" in text and "description" in text
    assert f"Item {CASE}/2's row differs from its signed record in description" in text
    # The description printed is the signed one, never the row changed by SQL.
    assert "Second sack of scales" in text
    assert "dried fish" not in text


def test_amendment_references_the_previous_issue(case_world: World, tmp_path: Path) -> None:
    first = build_dossier(
        case_world.store, case_no=CASE, out=tmp_path / "r1.pdf", signer=case_world.prosecutor
    )
    ev.record_note(
        case_world.store, item_id=f"{CASE}/2", signer=case_world.officer, text="photographed again"
    )
    before = _event_count(case_world)
    with pytest.raises(InvalidInput, match=f"already has dossier {first.report_id}.*--reason"):
        build_dossier(
            case_world.store, case_no=CASE, out=tmp_path / "r2.pdf", signer=case_world.prosecutor
        )
    assert not (tmp_path / "r2.pdf").exists() and _event_count(case_world) == before
    why = "New photograph of item 2 added at the defence's request"
    second = build_dossier(
        case_world.store,
        case_no=CASE,
        out=tmp_path / "r2.pdf",
        signer=case_world.prosecutor,
        reason=f"  {why} ",
    )
    assert second.amendment == 1 and second.supersedes == first.report_id
    pages = _text(tmp_path / "r2.pdf")
    front = re.sub(r"\s+", " ", pages[0])
    assert f"Amendment 1 to report {first.report_id}" in front
    assert f"Reason for the amendment: {why}" in front
    text = "\n".join(pages)
    assert "note on" in text and f"{CASE}/2" in text
    con = sqlite3.connect(case_world.db_path)
    issued = [
        json.loads(d)
        for (d,) in con.execute("SELECT data FROM events WHERE type = 'dossier-issue' ORDER BY id")
    ]
    assert [d["reason"] for d in issued] == ["", why]
    assert _bundle(tmp_path / "r2.pdf")["report"]["reason"] == why
    assert verify_dossier(tmp_path / "r1.pdf").valid and verify_dossier(tmp_path / "r2.pdf").valid


def test_reason_is_refused_for_the_original_issue(case_world: World, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no dossier yet.*only for amendments"):
        build_dossier(
            case_world.store,
            case_no=CASE,
            out=tmp_path / "r1.pdf",
            signer=case_world.prosecutor,
            reason="first issue",
        )
    assert not (tmp_path / "r1.pdf").exists()


def test_output_path_is_checked_before_any_work(case_world: World, tmp_path: Path) -> None:
    before = _event_count(case_world)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(InvalidInput, match=f"dossier path {re.escape(str(folder))} is a folder"):
        build_dossier(case_world.store, case_no=CASE, out=folder, signer=case_world.prosecutor)
    missing = tmp_path / "nowhere" / "r1.pdf"
    with pytest.raises(InvalidInput, match=f"folder {re.escape(str(missing.parent))} .*does not"):
        build_dossier(case_world.store, case_no=CASE, out=missing, signer=case_world.prosecutor)
    assert list(folder.iterdir()) == [] and not missing.parent.exists()
    assert _event_count(case_world) == before
    runner = CliRunner()
    result = runner.invoke(app, ["dossier", "build", CASE, "-o", str(folder), "--as", "pnjeri"])
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert message.startswith("error: The dossier path") and str(folder) in message
    assert "verifying" not in message and "tmp" not in message.replace(str(folder), "")
    assert _event_count(case_world) == before


# Bundles a hostile PDF may carry: not an object, wrong sections, missing keys, wrong types.
def _hostile_bundles(good: dict[str, Any]) -> list[Any]:
    def changed(path: list[Any], value: Any = None, *, drop: bool = False) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(good))
        target: Any = copy
        for key in path[:-1]:
            target = target[key]
        if drop:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return copy

    return [
        [1, 2],
        "a string",
        None,
        {"format": "custody-case-bundle/1", "attachments": [{"x": 1}]},
        {"format": "custody-case-bundle/1", "events": [1], "actors": {}, "items": "x"},
        changed(["format"], "something else"),
        changed(["events", 0, "hash"], drop=True),
        changed(["events", 0, "seq"], "1"),
        changed(["events", 0, "id"], True),
        changed(["events", 1, "data"], "[1, 2]"),
        changed(["events", 1, "data"], "not json"),
        changed(["events", 1, "signatures"], "[1]"),
        changed(["events", 0], [1]),
        changed(["actors", 0, "public_key"], 7),
        changed(["actors"], None),
        changed(["items", 0], {"x": 1}),
        changed(["case"], []),
        changed(["report"], "R1"),
        changed(["verification", "heads"], [1]),
        changed(["agencies", 0], {"code": ["KWS"]}),
        changed(["attachments", 0, "sha256"], None),
    ]


def test_malformed_embedded_bundle_is_reported_never_raised(
    case_world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "dossier.pdf"
    build_dossier(case_world.store, case_no=CASE, out=out, signer=case_world.prosecutor)
    good = _bundle(out)
    assert good["attachments"] and len(good["events"]) > 1
    runner = CliRunner()
    payloads = [json.dumps(b).encode() for b in _hostile_bundles(good)]
    payloads += [b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe not utf-8"]
    for n, payload in enumerate(payloads):
        forged = _rewrite_bundle(out, tmp_path / f"hostile-{n}.pdf", payload)
        check = verify_dossier(forged)
        assert not check.valid, payload[:80]
        sentences = check.problems + [f.message for f in check.findings]
        assert all(s[0].isupper() and s.endswith(".") for s in sentences), sentences
        if n < 5:  # a bundle that is not one: each problem named, nothing re-verified
            assert check.events == 0
            assert any("embedded bundle" in p for p in check.problems), check.problems
        result = runner.invoke(app, ["dossier", "verify", str(forged)])
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)  # typer.Exit, not a crash
        assert result.stdout.startswith("NOT VALID") and "problem:" in result.stdout
        assert result.stderr == ""
    missing_key = verify_dossier(tmp_path / "hostile-3.pdf")
    assert "In the embedded bundle, attachments[0] lacks the field 'name'." in missing_key.problems
    assert "The embedded bundle lacks its 'case' section." in missing_key.problems
    wrong_type = verify_dossier(tmp_path / "hostile-7.pdf")
    assert "In the embedded bundle, events[0].seq is a string, not an integer." in (
        wrong_type.problems
    )
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]


def test_damaged_pdf_is_reported_without_pypdf_noise(
    case_world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture, recwarn: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "dossier.pdf"
    build_dossier(case_world.store, case_no=CASE, out=out, signer=case_world.prosecutor)
    raw = out.read_bytes()
    damaged = {
        "no-eof.pdf": raw[: raw.rindex(b"%%EOF")],
        "half.pdf": raw[: len(raw) // 2],
        "no-xref.pdf": raw.replace(b"startxref", b"startxxxx"),
    }
    runner = CliRunner()
    for name, data in damaged.items():
        path = tmp_path / name
        path.write_bytes(data)
        check = verify_dossier(path)
        assert not check.valid and check.problems, name
        result = runner.invoke(app, ["dossier", "verify", str(path)])
        assert result.exit_code == 1, (name, result.output)
        assert result.stderr == "", (name, result.stderr)
        assert all(
            line.startswith(("NOT VALID", "  problem: ", "  finding: "))
            for line in result.stdout.splitlines()
        ), result.stdout
    assert not [r for r in caplog.records if r.name.startswith(("pypdf", "pyhanko"))]
    assert not [w for w in recwarn if "pypdf" in str(w.filename)]
    assert logging.getLogger("pypdf").level == logging.NOTSET  # restored after the check


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
    again = ["dossier", "build", CASE, "-o", str(tmp_path / "r2.pdf"), "--as", "pnjeri"]
    refused = runner.invoke(app, again)
    assert refused.exit_code == 1 and "--reason" in refused.stderr
    amended = runner.invoke(app, [*again, "--reason", "Corrected the court's name"])
    assert amended.exit_code == 0, amended.output
    assert amended.stdout.startswith(f"{CASE}-R2 (Amendment 1 to {CASE}-R1)")


def test_verify_bundle_never_raises_on_any_change_of_shape(
    case_world: World, tmp_path: Path
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from custody.domain import EVENT_FIELDS
    from custody.dossier.bundle import (
        ACTOR_FIELD_TYPES,
        EVENT_FIELD_TYPES,
        bundle_shape_problems,
        verify_bundle,
    )
    from custody.registrations import ACTOR_FIELDS

    assert tuple(EVENT_FIELD_TYPES) == EVENT_FIELDS and tuple(ACTOR_FIELD_TYPES) == ACTOR_FIELDS
    out = tmp_path / "dossier.pdf"
    build_dossier(case_world.store, case_no=CASE, out=out, signer=case_world.prosecutor)
    good = _bundle(out)
    assert verify_bundle(good).intact and not bundle_shape_problems(good)
    paths: list[list[Any]] = [[k] for k in good]
    for section in ("events", "actors", "items", "agencies", "attachments"):
        paths += [[section, 0], *([section, 0, k] for k in good[section][0])]
    paths += [["events", 1, "data", k] for k in json.loads(good["events"][1]["data"])]
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=6,
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(paths), value=values)
    def one_change(path: list[Any], value: Any) -> None:
        bundle = json.loads(json.dumps(good))
        target: Any = bundle
        for key in path[:-1]:
            target = target[key]
        if path[:2] == ["events", 1] and len(path) == 4:  # inside the data column's JSON
            data = json.loads(target)
            data[path[-1]] = value
            bundle["events"][1]["data"] = json.dumps(data)
        else:
            target[path[-1]] = value
        check = verify_bundle(bundle)
        assert all(f.message.endswith(".") for f in check.findings)

    one_change()


def test_names_and_notes_in_any_script_print_as_written(world: World, tmp_path: Path) -> None:
    item = world.item(description="Чешуя панголина, мешок 1", place="Cửa khẩu Móng Cái")
    ev.record_note(
        world.store,
        item_id=item,
        signer=world.officer,
        text="Handed over by Nguyễn Văn Đức (Hải quan), label 穿山甲鳞片, Ελληνικά",
    )
    out = tmp_path / "dossier.pdf"
    build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor)
    flat = re.sub(r"\s+", "", "".join(_text(out)))
    for written in (
        "Чешуяпанголина,мешок1",
        "CửakhẩuMóngCái",
        "NguyễnVănĐức(Hảiquan)",
        "穿山甲鳞片",
        "Ελληνικά",
    ):
        assert written in flat, written
    assert "■" not in flat
    fonts = {
        str(f.get_object()["/BaseFont"])
        for page in PdfReader(str(out)).pages
        for f in (page["/Resources"].get("/Font") or {}).values()
    }
    assert any(f.endswith("+DejaVuSans") for f in fonts) and "/STSong-Light" in fonts
    assert verify_dossier(out).valid


def test_case_records_have_exactly_the_columns_of_their_tables() -> None:
    """A column added to a table must be added to its record, or the bundle would drop it."""
    from dataclasses import fields

    from custody.dossier.case import ActorRecord, AgencyRecord, CaseRow, ItemRecord
    from custody.models import Actor, Agency, Case, Item
    from custody.registrations import ACTOR_FIELDS

    for record, model in ((CaseRow, Case), (ItemRecord, Item), (AgencyRecord, Agency)):
        assert {f.name for f in fields(record)} == set(model.__table__.columns.keys()), record
    assert tuple(f.name for f in fields(ActorRecord)) == ACTOR_FIELDS
    assert set(ACTOR_FIELDS) <= set(Actor.__table__.columns.keys())


def test_bundle_carries_the_stored_rows_unchanged(case_world: World) -> None:
    """Issued dossiers must keep verifying: the typed case gives back the stored values."""
    from custody.canonical import canonical_json
    from custody.domain import EVENT_FIELDS
    from custody.dossier.bundle import build_bundle
    from custody.dossier.case import ReportDetails, collect_case
    from custody.registrations import ACTOR_FIELDS
    from custody.verify import verify

    case = collect_case(case_world.store, CASE, also_actors=("pnjeri",))
    report = ReportDetails(
        report_id=f"{CASE}-R1",
        version=1,
        amendment=0,
        supersedes=None,
        original=None,
        issued_at="2026-01-01T00:00:00.000000Z",
        issued_by="pnjeri",
    )
    bundle = build_bundle(case, report=report, verification=verify(case_world.store))
    con = sqlite3.connect(case_world.db_path)
    con.row_factory = sqlite3.Row

    def rows(sql: str, *args: str) -> list[dict[str, Any]]:
        return [dict(r) for r in con.execute(sql, args)]

    stored = {
        "case": rows("SELECT * FROM cases WHERE case_no = ?", CASE)[0],
        "items": rows("SELECT * FROM items WHERE case_no = ?", CASE),
        "events": rows(
            f"SELECT {', '.join(EVENT_FIELDS)} FROM events WHERE case_no = ? ORDER BY id", CASE
        ),
        "actors": rows(f"SELECT {', '.join(ACTOR_FIELDS)} FROM actors"),
        "agencies": rows("SELECT * FROM agencies"),
    }
    for section, value in stored.items():
        assert canonical_json(bundle[section]) == canonical_json(value), section
    photos = [a for a in bundle["attachments"] if a["media_type"] == "image/jpeg"]
    assert [(p["name"], p["item"]) for p in photos] == [("bag1.jpg", f"{CASE}/1")]
    assert set(photos[0]) == {"sha256", "name", "size", "media_type", "event", "item"}
    assert set(bundle["report"]) == {
        "report_id", "version", "amendment", "supersedes", "original", "issued_at",
        "issued_by", "prepared_for", "reason", "places", "changes",
    }  # fmt: skip
