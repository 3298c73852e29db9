"""Alignment of a query against its best candidate references.

Owns the second stage of a search: for the references the k-mer index ranks
best, an alignment giving identity, aligned length, query coverage, gaps and
strand.

How an alignment is made:
- The dominant diagonal (offset between query and reference) is found from
  shared k-mers, and the query is compared base by base along it; the best-
  scoring ungapped segment (match +2, mismatch -3, as blastn) is the hit. Most
  barcode alignments (COI, cytb, rbcL) have no indels and need nothing more.
  (A k-mer here is keyed by its packed bit masks, `_window_keys`; the segment
  is scored at mismatch positions only, `_best_segments_sparse`: the same
  votes and segments as 2-bit codes and a pass over every column.)
- When the k-mers show a second diagonal (an indel) or the segment leaves a
  large part of the overlap unexplained, Biopython's `PairwiseAligner` makes a
  local alignment (match 2, mismatch -3, gap open -5, extend -2) of the query
  against the window of the reference around that diagonal.

Invariants and definitions:
- identity (%) = compatible columns / alignment columns (gaps included), as in
  BLAST. An IUPAC ambiguity code counts as a match to every base it stands for
  (R matches A and G), so an ambiguous base costs nothing when it is compatible
  and counts as one mismatch otherwise; N matches anything. Query QC limits the
  share of ambiguous bases; an all-N query has no k-mers and no hits.
- query coverage (%) = aligned query bases / query length. Coverage of the
  reference is irrelevant: a 100 bp mini-barcode fully inside a whole-gene
  reference has 100 % coverage; a whole-gene query against a 100 bp reference
  has low coverage and is judged on its aligned length.
- strand "-" means the reverse complement of the query matched the reference.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from species_ref.index import (
    MASK_TO_CODE,
    ByteArray,
    CodedStrings,
    IntArray,
    KmerCodes,
    KmerIndex,
    StringTable,
    encode_mask,
    kmer_codes,
    revcomp_mask,
    widen_codes,
)

MATCH = 2
MISMATCH = -3
GAP_OPEN = -5
GAP_EXTEND = -2
_IUPAC = "ACGTRYSWKMBDHVN"

#: how a hit was aligned: "ungapped" (one diagonal), "aligned" (Biopython's
#: PairwiseAligner, short queries) or "chained" (`_chained`: ungapped pieces on
#: a few diagonals, long queries with indels).
AlignMethod = Literal["ungapped", "aligned", "chained"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One query-to-reference alignment."""

    ref_index: int
    seq_id: str
    species: str
    marker: str
    identity: float  # percent, compatible columns / alignment columns
    aligned_length: int  # alignment columns, gaps included
    query_coverage: float  # percent of the query aligned
    mismatches: int
    gaps: int  # gap columns
    strand: str  # "+" or "-" (query reverse complemented)
    query_start: int  # on the query as given, 0-based half open
    query_end: int
    ref_start: int
    ref_end: int
    shared_kmers: int
    method: AlignMethod

    @property
    def genus(self) -> str:
        return self.species.split(" ", 1)[0]

    def __reduce__(self) -> tuple[type[Hit], tuple[Any, ...]]:
        # Pickled as its fields in order and rebuilt through __init__: results go from
        # worker processes to the parent, and the state protocol of a frozen dataclass
        # with slots costs several times as much.
        return (Hit, _hit_fields(self))

    def to_dict(self) -> dict[str, str | int | float]:
        # Written out (not dataclasses.asdict, which deep-copies): a result holds many hits.
        return {
            "ref_index": self.ref_index,
            "seq_id": self.seq_id,
            "species": self.species,
            "marker": self.marker,
            "identity": round(self.identity, 3),
            "aligned_length": self.aligned_length,
            "query_coverage": round(self.query_coverage, 2),
            "mismatches": self.mismatches,
            "gaps": self.gaps,
            "strand": self.strand,
            "query_start": self.query_start,
            "query_end": self.query_end,
            "ref_start": self.ref_start,
            "ref_end": self.ref_end,
            "shared_kmers": self.shared_kmers,
            "method": self.method,
        }


_hit_fields = operator.attrgetter(*(f.name for f in fields(Hit)))


def _items(strings: Sequence[str], refs: IntArray) -> list[str]:
    """`[strings[r] for r in refs]`, decoded in one pass for the index's string tables."""
    if isinstance(strings, StringTable):
        lo = strings.offsets[refs].tolist()
        hi = strings.offsets[refs + 1].tolist()
        blob = strings.blob
        return [blob[a:b].tobytes().decode("utf-8") for a, b in zip(lo, hi, strict=True)]
    if isinstance(strings, CodedStrings):
        names = strings.names
        return [names[c] for c in strings.codes[refs].tolist()]
    return [strings[r] for r in refs.tolist()]


