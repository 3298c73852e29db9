"""One sample's markers: combined calls, forward/reverse assembly, unique query names."""

from __future__ import annotations

import dataclasses
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
    *rows, last = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["coi_q.fasta", "s12_q.fasta"]
    assert {r["library_name"] for r in rows} == {"coi", "mt12s"}
    combined = rows[0]["combined"]
    assert combined["level"] == "species" and combined["taxon"] == "Manis pentadactyla"
    assert len(combined["markers"]) == 2 and not combined["conflicts"]
    # The sample's finding is also a line of its own, after the per-query lines.
    assert last == {"combined": combined}
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
    # Each query's sequence is kept with its call, so the defence can run it again.
    assert [s["query_sequence"] for s in stored] == [
        _demo_sequence("demo_Manis_pentadactyla_COI-5P"),
        _demo_sequence("demo_Manis_pentadactyla_12S-V5"),
    ]


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


def _summary_row(world: World, tmp_path: Path, item: str) -> str:
    """The dossier summary's row of `item`, as one line of text."""
    import re

    from pypdf import PdfReader

    from custody.dossier.build import build_dossier
    from tests.conftest import CASE

    out = tmp_path / "dossier.pdf"
    build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor)
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in PdfReader(out).pages))
    start = text.index("Each analysed sample's own finding")
    return text[text.index(item, start) : text.index(f"2. Item {item}", start)]


def test_dossier_summary_states_a_conflict_between_markers(
    two_libraries: CliRunner, world: World, tmp_path: Path
) -> None:
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
    row = _summary_row(world, tmp_path, item)
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
    row, last = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["query"] == "S9 (F+R)" and row["query_length"] == len(seq)
    assert "assembled_from" in row["source"]["details"]
    assert row["combined"]["taxon"] == row["taxon"] == last["combined"]["taxon"]


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


TRACES = Path(__file__).parent / "data" / "traces"


@pytest.mark.parametrize(
    ("reads", "pairs"),
    [
        # Names inside the traces are run numbers; the file names mark the pair.
        (
            [("4264268", "Achl_ACHLO006-09_1_F.ab1"), ("4264362", "Achl_ACHLO006-09_2_R.ab1")],
            [(0, 1, "Achl_ACHLO006-09")],
        ),
        # F/R glued to the sample name, then the plate well and run; reverse given first.
        (
            [("AT-HV1R", "AT-HV1R_D01_009.ab1"), ("AT-HV1F", "AT-HV1F_C01_011.ab1")],
            [(1, 0, "AT-HV1")],
        ),
        ([("a", "fin-F.ab1"), ("b", "fin-R.ab1")], [(0, 1, "fin")]),
        ([("a", "fin.F.ab1"), ("b", "fin.R.ab1")], [(0, 1, "fin")]),
        ([("a", "fin_fwd.ab1"), ("b", "fin_rev.ab1")], [(0, 1, "fin")]),
        # Named by their reads when their files do not tell (one FASTA file of both).
        ([("fin_F", "reads.fasta"), ("fin_R", "reads.fasta")], [(0, 1, "fin")]),
        # Not pairs: two samples, two forward reads, three reads of one stem, a bare
        # number in a file name (a sample number as often as a read number).
        ([("a", "S1_F.ab1"), ("b", "S2_R.ab1")], []),
        ([("a", "S1_1_F.ab1"), ("b", "S1_2_F.ab1")], []),
        ([("a", "S1_F.ab1"), ("b", "S1_R.ab1"), ("c", "S1-R.ab1")], []),
        ([("a", "CASE-1.ab1"), ("b", "CASE-2.ab1")], []),
    ],
)
def test_forward_and_reverse_reads_are_paired_by_file_or_read_name(
    reads: list[tuple[str, str]], pairs: list[tuple[int, int, str]]
) -> None:
    from custody.species import read_pairs

    assert read_pairs(reads) == pairs


