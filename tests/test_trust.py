"""The agency root of trust: registrations need its authority, signatures chain to it."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custody.chain import actor_message, actor_record
from custody.cli.main import app
from custody.domain import FindingKind
from custody.errors import PermissionDenied, StoreProblem
from custody.events import Signer, load_signer, record_note
from custody.keys import create_key
from custody.models import Actor
from custody.records import add_actor, init_store, open_case, revoke_actor
from custody.store import _make_engine, open_store, upgrade
from custody.trust import parse_trust_list
from custody.verify import verify
from tests.conftest import CASE, World

Snapshot = Callable[[Path], list[tuple[str, list[tuple[object, ...]]]]]
runner = CliRunner()


def _export(tmp_path: Path, world: World, name: str = "kws.json") -> Path:
    path = tmp_path / name
    result = runner.invoke(app, ["trust", "export", "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_init_creates_root_key_and_prints_fingerprint(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", "--agency-code", "KWS", "--agency-name", "KWS"])
    assert result.exit_code == 0, result.output
    assert "agency root key fingerprint" in result.output
    keys = list((tmp_path / "home" / "keys").glob("_agency-root.*.pem"))
    assert len(keys) == 1 and (keys[0].stat().st_mode & 0o777) == 0o600


def test_registration_without_root_key_is_refused(
    world: World, tmp_path: Path, db_snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = db_snapshot(world.db_path)
    elsewhere = tmp_path / "laptop"
    monkeypatch.setenv("CUSTODY_HOME", str(elsewhere))
    store = open_store(str(world.db_path))
    with pytest.raises(PermissionDenied, match="agency root key on this machine"):
        add_actor(store, handle="hqadmin", name="HQ", role="admin", agency_code="KWS")
    result = runner.invoke(
        app, ["actor", "add", "hqadmin", "--name", "HQ", "--role", "admin", "--agency", "KWS"]
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "error:" in result.output
    assert db_snapshot(world.db_path) == before
    assert not (elsewhere / "keys").exists() or not list((elsewhere / "keys").iterdir())


def test_only_a_certified_admin_registers_on_behalf_of_the_agency(world: World) -> None:
    admin = add_actor(world.store, handle="hq", name="HQ Admin", role="admin", agency_code="KWS")
    hq = load_signer(world.store, admin.handle)
    added = add_actor(
        world.store, handle="newcomer", name="New", role="officer", agency_code="KWS", authority=hq
    )
    assert added.handle == "newcomer"
    with pytest.raises(PermissionDenied, match="not an admin certified"):
        add_actor(
            world.store,
            handle="other",
            name="Other",
            role="officer",
            agency_code="KWS",
            authority=world.officer,
        )
    assert verify(world.store).intact


def _plant_actor(db: Path, home: Path, handle: str, role: str) -> Signer:
    """What someone who can write the SQLite file does: a self-signed actor row."""
    key = create_key(home, handle)
    record = actor_record(
        handle=handle,
        name="HQ admin",
        role=role,
        badge="",
        agency_code="KWS",
        public_key=key.public_hex,
        created_at="2026-01-01T00:00:00Z",
    )
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO actors VALUES (?,?,?,?,?,?,?,?,?)",
        (
            handle,
            "HQ admin",
            role,
            "",
            "KWS",
            key.public_hex,
            key.fingerprint,
            "2026-01-01T00:00:00Z",
            key.sign(actor_message(record)),
        ),
    )
    con.commit()
    con.close()
    actor = Actor(
        handle=handle,
        name="HQ admin",
        role=role,
        badge="",
        agency_code="KWS",
        public_key=key.public_hex,
        key_fingerprint=key.fingerprint,
        created_at="2026-01-01T00:00:00Z",
        registration_signature="",
    )
    return Signer(actor=actor, key=key)


def test_actor_planted_in_the_database_signs_nothing_trusted(world: World) -> None:
    item = world.item()
    planted = _plant_actor(world.db_path, world.home, "hqadmin", "admin")
    from custody.events import record_correction

    with world.store.read() as session:
        from sqlmodel import select

        from custody.models import Event

        seize = session.exec(select(Event).where(Event.chain == item)).first()
        assert seize is not None
    record_correction(world.store, event_id=seize.id, signer=planted, reason="typo")
    report = verify(world.store)
    untrusted = [f for f in report.findings if f.kind == FindingKind.UNTRUSTED_KEY]
    assert untrusted and "'hqadmin'" in untrusted[0].message
    assert "certified by no trusted agency root" in untrusted[0].message


def _forge(tmp_path: Path, name: str) -> World:
    """The same agency, people and case made afresh in another store: new root, new keys."""
    db, home = tmp_path / f"{name}.db", tmp_path / f"{name}-home"
    store = init_store(
        str(db), agency_code="KWS", agency_name="Kenya Wildlife Service", country="KE", home=home
    )
    os.environ["CUSTODY_HOME"] = str(home)
    people = [
        ("aotieno", "Amina Otieno", "officer"),
        ("jmwangi", "Joseph Mwangi", "custodian"),
        ("wkamau", "Dr Wanjiru Kamau", "analyst"),
        ("pnjeri", "Peris Njeri", "prosecutor"),
    ]
    for handle, full, role in people:
        add_actor(store, handle=handle, name=full, role=role, agency_code="KWS")
    signers = [load_signer(store, p[0]) for p in people]
    open_case(store, case_no=CASE, title="Pangolin scales at JKIA", signer=signers[0])
    return World(store, *signers, db_path=db, home=home)


def test_resigned_history_is_found_with_the_trust_list(world: World, tmp_path: Path) -> None:
    world.item()
    entry = _export(tmp_path, world)
    assert verify(world.store, trust=parse_trust_list(entry.read_text(), name="kws")).intact
    forged = _forge(tmp_path, "forged")
    forged.item()
    assert verify(forged.store).intact  # alone, a re-signed store looks whole
    report = verify(forged.store, trust=parse_trust_list(entry.read_text(), name="kws"))
    kinds = {f.kind for f in report.findings}
    assert FindingKind.UNTRUSTED_KEY in kinds
    assert any("not in the trust list" in f.message for f in report.findings)
    os.environ["CUSTODY_DB"] = str(forged.db_path)
    result = runner.invoke(app, ["verify", "--trust", str(entry)])
    assert result.exit_code == 1


def test_revoked_key_signs_nothing_more(world: World) -> None:
    item = world.item()
    revoke_actor(world.store, handle="aotieno", reason="laptop stolen")
    with pytest.raises(PermissionDenied, match="revoked"):
        load_signer(world.store, "aotieno")
    assert verify(world.store).intact  # what was signed before stays valid
    # the thief still has the key and writes around the library
    record_note(world.store, item_id=item, signer=world.officer, text="all fine")
    report = verify(world.store)
    assert any("was revoked" in f.message for f in report.findings)


def test_revocation_needs_authority(world: World, tmp_path: Path) -> None:
    os.environ["CUSTODY_HOME"] = str(tmp_path / "elsewhere")
    store = open_store(str(world.db_path))
    with pytest.raises(PermissionDenied):
        revoke_actor(store, handle="aotieno", reason="x")
    result = runner.invoke(app, ["actor", "revoke", "aotieno", "--reason", "x"])
    assert result.exit_code == 1 and "error:" in result.output


def test_certificate_edited_in_the_database_is_a_finding(world: World) -> None:
    con = sqlite3.connect(world.db_path)
    body = json.loads(con.execute("SELECT body FROM certificates WHERE seq = 2").fetchone()[0])
    body["subject"]["role"] = "admin"
    con.execute(
        "UPDATE certificates SET body = ? WHERE seq = 2",
        (json.dumps(body, sort_keys=True, separators=(",", ":")),),
    )
    con.commit()
    con.close()
    report = verify(world.store)
    assert any(f.kind == FindingKind.ALTERED and "Trust log" in f.message for f in report.findings)


def test_old_store_upgrades_with_actors_certified_at_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = _make_engine(f"sqlite:///{path}")
    upgrade(engine, "0002")
    engine.dispose()
    key = create_key(tmp_path / "home", "aotieno")
    record = actor_record(
        handle="aotieno",
        name="Amina Otieno",
        role="officer",
        badge="",
        agency_code="KWS",
        public_key=key.public_hex,
        created_at="2026-01-01T00:00:00Z",
    )
    con = sqlite3.connect(path)
    con.execute("INSERT INTO store_meta VALUES ('store_id', 'old-store')")
    con.execute("INSERT INTO agencies VALUES ('KWS', 'Kenya Wildlife Service', 'KE')")
    con.execute(
        "INSERT INTO actors VALUES (?,?,?,?,?,?,?,?,?)",
        (
            "aotieno",
            "Amina Otieno",
            "officer",
            "",
            "KWS",
            key.public_hex,
            key.fingerprint,
            "2026-01-01T00:00:00Z",
            key.sign(actor_message(record)),
        ),
    )
    con.commit()
    con.close()
    store = open_store(str(path))
    with pytest.raises(StoreProblem, match="no agency root"):
        add_actor(store, handle="x", name="X", role="officer")
    assert any("no agency root" in f.message for f in verify(store).findings)
    store = init_store(str(path), home=tmp_path / "home")
    con = sqlite3.connect(path)
    kind, body = con.execute("SELECT kind, body FROM certificates").fetchone()
    con.close()
    assert kind == "upgrade" and "certified by the root at upgrade time" in body
    open_case(store, case_no="K-1", title="t", signer=load_signer(store, "aotieno"))
    assert verify(store).intact


@pytest.mark.parametrize(
    "content", [b"", b"not json", b"{}", b"[]", b'{"format": "custody-trust-entry-v1"}', b"\xff"]
)
def test_bad_trust_files_are_refused(
    world: World, tmp_path: Path, db_snapshot: Snapshot, content: bytes
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    before = db_snapshot(world.db_path)
    for args in (["trust", "add", str(bad), "--yes"], ["verify", "--trust", str(bad)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "error:" in result.output and result.output.strip().count("\n") == 0
    assert db_snapshot(world.db_path) == before


def test_edited_trust_entry_and_special_files_are_refused(
    world: World, tmp_path: Path, db_snapshot: Snapshot
) -> None:
    entry = _export(tmp_path, world)
    doc = json.loads(entry.read_text())
    doc["agency"]["name"] = "Someone else"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    before = db_snapshot(world.db_path)
    for path in (edited, fifo, tmp_path / "missing.json", tmp_path):
        result = runner.invoke(app, ["trust", "add", str(path), "--yes"])
        assert result.exit_code == 1, result.output
        assert "error:" in result.output
    assert (
        "not signed by the root it names"
        in runner.invoke(app, ["trust", "add", str(edited), "--yes"]).output
    )
    result = runner.invoke(app, ["trust", "export", "-o", str(entry)])
    assert result.exit_code == 1 and "exists already" in result.output
    assert db_snapshot(world.db_path) == before


def test_trust_add_shows_fingerprint_and_pins(world: World, tmp_path: Path) -> None:
    from custody.canonical import canonical_json
    from custody.trust import export_entry

    other = init_store(
        str(tmp_path / "nmk.db"), agency_code="NMK", agency_name="NMK", home=tmp_path / "nmk"
    )
    entry = tmp_path / "other.json"
    entry.write_bytes(canonical_json(export_entry(other)))
    os.environ["CUSTODY_DB"] = str(world.db_path)
    os.environ["CUSTODY_HOME"] = str(world.home)
    fpr = json.loads(entry.read_text())["root_fingerprint"]
    result = runner.invoke(app, ["trust", "add", str(entry)], input="n\n")
    assert result.exit_code == 1 and fpr[:4] in result.output
    result = runner.invoke(app, ["trust", "add", str(entry)], input="y\n")
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["trust", "list", "--json"])
    assert fpr in listed.output
    again = runner.invoke(app, ["trust", "add", str(entry), "--yes"])
    assert again.exit_code == 1 and "pinned already" in again.output


def _dossier(world: World, out: Path) -> Path:
    from custody.dossier.build import build_dossier

    world.item()
    build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor)
    return out


def test_forged_dossier_from_a_fresh_store_is_not_trusted(world: World, tmp_path: Path) -> None:
    entry = _export(tmp_path, world)
    real = _dossier(world, tmp_path / "real.pdf")
    forged = _forge(tmp_path, "forged")
    fake = _dossier(forged, tmp_path / "fake.pdf")
    for pdf in (real, fake):
        plain = runner.invoke(app, ["dossier", "verify", str(pdf)])
        assert plain.exit_code == 0 and "VALID" in plain.output  # alone they look the same
    ok = runner.invoke(app, ["dossier", "verify", str(real), "--trust", str(entry)])
    assert ok.exit_code == 0 and ok.output.startswith("TRUSTED"), ok.output
    bad = runner.invoke(app, ["dossier", "verify", str(fake), "--trust", str(entry)])
    assert bad.exit_code == 1 and bad.output.startswith("NOT TRUSTED"), bad.output
    assert "'aotieno'" in bad.output and "'pnjeri'" in bad.output
    as_json = runner.invoke(app, ["dossier", "verify", str(fake), "--trust", str(entry), "--json"])
    assert json.loads(as_json.output)["verdict"] == "NOT TRUSTED"
    broken = tmp_path / "broken.pdf"
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0x01
    broken.write_bytes(bytes(data))
    result = runner.invoke(app, ["dossier", "verify", str(broken), "--trust", str(entry)])
    assert result.exit_code == 1 and "NOT VALID" in result.output


def test_labels_of_an_uncertified_signer_do_not_scan_genuine(world: World, tmp_path: Path) -> None:
    from custody.labelling import GENUINE, NOT_GENUINE, print_labels, scan_texts
    from labels.qr import decode_file

    world.item()
    planted = _plant_actor(world.db_path, world.home, "hqadmin", "admin")
    print_labels(world.store, signer=planted, out=tmp_path / "p.pdf", case_no=CASE)
    (result,) = scan_texts(world.store, decode_file(tmp_path / "p.pdf"))
    assert result.verdict == NOT_GENUINE
    world.item()
    print_labels(world.store, signer=world.officer, out=tmp_path / "o.pdf", item_ids=[f"{CASE}/2"])
    (result,) = scan_texts(world.store, decode_file(tmp_path / "o.pdf"))
    assert result.verdict == GENUINE


def test_dossier_signature_carries_a_certificate_issued_by_the_agency_root(
    world: World, tmp_path: Path
) -> None:
    """A PDF reader that trusts the agency root certificate validates the dossier."""
    from cryptography import x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    entry = json.loads(_export(tmp_path, world).read_text())
    root = x509.load_pem_x509_certificate(entry["root_certificate"].encode())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    pdf = _dossier(world, tmp_path / "d.pdf")
    with pdf.open("rb") as fh:
        (embedded,) = PdfFileReader(fh).embedded_signatures
        leaf = x509.load_der_x509_certificate(embedded.signer_cert.dump())
        assert leaf.issuer == root.subject
        leaf.verify_directly_issued_by(root)
        from asn1crypto import x509 as asn1_x509
        from cryptography.hazmat.primitives import serialization

        anchor = asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))
        status = validate_pdf_signature(
            embedded,
            ValidationContext(
                trust_roots=[anchor], allow_fetching=False, revocation_mode="soft-fail"
            ),
        )
        assert status.intact and status.valid and status.trusted
    assert runner.invoke(app, ["dossier", "verify", str(pdf)]).exit_code == 0


def test_scan_accepts_a_certified_key_by_fingerprint_or_public_key(
    world: World, tmp_path: Path
) -> None:
    from custody.labelling import print_labels
    from labels.qr import decode_file

    world.item()
    print_labels(world.store, signer=world.officer, out=tmp_path / "o.pdf", case_no=CASE)
    for key in (world.officer.key.fingerprint, world.officer.key.public_hex):
        result = runner.invoke(app, ["scan", str(tmp_path / "o.pdf"), "--public-key", key])
        assert result.exit_code == 0 and "GENUINE" in result.output, result.output
    assert decode_file(tmp_path / "o.pdf")


def test_revoke_refuses_bad_input_and_changes_nothing(world: World, db_snapshot: Snapshot) -> None:
    before = db_snapshot(world.db_path)
    for args, words in (
        (["actor", "revoke", "nobody", "--reason", "x"], "does not exist"),
        (["actor", "revoke", "aotieno", "--reason", " "], "needs a reason"),
        (["actor", "revoke", "aotieno", "--reason", "x", "--as", "pnjeri"], "not an admin"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and words in result.output, result.output
    assert db_snapshot(world.db_path) == before
    assert runner.invoke(app, ["actor", "revoke", "aotieno", "--reason", "left"]).exit_code == 0
    again = runner.invoke(app, ["actor", "revoke", "aotieno", "--reason", "left"])
    assert again.exit_code == 1 and "revoked already" in again.output


def test_role_change_is_a_certificate_and_history_keeps_the_old_role(
    world: World, tmp_path: Path, db_snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from custody.errors import PermissionDenied as Denied
    from custody.models import ItemCreate
    from custody.records import add_item, change_role

    spec = ItemCreate(description="Tusk")
    with pytest.raises(Denied):
        add_item(world.store, case_no=CASE, spec=spec, signer=load_signer(world.store, "pnjeri"))
    before = db_snapshot(world.db_path)
    monkeypatch.setenv("CUSTODY_HOME", str(tmp_path / "elsewhere"))
    result = runner.invoke(app, ["actor", "role", "pnjeri", "--role", "officer"])
    assert result.exit_code == 1 and "error:" in result.output
    assert db_snapshot(world.db_path) == before
    monkeypatch.setenv("CUSTODY_HOME", str(world.home))
    result = runner.invoke(app, ["actor", "role", "pnjeri", "--role", "officer"])
    assert result.exit_code == 0, result.output
    # the case she opened as prosecutor and the item she seizes as officer both verify
    item = add_item(
        world.store, case_no=CASE, spec=spec, signer=load_signer(world.store, "pnjeri")
    ).id
    assert verify(world.store).intact
    assert verify(world.store, item_id=item).intact
    change_role(world.store, handle="pnjeri", role="prosecutor")
    from custody.dossier.build import build_dossier, verify_dossier

    pdf = tmp_path / "d.pdf"
    build_dossier(world.store, case_no=CASE, out=pdf, signer=load_signer(world.store, "pnjeri"))
    assert verify_dossier(pdf).valid
    again = runner.invoke(app, ["actor", "role", "pnjeri", "--role", "prosecutor"])
    assert again.exit_code == 1 and "already" in again.output
    bad = runner.invoke(app, ["actor", "role", "pnjeri", "--role", "chief"])
    assert bad.exit_code == 1 and "does not exist" in bad.output


def test_pdf_signing_time_in_whole_seconds_counts_from_the_registration_second(
    world: World, tmp_path: Path
) -> None:
    from custody.trust import judge_bundle, trust_section

    entries = parse_trust_list(_export(tmp_path, world).read_text(), name="kws")
    with world.store.read() as session:
        section = trust_section(session)
    registered = next(
        json.loads(c["body"])["valid_from"]
        for c in section["certificates"]
        if json.loads(c["body"])["subject"]["handle"] == "pnjeri"
    )
    bundle = {"trust": section, "events": []}
    pdf_time = registered[:19] + ".000000Z"  # what a PDF signature reports
    key = world.prosecutor.key.fingerprint
    assert judge_bundle(bundle, entries, extra_signers=[("pnjeri", key, pdf_time)]).trusted


def _sql(db: Path, *statements: str) -> None:
    con = sqlite3.connect(db)
    for s in statements:
        con.execute(s)
    con.commit()
    con.close()


def test_deleting_the_newest_revocation_is_a_finding(world: World) -> None:
    assert runner.invoke(app, ["actor", "revoke", "aotieno", "--reason", "left"]).exit_code == 0
    assert runner.invoke(app, ["verify"]).exit_code == 0
    # someone with write access to the file wants the key back
    _sql(world.db_path, "DELETE FROM certificates WHERE kind = 'revoke'")
    # nor can the next act of the agency sign a new head over the shortened log
    result = runner.invoke(app, ["actor", "role", "pnjeri", "--role", "analyst"])
    assert result.exit_code == 1 and "no longer ends at its signed head" in result.output
    result = runner.invoke(app, ["verify", "--json"])
    assert result.exit_code == 1
    [finding] = json.loads(result.output)["findings"]
    assert finding["subject"] == "trust log" and finding["kind"] == "missing"
    assert "newest certificates or revocations were deleted" in finding["message"]


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (["DELETE FROM store_meta WHERE key = 'trust_head'"], "head of the trust log is missing"),
        (
            [
                "DELETE FROM certificates WHERE kind = 'revoke'",
                "DELETE FROM store_meta WHERE key = 'trust_head'",
            ],
            "head of the trust log is missing",
        ),
        (
            [
                "UPDATE store_meta SET value = replace(value, '\"seq\":', '\"seq\":1') "
                "WHERE key = 'trust_head'"
            ],
            "not signed by the agency root",
        ),
    ],
)
def test_trust_log_head_tampering_is_a_finding(
    world: World, statements: list[str], expected: str
) -> None:
    revoke_actor(world.store, handle="aotieno", reason="left")
    _sql(world.db_path, *statements)
    report = verify(world.store)
    assert any(f.subject == "trust log" and expected in f.message for f in report.findings), [
        f.message for f in report.findings
    ]


def test_trust_log_head_is_signed_by_the_admin_who_issued_the_newest_entry(
    world: World, tmp_path: Path
) -> None:
    add_actor(world.store, handle="hq", name="HQ Admin", role="admin", agency_code="KWS")
    result = runner.invoke(app, ["actor", "revoke", "pnjeri", "--reason", "left", "--as", "hq"])
    assert result.exit_code == 0, result.output
    assert verify(world.store).intact


def _entry_expiring_now(store: object, path: Path) -> Path:
    """A trust entry of `store`'s agency whose validity ends the moment it is made."""
    from custody.canonical import canonical_json
    from custody.trust import load_root_key, make_entry, store_root

    with store.read() as session:  # type: ignore[attr-defined]
        root = store_root(session)
        assert root is not None
        key = load_root_key(store.home, root)  # type: ignore[attr-defined]
        path.write_bytes(canonical_json(make_entry(session, key=key, valid_days=0)))
    return path


