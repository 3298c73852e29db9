"""Custody between two agencies' stores: separate homes and keys, sharing only files."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from custody import events as ev
from custody.canonical import canonical_json
from custody.cli.main import app
from custody.errors import IllegalTransition, InvalidInput, PermissionDenied
from custody.exchange import create_bundle, import_bundle, read_bundle
from custody.handover import (
    actor_card,
    complete_transfer,
    countersign,
    import_actor_card,
    prepare_transfer,
    read_card,
    read_offer,
)
from custody.records import add_actor, init_store, list_items, record_sample
from custody.store import Store
from custody.trust import add_trusted, export_entry, parse_trust_list
from custody.verify import verify
from tests.conftest import CASE, World

Snapshot = Callable[[Path], list[tuple[str, list[tuple[object, ...]]]]]
runner = CliRunner()


@dataclass
class Agency:
    store: Store
    home: Path
    db: Path
    entry: Path


def _entry(store: Store, path: Path) -> Path:
    path.write_bytes(canonical_json(export_entry(store)))
    return path


def _agency(tmp_path: Path, code: str, name: str) -> Agency:
    home, db = tmp_path / f"{code}-home", tmp_path / f"{code}.db"
    store = init_store(str(db), agency_code=code, agency_name=name, country="KE", home=home)
    return Agency(store, home, db, _entry(store, tmp_path / f"{code}.trust.json"))


def _card(src: Store, dst: Store, handle: str) -> None:
    card = read_card(json.dumps(actor_card(src, handle)), name=f"{handle}.json")
    import_actor_card(dst, card)


def _pin(store: Store, entry: Path) -> None:
    add_trusted(store, parse_trust_list(entry.read_text(), name=str(entry)))


@pytest.fixture
def two(world: World, tmp_path: Path) -> tuple[Agency, Agency]:
    kws = Agency(world.store, world.home, world.db_path, _entry(world.store, tmp_path / "KWS.json"))
    nmk = _agency(tmp_path, "NMK", "National Museums of Kenya")
    add_actor(
        nmk.store, handle="bochieng", name="Brian Ochieng", role="custodian", agency_code="NMK"
    )
    add_actor(nmk.store, handle="wnduta", name="Wairimu Nduta", role="analyst", agency_code="NMK")
    _pin(kws.store, nmk.entry)
    _pin(nmk.store, kws.entry)
    _card(nmk.store, kws.store, "bochieng")
    return kws, nmk


def _hand_over(
    src: Agency, *, item: str, releaser: ev.Signer, receiver: str, receiver_home: Path
) -> dict[str, Any]:
    offer = prepare_transfer(
        src.store, item_id=item, signer=releaser, receiver=receiver, purpose="DNA analysis"
    )
    offer = read_offer(json.dumps(offer), name="offer.json")
    offer, _role = countersign(offer, handle=receiver, home=receiver_home)
    complete_transfer(src.store, offer=offer, signer=releaser)
    return offer


def _send(world: World, two: tuple[Agency, Agency], tmp_path: Path) -> tuple[str, Path]:
    kws, _nmk = two
    item = world.item(seal="S-9")
    offer = _hand_over(
        kws, item=item, releaser=world.officer, receiver="bochieng", receiver_home=two[1].home
    )
    path = tmp_path / "bundle.json"
    path.write_bytes(create_bundle(kws.store, signer=world.officer, item_ids=[item], offer=offer))
    return item, path


def test_item_crosses_to_another_agency_and_comes_back(
    world: World, two: tuple[Agency, Agency], tmp_path: Path
) -> None:
    kws, nmk = two
    item, path = _send(world, two, tmp_path)
    # The releasing store shows the item as with the other agency, and refuses acts on it.
    (view,) = [v for v in list_items(kws.store) if v.item.id == item]
    assert view.shown()["state"]["status"] == "transferred to NMK"
    with pytest.raises(IllegalTransition, match="transferred to 'bochieng' of agency NMK"):
        ev.record_note(kws.store, item_id=item, signer=world.officer, text="still here?")
    # The receiving agency imports it and goes on with the same chain.
    boch = ev.load_signer(nmk.store, "bochieng")
    result = import_bundle(nmk.store, read_bundle(path), signer=boch, name="bundle.json")
    assert result.pending == {item: "bochieng"} and result.agency == "KWS"
    ev.record_receive(nmk.store, item_id=item, signer=boch, condition="seal S-9 intact")
    wnd = ev.load_signer(nmk.store, "wnduta")
    ev.record_transfer(nmk.store, item_id=item, signer=boch, receiver=wnd)
    ev.record_receive(nmk.store, item_id=item, signer=wnd, condition="as described")
    ev.record_unseal(nmk.store, item_id=item, signer=wnd, seal="S-9", reason="sampling")
    child = record_sample(nmk.store, item_id=item, signer=wnd, description="scale fragment")
    ev.record_analysis(
        nmk.store, item_id=child.id, signer=wnd, result={"species": "Manis javanica"}
    )
    both = parse_trust_list(kws.entry.read_text(), name="k") + parse_trust_list(
        nmk.entry.read_text(), name="n"
    )
    assert verify(nmk.store).intact
    assert verify(nmk.store, trust=both).intact
    only_nmk = verify(nmk.store, trust=both[1:])
    assert any("'aotieno'" in f.message for f in only_nmk.findings)
    # Its dossier there holds KWS's events and is trusted with both roots only.
    from custody.dossier.build import build_dossier, verify_dossier

    pdf = tmp_path / "nmk.pdf"
    build_dossier(nmk.store, case_no=CASE, out=pdf, signer=wnd)
    assert verify_dossier(pdf, trust=both).verdict == "TRUSTED"
    from pypdf import PdfReader

    text = " ".join(" ".join((p.extract_text() or "").split()) for p in PdfReader(pdf).pages)
    assert "recorded by KWS" in text  # which agency recorded which part
    one = verify_dossier(pdf, trust=both[1:])
    assert one.verdict == "NOT TRUSTED" and one.trust is not None
    assert any("'aotieno'" in s for s in one.trust.untrusted)
    # Back to KWS: the chain continues in the first store ('aotieno' came with the bundle,
    # certified by the KWS root that NMK pinned).
    offer = _hand_over(nmk, item=item, releaser=wnd, receiver="aotieno", receiver_home=kws.home)
    back = tmp_path / "back.json"
    back.write_bytes(create_bundle(nmk.store, signer=wnd, item_ids=[item], offer=offer))
    imported = import_bundle(kws.store, read_bundle(back), signer=world.officer, name="back")
    assert imported.pending == {item: "aotieno"}
    ev.record_receive(kws.store, item_id=item, signer=world.officer, condition="returned")
    ev.record_note(kws.store, item_id=item, signer=world.officer, text="back in KWS stores")
    assert verify(kws.store).intact
    assert verify(kws.store, trust=both).intact


def test_cli_hand_over_with_separate_homes(
    world: World, two: tuple[Agency, Agency], tmp_path: Path
) -> None:
    kws, nmk = two
    item = world.item()
    offer = tmp_path / "offer.json"
    kws_env = {"CUSTODY_DB": str(kws.db), "CUSTODY_HOME": str(kws.home)}
    nmk_env = {"CUSTODY_DB": str(nmk.db), "CUSTODY_HOME": str(nmk.home)}
    r = runner.invoke(
        app, ["transfer", item, "--to", "bochieng", "--offer", str(offer), "--as", "aotieno"],
        env=kws_env,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["countersign", str(offer), "--as", "bochieng"], env=nmk_env)
    assert r.exit_code == 0, r.output
    bundle = tmp_path / "b.json"
    r = runner.invoke(
        app, ["complete-transfer", str(offer), "-o", str(bundle), "--as", "aotieno"], env=kws_env
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["bundle", "verify", str(bundle), "--trust", str(kws.entry)])
    assert r.exit_code == 0 and r.output.startswith("TRUSTED"), r.output
    r = runner.invoke(app, ["bundle", "verify", str(bundle), "--trust", str(nmk.entry)])
    assert r.exit_code == 1 and r.output.startswith("NOT TRUSTED"), r.output
    r = runner.invoke(app, ["bundle", "import", str(bundle), "--as", "bochieng"], env=nmk_env)
    assert r.exit_code == 0, r.output
    assert "awaiting receipt by 'bochieng'" in r.output
    r = runner.invoke(app, ["receive", item, "--condition", "ok", "--as", "bochieng"], env=nmk_env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["verify"], env=nmk_env)
    assert r.exit_code == 0, r.output
    assert "uco-core" in bundle.read_text()


def _resign(doc: dict[str, Any], signer: ev.Signer) -> bytes:
    import hashlib

    from custody.exchange import DOMAIN

    digest = hashlib.sha256(canonical_json(doc["content"])).hexdigest()
    doc["signature"]["sig"] = signer.key.sign(DOMAIN + digest.encode("ascii"))
    return canonical_json(doc)


def test_changed_truncated_or_unpinned_bundles_change_nothing(
    world: World, two: tuple[Agency, Agency], tmp_path: Path, db_snapshot: Snapshot
) -> None:
    kws, nmk = two
    item, path = _send(world, two, tmp_path)
    boch = ev.load_signer(nmk.store, "bochieng")
    before = db_snapshot(nmk.db)
    raw = path.read_bytes()
    for n in (len(raw) // 3, len(raw) // 2, len(raw) - 5):
        changed = tmp_path / f"changed-{n}.json"
        data = bytearray(raw)
        data[n] = ord("0") if data[n] != ord("0") else ord("1")
        changed.write_bytes(bytes(data))
        with pytest.raises(InvalidInput):
            import_bundle(nmk.store, read_bundle(changed), signer=boch, name="x")
    # An insider re-signs the bundle without one event: the chain shows the gap.
    doc = json.loads(raw)
    doc["content"]["events"] = [
        e for e in doc["content"]["events"] if not (e["chain"] == item and e["seq"] == 1)
    ]
    removed = tmp_path / "removed.json"
    removed.write_bytes(_resign(doc, world.officer))
    with pytest.raises(InvalidInput, match="not valid"):
        import_bundle(nmk.store, read_bundle(removed), signer=boch, name="removed")
    r = runner.invoke(
        app, ["bundle", "import", str(removed), "--as", "bochieng"],
        env={"CUSTODY_DB": str(nmk.db), "CUSTODY_HOME": str(nmk.home)},
    )  # fmt: skip
    assert r.exit_code == 1 and r.output.startswith("error:") and r.output.count("\n") == 1
    assert db_snapshot(nmk.db) == before
    # A third agency that never pinned KWS refuses it, naming the root to check.
    other = _agency(tmp_path, "UWA", "Uganda Wildlife Authority")
    add_actor(other.store, handle="okello", name="Okello", role="custodian", agency_code="UWA")
    before = db_snapshot(other.db)
    fpr = json.loads(kws.entry.read_text())["root_fingerprint"]
    with pytest.raises(PermissionDenied, match=fpr[:4]):
        import_bundle(
            other.store,
            read_bundle(path),
            signer=ev.load_signer(other.store, "okello"),
            name="bundle.json",
        )
    assert db_snapshot(other.db) == before


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"format": "x"}', b"\xff\xfe"])
def test_bad_bundle_files_are_refused(
    world: World, tmp_path: Path, db_snapshot: Snapshot, content: bytes
) -> None:
    import os

    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    before = db_snapshot(world.db_path)
    for path in (bad, fifo, tmp_path / "missing.json"):
        for args in (
            ["bundle", "import", str(path), "--as", "aotieno"],
            ["bundle", "verify", str(path)],
        ):
            r = runner.invoke(app, args)
            assert r.exit_code == 1, r.output
            assert r.output.startswith("error:") and r.output.count("\n") == 1, r.output
    assert db_snapshot(world.db_path) == before


def test_bundle_create_refuses_bad_input(world: World, tmp_path: Path) -> None:
    item = world.item()
    out = tmp_path / "copy.json"
    r = runner.invoke(app, ["bundle", "create", item, "-o", str(out), "--as", "pnjeri"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["bundle", "verify", str(out)])
    assert r.exit_code == 0 and r.output.startswith("TRUSTED"), r.output
    for args in (
        ["bundle", "create", item, "-o", str(out), "--as", "pnjeri"],
        ["bundle", "create", "NOPE/1", "-o", str(tmp_path / "n.json"), "--as", "pnjeri"],
        ["bundle", "create", "-o", str(tmp_path / "n.json"), "--as", "pnjeri"],
        ["bundle", "create", "--case", "NOPE", "-o", str(tmp_path / "n.json"), "--as", "pnjeri"],
        ["bundle", "create", item, "-o", str(tmp_path / "no" / "n.json"), "--as", "pnjeri"],
    ):
        r = runner.invoke(app, args)
        assert r.exit_code == 1 and r.output.startswith("error:"), (args, r.output)
    assert not (tmp_path / "n.json").exists()
    r = runner.invoke(app, ["bundle", "create", "--case", CASE, "-o", str(tmp_path / "c.json")])
    assert r.exit_code == 1  # no acting actor


def test_bundle_carries_a_case_uco_graph_of_its_custody(world: World, tmp_path: Path) -> None:
    import subprocess
    import sys

    item = world.item()
    ev.record_note(world.store, item_id=item, signer=world.officer, text="photographed")
    path = tmp_path / "b.json"
    path.write_bytes(create_bundle(world.store, signer=world.officer, item_ids=[item]))
    content = read_bundle(path)["content"]
    graph = content["case_uco"]["@graph"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for node in graph:
        by_type.setdefault(node["@type"], []).append(node)
    (record,) = by_type["case-investigation:ProvenanceRecord"]
    assert record["case-investigation:exhibitNumber"] == item
    actions = by_type["case-investigation:InvestigativeAction"]
    item_events = [e for e in content["events"] if e["item_id"] == item]
    assert len(actions) == len(item_events) == 2
    assert {a["uco-core:name"] for a in actions} == {"seize", "note"}
    ids = {n["@id"] for n in graph}
    for a in actions:
        assert a["uco-action:performer"]["@id"] in ids
        assert a["uco-action:result"][0]["@id"] == record["@id"]
    validator = Path(sys.executable).parent / "case_validate"
    if not validator.exists():
        pytest.skip("case-utils is not installed; the structure above was checked")
    jsonld = tmp_path / "graph.jsonld"
    jsonld.write_text(json.dumps(content["case_uco"]))
    run = subprocess.run([str(validator), str(jsonld)], capture_output=True, text=True)
    assert run.returncode == 0 and "Conforms: True" in run.stdout, run.stdout[-2000:]


def test_arbitrary_bundle_files_give_one_sentence(tmp_path: Path) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from custody.errors import CustodyError
    from custody.exchange import FORMAT, check_bundle

    path = tmp_path / "any.json"

    @settings(max_examples=60, deadline=None)
    @given(data=st.binary(max_size=300))
    def any_bytes(data: bytes) -> None:
        path.write_bytes(data)
        try:
            read_bundle(path)
        except CustodyError as exc:
            assert str(exc).endswith(".")

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=6),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=8,
    )

    @settings(max_examples=80, deadline=None)
    @given(content=st.dictionaries(st.sampled_from(["items", "events", "actors", "cases",
           "agencies", "certificates", "attachments", "offer"]), json_values), sig=json_values)  # fmt: skip
    def any_content(content: dict[str, Any], sig: Any) -> None:
        check = check_bundle({"format": FORMAT, "content": content, "signature": sig}, {})
        assert check.verdict == "NOT VALID"

    any_bytes()
    any_content()


def test_check_bundle_never_raises_on_a_changed_field(
    world: World, two: tuple[Agency, Agency], tmp_path: Path
) -> None:
    from custody.exchange import check_bundle
    from custody.trust import pinned_roots

    _item, path = _send(world, two, tmp_path)
    good = json.loads(path.read_bytes())
    with two[1].store.read() as session:
        roots = pinned_roots(session)
    assert check_bundle(good, roots).verdict == "TRUSTED"
    hostile: list[Any] = [None, 7, "x", [], {}, [1], {"a": 1}]
    content = good["content"]
    paths = [[k] for k in content]
    for section in ("events", "actors", "items", "cases", "agencies", "certificates"):
        if content[section]:
            paths += [[section, 0, k] for k in content[section][0]]
    for p in paths:
        for value in hostile:
            doc = json.loads(json.dumps(good))
            target = doc["content"]
            for key in p[:-1]:
                target = target[key]
            if target[p[-1]] == value:
                continue
            target[p[-1]] = value
            check = check_bundle(doc, roots)
            assert check.verdict != "TRUSTED", p
            assert all(s.endswith(".") for s in check.problems + check.untrusted), p
            # an insider who re-signs odd content reaches the deeper checks
            resigned = check_bundle(json.loads(_resign(doc, world.officer)), roots)
            assert all(s.endswith(".") for s in resigned.problems + resigned.untrusted), p


def test_complete_transfer_refuses_an_existing_bundle_file_before_recording(
    world: World, two: tuple[Agency, Agency], tmp_path: Path, db_snapshot: Snapshot
) -> None:
    kws, nmk = two
    item = world.item()
    offer = tmp_path / "offer.json"
    kws_env = {"CUSTODY_DB": str(kws.db), "CUSTODY_HOME": str(kws.home)}
    r = runner.invoke(
        app, ["transfer", item, "--to", "bochieng", "--offer", str(offer), "--as", "aotieno"],
        env=kws_env,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["countersign", str(offer), "--as", "bochieng"],
        env={"CUSTODY_DB": str(nmk.db), "CUSTODY_HOME": str(nmk.home)},
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    before = db_snapshot(kws.db)
    for out in (taken, tmp_path / "missing-folder" / "b.json"):
        r = runner.invoke(
            app, ["complete-transfer", str(offer), "-o", str(out), "--as", "aotieno"], env=kws_env
        )
        assert r.exit_code == 1 and r.output.startswith("error:"), r.output
    assert db_snapshot(kws.db) == before


def test_trust_entry_claiming_this_agency_is_refused(world: World, tmp_path: Path) -> None:
    impostor = _agency(tmp_path, "KWS", "Kenya Wildlife Service")
    r = runner.invoke(app, ["trust", "add", str(impostor.entry), "--yes"])
    assert r.exit_code == 1 and "own agency KWS" in r.output, r.output


def test_a_sample_crosses_with_the_chain_of_the_item_it_came_from(
    world: World, two: tuple[Agency, Agency], tmp_path: Path
) -> None:
    kws, nmk = two
    item = world.hand_to_lab(world.item())
    child = record_sample(kws.store, item_id=item, signer=world.analyst, description="scale").id
    offer = _hand_over(
        kws, item=child, releaser=world.analyst, receiver="bochieng", receiver_home=nmk.home
    )
    path = tmp_path / "sample.json"
    path.write_bytes(create_bundle(kws.store, signer=world.analyst, item_ids=[child], offer=offer))
    boch = ev.load_signer(nmk.store, "bochieng")
    result = import_bundle(nmk.store, read_bundle(path), signer=boch, name="sample.json")
    assert result.pending == {child: "bochieng"}
    ev.record_receive(nmk.store, item_id=child, signer=boch, condition="tube sealed")
    assert verify(nmk.store).intact


def test_hand_over_after_a_key_rotation_carries_both_keys(
    world: World, two: tuple[Agency, Agency], tmp_path: Path
) -> None:
    kws, nmk = two
    item = world.item()  # signed with aotieno's first key
    kws_env = {"CUSTODY_DB": str(kws.db), "CUSTODY_HOME": str(kws.home)}
    nmk_env = {"CUSTODY_DB": str(nmk.db), "CUSTODY_HOME": str(nmk.home)}
    r = runner.invoke(app, ["actor", "rotate-key", "aotieno"], env=kws_env)
    assert r.exit_code == 0, r.output
    offer = tmp_path / "offer.json"
    r = runner.invoke(
        app, ["transfer", item, "--to", "bochieng", "--offer", str(offer), "--as", "aotieno"],
        env=kws_env,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["countersign", str(offer), "--as", "bochieng"], env=nmk_env)
    assert r.exit_code == 0, r.output
    bundle = tmp_path / "b.json"
    r = runner.invoke(
        app, ["complete-transfer", str(offer), "-o", str(bundle), "--as", "aotieno"], env=kws_env
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["bundle", "verify", str(bundle), "--trust", str(kws.entry)])
    assert r.exit_code == 0 and r.output.startswith("TRUSTED"), r.output
    r = runner.invoke(app, ["bundle", "import", str(bundle), "--as", "bochieng"], env=nmk_env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["receive", item, "--condition", "ok", "--as", "bochieng"], env=nmk_env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["verify"], env=nmk_env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["verify"], env=kws_env)
    assert r.exit_code == 0, r.output
