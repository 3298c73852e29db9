"""The fast search steps give exactly what the plain computations they replace give.

Each reference computation here is the straightforward form (2-bit k-mer codes
looked up one table at a time, a dense prefix-score pass over every column, a
loop over the other hits): the search must return the same hits, to the
column, on real barcodes (tests/data) and on a synthetic library with indels,
ambiguity codes, mini-barcodes and reverse-complemented records.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from Bio import SeqIO

from species_ref.index import (
    MASK_TO_CODE,
    KmerIndex,
    encode_mask,
    kmer_codes,
    revcomp_mask,
    widen_codes,
)
from species_ref.matching import (
    MATCH,
    MISMATCH,
    Hit,
    Matcher,
    _best_segments_sparse,
    _window_keys,
    query_kmer_codes,
)
from species_ref.types import RefRecord

DATA = Path(__file__).parent / "data" / "species_match"
_COMP = str.maketrans("ACGTRYKMSWN", "TGCAYRMKSWN")


def _revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def _mutate(rng: random.Random, seq: str, rate: float) -> str:
    out = list(seq)
    for i in range(len(out)):
        if rng.random() < rate:
            out[i] = rng.choice([b for b in "ACGT" if b != out[i]])
    return "".join(out)


def _real_records() -> list[RefRecord]:
    out = []
    for name in ("coi_panthera.fasta", "12s_v5_felidae.fasta", "12s_v5_zebrasoma_ursus.fasta"):
        for rec in SeqIO.parse(str(DATA / name), "fasta"):
            seq_id, species, marker = rec.description.split("|")
            out.append(RefRecord(seq_id, species, marker, str(rec.seq).upper()))
    return out


def _synthetic_records(seed: int = 11) -> list[RefRecord]:
    """Genera of species with substitutions, indels, ambiguity codes, mini-barcodes
    and reverse-complemented records."""
    rng = random.Random(seed)
    recs: list[RefRecord] = []
    for g in range(3):
        genus = "".join(rng.choice("ACGT") for _ in range(650))
        for s in range(4):
            anc = _mutate(rng, genus, rng.uniform(0.02, 0.09))
            for i in range(rng.choice([1, 2, 5])):
                seq = _mutate(rng, anc, rng.uniform(0.0, 0.01))
                roll = rng.random()
                if roll < 0.15:
                    cut = rng.randint(60, 580)
                    seq = seq[:cut] + seq[cut + rng.choice([1, 3, 6]) :]
                elif roll < 0.25:
                    cut = rng.randint(60, 580)
                    seq = seq[:cut] + "".join(rng.choice("ACGT") for _ in range(4)) + seq[cut:]
                elif roll < 0.35:
                    start = rng.randint(0, 400)
                    seq = seq[start : start + rng.randint(120, 250)]
                elif roll < 0.45:
                    pos = rng.randint(0, len(seq) - 1)
                    seq = seq[:pos] + rng.choice("RYKMSWN") + seq[pos + 1 :]
                if rng.random() < 0.15:
                    seq = _revcomp(seq)
                recs.append(RefRecord(f"G{g}S{s}R{i}", f"Genus{g} sp{s}", "COI-5P", seq))
    return recs


def _queries(records: list[RefRecord], seed: int = 5) -> list[str]:
    """Each record as it is, mutated, cut short, reverse complemented, with an N and an
    R, with an insertion and a deletion."""
    rng = random.Random(seed)
    out: list[str] = []
    for r in records:
        seq = r.sequence
        out.append(seq)
        out.append(_mutate(rng, seq, 0.03))
        out.append(_revcomp(_mutate(rng, seq, 0.01)))
        if len(seq) > 80:
            start = rng.randint(0, len(seq) - 60)
            out.append(seq[start : start + rng.randint(40, 200)])
            p = rng.randint(20, len(seq) - 20)
            out.append(seq[:p] + "N" + seq[p + 1 : p + 30] + "R" + seq[p + 31 :])
            out.append(seq[:p] + "GATTACA" + seq[p:])
            out.append(seq[:p] + seq[p + 5 :])
    return out


@pytest.fixture(scope="module", params=["real", "synthetic"])
def records(request: Any) -> list[RefRecord]:
    return _real_records() if request.param == "real" else _synthetic_records()


# ------------------------------------------------------------------ references
def _reference_votes(
    index: KmerIndex,
    qmask: np.ndarray,
    *,
    refs: np.ndarray,
    strands: np.ndarray,
    ref_codes: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> np.ndarray | None:
    """Diagonal votes from 2-bit k-mer codes: each sampled reference window (about
    150 per reference) votes for the first query window with its code."""
    k = index.k
    qlen = int(qmask.shape[0])
    tables = {}
    for strand, mask in ((1, qmask), (-1, revcomp_mask(qmask))):
        fwd, _rev, valid = kmer_codes(MASK_TO_CODE[mask], k)
        pos = np.flatnonzero(valid)
        codes, first = np.unique(fwd[pos], return_index=True)  # first: lowest position
        tables[strand] = (codes, pos[first])
    lens = index.lengths[refs]
    width = qlen + int(lens.max()) + 1
    votes = np.zeros((refs.shape[0], width), dtype=np.int64)
    any_window = False
    for row, (ref, strand) in enumerate(zip(refs.tolist(), strands.tolist(), strict=True)):
        n_kmer = max(int(index.lengths[ref]) - k + 1, 0)
        any_window = any_window or n_kmer > 0
        fwd, _rev, valid = ref_codes[ref]
        local = np.arange(0, n_kmer, max(1, n_kmer // 150))
        local = local[valid[local]]
        codes, qpos = tables[strand]
        at = np.minimum(np.searchsorted(codes, fwd[local]), max(codes.shape[0] - 1, 0))
        if codes.shape[0] == 0:
            continue
        found = codes[at] == fwd[local]
        np.add.at(votes[row], local[found] - qpos[at[found]] + qlen, 1)
    return votes if any_window else None


def _dense_best_segment(same: np.ndarray) -> tuple[int, int, int]:
    """(columns, matches, start) of the best segment, from the prefix scores of
    every column: the first best end, then the first start reaching its score."""
    score = np.where(same, MATCH, MISMATCH)
    cs = np.concatenate(([0], np.cumsum(score)))
    low = np.minimum.accumulate(cs)
    gain = cs - low
    end = int(gain.argmax())
    if gain[end] <= 0:
        return 0, 0, 1
    start = int(np.flatnonzero(cs[: end + 1] == low[end])[0])
    return end - start, int(same[start:end].sum()), start


def _reference_conserved(
    matcher: Matcher, seq: str, best: Hit, *, others: list[Hit], min_refs: int = 5
) -> int | None:
    """`conserved_mismatches` column by column, other hit by other hit."""
    if best.method != "ungapped":
        return None
    qmask = encode_mask(seq)
    qlen = int(qmask.shape[0])
    if best.strand == "-":
        qmask = revcomp_mask(qmask)

    def oriented(h: Hit) -> tuple[int, int]:
        if h.strand == "+":
            return h.query_start, h.query_end
        return qlen - h.query_end, qlen - h.query_start

    qs, qe = oriented(best)
    pos = np.arange(qs, qe)
    rb = matcher.index.ref_mask(best.ref_index)[pos + (best.ref_start - qs)]
    mism = (qmask[pos] & rb) == 0
    if not mism.any():
        return 0
    agree = np.ones(pos.shape[0], dtype=bool)
    count = np.zeros(pos.shape[0], dtype=np.int64)
    distant = False
    for o in others:
        if o.ref_index == best.ref_index or o.strand != best.strand or o.method != "ungapped":
            continue
        oqs, oqe = oriented(o)
        lo, hi = max(qs, oqs), min(qe, oqe)
        if lo >= hi:
            continue
        shift = o.ref_start - oqs
        ob = matcher.index.ref_mask(o.ref_index)[lo + shift : hi + shift]
        agree[lo - qs : hi - qs] &= ob == rb[lo - qs : hi - qs]
        count[lo - qs : hi - qs] += 1
        distant = distant or o.identity < best.identity - 5.0
    if not distant:
        return None
    return int((mism & agree & (count >= min_refs)).sum())


def _reference_shared(
    index: KmerIndex, starts: np.ndarray, lens: np.ndarray, qorient: np.ndarray
) -> dict[int, tuple[int, int]]:
    """Shared k-mers per reference on each strand, posting by posting."""
    out: dict[int, list[int]] = {}
    for s, n, o in zip(starts.tolist(), lens.tolist(), qorient.tolist(), strict=True):
        for v in index.postings[s : s + n].tolist():
            ref, minus = divmod(v ^ o, 2)
            out.setdefault(ref, [0, 0])[minus] += 1
    return {r: (c[0], c[1]) for r, c in out.items()}


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("k", [5, 7, 8, 9, 11, 13, 15])
def test_query_kmer_codes_and_window_keys_agree_with_the_2bit_codes(k: int) -> None:
    rng = random.Random(k)
    for length in (0, k - 1, k, k + 1, 40, 700):
        for letters in ("ACGT", "ACGTACGTNRY-"):
            seq = "".join(rng.choice(letters) for _ in range(length))
            mask = encode_mask(seq)
            want = kmer_codes(MASK_TO_CODE[mask], k)
            got = query_kmer_codes(mask, k)
            for a, b in zip(want, got, strict=True):
                assert a.dtype == b.dtype and np.array_equal(a, b)
            fwd, _rev, valid = want
            keys = _window_keys(mask, np.arange(max(length - k + 1, 0)), k)
            ok = np.flatnonzero(valid)
            # equal keys exactly where the codes are equal, among A/C/G/T windows ...
            same_key = keys[ok][:, None] == keys[ok][None, :]
            same_code = fwd[ok][:, None] == fwd[ok][None, :]
            assert np.array_equal(same_key, same_code)
            # ... and a window with anything else never has the key of one of them
            assert not np.isin(keys[~valid], keys[ok]).any()


def test_window_keys_use_only_the_window_bases() -> None:
    # widen_codes and the keys read the same k bases: a window at the very end of
    # the masks is keyed without reading past it.
    mask = encode_mask("ACGTTGCAACGTAC")
    for k in (8, 11, 14):
        keys = _window_keys(mask, np.array([0, mask.shape[0] - k]), k)
        again = _window_keys(mask[-k:].copy(), np.array([0]), k)
        assert keys[1] == again[0]
        codes = widen_codes(MASK_TO_CODE[mask].astype(np.uint32), k, rev=False)
        assert (keys[0] == keys[1]) == (codes[0] == codes[mask.shape[0] - k])


def test_best_segments_are_those_of_the_dense_prefix_scores() -> None:
    rng = np.random.default_rng(3)
    q = rng.integers(1, 16, 20000).astype(np.uint8)
    r = rng.integers(1, 16, 20000).astype(np.uint8)
    patterns = [np.zeros(7, bool), np.ones(9, bool), np.array([False]), np.array([True])]
    for _ in range(300):
        patterns.append(rng.random(int(rng.integers(1, 700))) < rng.choice([0.6, 0.9, 0.99]))
    for batch in range(0, len(patterns), 23):
        chunk = patterns[batch : batch + 23]
        qstart, rstart = [], []
        qsrc, rsrc = q.copy(), r.copy()
        at = 0
        for same in chunk:
            n = same.shape[0]
            # Lay the pattern out: equal masks where it matches, disjoint bits where not.
            qsrc[at : at + n] = np.where(same, 1, 2)
            rsrc[at + 7 : at + 7 + n] = np.where(same, 1, 4)
            qstart.append(at)
            rstart.append(at + 7)
            at += n + 3
        length = np.array([s.shape[0] for s in chunk])
        cols, matches, start = _best_segments_sparse(
            qsrc, rsrc, qstart=np.array(qstart), rstart=np.array(rstart), length=length
        )
        for i, same in enumerate(chunk):
            assert (int(cols[i]), int(matches[i]), int(start[i])) == _dense_best_segment(same)


def test_diagonal_votes_and_alignments_match_the_2bit_reference(
    records: list[RefRecord],
) -> None:
    for k in (7, 11):
        index = KmerIndex.from_records(records, k=k, sample=1 if k == 7 else 4)
        matcher = Matcher(index)
        ref_codes = [kmer_codes(MASK_TO_CODE[index.ref_mask(r)], k) for r in range(index.n_refs)]
        for seq in _queries(records)[::3]:
            mask = encode_mask(seq)
            if mask.shape[0] < k:
                continue
            cands = index.candidates(mask, 30, per_species=5)
            if cands.refs.shape[0] == 0:
                continue
            want = _reference_votes(
                index, mask, refs=cands.refs, strands=cands.strands, ref_codes=ref_codes
            )
            got = matcher._diagonal_votes(
                mask,
                revcomp_mask(mask),
                valid=kmer_codes(MASK_TO_CODE[mask], k)[2],
                refs=cands.refs,
                strands=cands.strands,
                qlen=int(mask.shape[0]),
            )
            if want is None:
                assert got is None
                continue
            assert got is not None and np.array_equal(got, want)
            # and each ungapped hit is the dense best segment on the best diagonal
            raws = matcher.align_many(mask, refs=cands.refs, strands=cands.strands)
            rc = revcomp_mask(mask)
            for row, raw in enumerate(raws):
                if raw is None or raw.method != "ungapped":
                    continue
                ref = int(cands.refs[row])
                q = mask if cands.strands[row] == 1 else rc
                d = int(want[row].argmax()) - int(mask.shape[0])
                q0 = max(0, -d)
                q1 = min(int(mask.shape[0]), int(index.lengths[ref]) - d)
                same = (q[q0:q1] & index.ref_mask(ref)[q0 + d : q1 + d]) != 0
                cols, matches, start = _dense_best_segment(same)
                assert (raw.columns, raw.matches, raw.q_start) == (cols, matches, q0 + start)


def test_conserved_mismatches_match_the_column_by_column_count(
    records: list[RefRecord],
) -> None:
    index = KmerIndex.from_records(records)
    matcher = Matcher(index)
    counted = 0
    for seq in _queries(records)[::2]:
        hits = matcher.match(seq)
        for best in hits[:3]:
            for min_refs in (1, 5):
                want = _reference_conserved(matcher, seq, best, others=hits, min_refs=min_refs)
                got = matcher.conserved_mismatches(seq, best, others=hits, min_refs=min_refs)
                assert got == want
                counted += bool(want)
    assert counted > 0  # some queries do have mismatches at conserved sites


@pytest.mark.parametrize("copy", ["gathered positions", "copied slices"])
def test_shared_kmer_counts_match_the_postings(
    records: list[RefRecord], copy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import species_ref.index

    # Small test libraries have short posting lists; a large library's are copied as slices.
    monkeypatch.setattr(
        species_ref.index, "_SLICE_COPY_MIN", 0 if copy == "copied slices" else 10**9
    )
    index = KmerIndex.from_records(records)
    # A mosaic of short windows of many references, split by Ns: some references
    # share a single k-mer with it, as most do by chance in a large library.
    mosaic = "N".join(r.sequence[200:213] for r in records[:: max(1, len(records) // 40)])
    dropped = 0
    for seq in [*_queries(records)[::3], mosaic]:
        codes, qorient = index.query_kmers(seq)
        starts = index.offsets[codes].astype(np.int64)
        lens = index.offsets[codes + 1].astype(np.int64) - starts
        refs, c_plus, c_minus = index._shared_counts(starts, lens, qorient)
        want = _reference_shared(index, starts, lens, qorient)
        assert refs.tolist() == sorted(want)
        assert [(int(a), int(b)) for a, b in zip(c_plus, c_minus, strict=True)] == [
            want[r] for r in refs.tolist()
        ]
        # References sharing one k-mer only are left out when two are needed.
        refs2, plus2, minus2 = index._shared_counts(starts, lens, qorient, min_count=2)
        kept = sorted(r for r, (a, b) in want.items() if a + b >= 2)
        assert refs2.tolist() == kept
        dropped += len(want) - len(kept)
        assert [(int(a), int(b)) for a, b in zip(plus2, minus2, strict=True)] == [
            want[r] for r in kept
        ]
    assert dropped > 0


def test_hits_survive_pickling_unchanged() -> None:
    index = KmerIndex.from_records(_real_records())
    hits = Matcher(index).match(_real_records()[0].sequence)
    back = pickle.loads(pickle.dumps(hits, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == hits
    assert [h.to_dict() for h in back] == [h.to_dict() for h in hits]
