"""Reference file parsing: header conventions, GenBank, BOLD TSV, rejections with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from species_ref.errors import InputFormatError, SpeciesRefError
from species_ref.refimport import (
    normalize_species,
    read_reference_file,
    rejection_counts,
)
from species_ref.types import ImportResult

IO = Path(__file__).parent / "data" / "species_io"


def _by_id(result: ImportResult) -> dict[str, tuple[str, str]]:
    return {r.seq_id: (r.species, r.marker) for r in result.records}


def _rejected(result: ImportResult) -> dict[str, str]:
    return {r.seq_id: r.reason for r in result.rejected}


def test_pipe_headers_accept_good_records_and_reject_bad_ones_with_reasons() -> None:
    result = read_reference_file(IO / "ref_pipe.fasta")
    assert _by_id(result) == {
        "MG196300": ("Manis temminckii", "COI-5P"),
        "KC690307": ("Manis pentadactyla", "COI-5P"),  # subspecies dropped
        "MK948871_cytb": ("Canis lupus", "cytb"),
    }
    rej = _rejected(result)
    assert rej["X0001"].startswith("no species-level name") and "Manis sp." in rej["X0001"]
    assert rej["X0002"].startswith("no species-level name")
    assert rej["X0003"].startswith("too short: 10 bp")
    assert rej["X0004"].startswith("too many ambiguous bases: 9.09 %")
    assert rej["X0005"].startswith("non-DNA characters")
    # every record is accounted for
    assert len(result.records) + len(result.rejected) == 8
    for rec in result.records:
        assert rec.sequence.isupper()
        assert set(rec.sequence) <= set("ACGT")  # gaps, newlines, lower case gone
        assert rec.source.startswith("ref_pipe.fasta: ")
    assert len(_seq(result, "MK948871_cytb")) == 1140  # the three gap characters were stripped


def _seq(result: ImportResult, seq_id: str) -> str:
    return next(r.sequence for r in result.records if r.seq_id == seq_id)


def test_bold_fasta_headers() -> None:
    result = read_reference_file(IO / "ref_bold.fasta")
    assert _by_id(result) == {
        "GBMIN1234-13": ("Manis tricuspis", "COI-5P"),
        "GBMIN1235-13": ("Manis tetradactyla", "COI-5P"),
    }
    assert "cf." in _rejected(result)["ABCD001-19"]


def test_genbank_style_headers_find_species_and_marker() -> None:
    result = read_reference_file(IO / "ref_genbank_headers.fasta")
    assert _by_id(result) == {
        "MG196308.1": ("Manis culionensis", "COI"),
        "MK948871.1": ("Canis lupus", "cytb"),
    }
    rej = _rejected(result)
    assert rej["KX999999.1"].startswith("unverified")
    assert rej["MK000001.1"].startswith("no species-level name")


def test_marker_argument_overrides_header_marker() -> None:
    result = read_reference_file(IO / "ref_genbank_headers.fasta", marker="COI-5P")
    assert {r.marker for r in result.records} == {"COI-5P"}


def test_sintax_headers_need_a_marker() -> None:
    with pytest.raises(
        InputFormatError, match=r"ref_sintax\.fasta has no usable records.*2 no marker"
    ):
        read_reference_file(IO / "ref_sintax.fasta")
    result = read_reference_file(IO / "ref_sintax.fasta", marker="COI-5P")
    assert _by_id(result) == {
        "KC690307": ("Manis pentadactyla", "COI-5P"),
        "MG196300": ("Manis temminckii", "COI-5P"),
    }
    assert _rejected(result)["SH0001"].startswith("no species-level name")  # genus only


def test_qiime_style_taxonomy_header(tmp_path: Path) -> None:
    f = tmp_path / "unite.fasta"
    seq = "ACGT" * 30
    f.write_text(
        f">Manis_javanica|KT445979|SH1.08FU|refs|k__Animalia;p__Chordata;g__Manis;s__Manis_javanica\n"
        f"{seq}\n"
    )
    result = read_reference_file(f, marker="12S")
    assert _by_id(result) == {"Manis_javanica": ("Manis javanica", "12S")}


def test_genbank_flat_file() -> None:
    result = read_reference_file(IO / "ref_small.gb")
    assert _by_id(result) == {
        "MG196300.1": ("Manis temminckii", "COI"),
        "MF536683.1": ("Manis tricuspis", "COI"),
    }
    assert all(len(r.sequence) == 384 for r in result.records)


def test_bold_tsv_export() -> None:
    result = read_reference_file(IO / "ref_bold.tsv")
    assert _by_id(result) == {
        "GBMIN1234-13": ("Manis tricuspis", "COI-5P"),
        "GBMIN1240-13": ("Manis temminckii", "COI-5P"),
    }
    rej = _rejected(result)
    assert rej["GBMIN1241-13"].startswith("no species-level name")
    assert rej["GBMIN1242-13"].startswith("no sequence")
    assert "MF536683" in next(r.source for r in result.records if r.seq_id == "GBMIN1234-13")


def test_bold_tsv_without_sequence_column_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "bold.tsv"
    f.write_text("processid\tspecies_name\tmarkercode\nA-1\tManis javanica\tCOI-5P\n")
    with pytest.raises(InputFormatError, match=r"bold\.tsv lacks the column\(s\) nucleotides"):
        read_reference_file(f)


def test_same_content_in_every_format_gives_the_same_records() -> None:
    gb = read_reference_file(IO / "ref_small.gb", marker="COI-5P")
    tsv = read_reference_file(IO / "ref_bold.tsv")
    seqs_gb = {r.species: r.sequence for r in gb.records}
    seqs_tsv = {r.species: r.sequence for r in tsv.records}
    assert seqs_gb == seqs_tsv


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    seq = "ACGT" * 20
    f = tmp_path / "dup.fasta"
    f.write_text(f">A1|Manis javanica|COI-5P\n{seq}\n>A1|Manis javanica|COI-5P\n{seq}T\n")
    result = read_reference_file(f)
    assert len(result.records) == 1
    assert _rejected(result)["A1"].startswith("duplicate ID")


def test_thresholds_are_configurable(tmp_path: Path) -> None:
    f = tmp_path / "t.fasta"
    f.write_text(">A1|Manis javanica|COI-5P\n" + "ACGT" * 10 + "N\n")  # 41 bp, 2.4 % N
    with pytest.raises(InputFormatError, match="1 too short"):
        read_reference_file(f)
    with pytest.raises(InputFormatError, match="1 too many ambiguous bases"):
        read_reference_file(f, min_length=40)
    assert len(read_reference_file(f, min_length=40, max_ambiguous=0.05).records) == 1


def test_zero_usable_records_names_file_and_counts_per_reason(tmp_path: Path) -> None:
    f = tmp_path / "bad.fasta"
    f.write_text(
        ">A|Manis sp.|COI-5P\n" + "ACGT" * 20 + "\n>B|Manis|COI-5P\n" + "ACGT" * 20 + "\n"
        ">C|Manis javanica|COI-5P\nACG\n"
    )
    with pytest.raises(InputFormatError) as exc:
        read_reference_file(f)
    msg = str(exc.value)
    assert "bad.fasta" in msg and "2 no species-level name" in msg and "1 too short" in msg


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"", "is empty"),
        (b"\x1f\x8b\x08\x00\x00\x00", "damaged gzip"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        (b"species,sequence\nManis javanica,ACGT\n", "not FASTA"),
    ],
)
def test_unreadable_files_are_rejected(tmp_path: Path, content: bytes, pattern: str) -> None:
    f = tmp_path / "ref.dat"
    f.write_bytes(content)
    with pytest.raises(InputFormatError, match=pattern):
        read_reference_file(f)


def test_gzipped_reference_file_is_read(tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "ref_pipe.fasta.gz"
    gz.write_bytes(gzip.compress((IO / "ref_pipe.fasta").read_bytes()))
    plain = read_reference_file(IO / "ref_pipe.fasta")
    packed = read_reference_file(gz)
    assert [(r.seq_id, r.sequence) for r in packed.records] == [
        (r.seq_id, r.sequence) for r in plain.records
    ]


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="format 'embl' is unknown"):
        read_reference_file(IO / "ref_pipe.fasta", fmt="embl")
    with pytest.raises(InputFormatError, match="does not exist"):
        read_reference_file(tmp_path / "missing.fasta")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Manis javanica", "Manis javanica"),
        ("Manis_javanica", "Manis javanica"),
        ("Panthera tigris altaica", "Panthera tigris"),
        ("Canis lupus familiaris", "Canis lupus"),
        ("Manis sp.", None),
        ("Manis sp. 3", None),
        ("Manis cf. javanica", None),
        ("Manis aff. javanica", None),
        ("Manis", None),
        ("Manis javanica2", None),
        ("environmental sample", None),
        ("uncultured Manis", None),
        ("Panthera leo x Panthera tigris", None),
        ("", None),
    ],
)
def test_species_name_normalisation(name: str, expected: str | None) -> None:
    assert normalize_species(name) == expected


def test_rejection_counts_group_by_reason() -> None:
    result = read_reference_file(IO / "ref_pipe.fasta")
    counts = rejection_counts(result.rejected)
    assert counts["no species-level name"] == 2
    assert counts["too short"] == 1


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from([b"", b">", b">A|Manis javanica|COI\n", b"LOCUS ", b"processid\t"]),
    body=st.binary(max_size=400),
)
def test_arbitrary_bytes_give_a_result_or_a_species_ref_error(
    tmp_path: Path, prefix: bytes, body: bytes
) -> None:
    f = tmp_path / "fuzz.ref"
    f.write_bytes(prefix + body)
    try:
        result = read_reference_file(f, min_length=1)
    except SpeciesRefError as e:
        assert "fuzz.ref" in str(e)
        return
    assert result.records
    for rec in result.records:
        assert rec.sequence and set(rec.sequence) <= set("ACGTRYSWKMBDHVN")
        assert normalize_species(rec.species) == rec.species
