"""Label print jobs recorded in custody, and scans checked against the record."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custody import events as ev
from custody.cli.main import app
from custody.errors import CustodyError
from custody.labelling import GENUINE, MISMATCH, NOT_GENUINE, print_labels, scan_texts
from labels.errors import LabelError
from labels.qr import decode_file
from tests.conftest import CASE, World

LAYOUTS = ["a4-3x8", "letter-3x10", "thermal-2x1", "thermal-4x6"]


@pytest.fixture
def labelled(world: World) -> World:
    world.item(
        seal="S-100",
        weight=2.5,
        unit="kg",
        bag_no=1,
        bag_total=2,
        place="Mombasa port",
        lat=-4.06,
        lon=39.66,
    )
    world.item(
        seal="S-101", count=12, bag_no=2, bag_total=2, other_ids='{"cites_permit": "KE-2026-77"}'
    )
    return world


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_round_trips_to_genuine(labelled: World, tmp_path: Path, layout: str) -> None:
    out = tmp_path / f"{layout}.pdf"
    job = print_labels(
        labelled.store, signer=labelled.officer, out=out, case_no=CASE, layout=layout, copies=2
    )
    texts = decode_file(out)
    assert len(texts) == 4
    results = scan_texts(labelled.store, texts)
    assert [r.verdict for r in results] == [GENUINE] * 4
    assert {r.item_id for r in results} == set(job.items) == {f"{CASE}/1", f"{CASE}/2"}
    con = sqlite3.connect(labelled.db_path)
    rows = con.execute("SELECT item_id, data FROM events WHERE type = 'label-print'").fetchall()
    assert {r[0] for r in rows} == set(job.items)
    assert all(json.loads(d)["layout"] == layout and json.loads(d)["copies"] == 2 for _, d in rows)


def test_reprint_needs_a_reason_and_is_marked(labelled: World, tmp_path: Path) -> None:
    print_labels(
        labelled.store, signer=labelled.officer, out=tmp_path / "a.pdf", item_ids=[f"{CASE}/1"]
    )
    con = sqlite3.connect(labelled.db_path)
    before = con.execute("SELECT count(*) FROM events").fetchone()[0]
    with pytest.raises(CustodyError, match="needs a reason"):
        print_labels(
            labelled.store, signer=labelled.officer, out=tmp_path / "b.pdf", item_ids=[f"{CASE}/1"]
        )
    assert not (tmp_path / "b.pdf").exists()
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == before
    job = print_labels(
        labelled.store,
        signer=labelled.officer,
        out=tmp_path / "b.pdf",
        item_ids=[f"{CASE}/1"],
        reason="label torn",
    )
    assert job.reprints == {f"{CASE}/1": 1}
    from pypdf import PdfReader

    assert "REPRINT" in PdfReader(str(tmp_path / "b.pdf")).pages[0].extract_text()
    (result,) = scan_texts(labelled.store, decode_file(tmp_path / "b.pdf"))
    assert result.verdict == GENUINE and result.reprint == 1


def test_seal_change_and_disposal_make_a_mismatch(labelled: World, tmp_path: Path) -> None:
    print_labels(labelled.store, signer=labelled.officer, out=tmp_path / "a.pdf", case_no=CASE)
    texts = decode_file(tmp_path / "a.pdf")
    ev.record_unseal(
        labelled.store,
        item_id=f"{CASE}/1",
        signer=labelled.officer,
        seal="S-100",
        reason="inspection",
    )
    ev.record_dispose(
        labelled.store,
        item_id=f"{CASE}/2",
        signer=labelled.officer,
        method="returned",
        authority="court order",
    )
    by_item = {r.item_id: r for r in scan_texts(labelled.store, texts)}
    assert (
        by_item[f"{CASE}/1"].verdict == MISMATCH and "unsealed" in by_item[f"{CASE}/1"].reasons[0]
    )
    assert by_item[f"{CASE}/2"].verdict == MISMATCH and any(
        "custody is closed" in r for r in by_item[f"{CASE}/2"].reasons
    )


def test_altered_or_unknown_key_labels_are_not_genuine(labelled: World, tmp_path: Path) -> None:
    print_labels(
        labelled.store, signer=labelled.officer, out=tmp_path / "a.pdf", item_ids=[f"{CASE}/1"]
    )
    (text,) = decode_file(tmp_path / "a.pdf")
    body = text[4:]
    swapped = text[:4] + body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    (altered,) = scan_texts(labelled.store, [swapped])
    assert altered.verdict == NOT_GENUINE and altered.reasons
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from custody.events import Signer
    from custody.keys import KeyPair, fingerprint, public_raw

    rogue_key = Ed25519PrivateKey.generate()
    rogue = Signer(
        actor=labelled.officer.actor,
        key=KeyPair(
            "rogue", rogue_key, public_raw(rogue_key).hex(), fingerprint(public_raw(rogue_key))
        ),
    )
    print_labels(labelled.store, signer=rogue, out=tmp_path / "rogue.pdf", item_ids=[f"{CASE}/2"])
    (unknown,) = scan_texts(labelled.store, decode_file(tmp_path / "rogue.pdf"))
    assert unknown.verdict == NOT_GENUINE and "unknown key" in unknown.reasons[0]


def test_scan_cli_verdicts_and_bad_input(labelled: World, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "job.pdf"
    printed = runner.invoke(
        app,
        [
            "label",
            "print",
            "--case",
            CASE,
            "--layout",
            "letter-3x10",
            "-o",
            str(out),
            "--as",
            "aotieno",
        ],
    )
    assert printed.exit_code == 0, printed.output
    ok = runner.invoke(app, ["scan", str(out), "--json"])
    assert ok.exit_code == 0 and [r["verdict"] for r in json.loads(ok.stdout)] == [GENUINE, GENUINE]
    assert json.loads(ok.stdout)[0]["custodian"] == "aotieno"
    foreign = runner.invoke(app, ["scan", "--payload", "https://example.org/not-a-label"])
    assert foreign.exit_code == 1 and "NOT GENUINE" in foreign.stdout and "CL1:" in foreign.stdout
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    bad = runner.invoke(app, ["scan", str(text_file)])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ")
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), "white").save(blank)
    none = runner.invoke(app, ["scan", str(blank)])
    assert none.exit_code == 1 and "No QR code" in none.stderr
    assert (
        runner.invoke(
            app,
            [
                "label",
                "print",
                "--case",
                CASE,
                "--layout",
                "a5-1x1",
                "-o",
                str(tmp_path / "x.pdf"),
                "--as",
                "aotieno",
            ],
        ).exit_code
        == 1
    )
    with pytest.raises(LabelError):
        decode_file(text_file)


def _event_count(world: World) -> int:
    con = sqlite3.connect(world.db_path)
    try:
        return int(con.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        con.close()


def _leftovers(folder: Path) -> list[str]:
    """Temporary or backup files a print job left behind (all are dot files)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_unwritable_output_is_refused_before_anything_is_recorded(
    labelled: World, tmp_path: Path
) -> None:
    before = _event_count(labelled)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(CustodyError, match=r"is a folder; give a file name inside it") as refused:
        print_labels(labelled.store, signer=labelled.officer, out=folder, case_no=CASE)
    assert str(folder) in str(refused.value) and ".tmp" not in str(refused.value)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CustodyError, match="does not exist; create the folder first"):
        print_labels(
            labelled.store, signer=labelled.officer, out=blocker / "labels.pdf", case_no=CASE
        )
    assert _event_count(labelled) == before
    assert list(folder.iterdir()) == [] and _leftovers(tmp_path) == []
    runner = CliRunner()
    cli = runner.invoke(
        app, ["label", "print", "--case", CASE, "-o", str(folder), "--as", "aotieno"]
    )
    assert cli.exit_code == 1 and cli.stderr.startswith("error: The label PDF ")
    assert _event_count(labelled) == before
    with pytest.raises(CustodyError, match="does not exist; create the folder first"):
        print_labels(
            labelled.store, signer=labelled.officer, out=folder / "new" / "l.pdf", case_no=CASE
        )
    assert not (folder / "new").exists() and _event_count(labelled) == before
    (folder / "new").mkdir()
    job = print_labels(
        labelled.store, signer=labelled.officer, out=folder / "new" / "l.pdf", case_no=CASE
    )
    assert job.path.is_file() and _event_count(labelled) == before + 2