def test_expired_trust_entry_trusts_nothing_signed_after_it(world: World, tmp_path: Path) -> None:
    item = world.item()
    entry = _entry_expiring_now(world.store, tmp_path / "kws-expiring.json")
    until = json.loads(entry.read_text())["valid_until"]
    before = runner.invoke(app, ["verify", "--trust", str(entry)])
    assert before.exit_code == 0, before.output  # signed while the entry was valid
    record_note(world.store, item_id=item, signer=world.officer, text="after expiry")
    after = runner.invoke(app, ["verify", "--trust", str(entry), "--json"])
    assert after.exit_code == 1
    [finding] = json.loads(after.output)["findings"]
    assert finding["kind"] == FindingKind.UNTRUSTED_KEY
    assert f"valid only until {until}" in finding["message"]
    pdf = _dossier(world, tmp_path / "late.pdf")
    result = runner.invoke(app, ["dossier", "verify", str(pdf), "--trust", str(entry)])
    assert result.exit_code == 1 and result.output.startswith("NOT TRUSTED"), result.output
    assert "valid only until" in " ".join(result.output.split())
    fresh = _export(tmp_path, world)
    ok = runner.invoke(app, ["dossier", "verify", str(pdf), "--trust", str(fresh)])
    assert ok.exit_code == 0 and ok.output.startswith("TRUSTED"), ok.output