def test_traces_paired_by_file_name_are_assembled_and_recorded_on_one_item(
    two_libraries: CliRunner, world: World, tmp_path: Path
) -> None:
    fwd, rev = TRACES / "Dmel_TDWGB557-10_1_F.ab1", TRACES / "Dmel_TDWGB557-10_2_R.ab1"
    item = world.item(description="Fly")
    world.hand_to_lab(item)
    args = ["--library", "coi", "--item", item, "--as", "wkamau", "--json"]
    result = two_libraries.invoke(app, ["identify", str(fwd), str(rev), *args])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["query"] == "Dmel_TDWGB557-10 (F+R)"
    assert row["source"]["details"]["assembled_from"] == (
        "6511753 (Dmel_TDWGB557-10_1_F.ab1) + 6511945 (Dmel_TDWGB557-10_2_R.ab1)"
    )
    con = sqlite3.connect(world.db_path)
    assert con.execute("SELECT count(*) FROM events WHERE type = 'analyse'").fetchone()[0] == 1
    # The same read under another sample's name is no pair: two samples, refused.
    other = tmp_path / "Dmel_TDWGB558-10_2_R.ab1"
    other.write_bytes(rev.read_bytes())
    refused = two_libraries.invoke(app, ["identify", str(fwd), str(other), *args])
    assert refused.exit_code == 1 and "not one sample's" in refused.stderr
    assert "(6511753 in Dmel_TDWGB557-10_1_F.ab1, 6511945 in Dmel_TDWGB558-10_2_R.ab1)" in (
        refused.stderr
    )
    assert con.execute("SELECT count(*) FROM events WHERE type = 'analyse'").fetchone()[0] == 1


def test_reads_of_one_marker_count_once() -> None:
    f, r = (MarkerCall(q, "COI-5P", "lib v1", S, "Sarda sarda", ()) for q in ("s_F", "s_R"))
    got = combine_calls("NO", [f, r])
    assert got.level is S and got.taxon == "Sarda sarda"
    assert "called by 1 of 1 marker and" in got.statement
    assert "(COI-5P (2 reads) calls Sarda sarda)" in got.statement
    with_cytb = combine_calls("NO", [f, r, call("cytb", S, "Sarda sarda")])
    assert "called by 2 of 2 markers" in with_cytb.statement
    one_silent = combine_calls("NO", [f, dataclasses.replace(r, level=N, taxon=None)])
    assert one_silent.level is S and "called by 1 of 1 marker" in one_silent.statement
    assert "COI-5P read s_R makes no identification" in one_silent.statement
    # Queries without hits are no marker's reads: each stays on its own.
    lost = [MarkerCall(q, "no marker (no hits)", "lib v1", N, None, ()) for q in ("x", "y")]
    assert "called by 1 of 3 markers" in combine_calls("NO", [f, *lost]).statement


def test_reads_of_one_marker_that_disagree_are_a_conflict() -> None:
    f = MarkerCall("s_F", "COI-5P", "lib v1", S, "Sarda sarda", ())
    r = MarkerCall("s_R", "COI-5P", "lib v1", S, "Sarda orientalis", ())
    got = combine_calls("NO", [f, r])
    assert got.level is G and got.taxon == "Sarda"
    assert got.conflicts == (
        "within COI-5P, read s_F calls Sarda sarda but read s_R calls Sarda orientalis",
    )
    assert got.statement.startswith("The reads of sample NO disagree: within COI-5P")
    # With a marker that agrees with one read, the marker's own disagreement is still stated.
    more = combine_calls("NO", [f, r, call("cytb", S, "Sarda sarda")])
    assert more.level is G and len(more.conflicts) == 2
    assert more.conflicts[0].startswith("within COI-5P")


def test_identify_combine_counts_unassembled_reads_as_one_marker(
    two_libraries: CliRunner, tmp_path: Path
) -> None:
    seq = _demo_sequence("demo_Panthera_tigris_COI-5P")
    reads = tmp_path / "skin.fasta"  # the two ends of the barcode: no overlap
    reads.write_text(f">skin_F\n{seq[:300]}\n>skin_R\n{revcomp(seq[-300:])}\n")
    args = ["identify", str(reads), "--library", "coi", "--library", "mt12s", "--combine", "S9"]
    result = two_libraries.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    *rows, last = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["skin_F", "skin_R"]
    combined = last["combined"]
    assert combined["taxon"] == "Panthera tigris" and len(combined["markers"]) == 2
    assert "called by 1 of 1 marker and" in combined["statement"]
    assert "COI-5P (2 reads) calls Panthera tigris" in combined["statement"]


def _library_record(seq_id: str) -> str:
    records = bundled_data("demo_library.fasta").read_text().split(">")
    (rec,) = [r for r in records if r.startswith(seq_id + "|")]
    return "".join(rec.splitlines()[1:])


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("COI", "COI-5P", True),
        ("COI-3P", "CO1", True),
        ("COX1", "coi-mini", True),
        ("12S", "12S-V5", True),
        ("12S-MiFish", "12s", True),
        ("cytb", "cytb-mini", True),
        ("COI-5P", "cytb", False),
        ("12S", "16S", False),
        ("ITS1", "ITS2", False),
        ("trnH-psbA", "trnH", False),  # a spacer between two genes is no region of either
        ("D-loop", "D", False),
    ],
)
def test_marker_names_of_one_gene(a: str, b: str, same: bool) -> None:
    from species_ref.markers import gene_key

    assert (gene_key(a) == gene_key(b)) is same