def test_failed_recording_leaves_no_pdf_and_keeps_an_earlier_file(
    labelled: World, tmp_path: Path
) -> None:
    out = tmp_path / "labels.pdf"
    out.write_bytes(b"earlier labels")
    before = _event_count(labelled)
    with pytest.raises(CustodyError):
        # A prosecutor may not record label prints: the job fails at the recording step.
        print_labels(labelled.store, signer=labelled.prosecutor, out=out, case_no=CASE)
    assert _event_count(labelled) == before
    assert out.read_bytes() == b"earlier labels"
    assert _leftovers(tmp_path) == []
    fresh = tmp_path / "fresh.pdf"
    with pytest.raises(CustodyError):
        print_labels(labelled.store, signer=labelled.prosecutor, out=fresh, case_no=CASE)
    assert not fresh.exists() and _event_count(labelled) == before


def test_repeated_item_ids_are_labelled_once(labelled: World, tmp_path: Path) -> None:
    item = f"{CASE}/1"
    job = print_labels(
        labelled.store,
        signer=labelled.officer,
        out=tmp_path / "a.pdf",
        item_ids=[f"{CASE}/2", item, f"{CASE}/2", item],
    )
    assert job.items == [f"{CASE}/2", item]
    assert len(decode_file(tmp_path / "a.pdf")) == 2
    con = sqlite3.connect(labelled.db_path)
    rows = con.execute("SELECT item_id, data FROM events WHERE type = 'label-print'").fetchall()
    assert sorted(r[0] for r in rows) == sorted(job.items)
    assert all(json.loads(d)["items"] == job.items for _, d in rows)