def test_expired_trust_entry_is_not_pinned_and_a_renewed_one_extends_the_pin(
    world: World, tmp_path: Path, db_snapshot: Snapshot
) -> None:
    from custody.canonical import canonical_json
    from custody.trust import export_entry

    other = init_store(
        str(tmp_path / "nmk.db"), agency_code="NMK", agency_name="NMK", home=tmp_path / "nmk"
    )
    expired = _entry_expiring_now(other, tmp_path / "nmk-expired.json")
    os.environ["CUSTODY_DB"] = str(world.db_path)
    os.environ["CUSTODY_HOME"] = str(world.home)
    before = db_snapshot(world.db_path)
    result = runner.invoke(app, ["trust", "add", str(expired), "--yes"])
    assert result.exit_code == 1 and "expired at" in result.output
    assert db_snapshot(world.db_path) == before
    first = tmp_path / "nmk.json"
    first.write_bytes(canonical_json(export_entry(other)))
    assert runner.invoke(app, ["trust", "add", str(first), "--yes"]).exit_code == 0
    renewed = tmp_path / "nmk-renewed.json"
    renewed.write_bytes(canonical_json(export_entry(other)))
    result = runner.invoke(app, ["trust", "add", str(renewed), "--yes"])
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(app, ["trust", "list", "--json"]).output)
    [nmk] = [r for r in listed if r["agency"] == "NMK"]
    assert nmk["valid_until"] == json.loads(renewed.read_text())["valid_until"]