def _aligner() -> Any:
    # Imported on first use: most searches never make a PairwiseAligner alignment.
    from Bio.Align import PairwiseAligner, substitution_matrices

    matrix = substitution_matrices.Array(alphabet=_IUPAC, dims=2)  # type: ignore[no-untyped-call]  # Biopython is untyped
    masks = {ch: int(encode_mask(ch)[0]) for ch in _IUPAC}
    for a in _IUPAC:
        for b in _IUPAC:
            matrix[a, b] = MATCH if masks[a] & masks[b] else MISMATCH
    aligner = PairwiseAligner()  # type: ignore[no-untyped-call]
    aligner.mode = "local"
    aligner.substitution_matrix = matrix
    aligner.open_gap_score = GAP_OPEN
    aligner.extend_gap_score = GAP_EXTEND
    return aligner


_MASK_TO_LETTER = np.frombuffer(b"?ACMGRSVTWYHKDBN", dtype=np.uint8)


def _letters(mask: ByteArray) -> str:
    return _MASK_TO_LETTER[mask].tobytes().decode("ascii").replace("?", "N")


@dataclass
class _Oriented:
    mask: ByteArray
    sorted_codes: IntArray
    sorted_pos: IntArray


def _orient(mask: ByteArray, k: int) -> _Oriented:
    fwd, _rev, valid = kmer_codes(MASK_TO_CODE[mask], k)
    pos = np.flatnonzero(valid)
    codes = fwd[valid]
    order = np.argsort(codes, kind="stable")
    return _Oriented(mask, codes[order], pos[order])


def query_kmer_codes(mask: ByteArray, k: int) -> KmerCodes:
    """`kmer_codes(MASK_TO_CODE[mask], k)` of a query's bit masks, in about log2(k) passes.

    Same arrays, same values: forward and reverse-complement codes of every
    window and whether it holds A/C/G/T only.
    """
    codes = MASK_TO_CODE[mask]
    n = int(codes.shape[0]) - k + 1
    if n <= 0:
        return kmer_codes(codes, k)
    ambiguous = codes == 4
    if ambiguous.any():
        bad = np.concatenate(([0], np.cumsum(ambiguous, dtype=np.int64)))
        valid = (bad[k:] - bad[:n]) == 0
        c = np.where(ambiguous, 0, codes).astype(np.uint32)
    else:
        valid = np.ones(n, dtype=bool)
        c = codes.astype(np.uint32)
    fwd = widen_codes(c, k, rev=False)[:n].astype(np.int64)
    rev = widen_codes(np.uint32(3) - c, k, rev=True)[:n].astype(np.int64)
    return fwd, rev, valid


class _Raw(NamedTuple):
    """One alignment's figures (a tuple: made for every candidate of every query)."""

    identity: float
    columns: int
    matches: int
    gaps: int
    q_start: int
    q_end: int
    r_start: int
    r_end: int
    method: AlignMethod