def test_queries_of_one_gene_are_one_marker() -> None:
    whole = MarkerCall("SL_whole", "COI", "lib v1", S, "Sphyrna lewini", ())
    part = MarkerCall("SL_coi", "COI-5P", "lib v1", S, "Sphyrna lewini", ())
    got = combine_calls("W", [whole, part])
    assert got.level is S
    assert got.statement == (
        "Sample W: Sphyrna lewini, called by 1 of 1 marker and contradicted by none "
        "(COI (2 queries: COI, COI-5P) calls Sphyrna lewini)."
    )
    assert [m["gene"] for m in got.to_dict()["markers"]] == ["COI", "COI"]
    with_cytb = combine_calls("W", [whole, part, call("cytb-mini", S, "Sphyrna lewini")])
    assert "called by 2 of 2 markers" in with_cytb.statement
    split = combine_calls("W", [whole, dataclasses.replace(part, taxon="Sphyrna mokarran")])
    assert split.level is G and split.conflicts == (
        "within COI (COI, COI-5P), query SL_whole (COI) calls Sphyrna lewini but query "
        "SL_coi (COI-5P) calls Sphyrna mokarran",
    )
    assert split.statement.startswith("The queries of one gene of sample W disagree")


def test_identify_combine_counts_coi_and_coi_5p_once(
    two_libraries: CliRunner, tmp_path: Path
) -> None:
    whole, part = tmp_path / "wolf_coi.fasta", tmp_path / "wolf_barcode.fasta"
    whole.write_text(f">wolf_coi\n{_library_record('MK948871_COI')}\n")
    part.write_text(f">wolf_barcode\n{_library_record('JF342892')}\n")
    args = ["identify", str(whole), str(part), "--library", "coi", "--library", "mt12s"]
    result = two_libraries.invoke(app, [*args, "--combine", "W", "--json"])
    assert result.exit_code == 0, result.output
    *rows, last = [json.loads(line) for line in result.stdout.splitlines()]
    combined = last["combined"]
    assert [m["marker"] for m in combined["markers"]] == ["COI", "COI-5P"]
    assert "called by 1 of 1 marker" in combined["statement"]
    assert "COI (2 queries: COI, COI-5P) calls Canis lupus" in combined["statement"]
    # Per-query lines carry the combined finding as they did before the last line was added.
    assert all(r["combined"] == combined for r in rows)


@pytest.mark.parametrize(
    "reads",
    [
        [("SL_coi", "SL_coi.fasta"), ("SL_coi2", "SL_coi2.fasta")],
        [("a", "SL_coi.ab1"), ("b", "SL_coi2.ab1")],
        [("S9_1", "reads.fasta"), ("S9_2", "reads.fasta")],
    ],
)
def test_a_bare_number_marks_no_read_direction(reads: list[tuple[str, str]]) -> None:
    from custody.species import read_pairs

    assert read_pairs(reads) == []


def test_identify_combine_never_merges_reads_not_named_forward_and_reverse(
    two_libraries: CliRunner, tmp_path: Path
) -> None:
    seq = _demo_sequence("demo_Sphyrna_lewini_COI-5P")
    one, two = tmp_path / "SL_coi.fasta", tmp_path / "SL_coi2.fasta"
    one.write_text(f">SL_coi\n{seq[:400]}\n")
    two.write_text(f">SL_coi2\n{seq[150:]}\n")  # overlaps the first, same direction
    args = ["identify", str(one), str(two), "--library", "coi", "--library", "mt12s"]
    result = two_libraries.invoke(app, [*args, "--combine", "D", "--json"])
    assert result.exit_code == 0, result.output
    *rows, last = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["SL_coi", "SL_coi2"]
    assert not any("(F+R)" in r["query"] for r in rows)
    assert "COI-5P (2 reads)" in last["combined"]["statement"]


def _traces(tmp_path: Path, **names: str) -> list[Path]:
    """Copies of fixture traces under other file names (name -> fixture file)."""
    out = []
    for name, fixture in names.items():
        path = tmp_path / f"{name}.ab1"
        path.write_bytes((TRACES / fixture).read_bytes())
        out.append(path)
    return out


