"""Query reading and QC: FASTA, FASTQ and Sanger .ab1 traces, including broken files."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from species_ref.errors import InputFormatError, QueryRejected, SpeciesRefError
from species_ref.reading import mott_trim, read_queries
from species_ref.vocab import QcCode

DATA = Path(__file__).parent / "data"
TRACES = DATA / "traces"
IO = DATA / "species_io"


# --- FASTA -----------------------------------------------------------------


def test_fasta_reads_every_record_cleaned_and_hashed() -> None:
    path = IO / "query_two.fasta"
    queries = read_queries(path)
    assert [q.name for q in queries] == ["KC690307_query", "mini_query"]
    full, mini = queries
    assert full.source_format == "fasta"
    assert full.qc.length == full.qc.raw_length == 384
    assert full.qc.mean_quality is None and not full.qc.trimmed
    assert full.qc.warnings == ()
    # lower case, gaps and line breaks are gone
    assert mini.sequence.isupper() and "-" not in mini.sequence and "\n" not in mini.sequence
    assert mini.qc.length == 142
    assert mini.sequence in full.sequence
    assert "short query (142 bp): mini-barcode" in mini.qc.warnings
    assert [f.code for f in mini.qc.flags] == [QcCode.SHORT]
    stored = mini.qc.to_dict()
    assert stored["warnings"] == ["short query (142 bp): mini-barcode"]
    assert stored["warning_codes"] == ["short"]
    expected = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert full.file_sha256 == mini.file_sha256 == expected


def test_fasta_ambiguous_share_is_warned(tmp_path: Path) -> None:
    seq = "ACGT" * 100  # 400 bp
    seq = seq[:390] + "NNNNNRYNNN"  # 10 ambiguous -> 2.5 %
    f = tmp_path / "amb.fasta"
    f.write_text(f">amb\n{seq}\n")
    (q,) = read_queries(f)
    assert q.qc.ambiguous_fraction == pytest.approx(0.025)
    assert "2.5 % ambiguous bases" in q.qc.warnings
    assert [f.code for f in q.qc.flags] == [QcCode.AMBIGUOUS_BASES]


def test_windows_line_endings_and_byte_order_mark(tmp_path: Path) -> None:
    f = tmp_path / "win.fasta"
    f.write_bytes(b"\xef\xbb\xbf>q1 from a Windows editor\r\nACGTACGTAC\r\nGGTT\r\n")
    (q,) = read_queries(f)
    assert (q.name, q.sequence) == ("q1", "ACGTACGTACGGTT")


def test_protein_fasta_is_rejected_naming_the_record() -> None:
    with pytest.raises(InputFormatError, match=r"P69905.*query_protein\.fasta.*not DNA"):
        read_queries(IO / "query_protein.fasta")


def test_rna_query_is_named_as_rna(tmp_path: Path) -> None:
    f = tmp_path / "rna.fasta"
    f.write_text(">transcript\nACGUACGUUAGCAUGCAUGCAUCGAUCGAUCG\n")
    with pytest.raises(InputFormatError, match=r"transcript.*is RNA .*give the DNA sequence"):
        read_queries(f)


def test_all_n_query_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "n.fasta"
    f.write_text(">nothing\nNNNNNNNNNNNNNNNNNNNN\n")
    with pytest.raises(QueryRejected, match="only ambiguous bases"):
        read_queries(f)


@pytest.mark.parametrize("content", [b"", b"   \n\n"])
def test_empty_file_is_rejected(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "empty.fasta"
    f.write_bytes(content)
    with pytest.raises(InputFormatError, match=r"empty\.fasta is empty"):
        read_queries(f)


def test_binary_and_unknown_text_are_rejected(tmp_path: Path) -> None:
    b = tmp_path / "image.png"
    b.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputFormatError, match="image.png"):
        read_queries(b)
    t = tmp_path / "notes.txt"
    t.write_text("Sample C-12 looked like pangolin scales\n")
    with pytest.raises(InputFormatError, match="notes.txt is not FASTA"):
        read_queries(t)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="does not exist"):
        read_queries(tmp_path / "nope.fasta")


# --- FASTQ -----------------------------------------------------------------


def test_fastq_is_mott_trimmed_and_reports_quality() -> None:
    (q,) = read_queries(IO / "query_good.fastq")
    assert q.source_format == "fastq"
    assert q.qc.raw_length == 384
    assert q.qc.length == 324  # the 30 Q2 bases at each end are cut
    assert q.qc.trimmed
    assert q.qc.mean_quality == 40.0
    assert q.extra["trimmed_region"] == "31-354 of 384"
    untrimmed = read_queries(IO / "query_good.fastq", trim=False)[0]
    assert untrimmed.qc.length == 384 and not untrimmed.qc.trimmed
    assert untrimmed.sequence[30:354] == q.sequence


def test_fastq_low_quality_is_warned(tmp_path: Path) -> None:
    f = tmp_path / "lowq.fastq"
    seq = "ACGT" * 100
    f.write_text(f"@lowq\n{seq}\n+\n{'/' * 400}\n")  # '/' = Q14
    (q,) = read_queries(f)
    assert "low mean quality (Q14)" in q.qc.warnings
    assert q.qc.length == 400  # Q14 error probability 0.04 is still under the 0.05 cutoff


@pytest.mark.parametrize("name", ["query_len_mismatch.fastq", "query_bad_qual.fastq"])
def test_fastq_with_broken_qualities_is_rejected(name: str) -> None:
    with pytest.raises(InputFormatError, match=rf"{name} is not valid FASTQ"):
        read_queries(IO / name)


# --- ABIF traces -------------------------------------------------------------


def test_good_trace_is_read_trimmed_and_described() -> None:
    (q,) = read_queries(TRACES / "Dmel_TDWGB557-10_1_F.ab1")
    assert q.source_format == "abi"
    assert q.qc.raw_length == 685
    assert 600 < q.qc.length < 685
    assert q.qc.mean_quality is not None and q.qc.mean_quality > 40
    assert q.extra["base_calls"].startswith("PBAS1")
    assert q.extra["instrument"] == "3730"
    assert set(q.sequence) <= set("ACGTRYSWKMBDHVN")


def test_edited_base_calls_win_over_basecaller_calls() -> None:
    (q,) = read_queries(TRACES / "mismatch_base_calls.ab1", trim=False)
    assert "user-edited" in q.extra["base_calls"]
    assert "31 positions" in q.extra["base_calls"]
    from Bio import SeqIO

    raw = SeqIO.read(TRACES / "mismatch_base_calls.ab1", "abi").annotations["abif_raw"]
    assert q.sequence == raw["PBAS1"].decode()
    assert q.sequence != raw["PBAS2"].decode()


def test_trace_detected_by_magic_not_extension(tmp_path: Path) -> None:
    renamed = tmp_path / "read.dat"
    shutil.copy(TRACES / "Dmel_TDWGB557-10_1_F.ab1", renamed)
    (q,) = read_queries(renamed)
    assert q.source_format == "abi"


@pytest.mark.parametrize("name", ["310.ab1", "empty.ab1"])
def test_all_q0_traces_have_nothing_left_after_trimming(name: str) -> None:
    with pytest.raises(QueryRejected, match=rf"{name} has no bases left after quality trimming"):
        read_queries(TRACES / name)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("fake.ab1", "does not start with the ABIF signature"),
        ("error-bad_index.ab1", "corrupt or truncated ABIF"),
        ("error-wrong_version.ab1", "unsupported version"),
        ("test.fsa", "without base calls"),
        ("forward.scf", "SCF traces are not supported; export the read as .ab1 or FASTA"),
        ("forward.ztr", "ZTR traces are not supported"),
    ],
)
def test_bad_and_unsupported_traces_are_rejected(name: str, pattern: str) -> None:
    with pytest.raises(InputFormatError, match=pattern) as exc:
        read_queries(TRACES / name)
    assert name in str(exc.value)


def test_truncated_trace_is_rejected(tmp_path: Path) -> None:
    data = (TRACES / "Dmel_TDWGB557-10_1_F.ab1").read_bytes()
    cut = tmp_path / "cut.ab1"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputFormatError, match="cut.ab1"):
        read_queries(cut)


# --- Mott trimming -------------------------------------------------------------


def test_mott_keeps_the_best_scoring_stretch() -> None:
    assert mott_trim([0] * 10) == (0, 0)
    assert mott_trim([]) == (0, 0)
    assert mott_trim([2, 2, 40, 40, 40, 2, 2]) == (2, 5)
    # one poor base inside a good stretch is kept; a long poor stretch splits it
    assert mott_trim([40] * 5 + [10] + [40] * 5) == (0, 11)
    assert mott_trim([40] * 5 + [0] * 20 + [40] * 8) == (25, 33)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=60), max_size=80))
def test_mott_range_is_valid_and_maximal(quals: list[int]) -> None:
    start, end = mott_trim(quals)
    assert 0 <= start <= end <= len(quals)

    def total(a: int, b: int) -> float:
        return sum(0.05 - 10 ** (-q / 10) for q in quals[a:b])

    best = total(start, end)
    for a in range(len(quals)):
        for b in range(a + 1, len(quals) + 1):
            assert total(a, b) <= best + 1e-9


# --- fuzz ------------------------------------------------------------------------

_PREFIXES = st.sampled_from([b"", b">", b">x\n", b"@", b"@r\nACGT\n+\n", b"ABIF", b"ABIF\x00e"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=_PREFIXES, body=st.binary(max_size=300))
def test_arbitrary_bytes_give_queries_or_a_species_ref_error(
    tmp_path: Path, prefix: bytes, body: bytes
) -> None:
    f = tmp_path / "fuzz.seq"
    f.write_bytes(prefix + body)
    try:
        queries = read_queries(f)
    except SpeciesRefError as e:
        assert str(e).endswith(".")
        return
    assert queries
    for q in queries:
        assert q.sequence and set(q.sequence) <= set("ACGTRYSWKMBDHVN")


def test_plain_seq_file_without_header_is_read_as_one_query(tmp_path: Path) -> None:
    f = tmp_path / "C-12_3_COI.seq"
    f.write_text("acgtacgtac\nGGTTNACGT\n")
    (q,) = read_queries(f)
    assert (q.name, q.sequence, q.source_format) == ("C-12_3_COI", "ACGTACGTACGGTTNACGT", "fasta")
    assert "without a header" in q.extra["note"]


_FASTA_LINES = st.lists(
    st.one_of(
        st.text(alphabet="ACGTNacgt- \t\r", max_size=12),
        st.text(alphabet="ACGT", min_size=1, max_size=8).map(lambda s: ">" + s),
        st.text(alphabet="ab >\t\r|;=", max_size=10).map(lambda s: ">" + s),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(first=st.text(alphabet="xy >\t|", max_size=10), lines=_FASTA_LINES)
def test_plain_fasta_is_split_as_biopython_parses_it(first: str, lines: list[str]) -> None:
    from Bio import SeqIO

    from species_ref.reading import _split_fasta

    text = "\n".join([">" + first, *lines])
    ours = [(r.name, r.sequence, r.extra) for r in _split_fasta(text)]
    theirs = [
        (
            rec.id or f"record {n + 1}",
            str(rec.seq),
            {"description": rec.description} if rec.description else {},
        )
        for n, rec in enumerate(SeqIO.parse(io.StringIO(text), "fasta"))
    ]
    assert ours == theirs