def test_key_rotation_keeps_old_signatures_and_refuses_the_old_key_after_it(
    world: World,
) -> None:
    item = world.item()
    old = world.officer.key.fingerprint
    result = runner.invoke(app, ["actor", "rotate-key", "aotieno"])
    assert result.exit_code == 0, result.output
    new = load_signer(world.store, "aotieno")
    assert new.key.fingerprint != old
    keys = sorted(p.name for p in (world.home / "keys").glob("aotieno.*.pem"))
    assert keys == sorted([f"aotieno.{old[:16]}.pem", f"aotieno.{new.key.fingerprint[:16]}.pem"])
    assert runner.invoke(app, ["verify"]).exit_code == 0  # what the old key signed stays valid
    record_note(world.store, item_id=item, signer=new, text="with the new key")
    assert verify(world.store).intact
    # the old key file (a copy taken away) still signs, around the library
    record_note(world.store, item_id=item, signer=world.officer, text="with the old key")
    result = runner.invoke(app, ["verify", "--json"])
    assert result.exit_code == 1
    findings = json.loads(result.output)["findings"]
    assert any(
        f["kind"] == FindingKind.UNTRUSTED_KEY
        and old[:16] in f["message"]
        and "replaced by a new key" in f["message"]
        for f in findings
    ), findings


