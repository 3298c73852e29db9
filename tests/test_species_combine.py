"""One sample's markers: combined calls, forward/reverse assembly, unique query names."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custody.cli.main import app
from custody.species import bundled_data
from species_ref.combine import MarkerCall, assemble_reads, combine_calls, revcomp, unique_names
from species_ref.reading import read_queries
from species_ref.vocab import DecisionLevel
from tests.conftest import World

S, A, G, N = (
    DecisionLevel.SPECIES,
    DecisionLevel.AMBIGUOUS,
    DecisionLevel.GENUS,
    DecisionLevel.NONE,
)


def call(marker: str, level: DecisionLevel, taxon: str | None, *cands: str) -> MarkerCall:
    return MarkerCall(f"q-{marker}", marker, "lib v1", level, taxon, tuple(cands))


def test_species_when_markers_agree_and_one_is_decisive() -> None:
    got = combine_calls(
        "S1",
        [
            call("COI-5P", S, "Manis javanica", "Manis javanica"),
            call("cytb", A, "Manis", "Manis javanica", "Manis culionensis"),
        ],
    )
    assert got.level is S and got.taxon == "Manis javanica" and not got.conflicts
    assert "called by 1 of 2 markers and contradicted by none" in got.statement
    with_none = combine_calls("S1", [call("COI-5P", S, "Manis javanica"), call("12S", N, None)])
    assert with_none.level is S


def test_conflicting_markers_are_stated() -> None:
    got = combine_calls(
        "S2", [call("COI-5P", S, "Manis javanica"), call("cytb", S, "Manis pentadactyla")]
    )
    assert got.level is G and got.taxon == "Manis"
    assert len(got.conflicts) == 2 and "disagree" in got.statement
    far = combine_calls("S3", [call("COI-5P", S, "Manis javanica"), call("12S", G, "Panthera")])
    assert far.level is N and "contradicts Manis javanica" in far.conflicts[0]


def test_no_decisive_marker_is_never_a_species() -> None:
    got = combine_calls(
        "S4",
        [
            call("COI", A, "Manis", "Manis javanica", "Manis culionensis"),
            call("cytb", A, "Manis", "Manis javanica", "Manis pentadactyla"),
        ],
    )
    assert got.level is not S and "Manis javanica" in got.statement


def _demo_sequence(prefix: str) -> str:
    records = bundled_data("demo_queries.fasta").read_text().split(">")
    (rec,) = [r for r in records if r.startswith(prefix)]
    return "".join(rec.splitlines()[1:])


def test_forward_and_reverse_reads_are_assembled(tmp_path: Path) -> None:
    seq = _demo_sequence("demo_Sphyrna_lewini_COI-5P")
    fwd, rev = tmp_path / "S9_F.fasta", tmp_path / "S9_R.fasta"
    fwd.write_text(f">S9\n{seq[:420]}\n")
    rev.write_text(f">S9\n{revcomp(seq[-420:])}\n")
    a, b = unique_names([*read_queries(fwd), *read_queries(rev)])
    assert (a.name, b.name) == ("S9_F.fasta", "S9_R.fasta")
    contig = assemble_reads(a, b)
    assert contig is not None and contig.sequence == seq
    assert "reverse-complemented" in contig.extra["overlap"]
    other = tmp_path / "other.fasta"
    other.write_text(f">x\n{_demo_sequence('demo_Panthera_tigris_COI-5P')[:400]}\n")
    assert assemble_reads(a, read_queries(other)[0]) is None


@pytest.fixture
def two_libraries(world: World, tmp_path: Path) -> CliRunner:
    runner = CliRunner()
    lines = bundled_data("demo_library.fasta").read_text().split(">")[1:]
    for name, prefix in (("coi", "|COI"), ("mt12s", "|12S")):
        path = tmp_path / f"{name}.fasta"
        path.write_text("".join(">" + r for r in lines if prefix in r.splitlines()[0]))
        assert runner.invoke(app, ["ref", "import", name, str(path)]).exit_code == 0
    return runner


def test_identify_combine_across_libraries(
    two_libraries: CliRunner, world: World, tmp_path: Path
) -> None:
    runner = two_libraries
    coi, s12 = tmp_path / "coi_q.fasta", tmp_path / "s12_q.fasta"
    coi.write_text(f">manis\n{_demo_sequence('demo_Manis_pentadactyla_COI-5P')}\n")
    s12.write_text(f">manis\n{_demo_sequence('demo_Manis_pentadactyla_12S-V5')}\n")
    args = ["identify", str(coi), str(s12), "--library", "coi", "--library", "mt12s"]
    result = runner.invoke(app, [*args, "--combine", "S1", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["coi_q.fasta", "s12_q.fasta"]
    assert {r["library_name"] for r in rows} == {"coi", "mt12s"}
    combined = rows[0]["combined"]
    assert combined["level"] == "species" and combined["taxon"] == "Manis pentadactyla"
    assert len(combined["markers"]) == 2 and not combined["conflicts"]
    # Recorded on the item: one analyse event per marker, each with the combined finding.
    item = world.item(description="Scale")
    world.hand_to_lab(item)
    recorded = runner.invoke(app, [*args, "--combine", "S1", "--item", item, "--as", "wkamau"])
    assert recorded.exit_code == 0, recorded.output
    assert "COMBINED SPECIES" in recorded.stdout
    con = sqlite3.connect(world.db_path)
    stored = [
        json.loads(d) for (d,) in con.execute("SELECT data FROM events WHERE type = 'analyse'")
    ]
    assert len(stored) == 2 and all(s["combined"]["sample"] == "S1" for s in stored)
    assert all("library_version" in s and "source" in s for s in stored)


def test_identify_combine_states_conflicts(two_libraries: CliRunner, tmp_path: Path) -> None:
    q1, q2 = tmp_path / "a.fasta", tmp_path / "b.fasta"
    q1.write_text(f">q\n{_demo_sequence('demo_Panthera_tigris_COI-5P')}\n")
    q2.write_text(f">q\n{_demo_sequence('demo_Manis_pentadactyla_12S-V5')}\n")
    result = two_libraries.invoke(
        app,
        ["identify", str(q1), str(q2), "--library", "coi", "--library", "mt12s", "--combine", "S2"],
    )
    assert result.exit_code == 0, result.output
    assert "conflict:" in result.stdout and "disagree" in result.stdout


def test_dossier_summary_states_a_conflict_between_markers(
    two_libraries: CliRunner, world: World, tmp_path: Path
) -> None:
    import re

    from pypdf import PdfReader

    from custody.dossier.build import build_dossier
    from tests.conftest import CASE

    coi, s12 = tmp_path / "coi_q.fasta", tmp_path / "s12_q.fasta"
    coi.write_text(f">q\n{_demo_sequence('demo_Panthera_tigris_COI-5P')}\n")
    s12.write_text(f">q\n{_demo_sequence('demo_Manis_pentadactyla_12S-V5')}\n")
    item = world.hand_to_lab(world.item(description="Skin"))
    args = ["--item", item, "--as", "wkamau"]
    both = ["identify", str(coi), str(s12), "--library", "coi", "--library", "mt12s"]
    recorded = two_libraries.invoke(app, [*both, "--combine", "S2", *args])
    assert recorded.exit_code == 0, recorded.output
    # The COI query on its own as well: its call must not stand for the sample.
    alone = two_libraries.invoke(app, ["identify", str(coi), "--library", "coi", *args])
    assert alone.exit_code == 0, alone.output
    out = tmp_path / "dossier.pdf"
    build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor)
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in PdfReader(out).pages))
    start = text.index("Each analysed sample's own finding")
    row = text[text.index(item, start) : text.index(f"2. Item {item}", start)]
    assert (
        "1: no combined identification: the markers disagree (COI-5P calls Panthera tigris, "
        "12S-V5 calls Manis pentadactyla)"
    ) in row
    assert "The markers of this sample disagree: no single finding." in row
    assert "combined over" not in row and "Not every analysis identifies" not in row


def test_several_libraries_need_combine(two_libraries: CliRunner, tmp_path: Path) -> None:
    q = tmp_path / "a.fasta"
    q.write_text(f">q\n{_demo_sequence('demo_Panthera_tigris_COI-5P')}\n")
    refused = two_libraries.invoke(
        app, ["identify", str(q), "--library", "coi", "--library", "mt12s"]
    )
    assert refused.exit_code == 2 and "only with --combine" in refused.output
    mapped = two_libraries.invoke(
        app, ["identify", str(q), "--library", "coi", "--combine", "S", "--map", str(q)]
    )
    assert mapped.exit_code == 2 and "drop --map" in mapped.output


def test_identify_combine_assembles_forward_and_reverse(
    two_libraries: CliRunner, tmp_path: Path
) -> None:
    seq = _demo_sequence("demo_Sphyrna_lewini_COI-5P")
    fwd, rev = tmp_path / "S9_F.fasta", tmp_path / "S9_R.fasta"
    fwd.write_text(f">S9\n{seq[:420]}\n")
    rev.write_text(f">S9\n{revcomp(seq[-420:])}\n")
    result = two_libraries.invoke(
        app,
        [
            "identify",
            str(fwd),
            str(rev),
            "--library",
            "coi",
            "--library",
            "mt12s",
            "--combine",
            "S9",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["query"] == "S9 (F+R)" and row["query_length"] == len(seq)
    assert "assembled_from" in row["source"]["details"]
    assert row["combined"]["taxon"] == row["taxon"]


def test_combine_bad_input_changes_nothing(
    two_libraries: CliRunner, world: World, tmp_path: Path
) -> None:
    q = tmp_path / "a.fasta"
    q.write_text(f">q\n{_demo_sequence('demo_Panthera_tigris_COI-5P')}\n")
    item = world.item(description="Skin")
    world.hand_to_lab(item)
    con = sqlite3.connect(world.db_path)
    before = con.execute("SELECT count(*) FROM events").fetchone()[0]
    for args, words in (
        (["--library", "coi", "--library", "nope"], "does not exist"),
        (["--library", "coi", "--library", "mt12s", "--version", "1"], "drop --version"),
    ):
        result = two_libraries.invoke(
            app, ["identify", str(q), *args, "--combine", "S", "--item", item, "--as", "wkamau"]
        )
        assert result.exit_code in (1, 2) and words in result.output
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == before
    empty = tmp_path / "empty.fasta"
    empty.write_text("")
    result = two_libraries.invoke(
        app,
        [
            "identify",
            str(q),
            str(empty),
            "--library",
            "coi",
            "--combine",
            "S",
            "--item",
            item,
            "--as",
            "wkamau",
        ],
    )
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "empty" in result.stderr
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == before


def test_curate_refuses_a_folder_as_decisions(two_libraries: CliRunner, tmp_path: Path) -> None:
    result = two_libraries.invoke(app, ["ref", "curate", "coi", "--decisions", str(tmp_path)])
    assert (
        result.exit_code == 1
        and result.stderr.count("\n") == 1
        and "is a directory; give the path of a TOML file" in result.stderr
    )
    listed = two_libraries.invoke(app, ["ref", "list", "--json"])
    assert {v["version"] for v in json.loads(listed.stdout)} == {1}


def test_identify_uses_forward_and_reverse_reads_together(
    two_libraries: CliRunner, world: World, tmp_path: Path
) -> None:
    seq = _demo_sequence("demo_Sphyrna_lewini_COI-5P")
    fwd, rev = tmp_path / "fin7_F.fasta", tmp_path / "fin7_R.fasta"
    fwd.write_text(f">fin7\n{seq[:400]}\n")
    rev.write_text(f">fin7\n{revcomp(seq[-400:])}\n")
    item = world.item(description="Fin")
    world.hand_to_lab(item)
    args = ["identify", str(fwd), str(rev), "--library", "coi", "--item", item, "--as", "wkamau"]
    result = two_libraries.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["query"] == "fin7 (F+R)" and row["query_length"] == len(seq)
    con = sqlite3.connect(world.db_path)
    assert con.execute("SELECT count(*) FROM events WHERE type = 'analyse'").fetchone()[0] == 1
