"""Curation of reference libraries: decisions files, curated versions, synonyms, problem records."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from custody.cli.main import app
from species_ref.cites import lookup_cites
from species_ref.conflicts import find_conflicts, reidentify_records
from species_ref.curation import (
    CurationError,
    Evidence,
    curate_records,
    decisions_toml,
    propose_decisions,
    read_decisions,
    spelling_variants,
)
from species_ref.identify import Engine, identify
from species_ref.library import LibraryStore
from species_ref.reading import read_queries
from species_ref.types import RefRecord
from tests.conftest import World

WHO = 'reviewer = "A. Reviewer"\nreason = "checked"\nsource = "ref conflicts"\n'


def _mutate(rng: random.Random, seq: str, n: int) -> str:
    out = list(seq)
    for i in rng.sample(range(len(seq)), n):
        out[i] = rng.choice([b for b in "ACGT" if b != out[i]])
    return "".join(out)


def _records() -> list[RefRecord]:
    """Three well separated species, one record of Alpha one filed under Gamma delta."""
    rng = random.Random(7)
    recs: list[RefRecord] = []

    def base() -> str:
        return "".join(rng.choice("ACGT") for _ in range(600))

    alpha, gamma, manis = base(), base(), base()
    for i in range(4):
        recs.append(RefRecord(f"A{i}", "Alpha one", "COI-5P", _mutate(rng, alpha, 1)))
    for i in range(4):
        recs.append(RefRecord(f"G{i}", "Gamma delta", "COI-5P", _mutate(rng, gamma, 1)))
    recs.append(RefRecord("BAD1", "Gamma delta", "COI-5P", _mutate(rng, alpha, 1)))
    for i in range(3):
        recs.append(RefRecord(f"M{i}", "Manis pentadactyla", "COI-5P", _mutate(rng, manis, 1)))
    recs.append(RefRecord("S1", "Epsilon zeta", "COI-5P", base()))
    return recs


@pytest.fixture
def lib_store(tmp_path: Path) -> LibraryStore:
    fasta = tmp_path / "refs.fasta"
    fasta.write_text(
        "".join(f">{r.seq_id}|{r.species}|{r.marker}\n{r.sequence}\n" for r in _records())
    )
    store = LibraryStore(tmp_path / "libs")
    store.import_version("lib", [fasta])
    return store


def _decisions(tmp_path: Path, text: str, name: str = "d.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = f"""
[curation]
title = "test"