def test_forward_and_reverse_reads_that_do_not_overlap_are_named_and_flagged(
    two_libraries: CliRunner, world: World, tmp_path: Path
) -> None:
    # A fly's forward read and another organism's read, named as one sample's pair.
    reads = _traces(tmp_path, X_F="Dmel_TDWGB557-10_1_F.ab1", X_R="mismatch_base_calls.ab1")
    item = world.hand_to_lab(world.item(description="Skin"))
    args = ["identify", *map(str, reads), "--library", "coi", "--item", item, "--as", "wkamau"]
    result = two_libraries.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        "warning: X_F.ab1 and X_R.ab1 are named as the forward and reverse reads of X but do "
        "not overlap, so they were not assembled; each is identified on its own."
    ) in result.stderr
    assert result.stdout.startswith("X_F ") and "\nX_R " in result.stdout
    flag = (
        "forward and reverse reads of X do not overlap (X_F.ab1 and X_R.ab1); identified separately"
    )
    assert result.stdout.count(f"flag: query QC: {flag}") == 2
    con = sqlite3.connect(world.db_path)
    stored = [
        json.loads(d) for (d,) in con.execute("SELECT data FROM events WHERE type = 'analyse'")
    ]
    assert [s["query"] for s in stored] == ["X_F", "X_R"]
    assert all(flag in s["qc"]["warnings"] for s in stored)
    assert all("reads-not-assembled" in s["qc"]["warning_codes"] for s in stored)


def test_combine_states_that_read_names_point_to_other_samples(
    two_libraries: CliRunner, world: World, tmp_path: Path
) -> None:
    reads = _traces(
        tmp_path,
        Dmel_TDWGB557_1_F="Dmel_TDWGB557-10_1_F.ab1",
        Achl_ACHLO006_2_R="Dmel_TDWGB557-10_2_R.ab1",
    )
    item = world.hand_to_lab(world.item(description="Skin"))
    base = ["identify", *map(str, reads), "--library", "coi", "--item", item, "--as", "wkamau"]
    refused = two_libraries.invoke(app, base)
    assert refused.exit_code == 1 and "not one sample's" in refused.stderr
    result = two_libraries.invoke(app, [*base, "--library", "mt12s", "--combine", "Z"])
    assert result.exit_code == 0, result.output
    assert (
        "warning: The reads' names point to 2 different samples (Dmel_TDWGB557, "
        "Achl_ACHLO006), but they are combined as one sample, Z, as asked"
    ) in result.stderr
    flag = (
        "the reads' names point to 2 different samples (Dmel_TDWGB557, Achl_ACHLO006); they "
        "were combined as sample Z because they were given as one sample"
    )
    assert f"flag: {flag}" in result.stdout
    con = sqlite3.connect(world.db_path)
    stored = [
        json.loads(d) for (d,) in con.execute("SELECT data FROM events WHERE type = 'analyse'")
    ]
    assert len(stored) == 2 and all(s["combined"]["flags"] == [flag] for s in stored)
    # Markers of one sample named by marker are no sign of two samples.
    from custody.species import read_samples

    assert read_samples([("a", "S9_COI_F.ab1"), ("b", "S9_cytb_R.ab1"), ("c", "x.fasta")]) == ["S9"]


def test_dossier_summary_states_that_reads_of_one_marker_disagree(
    two_libraries: CliRunner, world: World, tmp_path: Path
) -> None:
    tiger, lion = _demo_sequence("demo_Panthera_tigris_COI-5P"), _library_record("JQ904290")
    reads = tmp_path / "skin.fasta"  # two reads of one marker that do not overlap
    reads.write_text(f">skin_F\n{tiger[:300]}\n>skin_R\n{revcomp(lion[-300:])}\n")
    item = world.hand_to_lab(world.item(description="Skin"))
    args = ["identify", str(reads), "--library", "coi", "--library", "mt12s", "--combine", "S9"]
    recorded = two_libraries.invoke(app, [*args, "--item", item, "--as", "wkamau"])
    assert recorded.exit_code == 0, recorded.output
    assert "The reads of sample S9 disagree: within COI-5P" in recorded.stdout
    row = _summary_row(world, tmp_path, item)
    assert (
        "the reads of one marker disagree on the species (within COI-5P, read skin_F calls "
        "Panthera tigris but read skin_R calls Panthera leo)"
    ) in row
    assert "the markers disagree" not in row


def test_dossier_summary_carries_the_flag_of_a_combined_finding() -> None:
    from custody.analysis import CombinedFinding
    from custody.dossier.render import _combined_unit

    data = combine_calls(
        "Z", [call("COI-5P", S, "Sarda sarda")], flags=["the reads' names point to 2 samples"]
    ).to_dict()
    unit = _combined_unit(CombinedFinding.from_data(data), [])
    assert unit.text == (
        "Sarda sarda (species), combined over COI-5P (flag: the reads' names point to 2 samples)"
    )
