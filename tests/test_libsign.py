"""Signed reference libraries: a relabelled library is found even with its hashes recomputed."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

from typer.testing import CliRunner

from custody import events as ev
from custody.cli.main import app
from custody.libsign import check_version, signature_path
from custody.records import record_sample
from custody.species import (
    BUNDLED_LIBRARY,
    bundled_data,
    identify_files,
    import_reference,
    record_identifications,
    reference_store,
)
from custody.verify import verify
from tests.conftest import World

runner = CliRunner()


def _identified(world: World, tmp_path: Path) -> str:
    item = world.hand_to_lab(world.item())
    child = record_sample(world.store, item_id=item, signer=world.analyst, description="scale")
    import_reference(
        world.store,
        name=BUNDLED_LIBRARY,
        files=[bundled_data("demo_library.fasta")],
        signer=world.analyst,
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
    record_identifications(world.store, plan={child.id: results}, signer=world.analyst)
    return child.id


def _relabel(world: World, count: int = 3) -> None:
    """Relabel records and recompute every hash the manifest keeps, as a forger would."""
    from species_ref.library import RefRecord, canonical_library_hash

    vdir = reference_store(world.store).version_dir(BUNDLED_LIBRARY, 1)
    path = vdir / "records.jsonl.gz"
    rows = [json.loads(x) for x in gzip.decompress(path.read_bytes()).decode().splitlines()]
    for row in rows[:count]:
        row[1] = "Manis javanica"
    blob = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    path.write_bytes(blob)
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["records_sha256"] = "sha256:" + hashlib.sha256(blob).hexdigest()
    manifest["content_hash"] = canonical_library_hash(RefRecord(*r) for r in rows)
    (vdir / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_identification_cites_the_signed_manifest(world: World, tmp_path: Path) -> None:
    child = _identified(world, tmp_path)
    _item, events, _state = ev.item_history(world.store, child)
    (analysis,) = [e for e in events if e.type == "analyse"]
    cite = analysis.data["library_manifest"]
    assert cite["signed_by"] == "wkamau" and cite["manifest_sha256"].startswith("sha256:")
    assert check_version(world.store, name=BUNDLED_LIBRARY, version=1) == []
    assert verify(world.store).intact
    shown = runner.invoke(app, ["ref", "show", BUNDLED_LIBRARY])
    assert "manifest signed by wkamau" in shown.output and "intact" in shown.output


def test_signed_libraries_are_listed_and_a_missing_one_is_named(
    world: World, tmp_path: Path
) -> None:
    # The signatures live beside the libraries; they are not a library of their own.
    _identified(world, tmp_path)
    assert signature_path(world.store, BUNDLED_LIBRARY, 1).is_file()
    listed = runner.invoke(app, ["ref", "list"])
    assert listed.exit_code == 0, listed.output
    assert "demo" in listed.output and ".signatures" not in listed.output
    missing = runner.invoke(app, ["ref", "show", "nosuch"])
    assert missing.exit_code == 1
    assert f"Reference library 'nosuch' does not exist (available: {BUNDLED_LIBRARY})" in (
        missing.output
    )


def test_relabelled_library_with_recomputed_hashes_is_a_finding(
    world: World, tmp_path: Path
) -> None:
    _identified(world, tmp_path)
    _relabel(world)
    # species_ref alone cannot tell: every hash in the manifest matches the files
    assert reference_store(world.store).verify(BUNDLED_LIBRARY, 1) == []
    problems = check_version(world.store, name=BUNDLED_LIBRARY, version=1)
    assert any("changed after it was signed" in p for p in problems)
    report = verify(world.store)
    assert any(f.subject.startswith("library:") for f in report.findings)
    shown = runner.invoke(app, ["ref", "show", BUNDLED_LIBRARY])
    assert "changed after it was signed" in shown.output


def test_removed_or_forged_signature_is_a_finding(world: World, tmp_path: Path) -> None:
    _identified(world, tmp_path)
    path = signature_path(world.store, BUNDLED_LIBRARY, 1)
    doc = json.loads(path.read_text())
    doc["signer"] = "aotieno"
    path.write_text(json.dumps(doc))
    assert any(
        "does not verify" in p for p in check_version(world.store, name=BUNDLED_LIBRARY, version=1)
    )
    path.unlink()
    assert any("no signed manifest" in f.message for f in verify(world.store).findings)