[[exclude]]
record = "BAD1"
species = "Gamma delta"
why = "misidentified"
{WHO}
[[exclude]]
record = "NOT-HERE"
why = "low quality"
{WHO}
[[synonym]]
accepted = "Alpha beta"
names = ["Manis pentadactyla"]
{WHO}
[[split]]
name = "Gamma delta"
new_name = "Gamma epsilon"
records = ["G3"]
{WHO}
"""


def test_curate_makes_a_new_version_listing_its_decisions(
    lib_store: LibraryStore, tmp_path: Path
) -> None:
    decisions = read_decisions(_decisions(tmp_path, GOOD))
    lib, result, created = lib_store.curate_version("lib", decisions)
    assert created and lib.version == 2
    ids = {r.seq_id: r for r in lib.records}
    assert "BAD1" not in ids and ids["G3"].species == "Gamma epsilon"
    assert ids["M0"].species == "Alpha beta" and "was Manis pentadactyla" in ids["M0"].source
    assert len(result.skipped) == 1 and result.skipped[0]["record"] == "NOT-HERE"
    manifest = lib_store.manifest("lib", 2)
    cur = manifest["curation"]
    assert cur["curated_from"]["version"] == 1 and cur["skipped_count"] == 1
    assert cur["decisions_sha256"].startswith("sha256:")
    assert {d["kind"] for d in cur["applied"]} == {"exclude", "synonym", "split"}
    assert all(d["reviewer"] and d["reason"] and d["source"] for d in cur["applied"])
    assert cur["synonyms"] == {"Alpha beta": ["Manis pentadactyla"]}
    again = lib_store.load("lib", 2)
    assert again.synonyms_of("Alpha beta") == ("Manis pentadactyla",)
    assert lib_store.verify("lib") == []
    # The same decisions again: nothing new.
    _lib, _res, created_again = lib_store.curate_version("lib", decisions)
    assert not created_again and [v.version for v in lib_store.versions("lib")] == [1, 2]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[[exclude\nrecord = 1", "not valid TOML"),
        (
            '[[exclude]]\nrecord = "X"\nwhy = "misidentified"\nreason = "r"\nsource = "s"\n',
            "no 'reviewer'",
        ),
        (f'[[exclude]]\nrecord = "X"\nwhy = "bored"\n{WHO}', "why = 'bored'"),
        (
            f'[[exclude]]\nrecord = "X"\n{WHO}',
            "has no 'why'; give why = 'misidentified' or 'low quality' or 'label in doubt'.",
        ),
        (
            f'[[exclude]]\nrecord = "X"\nwhy = "misidentified"\ncolour = "red"\n{WHO}',
            "unknown key 'colour'",
        ),
        (f"[[rename]]\n{WHO}", "unknown table or key 'rename'"),
        (f'[[synonym]]\naccepted = "alpha"\nnames = ["Beta gamma"]\n{WHO}', "not a binomial"),
        (f'[[synonym]]\naccepted = "Alpha beta"\nnames = []\n{WHO}', "non-empty list"),
        (
            f'[[synonym]]\naccepted = "Alpha beta"\nnames = ["Beta gamma"]\n{WHO}'
            f'[[synonym]]\naccepted = "Beta gamma"\nnames = ["Delta gamma"]\n{WHO}',
            "both as an accepted name and as a synonym",
        ),
        (
            f'[[exclude]]\nrecord = "G1"\nwhy = "misidentified"\n{WHO}'
            f'[[split]]\nname = "Gamma delta"\nnew_name = "Gamma zeta"\nrecords = ["G1"]\n{WHO}',
            "both excludes and splits",
        ),
        ("\xff\xfe", "not valid TOML"),
    ],
)
def test_bad_decisions_file_is_refused_and_nothing_changes(
    world: World, tmp_path: Path, text: str, words: str
) -> None:
    runner = CliRunner()
    fasta = tmp_path / "refs.fasta"
    fasta.write_text(
        "".join(f">{r.seq_id}|{r.species}|{r.marker}\n{r.sequence}\n" for r in _records())
    )
    assert runner.invoke(app, ["ref", "import", "lib", str(fasta)]).exit_code == 0
    path = tmp_path / "bad.toml"
    path.write_bytes(text.encode("latin-1"))
    result = runner.invoke(app, ["ref", "curate", "lib", "--decisions", str(path)])
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert words in message and message.count("\n") == 0 and message.startswith("error:")
    listed = runner.invoke(app, ["ref", "list", "--json"])
    assert [v["version"] for v in json.loads(listed.stdout)] == [1]


def test_curate_cli_reports_applied_and_skipped(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    fasta = tmp_path / "refs.fasta"
    fasta.write_text(
        "".join(f">{r.seq_id}|{r.species}|{r.marker}\n{r.sequence}\n" for r in _records())
    )
    assert runner.invoke(app, ["ref", "import", "lib", str(fasta)]).exit_code == 0
    missing = runner.invoke(app, ["ref", "curate", "lib", "--decisions", str(tmp_path / "no.toml")])
    assert missing.exit_code == 1 and "no.toml does not exist; check the path" in missing.stderr
    path = _decisions(tmp_path, GOOD)
    result = runner.invoke(app, ["ref", "curate", "lib", "--decisions", str(path)])
    assert result.exit_code == 0, result.output
    assert "lib version 2" in result.stdout
    assert (
        "3 decisions applied (1 records excluded, 1 accepted names with synonyms); 1 skipped"
        in result.stdout
    )
    again = runner.invoke(app, ["ref", "curate", "lib", "--decisions", str(path)])
    assert again.exit_code == 0 and "already holds these decisions" in again.output
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text(
        '[[exclude]]\nrecord = "NOPE_1"\nwhy = "misidentified"\nreviewer = "A Reviewer"\n'
        'reason = "identical to another genus"\nsource = "ref conflicts"\n'
    )
    skipped = runner.invoke(app, ["ref", "curate", "lib", "--decisions", str(elsewhere)])
    assert skipped.exit_code == 0, skipped.output
    assert (
        "The decision is not about a record or name in lib version 2, so it was skipped and "
        "no version was made." in " ".join(skipped.output.split())
    )
    shown = runner.invoke(app, ["ref", "show", "lib", "--json"])
    assert json.loads(shown.stdout)["curation"]["decisions_file"] == "d.toml"


def test_call_of_accepted_name_lists_synonyms_and_cites_walks_them(
    lib_store: LibraryStore, tmp_path: Path
) -> None:
    text = f'[[synonym]]\naccepted = "Alpha beta"\nnames = ["Manis pentadactyla"]\n{WHO}'
    lib, _r, _c = lib_store.curate_version("lib", read_decisions(_decisions(tmp_path, text)))
    seq = next(r.sequence for r in lib.records if r.seq_id == "M1")
    query = tmp_path / "q.fasta"
    query.write_text(f">q1\n{seq}\n")
    engine = Engine(lib, cache_dir=lib_store.cache_dir("lib", lib.version))
    (result,) = identify(read_queries(query), engine, cites=lookup_cites, workers=1)
    assert result.taxon == "Alpha beta" and result.level == "species"
    assert result.synonyms == ["Manis pentadactyla"]
    assert result.to_dict()["synonyms"] == ["Manis pentadactyla"]
    assert result.cites and result.cites.get("Alpha beta") == "I"


def test_records_not_in_the_library_are_skipped_and_counted() -> None:
    decisions = read_decisions_text(
        f'[[synonym]]\naccepted = "Nota real"\nnames = ["Nota fake"]\n{WHO}'
        f'[[split]]\nname = "Alpha one"\nnew_name = "Alpha two"\nrecords = ["ZZZ"]\n{WHO}'
    )
    result = curate_records(_records(), decisions)
    assert not result.applied and len(result.skipped) == 2
    assert len(result.records) == len(_records())


def read_decisions_text(text: str) -> tuple:  # type: ignore[type-arg]
    import tomllib

    from species_ref.curation import parse_decisions

    return parse_decisions(tomllib.loads(text))


def test_reidentification_flags_a_record_filed_under_the_wrong_name(
    lib_store: LibraryStore,
) -> None:
    lib = lib_store.load("lib")
    engine = Engine(lib, cache_dir=lib_store.cache_dir("lib", lib.version))
    problems = reidentify_records(engine, workers=1)
    flagged = {p.seq_id: p for p in problems}
    assert "BAD1" in flagged
    bad = flagged["BAD1"]
    assert bad.label == "Gamma delta" and bad.classified_as == "Alpha one" and bad.other_genus
    assert "A0" not in flagged and "G0" not in flagged
    conflicts = find_conflicts(engine.index, engine.profile)
    evidence = Evidence(
        "lib",
        tuple(conflicts),
        tuple(problems),
        {sp: sum(1 for r in lib.records if r.species == sp) for sp in lib.species},
    )
    proposed = propose_decisions([evidence], reviewer="R")
    excluded = [d for d in proposed if d.kind == "exclude"]
    assert [d.record for d in excluded] == ["BAD1"]
    assert excluded[0].note and excluded[0].species == "Gamma delta"
    text = decisions_toml(proposed, header={"title": "proposal"})
    path = Path(lib_store.root) / "proposal.toml"
    path.write_text(text)
    assert read_decisions(path).decisions == tuple(
        sorted(proposed, key=lambda d: ("exclude", "split", "synonym").index(d.kind))
    )


def _problem(seq_id: str, label: str, called: str, *, own: int = 0, as_refs: int = 1) -> Any:
    from species_ref.conflicts import ProblemRecord
    from species_ref.vocab import DecisionLevel

    return ProblemRecord(
        seq_id, "COI-5P", label, called, DecisionLevel.SPECIES, False, 100.0, 5.0, own, as_refs,
        f"Reference {seq_id}, labelled {label}, is identified as {called}.",
    )  # fmt: skip


def test_one_sequence_under_two_names_excludes_both_records_as_label_in_doubt(
    tmp_path: Path,
) -> None:
    problems = (
        _problem("N1", "Nemo japonicus", "Nemo virgatus"),
        _problem("N2", "Nemo virgatus", "Nemo japonicus"),
        # Called as a species with three references that is not called back: not a pair.
        _problem("J1", "Junco phaeonotus", "Junco hyemalis", as_refs=3),
    )
    refs = {"Nemo japonicus": 1, "Nemo virgatus": 1, "Junco phaeonotus": 1, "Junco hyemalis": 3}
    proposed = propose_decisions([Evidence("coi.fasta", (), problems, refs)], reviewer="R")
    excluded = {d.record: d for d in proposed if d.kind == "exclude"}
    assert set(excluded) == {"N1", "N2"}
    assert {d.why for d in excluded.values()} == {"label in doubt"}
    assert excluded["N1"].species == "Nemo japonicus"
    assert "one sequence under two names" in excluded["N1"].note
    assert "N2" in excluded["N1"].note
    path = tmp_path / "pairs.toml"
    path.write_text(decisions_toml(proposed, header={"title": "pairs"}))
    assert {d.why for d in read_decisions(path).decisions} == {"label in doubt"}
    # Neither name keeps a record: a query of either is no longer called as the other.
    records = [RefRecord("N1", "Nemo japonicus", "COI-5P", "ACGT" * 30)]
    records.append(RefRecord("N2", "Nemo virgatus", "COI-5P", "ACGT" * 30))
    records.append(RefRecord("K1", "Nemo kept", "COI-5P", "AGCT" * 30))
    kept = curate_records(records, read_decisions(path).decisions).records
    assert [r.seq_id for r in kept] == ["K1"]


def test_spelling_variants() -> None:
    assert spelling_variants("Labracoglossa argentiventris", "Labracoglossa argenteiventris")
    assert not spelling_variants("Labracoglossa argentiventris", "Other argenteiventris")
    assert not spelling_variants("Panthera leo", "Panthera onca")


def test_curation_error_is_a_species_ref_error() -> None:
    from species_ref.errors import SpeciesRefError

    assert issubclass(CurationError, SpeciesRefError)


def test_conflicts_reidentify_and_propose_cli(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    fasta = tmp_path / "refs.fasta"
    fasta.write_text(
        "".join(f">{r.seq_id}|{r.species}|{r.marker}\n{r.sequence}\n" for r in _records())
    )
    assert runner.invoke(app, ["ref", "import", "lib", str(fasta)]).exit_code == 0
    listed = runner.invoke(app, ["ref", "conflicts", "lib", "--reidentify", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["seq_id"] for r in rows] == ["BAD1"] and rows[0]["classified_as"] == "Alpha one"
    proposal = tmp_path / "proposal.toml"
    made = runner.invoke(
        app, ["ref", "conflicts", "lib", "--propose", str(proposal), "--reviewer", "J. Doe"]
    )
    assert made.exit_code == 0, made.output
    assert (
        'record = "BAD1"' in proposal.read_text() and 'reviewer = "J. Doe"' in proposal.read_text()
    )
    exists = runner.invoke(app, ["ref", "conflicts", "lib", "--propose", str(proposal)])
    assert exists.exit_code == 2 and "already exists" in exists.output
    curated = runner.invoke(app, ["ref", "curate", "lib", "--decisions", str(proposal)])
    assert curated.exit_code == 0, curated.output
    assert "1 decisions applied (1 records excluded" in curated.stdout


def test_ref_show_names_the_curation(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    fasta = tmp_path / "refs.fasta"
    fasta.write_text(
        "".join(f">{r.seq_id}|{r.species}|{r.marker}\n{r.sequence}\n" for r in _records())
    )
    assert runner.invoke(app, ["ref", "import", "lib", str(fasta)]).exit_code == 0
    path = _decisions(tmp_path, GOOD)
    assert runner.invoke(app, ["ref", "curate", "lib", "--decisions", str(path)]).exit_code == 0
    shown = runner.invoke(app, ["ref", "show", "lib"])
    assert "curated from version 1 with d.toml" in shown.stdout
    assert "3 decisions applied, 1 skipped, 1 record excluded" in shown.stdout


def test_shipped_refdata_decisions_are_complete() -> None:
    from custody.species import bundled_data

    decisions = read_decisions(bundled_data("curation") / "refdata.toml")
    assert len(decisions.decisions) > 50
    assert all(d.reviewer and d.reason and d.source and d.note for d in decisions.decisions)
    kinds = {d.kind for d in decisions.decisions}
    assert kinds == {"exclude", "synonym"}
    mobula = [d for d in decisions.decisions if d.accepted == "Mobula mobular"]
    assert mobula and mobula[0].names == ("Mobula japanica",)
    # Domestic forms and their wild ancestors, one species in the CITES standard
    # reference for mammals: the dog is called as Canis lupus, naming the authority.
    wolf = [d for d in decisions.decisions if d.accepted == "Canis lupus"]
    assert wolf and "Canis familiaris" in wolf[0].names
    assert "Mammal Species of the World" in wolf[0].source
    assert "does not tell them apart" in wolf[0].note


def test_out_of_memory_is_one_sentence(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from species_ref.library import LibraryStore as Store

    def no_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(Store, "import_version", no_memory)
    fasta = tmp_path / "refs.fasta"
    fasta.write_text(
        "".join(f">{r.seq_id}|{r.species}|{r.marker}\n{r.sequence}\n" for r in _records())
    )
    result = CliRunner().invoke(app, ["ref", "import", "big", str(fasta)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "too large to import" in result.stderr and "Nothing was imported" in result.stderr


def _import_with_rejections(runner: CliRunner, tmp_path: Path) -> None:
    fasta = tmp_path / "refs.fasta"
    fasta.write_text(
        "".join(f">{r.seq_id}|{r.species}|{r.marker}\n{r.sequence}\n" for r in _records())
        + ">SHORT1|Alpha one|COI-5P\nACGTACGT\n"
        + f">GEN1|Alpha|COI-5P\n{_records()[0].sequence}\n"
    )
    imported = runner.invoke(app, ["ref", "import", "lib", str(fasta)])
    assert imported.exit_code == 0, imported.output


def test_ref_show_prints_markers_and_rejections_in_words(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    _import_with_rejections(runner, tmp_path)
    shown = runner.invoke(app, ["ref", "show", "lib"], terminal_width=400)
    assert shown.exit_code == 0, shown.output
    assert "markers: COI-5P 13\n" in shown.stdout
    assert "2 records rejected: 1 no species-level name, 1 too short" in shown.stdout
    assert "{" not in shown.stdout and "'" not in shown.stdout
    assert "curated" not in shown.stdout and "not imported" not in shown.stdout
    # --json keeps the manifest's shapes
    data = json.loads(runner.invoke(app, ["ref", "show", "lib", "--json"]).stdout)
    assert data["markers"] == {"COI-5P": 13}
    assert data["rejected"] == {"no species-level name": 1, "too short": 1}


def test_ref_show_of_a_curated_version_names_the_version_its_sources_were_imported_as(
    world: World, tmp_path: Path
) -> None:
    runner = CliRunner()
    _import_with_rejections(runner, tmp_path)
    path = _decisions(tmp_path, GOOD)
    assert runner.invoke(app, ["ref", "curate", "lib", "--decisions", str(path)]).exit_code == 0
    again = tmp_path / "again.toml"
    again.write_text(f'[[exclude]]\nrecord = "A3"\nwhy = "low quality"\n{WHO}')
    assert runner.invoke(app, ["ref", "curate", "lib", "--decisions", str(again)]).exit_code == 0
    text = runner.invoke(app, ["ref", "show", "lib"], terminal_width=400).stdout
    lines = text.splitlines()
    assert lines[2:4] == ["11 sequences, 5 species", "markers: COI-5P 11"]
    assert (
        "curated from version 2 with again.toml (sha256:" in text
        # the synonyms are those the version carries, version 2's included
        and "1 decision applied, 0 skipped, 1 record excluded, 1 name merged as a synonym "
        "under 1 accepted name"
        in text
    )
    assert "  earlier curation: version 2 with d.toml (sha256:" in text
    assert "3 decisions applied" in text
    # The sources are version 1's, and said to be: version 3 was made from no file.
    said = lines.index(
        "not imported from files: its records come from version 1, imported from these sources:"
    )
    assert lines[said + 1].startswith("  source refs.fasta  sha256:")
    assert "2 records rejected at the import of version 1: 1 no species-level name" in text
    first = runner.invoke(app, ["ref", "show", "lib", "--version", "2"], terminal_width=400)
    assert "1 name merged as a synonym under 1 accepted name" in first.stdout
    assert "its records come from version 1" in first.stdout


def test_a_dossier_states_the_curation_of_the_library_version_used(
    world: World, tmp_path: Path
) -> None:
    import re

    from pypdf import PdfReader

    from custody.dossier.build import build_dossier, verify_dossier
    from custody.records import record_sample
    from custody.species import (
        curate_reference,
        identify_files,
        import_reference,
        record_identifications,
    )
    from tests.conftest import CASE

    fasta = tmp_path / "refs.fasta"
    fasta.write_text(
        "".join(f">{r.seq_id}|{r.species}|{r.marker}\n{r.sequence}\n" for r in _records())
    )
    import_reference(world.store, name="lib", files=[fasta], signer=world.analyst)
    decisions = _decisions(tmp_path, GOOD, name="decisions-2026.toml")
    curate_reference(world.store, name="lib", decisions=decisions, signer=world.custodian)
    query = tmp_path / "q.fasta"
    query.write_text(f">q1\n{_records()[9].sequence}\n")  # a Manis pentadactyla record
    item = world.hand_to_lab(world.item())
    child = record_sample(world.store, item_id=item, signer=world.analyst, description="scale")
    curated = identify_files(world.store, files=[query], library="lib")
    imported = identify_files(world.store, files=[query], library="lib", version=1)
    plan = {child.id: [*curated, *imported]}
    record_identifications(world.store, plan=plan, signer=world.analyst)
    out = tmp_path / "dossier.pdf"
    build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor)
    assert verify_dossier(out).valid
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in PdfReader(out).pages))
    section = text[text.index("Reference libraries, error rates and limitations Library") :]
    v2 = section[section.index("Library lib version 2") : section.index("Library lib version 1")]
    sha = "sha256:" + hashlib.sha256(decisions.read_bytes()).hexdigest()
    # the curator signed version 2; a signer named nowhere else in the case by handle and key
    fingerprint = world.custodian.key.fingerprint
    assert f"Manifest signed by jmwangi Signer's key fingerprint {fingerprint}" in v2
    assert (
        "Curation Curated version: made from version 1 of lib by applying a curation decisions "
        "file, not imported from source files." in v2
    )
    assert "Decisions file decisions-2026.toml" in v2
    assert sha in v2.replace(" ", "")
    assert "Decisions 3 decisions applied; 1 skipped" in v2
    assert "Records excluded 1" in v2
    assert "Synonyms 1 name merged as a synonym under 1 accepted name" in v2
    assert "{" not in v2 and "'applied'" not in v2
    v1 = section[section.index("Library lib version 1") :]
    assert "Curation None: imported from its source files." in v1
    assert "Manifest signed by Dr Wanjiru Kamau (wkamau)" in v1