class Matcher:
    """Aligns queries to the references of one `KmerIndex`."""

    def __init__(
        self, index: KmerIndex, *, top_n: int = 30, per_species: int = 5, max_gapped: int = 10
    ) -> None:
        self.index = index
        self.max_gapped = max_gapped
        self.top_n = top_n
        self.per_species = per_species
        self._aligner_made: Any = None

    def match(
        self,
        seq: str,
        *,
        exclude: npt.NDArray[np.bool_] | None = None,
        top_n: int | None = None,
    ) -> list[Hit]:
        """Hits of `seq` against its best candidates, best identity first."""
        mask = encode_mask(seq)
        kmers = query_kmer_codes(mask, self.index.k)
        cands = self.index.candidates(
            mask, top_n or self.top_n, per_species=self.per_species, exclude=exclude, kmers=kmers
        )
        if cands.refs.shape[0] == 0:
            return []
        qlen = int(mask.shape[0])
        raws = self.align_many(
            mask, refs=cands.refs, strands=cands.strands, shared=cands.shared, kmers=kmers
        )
        refs = cands.refs
        index = self.index
        names = index.species_names
        species = [names[s] for s in index.species_ids[refs].tolist()]
        markers = _items(index.markers, refs)
        seq_ids = _items(index.seq_ids, refs)
        hits: list[Hit] = []
        for i, (ref, strand, shared, raw) in enumerate(
            zip(refs.tolist(), cands.strands.tolist(), cands.shared.tolist(), raws, strict=True)
        ):
            if raw is None or raw.columns == 0:
                continue
            if strand == 1:
                qs, qe = raw.q_start, raw.q_end
            else:
                qs, qe = qlen - raw.q_end, qlen - raw.q_start
            hits.append(
                Hit(
                    ref_index=ref,
                    seq_id=seq_ids[i],
                    species=species[i],
                    marker=markers[i],
                    identity=raw.identity,
                    aligned_length=raw.columns,
                    query_coverage=100.0 * (raw.q_end - raw.q_start) / max(qlen, 1),
                    mismatches=raw.columns - raw.matches - raw.gaps,
                    gaps=raw.gaps,
                    strand="+" if strand == 1 else "-",
                    query_start=qs,
                    query_end=qe,
                    ref_start=raw.r_start,
                    ref_end=raw.r_end,
                    shared_kmers=shared,
                    method=raw.method,
                )
            )
        hits.sort(key=lambda h: (-h.identity, -h.aligned_length, h.ref_index))
        return hits

    def align_many(
        self,
        qmask: ByteArray,
        *,
        refs: IntArray,
        strands: IntArray,
        shared: IntArray | None = None,
        kmers: KmerCodes | None = None,
    ) -> list[_Raw | None]:
        """Align a query (bit masks, as given) to many references at once.

        `strands` says per reference whether the query (+1) or its reverse
        complement (-1) is aligned. Diagonal finding and the ungapped segments
        are computed for all references in a handful of NumPy operations; a
        gapped alignment is added only where the k-mers show an indel, at most
        `max_gapped` times per call and only for references sharing at least
        half as many k-mers as the best one.
        """
        n_c = int(refs.shape[0])
        out: list[_Raw | None] = [None] * n_c
        k = self.index.k
        qlen = int(qmask.shape[0])
        if n_c == 0 or qlen < k:
            return out
        index = self.index
        rcmask = revcomp_mask(qmask)
        valid = (kmers if kmers is not None else query_kmer_codes(qmask, k))[2]
        raw_votes = self._diagonal_votes(
            qmask, rcmask, valid=valid, refs=refs, strands=strands, qlen=qlen
        )
        if raw_votes is None:
            return out
        best = raw_votes.argmax(axis=1)
        best_votes = raw_votes[np.arange(n_c), best]
        second = _second_votes(raw_votes, best)
        d = best - qlen
        q0 = np.maximum(0, -d)
        q1 = np.minimum(qlen, index.lengths[refs] - d)
        length = np.where(best_votes > 0, np.maximum(q1 - q0, 0), 0)
        ci = np.flatnonzero(length > 0)
        if ci.shape[0] == 0:
            return out
        # The two orientations of the query sit side by side: [as given | reverse complement].
        both = np.concatenate((qmask, rcmask))
        qoff = np.where(strands[ci] == 1, 0, qlen)
        roff = d[ci] + index.seq_offsets[refs[ci]]
        cols, matches, seg_start = _best_segments_sparse(
            both, index.seq_masks, qstart=q0[ci] + qoff, rstart=q0[ci] + roff, length=length[ci]
        )
        q_start = q0[ci] + seg_start
        top_shared = int(shared.max()) if shared is not None and shared.shape[0] else 0
        # A gapped alignment where the k-mers show a second diagonal (indel) or
        # the segment leaves much of the overlap unexplained, for references
        # sharing at least half as many k-mers as the best one.
        wants_gap = (second[ci] >= np.maximum(2, best_votes[ci] // 12)) | (cols < 0.9 * length[ci])
        if shared is not None:
            wants_gap &= shared[ci] * 2 >= top_shared
        segments = zip(
            ci.tolist(),
            cols.tolist(),
            q_start.tolist(),
            d[ci].tolist(),
            matches.tolist(),
            wants_gap.tolist(),
            strict=True,
        )
        self._finish_segments(
            segments,
            out=out,
            masks={1: qmask, -1: rcmask},
            votes=raw_votes,
            refs=refs,
            strands=strands,
        )
        return out

    def _finish_segments(
        self,
        segments: Iterable[tuple[int, int, int, int, int, bool]],
        *,
        out: list[_Raw | None],
        masks: dict[int, ByteArray],
        votes: IntArray,
        refs: IntArray,
        strands: IntArray,
    ) -> None:
        """Fill `out[c]` for each (candidate, columns, query start, diagonal, matches,
        wants a gapped alignment) segment, with a gapped alignment where it scores
        better (at most `max_gapped` of them). `masks` holds the query as given (1)
        and reverse complemented (-1)."""
        index = self.index
        gapped_left = self.max_gapped
        qlen = int(masks[1].shape[0])
        for c, n_cols, qs_, dd, n_match, gap in segments:
            raw = _Raw(
                100.0 * n_match / n_cols if n_cols else 0.0,
                n_cols,
                n_match if n_cols else 0,
                0,
                qs_,
                qs_ + n_cols,
                qs_ + dd,
                qs_ + dd + n_cols,
                "ungapped",
            )
            if gap and gapped_left > 0:
                gapped_left -= 1
                row = votes[c]
                top = np.argsort(-row, kind="stable")[:6]
                diags = [int(x) - qlen for x in top if row[x] >= 2]
                qm = masks[int(strands[c])]
                full = self._gapped(qm, index.ref_mask(int(refs[c])), d=dd, diags=diags)
                if full is not None and full.identity * full.columns > raw.identity * raw.columns:
                    raw = full
            out[c] = raw

    def _diagonal_votes(
        self,
        qmask: ByteArray,
        rcmask: ByteArray,
        *,
        valid: npt.NDArray[np.bool_],
        refs: IntArray,
        strands: IntArray,
        qlen: int,
    ) -> IntArray | None:
        """Shared k-mers per (reference, diagonal): rows are references, column
        `offset + qlen` counts k-mers on that diagonal. None when no reference
        has a k-mer. `valid` says which query windows hold A/C/G/T only."""
        index = self.index
        k = index.k
        n_c = int(refs.shape[0])
        lens = index.lengths[refs]
        n_kmer = np.maximum(lens - k + 1, 0)
        # Long references are sampled (about 150 k-mers each): plenty of votes
        # to find the diagonal at a fraction of the cost.
        stride = np.maximum(1, n_kmer // 150)
        m = (n_kmer + stride - 1) // stride
        total = int(m.sum())
        if total == 0:
            return None
        seg = np.repeat(np.arange(n_c), m)
        local = (np.arange(total) - np.repeat(np.cumsum(m) - m, m)) * np.repeat(stride, m)
        # Both orientations of the query in one sorted table: key * 2 + (1 if reverse);
        # a key stands for one window of A/C/G/T (see `_window_keys`).
        pos = np.flatnonzero(valid)
        rc_pos = (qlen - k - pos)[::-1]
        q_keys = np.concatenate(
            (_window_keys(qmask, pos, k) * 2, _window_keys(rcmask, rc_pos, k) * 2 + 1)
        )
        q_pos = np.concatenate((pos, rc_pos))
        order = np.argsort(q_keys, kind="stable")
        q_keys, q_pos = q_keys[order], q_pos[order]
        width = qlen + int(lens.max()) + 1
        if q_keys.shape[0] == 0:
            return np.zeros((n_c, width), dtype=np.int64)
        # A reference window holding anything but A/C/G/T has a key no query window
        # has: it finds nothing, as if it had been skipped.
        take = index.seq_offsets[refs][seg] + local
        r_keys = _window_keys(index.seq_masks, take, k) * 2 + (strands[seg] == -1)
        at = np.searchsorted(q_keys, r_keys)
        at[at >= q_keys.shape[0]] = 0
        hit = np.flatnonzero(q_keys[at] == r_keys)
        key = seg[hit] * width + (local[hit] - q_pos[at[hit]] + qlen)
        return np.bincount(key, minlength=n_c * width).reshape(n_c, width)

    def conserved_mismatches(
        self, seq: str, best: Hit, *, others: Sequence[Hit], min_refs: int = 5
    ) -> int | None:
        """Mismatches of `best` at columns where every other aligned reference agrees with it.

        A substitution at a site conserved across related references (other
        species and genera among the candidates) is far more often a sequencing
        or PCR error than a difference between species, which fall mostly at
        variable (e.g. third codon) positions. Only ungapped hits on the same
        strand are compared; None when fewer than `min_refs` references cover
        the region or the best hit is gapped.
        """
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
        rb = self.index.ref_mask(best.ref_index)[best.ref_start : best.ref_start + (qe - qs)]
        xs = np.flatnonzero((qmask[qs:qe] & rb) == 0)  # mismatch columns, from qs
        if xs.shape[0] == 0:
            return 0
        # The other ungapped hits on the same strand overlapping the best one: where
        # each starts on the library's concatenated masks, and which columns it covers.
        starts: list[int] = []
        spans: list[tuple[int, int]] = []
        distant = False
        offsets = self.index.seq_offsets
        for o in others:
            if o.ref_index == best.ref_index or o.strand != best.strand:
                continue
            if o.method != "ungapped":
                continue
            oqs, oqe = oriented(o)
            lo, hi = max(qs, oqs), min(qe, oqe)
            if lo >= hi:
                continue
            starts.append(int(offsets[o.ref_index]) + o.ref_start - oqs)
            spans.append((lo, hi))
            distant = distant or o.identity < best.identity - 5.0
        if not distant:
            return None
        # Only the mismatch columns matter: there, is the column covered by each
        # other hit, and does its reference carry the best reference's base?
        col = xs + qs
        span = np.array(spans, dtype=np.int64)
        cover = (col[None, :] >= span[:, :1]) & (col[None, :] < span[:, 1:])
        at = np.where(cover, np.array(starts, dtype=np.int64)[:, None] + col[None, :], 0)
        same = self.index.seq_masks[at] == rb[xs][None, :]
        agree = (same | ~cover).all(axis=0)
        conserved = agree & (cover.sum(axis=0) >= min_refs)
        return int(conserved.sum())

    def pair_identity(self, a: int, b: int) -> tuple[float, int] | None:
        """Identity (%) and aligned length of reference `a` against reference `b`."""
        oa = _orient(self.index.ref_mask(a), self.index.k)
        rb = self.index.ref_mask(b)
        raw = self.align_pair(oa, rb)
        if raw is None or raw.columns < 1:
            ob = _orient(revcomp_mask(oa.mask), self.index.k)
            raw = self.align_pair(ob, rb)
        if raw is None:
            return None
        return raw.identity, raw.columns

    def align_pair(
        self, q: _Oriented, rmask: ByteArray, *, allow_gapped: bool = True
    ) -> _Raw | None:
        """Align an oriented query to a reference; None when they share no diagonal.

        With ``allow_gapped=False`` only the ungapped segment is computed (used
        for distant candidates whose exact identity cannot change a decision).
        """
        k = self.index.k
        qlen = int(q.mask.shape[0])
        rlen = int(rmask.shape[0])
        # Long references are sampled every third position: enough votes to find
        # the diagonal at a third of the cost.
        stride = 1 if rlen < 400 else 3
        n = rlen - k + 1
        if n <= 0 or q.sorted_codes.shape[0] == 0:
            return None
        codes = MASK_TO_CODE[rmask].astype(np.int64)
        rpos = np.arange(0, n, stride)
        fwd = np.zeros(rpos.shape[0], dtype=np.int64)
        bad = np.zeros(rpos.shape[0], dtype=bool)
        for j in range(k):
            col = codes[rpos + j]
            bad |= col == 4
            fwd = (fwd << 2) | (col & 3)
        rpos = rpos[~bad]
        rcodes = fwd[~bad]
        if rcodes.shape[0] == 0:
            return None
        idx = np.searchsorted(q.sorted_codes, rcodes)
        idx[idx >= q.sorted_codes.shape[0]] = 0
        found = q.sorted_codes[idx] == rcodes
        if not found.any():
            return None
        diags = rpos[found] - q.sorted_pos[idx[found]]
        votes = np.bincount(diags + qlen)
        best = int(votes.argmax())
        best_votes = int(votes[best])
        d = best - qlen
        votes[max(best - 2, 0) : best + 3] = 0
        second = int(votes.max()) if votes.shape[0] else 0
        raw = self._ungapped(q.mask, rmask, d)
        overlap = min(qlen, rlen - d) - max(0, -d)
        indel = second >= max(2, best_votes // 8)
        if not allow_gapped or (not indel and raw.columns >= 0.9 * overlap):
            return raw
        full = self._gapped(q.mask, rmask, d=d)
        if full is not None and full.identity * full.columns > raw.identity * raw.columns:
            return full
        return raw

    @staticmethod
    def _ungapped(qmask: ByteArray, rmask: ByteArray, d: int) -> _Raw:
        q0 = max(0, -d)
        q1 = min(qmask.shape[0], rmask.shape[0] - d)
        same = (qmask[q0:q1] & rmask[q0 + d : q1 + d]) != 0
        score = np.where(same, MATCH, MISMATCH)
        cs = np.concatenate(([0], np.cumsum(score)))
        low = np.minimum.accumulate(cs)
        gain = cs - low
        end = int(gain.argmax())
        start = int(np.flatnonzero(cs[: end + 1] == low[end])[0])
        cols = end - start
        matches = int(same[start:end].sum())
        ident = 100.0 * matches / cols if cols else 0.0
        return _Raw(
            ident, cols, matches, 0, q0 + start, q0 + end, q0 + d + start, q0 + d + end, "ungapped"
        )

    def _gapped(
        self, qmask: ByteArray, rmask: ByteArray, *, d: int, diags: Sequence[int] = ()
    ) -> _Raw | None:
        """Gapped alignment: `PairwiseAligner` for short queries, diagonal chaining otherwise."""
        if qmask.shape[0] > 300:
            # One diagonal only: the unexplained part is divergent sequence, not an
            # indel, and a full alignment would not change the hit.
            if len(diags) < 2:
                return None
            return _chained(qmask, rmask, diags=[d, *[x for x in diags if x != d]][:5])
        return self._biopython(qmask, rmask, d=d)

    def _biopython(self, qmask: ByteArray, rmask: ByteArray, *, d: int) -> _Raw | None:
        qlen = int(qmask.shape[0])
        pad = 60
        w0 = max(0, d - pad)
        w1 = min(int(rmask.shape[0]), d + qlen + pad)
        window = rmask[w0:w1]
        if window.shape[0] == 0:
            return None
        if self._aligner_made is None:
            self._aligner_made = _aligner()
        try:
            aln = self._aligner_made.align(_letters(window), _letters(qmask))[0]  # type: ignore[no-untyped-call]
        except (IndexError, ValueError, OverflowError):
            return None
        blocks_t, blocks_q = aln.aligned
        if len(blocks_t) == 0:
            return None
        matches = 0
        aligned = 0
        for (t0, t1), (a0, a1) in zip(blocks_t, blocks_q, strict=True):
            matches += int(((window[t0:t1] & qmask[a0:a1]) != 0).sum())
            aligned += int(t1 - t0)
        t_start, t_end = int(blocks_t[0][0]), int(blocks_t[-1][1])
        q_start, q_end = int(blocks_q[0][0]), int(blocks_q[-1][1])
        gaps = (t_end - t_start - aligned) + (q_end - q_start - aligned)
        cols = aligned + gaps
        return _Raw(
            100.0 * matches / cols,
            cols,
            matches,
            gaps,
            q_start,
            q_end,
            w0 + t_start,
            w0 + t_end,
            "aligned",
        )


def gather_rows(src: ByteArray, starts: IntArray, width: int) -> ByteArray:
    """`src[s:s + width]` for each start, one row each (bytes past the end of `src` read as 0).

    Shared by the search and the batched alignment of `species_ref.batchalign`.
    """
    out = np.zeros((starts.shape[0], width), dtype=np.uint8)
    if width == 0 or starts.shape[0] == 0:
        return out
    n = int(src.shape[0])
    safe = starts + width <= n
    if n >= width and safe.any():
        out[safe] = _windows(np.ascontiguousarray(src), width)[starts[safe]]
    rest = np.flatnonzero(~safe)
    if rest.shape[0]:
        cols = starts[rest, None] + np.arange(width)
        vals = src[np.minimum(cols, n - 1)]
        vals[cols >= n] = 0
        out[rest] = vals
    return out


def _best_segments_sparse(
    qsrc: ByteArray,
    rsrc: ByteArray,
    *,
    qstart: IntArray,
    rstart: IntArray,
    length: IntArray,
) -> tuple[IntArray, IntArray, IntArray]:
    """Best-scoring ungapped segment (match +2, mismatch -3) of each of several overlaps.

    Overlap i compares `length[i]` bases of `qsrc` from `qstart[i]` with as
    many of `rsrc` from `rstart[i]`. Returns per overlap the segment's columns
    (0 when no segment scores above 0), its matches, and its first column.

    The prefix score rises by MATCH per match and falls per mismatch, so a
    best segment ends just before a mismatch or at the end of the overlap and
    starts just after a mismatch or at its start: only those points are scored.
    Of equal-scoring segments the one ending first is taken, and of its starts
    the first (the start of the overlap before any other); an overlap without
    a single match gets 0 columns from its column 1.
    """
    n = int(length.shape[0])
    zero = np.zeros(n, dtype=np.int64)
    width = int(length.max(initial=0))
    if width == 0:
        return zero, zero.copy(), zero.copy()
    q = gather_rows(qsrc, qstart, width)
    q &= gather_rows(rsrc, rstart, width)
    flat = np.flatnonzero(q == 0)
    del q
    rows, xs = flat // width, flat % width
    inside = xs < length[rows]
    rows, xs = rows[inside], xs[inside]
    nmis = np.bincount(rows, minlength=n)
    big = 12 * (width + 2)
    # Scores fit 32 bits unless the overlaps are huge: half the memory traffic.
    dt: type[np.signedinteger[Any]] = np.int32 if big * (n + 1) < 2**31 else np.int64
    # Per overlap: its mismatches (t = 0..j-1), then the end of the overlap (t = j);
    # the t-th mismatch of overlap r sits at t + (points of the overlaps before r).
    n_m = int(rows.shape[0])
    total = n_m + n
    mend = np.cumsum(nmis)
    at_m = np.arange(n_m) + rows
    at_e = mend + np.arange(n)
    first = at_e - nmis
    x_max: npt.NDArray[np.signedinteger[Any]] = np.empty(total, dtype=dt)
    x_max[at_m] = xs
    x_max[at_e] = length
    t: npt.NDArray[np.signedinteger[Any]] = np.empty(total, dtype=dt)
    t[at_m] = np.arange(n_m) - (mend - nmis)[rows]
    t[at_e] = nmis
    pair: npt.NDArray[np.signedinteger[Any]] = np.repeat(np.arange(n, dtype=dt), nmis + 1)
    cols, matches, start_x, _end = segments_at_mismatches(
        pair, x_max, t, first=first, big=big, dtype=dt
    )
    ok = cols > 0
    # With no match at all (no segment), the start is 1, as the dense computation had it.
    return cols, matches, np.where(ok, start_x, 1)


def segments_at_mismatches(
    pair: npt.NDArray[np.signedinteger[Any]],
    x_max: npt.NDArray[np.signedinteger[Any]],
    t: npt.NDArray[np.signedinteger[Any]],
    *,
    first: IntArray,
    big: int,
    dtype: type[np.signedinteger[Any]],
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Best segment of each overlap from its scoring points: (columns, matches, start, end).

    The points of overlap r are its mismatches in column order, then its end:
    `pair` is r, `x_max` the column of the point, `t` its number within the
    overlap (0, 1, ...), `first` the index of each overlap's first point, and
    `big` more than any overlap's score range (to run the minima per overlap
    in one pass). A segment ends just before a point and starts just after the
    previous one (or at the overlap's start); of equal-scoring segments the
    one ending first wins, and of its starts the first. Columns are 0 where no
    segment scores above 0. Shared by `_best_segments_sparse` and the batched
    alignment of `species_ref.batchalign`.
    """
    gain_unit = MATCH - MISMATCH
    p_max = MATCH * x_max - gain_unit * t  # prefix score just before point t
    # Prefix score just after the previous point (0 at the start of the overlap).
    p_min: npt.NDArray[np.signedinteger[Any]] = np.empty(x_max.shape[0], dtype=dtype)
    p_min[1:] = MATCH * (x_max[:-1] + 1)
    p_min -= gain_unit * t
    p_min[first] = 0
    shift = pair * dtype(big)
    low = np.minimum.accumulate(p_min - shift) + shift
    gain = p_max - low
    seg_max = np.maximum.reduceat(gain, first)
    at_max = np.flatnonzero(gain == seg_max[pair])
    end_el = at_max[np.searchsorted(at_max, first)]
    low_end = low[end_el]
    at_low = np.flatnonzero(p_min == low_end[pair])
    start_el = at_low[np.searchsorted(at_low, first)]
    start_x = np.where(start_el == first, 0, x_max[np.maximum(start_el - 1, 0)] + 1).astype(
        np.int64
    )
    end_x = x_max[end_el].astype(np.int64)
    ok = seg_max > 0
    cols = np.where(ok, end_x - start_x, 0)
    score = (p_max[end_el] - p_min[start_el]).astype(np.int64)
    matches = np.where(ok, (score - MISMATCH * cols) // gain_unit, 0)
    return cols, matches, start_x, end_x


def _second_votes(votes: IntArray, best: IntArray) -> IntArray:
    """Per row of `votes`, the most votes outside two columns either side of `best`."""
    n_c, width = votes.shape
    rows = np.arange(n_c)[:, None]
    near = np.minimum(np.maximum(best[:, None] + np.arange(-2, 3), 0), width - 1)
    kept = votes[rows, near]
    votes[rows, near] = 0  # in place and put back: no copy of the whole table
    second: IntArray = votes.max(axis=1)
    votes[rows, near] = kept
    return second


def _windows(src: ByteArray, width: int) -> ByteArray:
    """Read-only view of every window `src[i:i + width]` as a row (no copy; `src`
    is contiguous and at least `width` long)."""
    n = int(src.shape[0]) - width + 1
    return np.ndarray((n, width), dtype=np.uint8, buffer=src, strides=(1, 1))


def _window_keys(src: ByteArray, pos: IntArray, k: int) -> IntArray:
    """A key per window `src[p:p + k]` of bit masks: equal keys, equal windows.

    The k 4-bit masks of a window in one 64-bit integer (k <= 15): bytes 0-7
    of the window as they are, bytes 8 onwards in the upper halves of bytes
    0-6. A window of A/C/G/T has the same key wherever it is; one holding an
    ambiguity code or an unknown character (mask 0) never has the key of an
    A/C/G/T window.
    """
    if pos.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    src = np.ascontiguousarray(src)
    if k < 8:
        key = np.zeros(pos.shape[0], dtype=np.int64)
        for j in range(k):
            key |= src[pos + j].astype(np.int64) << (4 * j)
        return key
    # Eight bytes at a time, read straight from the masks as little-endian words
    # starting at any byte: bytes p..p+7, then bytes p+k-8..p+k-1 shifted so
    # that only p+8..p+k-1 remain.
    words = np.ndarray((int(src.shape[0]) - 7,), dtype="<u8", buffer=src, strides=(1,))
    key = words[pos]
    if k > 8:
        key |= (words[pos + (k - 8)] >> np.uint64(8 * (16 - k))) << np.uint64(4)
    return key.astype(np.int64)


_OUTSIDE = -1000  # score of a query base whose diagonal runs off the reference
_WINDOW = 40  # query bases per window when choosing diagonals


def _diagonal_scores(
    qmask: ByteArray, rmask: ByteArray, *, diags: Sequence[int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Per candidate diagonal and query base: the column score and whether it matches."""
    qlen = int(qmask.shape[0])
    rlen = int(rmask.shape[0])
    pos = np.arange(qlen)
    score = np.full((len(diags), qlen), _OUTSIDE, dtype=np.int64)
    same = np.zeros((len(diags), qlen), dtype=bool)
    for a, dg in enumerate(diags):
        j = pos + dg
        ok = (j >= 0) & (j < rlen)
        sm = np.zeros(qlen, dtype=bool)
        sm[ok] = (qmask[ok] & rmask[j[ok]]) != 0
        same[a] = sm
        score[a] = np.where(ok, np.where(sm, MATCH, MISMATCH), _OUTSIDE)
    return score, same


def _assign_diagonals(score: npt.NDArray[np.int64], *, diags: Sequence[int]) -> IntArray:
    """The diagonal (row of `score`) each query base is aligned on.

    Each window takes its best diagonal when switching gains more than the gap
    penalty; between two windows on different diagonals the switch point is
    the one that maximises the score.
    """
    nd, qlen = score.shape
    w = _WINDOW
    nwin = -(-qlen // w)
    padded = np.full((nd, nwin * w), _OUTSIDE, dtype=np.int64)
    padded[:, :qlen] = score
    wsum = padded.reshape(nd, nwin, w).sum(axis=2)
    choice = [int(wsum[:, 0].argmax())]
    for win in range(1, nwin):
        cur = choice[-1]
        new = int(wsum[:, win].argmax())
        cost = -GAP_OPEN - GAP_EXTEND * abs(diags[new] - diags[cur])
        choice.append(new if new != cur and wsum[new, win] - wsum[cur, win] > cost else cur)
    assign: IntArray = np.repeat(np.array(choice), w)[:qlen]
    cum = np.concatenate((np.zeros((nd, 1), dtype=np.int64), np.cumsum(score, axis=1)), axis=1)
    for win in range(1, nwin):
        a, b = choice[win - 1], choice[win]
        if a == b:
            continue
        lo, hi = (win - 1) * w, min((win + 1) * w, qlen)
        split = np.arange(lo, hi + 1)
        total = (cum[a, split] - cum[a, lo]) + (cum[b, hi] - cum[b, split])
        p = int(split[int(total.argmax())])
        assign[lo:p] = a
        assign[p:hi] = b
    return assign


def _chained(qmask: ByteArray, rmask: ByteArray, *, diags: Sequence[int]) -> _Raw | None:
    """Local alignment made of ungapped pieces on a few candidate diagonals.

    Long queries with indels: the query is cut into 40-base windows, each takes
    the diagonal matching it best (a switch must gain more than it costs in gap
    penalties), the exact switch point between two windows is the one that
    maximises the score, and the best-scoring local stretch of the result is
    the alignment. A switch to a higher diagonal is a deletion (reference bases
    skipped: gap columns added); to a lower one an insertion (query bases
    aligned to nothing). Exact for indels more than a window apart, and within
    a few columns of a full dynamic-programming alignment otherwise.
    """
    qlen = int(qmask.shape[0])
    pos = np.arange(qlen)
    score, same = _diagonal_scores(qmask, rmask, diags=diags)
    assign = _assign_diagonals(score, diags=diags)
    col_score = score[assign, pos].copy()
    col_same = same[assign, pos].copy()
    extra_cols = np.zeros(qlen, dtype=np.int64)
    switches = np.flatnonzero(assign[1:] != assign[:-1]) + 1
    for p in switches.tolist():
        delta = diags[int(assign[p])] - diags[int(assign[p - 1])]
        col_score[p] += GAP_OPEN + GAP_EXTEND * (abs(delta) - 1)
        if delta > 0:
            extra_cols[p] = delta
        else:
            stop = min(qlen, p - delta)
            col_same[p:stop] = False
            extra_cols[p] = 0
    cs = np.concatenate(([0], np.cumsum(col_score)))
    low = np.minimum.accumulate(cs)
    gain = cs - low
    end = int(gain.argmax())
    if gain[end] <= 0:
        return None
    start = int(np.flatnonzero(cs[: end + 1] == low[end])[-1])
    seg_switch = switches[(switches > start) & (switches < end)]
    dels = int(extra_cols[start:end].sum())
    ins = 0
    for p in seg_switch.tolist():
        delta = diags[int(assign[p])] - diags[int(assign[p - 1])]
        if delta < 0:
            ins += min(-delta, end - p)
    matches = int(col_same[start:end].sum())
    cols = (end - start) + dels
    return _Raw(
        100.0 * matches / cols if cols else 0.0,
        cols,
        matches,
        dels + ins,
        start,
        end,
        start + diags[int(assign[start])],
        end + diags[int(assign[end - 1])],
        "chained",
    )