def test_labels_and_dossier_signed_before_a_key_rotation_stay_genuine_and_trusted(
    world: World, tmp_path: Path
) -> None:
    from custody.labelling import GENUINE, print_labels, scan_texts
    from labels.qr import decode_file

    item = world.item()
    print_labels(world.store, signer=world.officer, out=tmp_path / "o.pdf", item_ids=[item])
    result = runner.invoke(app, ["actor", "rotate-key", "aotieno", "--as", "pnjeri"])
    assert result.exit_code == 1 and "not an admin" in result.output  # needs authority
    assert runner.invoke(app, ["actor", "rotate-key", "aotieno"]).exit_code == 0
    (scanned,) = scan_texts(world.store, decode_file(tmp_path / "o.pdf"))
    assert scanned.verdict == GENUINE
    record_note(world.store, item_id=item, signer=load_signer(world.store, "aotieno"), text="new")
    entry = _export(tmp_path, world)
    from custody.dossier.build import build_dossier

    pdf = tmp_path / "d.pdf"
    build_dossier(world.store, case_no=CASE, out=pdf, signer=world.prosecutor)
    ok = runner.invoke(app, ["dossier", "verify", str(pdf), "--trust", str(entry)])
    assert ok.exit_code == 0 and ok.output.startswith("TRUSTED"), ok.output


def test_rotate_key_refuses_bad_input_and_changes_nothing(
    world: World, db_snapshot: Snapshot
) -> None:
    revoke_actor(world.store, handle="jmwangi", reason="left")
    before = db_snapshot(world.db_path)
    for args, message in (
        (["actor", "rotate-key", "nobody"], "does not exist"),
        (["actor", "rotate-key", "jmwangi"], "revoked"),
        (["actor", "rotate-key", "aotieno", "--as", "pnjeri"], "not an admin"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    assert db_snapshot(world.db_path) == before