def _forged(world: World, item_id: str, *, signer: ev.Signer, reprint: int = 0) -> str:
    """A well-formed label for the item signed by a registered key, with no print recorded."""
    from sqlmodel import col, select

    from custody.labelling import record_hash
    from custody.models import Event, Item
    from custody.state import replay
    from custody.timeutil import from_utc_text
    from labels.payload import LabelPayload, sign_label

    with world.store.read() as session:
        item = session.get(Item, item_id)
        assert item is not None
        events = session.exec(
            select(Event).where(Event.chain == item_id).order_by(col(Event.seq))
        ).all()
        payload = LabelPayload(
            item_id=item.id,
            case_no=item.case_no,
            seal=replay(item_id, events).seal or "",
            seized_at=from_utc_text(item.seized_at),
            record_hash=record_hash(item),
            key_fingerprint=signer.key.fingerprint,
            reprint=reprint,
        )
    return sign_label(payload, signer.key.private)


def test_label_signed_without_a_recorded_print_is_a_mismatch(
    labelled: World, tmp_path: Path
) -> None:
    printed, never = f"{CASE}/1", f"{CASE}/2"
    print_labels(
        labelled.store, signer=labelled.officer, out=tmp_path / "a.pdf", item_ids=[printed]
    )
    (genuine,) = scan_texts(labelled.store, decode_file(tmp_path / "a.pdf"))
    assert genuine.verdict == GENUINE and genuine.reasons == []
    unprinted = _forged(labelled, never, signer=labelled.prosecutor)
    other_signer = _forged(labelled, printed, signer=labelled.prosecutor)
    wrong_generation = _forged(labelled, printed, signer=labelled.officer, reprint=1)
    results = scan_texts(labelled.store, [unprinted, other_signer, wrong_generation])
    assert [r.verdict for r in results] == [MISMATCH] * 3
    assert results[0].reasons == [
        f"No label print by pnjeri with reprint 0 is recorded for item {never}."
    ]
    assert results[1].reasons == [
        f"No label print by pnjeri with reprint 0 is recorded for item {printed}."
    ]
    assert results[2].reasons == [
        f"No label print by aotieno with reprint 1 is recorded for item {printed}."
    ]
    # Without a store only the signature can be checked.
    (offline,) = scan_texts(None, [unprinted], public_keys=[labelled.prosecutor.key.public_hex])
    assert offline.verdict == GENUINE


def test_scan_and_print_usage_errors_go_to_stderr(labelled: World, tmp_path: Path) -> None:
    runner = CliRunner()
    neither = runner.invoke(app, ["scan"])
    assert neither.exit_code == 2 and neither.stdout == ""
    assert neither.stderr.startswith("error: Give an image or PDF to scan")
    both = runner.invoke(app, ["scan", str(tmp_path / "x.png"), "--payload", "CL1:"])
    assert both.exit_code == 2 and both.stderr.startswith("error: ")
    before = _event_count(labelled)
    for copies in ("0", "101"):
        many = runner.invoke(
            app,
            ["label", "print", "--case", CASE, "--copies", copies, "-o", str(tmp_path / "m.pdf")]
            + ["--as", "aotieno"],
        )
        assert many.exit_code == 2, many.output
        assert many.stderr.startswith(f"error: --copies must be between 1 and 100, not {copies}.")
    with pytest.raises(CustodyError, match="between 1 and 100"):
        print_labels(
            labelled.store,
            signer=labelled.officer,
            out=tmp_path / "m.pdf",
            case_no=CASE,
            copies=500,
        )
    assert _event_count(labelled) == before and not (tmp_path / "m.pdf").exists()


def test_user_text_is_not_read_as_rich_markup(world: World, tmp_path: Path) -> None:
    item = world.item(seal="[/bold]")
    runner = CliRunner()
    out = tmp_path / "[red]" / "l.pdf"
    out.parent.mkdir()
    printed = runner.invoke(app, ["label", "print", item, "-o", str(out), "--as", "aotieno"])
    assert printed.exit_code == 0, printed.output
    assert f"{out}: 1 label(s)" in printed.stdout
    scanned = runner.invoke(app, ["scan", str(out)])
    assert scanned.exit_code == 0, scanned.output
    assert f"GENUINE  {item}  seal [/bold]  signed by aotieno" in scanned.stdout
    assert "seal [/bold]" in scanned.stdout.splitlines()[1]
