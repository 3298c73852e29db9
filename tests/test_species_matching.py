"""K-mer index and alignment: exact, reverse-complement, partial and IUPAC queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from Bio import SeqIO

from species_ref.index import KmerIndex
from species_ref.matching import Matcher
from species_ref.types import LibraryVersion, RefRecord

DATA = Path(__file__).parent / "data" / "species_match"
_COMP = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")


def _records(name: str) -> list[RefRecord]:
    out = []
    for rec in SeqIO.parse(str(DATA / name), "fasta"):
        seq_id, species, marker = rec.description.split("|")
        out.append(RefRecord(seq_id, species, marker, str(rec.seq).upper()))
    return out


def _version(records: list[RefRecord]) -> LibraryVersion:
    return LibraryVersion("match-test", 1, "sha256:test-" + str(len(records)), "", tuple(records))


def _revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def test_exact_query_hits_itself_at_full_identity() -> None:
    recs = _records("coi_panthera.fasta")
    matcher = Matcher(KmerIndex.from_records(recs))
    hits = matcher.match(recs[0].sequence)
    assert hits[0].identity == 100.0
    assert hits[0].query_coverage == 100.0
    assert hits[0].strand == "+"
    assert any(h.seq_id == recs[0].seq_id for h in hits if h.identity == 100.0)


def test_reverse_complement_is_found_on_minus_strand() -> None:
    recs = _records("coi_panthera.fasta")
    matcher = Matcher(KmerIndex.from_records(recs))
    hits = matcher.match(_revcomp(recs[3].sequence))
    assert hits[0].identity == 100.0
    assert hits[0].strand == "-"
    assert hits[0].species == recs[3].species
    assert (hits[0].query_start, hits[0].query_end) == (0, len(recs[3].sequence))


def test_partial_query_is_covered_fully_even_if_reference_is_not() -> None:
    recs = _records("coi_panthera.fasta")
    matcher = Matcher(KmerIndex.from_records(recs))
    part = recs[5].sequence[200:320]
    hit = matcher.match(part)[0]
    assert hit.identity == 100.0
    assert hit.query_coverage == 100.0
    assert hit.aligned_length == 120


def test_iupac_codes_do_not_crash_and_count_as_compatible() -> None:
    recs = _records("coi_panthera.fasta")
    matcher = Matcher(KmerIndex.from_records(recs))
    seq = list(recs[2].sequence)
    for i in (50, 150, 250, 350):
        seq[i] = "N"
    seq[100] = {"A": "R", "G": "R", "C": "Y", "T": "Y"}[seq[100]]
    hits = matcher.match("".join(seq))
    assert hits[0].identity == 100.0
    assert matcher.match("NNNNNNNNNNNNNNNNNNNNNNNNNNNNNN") == []
    assert matcher.match("ACGTRYKM") == []


def test_indel_query_gets_a_gapped_alignment() -> None:
    recs = _records("coi_panthera.fasta")
    matcher = Matcher(KmerIndex.from_records(recs))
    seq = recs[1].sequence
    mutant = seq[:300] + seq[303:]
    hit = matcher.match(mutant)[0]
    assert hit.gaps == 3
    assert hit.identity > 99.0
    assert hit.method in {"aligned", "chained"}


def test_index_cache_round_trip(tmp_path: Path) -> None:
    recs = _records("coi_panthera.fasta")
    version = _version(recs)
    (tmp_path / "kmer_index_old_k11_v1.npz").write_bytes(b"an index of an older format")
    built = KmerIndex.from_records(recs, content_hash=version.content_hash)
    first = KmerIndex.load_or_build(version, tmp_path)
    # One index directory, the older cache removed.
    assert [p.name for p in tmp_path.iterdir()] == [next(tmp_path.glob("kmer_index_*")).name]
    loaded = KmerIndex.load_or_build(version, tmp_path)
    assert loaded.content_hash == version.content_hash
    assert np.array_equal(built.postings, loaded.postings)
    assert np.array_equal(first.offsets, loaded.offsets)
    assert list(loaded.seq_ids) == [r.seq_id for r in recs]
    assert loaded.markers[3] == recs[3].marker and loaded.seq_ids[-1] == recs[-1].seq_id
    a = built.candidates(recs[4].sequence, 5)
    b = loaded.candidates(recs[4].sequence, 5)
    assert a.refs.tolist() == b.refs.tolist()
    assert Matcher(loaded).match(recs[4].sequence)[0].seq_id == recs[4].seq_id


def test_index_build_in_chunks_equals_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    # References are indexed a chunk at a time; no k-mer may span two references.
    recs = _records("coi_panthera.fasta")
    whole = KmerIndex.from_records(recs, sample=1)
    monkeypatch.setattr("species_ref.index._CHUNK_BASES", 1500)
    chunked = KmerIndex.from_records(recs, sample=1)
    assert np.array_equal(whole.offsets, chunked.offsets)
    assert np.array_equal(whole.postings, chunked.postings)
    per_ref = [len({r.sequence[i : i + 11] for i in range(len(r.sequence) - 10)}) for r in recs]
    assert whole.postings.shape[0] <= sum(per_ref)


def test_candidates_respect_exclusion_mask() -> None:
    recs = _records("coi_panthera.fasta")
    index = KmerIndex.from_records(recs)
    exclude = np.zeros(index.n_refs, dtype=bool)
    exclude[0] = True
    cands = index.candidates(recs[0].sequence, 30, exclude=exclude)
    assert 0 not in cands.refs.tolist()


def test_query_with_repeats_and_ambiguity_matches_alike_on_either_strand() -> None:
    # A repeated stretch gives k-mers at several query positions and an N breaks
    # some windows: the reverse-strand search must place every k-mer as the
    # forward search does, so both orientations find the same alignments.
    recs = _records("coi_panthera.fasta")
    matcher = Matcher(KmerIndex.from_records(recs))
    seq = recs[2].sequence
    # bases 300-315 overwritten with a copy of 100-115 (a repeated k-mer), one N
    query = seq[:300] + seq[100:115] + seq[315:400] + "N" + seq[401:600]
    plus = matcher.match(query)
    minus = matcher.match(_revcomp(query))
    assert plus and [h.strand for h in plus] == ["+"] * len(plus)
    assert [h.strand for h in minus] == ["-"] * len(minus)
    key = [(h.seq_id, round(h.identity, 6), h.aligned_length) for h in plus]
    assert key == [(h.seq_id, round(h.identity, 6), h.aligned_length) for h in minus]
    assert plus[0].seq_id == recs[2].seq_id


def test_index_build_does_not_depend_on_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks are spread over forked workers; the index is the same with one or two.
    recs = _records("coi_panthera.fasta")
    monkeypatch.setattr("species_ref.index._CHUNK_BASES", 1500)
    monkeypatch.setattr("species_ref.parallel.default_workers", lambda: 1)
    serial = KmerIndex.from_records(recs)
    monkeypatch.setattr("species_ref.parallel.default_workers", lambda: 2)
    forked = KmerIndex.from_records(recs)
    assert np.array_equal(serial.offsets, forked.offsets)
    assert np.array_equal(serial.postings, forked.postings)
    assert serial.postings.shape[0] > 0
