"""Batched alignment of many reference-to-reference pairs, as `Matcher.align_many` aligns them.

Owns `align_pairs` and `search_probes`, the two costly steps of library
statistics done for thousands of references at once in NumPy instead of one
call per query: the per-call overhead of `Matcher.align_many` and
`KmerIndex.candidates` (a pass over every reference per query) is what made
the statistics of a national library take minutes to hours.

What is computed, pair by pair, is what `Matcher.align_many` computes for the
same calls (a call is a `group`: the references aligned to one query in one
`align_many` call):
- the diagonal is the one with most k-mer votes, the reference sampled as in
  `Matcher._diagonal_votes` (about 150 k-mers per reference);
- the hit is the best-scoring ungapped segment on it (match +2, mismatch -3),
  found from the mismatch positions alone (a run of matches can only end a
  best segment at a mismatch or at the end of the overlap), which gives the
  same segment as `matching._best_segments_sparse`;
- a gapped alignment where `align_many` makes one: the k-mers show a second
  diagonal or the segment leaves more than 10 % of the overlap unexplained,
  at most `max_gapped` per group in group order, and (with `shared`) only for
  references sharing at least half the group's best k-mer count. Queries
  longer than 300 bases are chained as `matching._chained` does (batched
  here); shorter ones go through the matcher's `PairwiseAligner`, one by one.

A shortcut spares most pairs the full k-mer sample: one sample in five is
voted first, and a pair whose votes all fall on one diagonal, where the
ungapped segment covers the overlap but for at most 11 columns at either end
and has no stretch of ten mismatches within 16 columns, is taken as it is
(a second diagonal, an indel, would leave a longer stretch unexplained).
The one thing assumed there is that the full sample would not have shown a
second diagonal anyway (repeats): such a pair would only have used up the
group's gapped budget, without changing its own hit.

`search_probes` ranks candidates as `KmerIndex.candidates` does (the same
k-mer sample, posting cap, minimum of two shared k-mers, at most
`per_species` per species, best `top_n`), for many probes per pass; ties in
score are broken by reference number.

Invariants: identity is compatible columns / alignment columns in percent,
IUPAC codes compared as bit masks, as in `species_ref.matching`; results do
not depend on how the pairs are cut into batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from species_ref.index import (
    MASK_TO_CODE,
    ByteArray,
    IntArray,
    KmerIndex,
    kmer_codes,
    revcomp_mask,
    sampled,
)
from species_ref.matching import (
    GAP_EXTEND,
    GAP_OPEN,
    MATCH,
    MISMATCH,
    Matcher,
    gather_rows,
    segments_at_mismatches,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_OUTSIDE = -1000  # as matching._OUTSIDE
_WINDOW = 40  # as matching._WINDOW
_PAIRS_PER_PASS = 40_000  # pairs aligned per NumPy pass (bounds the memory of one pass)
_CHAINED_PER_PASS = 500  # pairs chained per pass (each holds 5 diagonals x its length)


@dataclass(frozen=True)
class _Queries:
    """The oriented masks of the distinct (query, strand) slots of a batch, concatenated."""

    cat: ByteArray  # oriented masks, one after another, then padding
    start: IntArray  # per slot
    length: IntArray  # per slot
    keys: IntArray  # slot * 4**k + k-mer code, sorted (first position first)
    pos: IntArray  # position of each key's k-mer in its oriented query


def _query_slots(index: KmerIndex, queries: IntArray, strands: IntArray, pad: int) -> _Queries:
    masks = []
    for q, s in zip(queries.tolist(), strands.tolist(), strict=True):
        m = index.ref_mask(q)
        masks.append(m if s == 1 else revcomp_mask(m))
    length = np.array([m.shape[0] for m in masks], dtype=np.int64)
    start = np.concatenate(([0], np.cumsum(length + 1)[:-1])).astype(np.int64)
    sep = np.zeros(1, dtype=np.uint8)
    cat = np.concatenate([x for m in masks for x in (m, sep)] + [np.zeros(pad, dtype=np.uint8)])
    k = index.k
    fwd, pos = _forward_kmers(MASK_TO_CODE[cat], k)
    per_slot = np.diff(np.searchsorted(pos, start), append=pos.shape[0])
    slot = np.repeat(np.arange(length.shape[0]), per_slot)
    keys = slot * (4**k) + fwd
    # Sorted by key, then position (what a stable sort gives): one sort of unique
    # values (key, position) when they fit 63 bits, far cheaper than a stable argsort.
    pos_bits = max(1, int(cat.shape[0]).bit_length())
    if int(length.shape[0] * 4**k).bit_length() + pos_bits <= 62:
        both = np.sort((keys << pos_bits) | pos)
        keys = both >> pos_bits
        pos = both & ((1 << pos_bits) - 1)
        slot = keys >> (2 * k)
        return _Queries(cat, start, length, keys, pos - start[slot])
    order = np.argsort(keys, kind="stable")
    return _Queries(cat, start, length, keys[order], (pos - start[slot])[order])


def _forward_kmers(codes: ByteArray, k: int) -> tuple[IntArray, IntArray]:
    """Forward k-mer codes of the valid windows of 2-bit codes (4: invalid), and their positions."""
    n = codes.shape[0] - k + 1
    if n <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    bad = np.concatenate(([0], np.cumsum(codes == 4, dtype=np.int32)))
    pos = np.flatnonzero(bad[k:] == bad[:n])
    c = codes.astype(np.int32)
    fwd = np.zeros(n, dtype=np.int32)
    for j in range(k):
        fwd <<= 2
        fwd |= c[j : j + n] & 3
    return fwd[pos].astype(np.int64), pos


@dataclass(frozen=True)
class _RefSamples:
    """Sampled k-mers of distinct references, one row each, sorted by code within a row."""

    codes: IntArray  # (references, samples); invalid samples hold the largest code
    local: IntArray  # position of the sample in its reference
    valid: BoolArray


def _ref_samples(index: KmerIndex, refs: IntArray, *, thin: int = 1) -> _RefSamples:
    """The k-mers `Matcher._diagonal_votes` samples from each reference (with `thin`,
    one in `thin` of them)."""
    k = index.k
    lens = index.lengths[refs]
    n_kmer = np.maximum(lens - k + 1, 0)
    stride = np.maximum(1, n_kmer // 150) * thin
    m = (n_kmer + stride - 1) // stride
    width = max(1, int(m.max(initial=0)))
    local = np.arange(width)[None, :] * stride[:, None]
    valid = np.arange(width)[None, :] < m[:, None]
    gpos = np.where(valid, local + index.seq_offsets[refs][:, None], 0)
    # Every base read lies inside its reference (the last sample starts k - 1 bases
    # before its end); codes are taken from the masks of those bases only, not from a
    # code copy of the whole library, which each worker process would build again.
    masks = index.seq_masks
    fwd32 = np.zeros(gpos.shape, dtype=np.int32)  # k <= 15: codes fit 30 bits
    for j in range(k):
        col = MASK_TO_CODE[masks[gpos + j]]
        valid &= col != 4
        fwd32 <<= 2
        fwd32 |= col & 3
    fwd = fwd32.astype(np.int64)
    del fwd32
    fwd[~valid] = 4**k - 1
    # Sorted by code, then column (a stable sort): one sort of unique (code, column) values.
    col_bits = max(1, width.bit_length())
    fwd <<= col_bits
    fwd |= np.arange(width)[None, :]
    both = np.sort(fwd, axis=1)
    order = both & ((1 << col_bits) - 1)
    return _RefSamples(
        both >> col_bits,
        np.take_along_axis(local, order, axis=1),
        np.take_along_axis(valid, order, axis=1),
    )


@dataclass(frozen=True)
class _Votes:
    best: IntArray  # best diagonal (reference position - query position)
    best_votes: IntArray
    second: IntArray  # most votes on a diagonal more than 2 away from the best
    top: IntArray  # (pairs, 6): the six diagonals with most votes (>= 2), else a sentinel
    spread: IntArray  # highest minus lowest diagonal with a vote


_NO_DIAG = np.iinfo(np.int64).min // 4


def _diagonal_votes(
    qs: _Queries,
    rs: _RefSamples,
    *,
    slot: IntArray,
    ref_row: IntArray,
    k: int,
) -> _Votes:
    """K-mer votes per diagonal of each pair (pairs sorted by slot), reduced to what is used."""
    n = slot.shape[0]
    needles = rs.codes[ref_row] + (slot * (4**k))[:, None]
    idx = np.searchsorted(qs.keys, needles.ravel()).reshape(needles.shape)
    idx[idx >= qs.keys.shape[0]] = 0
    hit = (qs.keys[idx] == needles) & rs.valid[ref_row]
    del needles
    flat = np.flatnonzero(hit)
    width = hit.shape[1]
    pair = flat // width
    diag = rs.local[ref_row[pair], flat % width] - qs.pos[idx.ravel()[flat]]
    del idx, hit
    best = np.zeros(n, dtype=np.int64)
    best_votes = np.bincount(pair, minlength=n).astype(np.int64)
    second = np.zeros(n, dtype=np.int64)
    top = np.full((n, 6), _NO_DIAG, dtype=np.int64)
    has = best_votes > 0
    if not has.any():
        return _Votes(best, best_votes, second, top, np.zeros(n, dtype=np.int64))
    starts = np.cumsum(best_votes) - best_votes
    lo = np.full(n, 0, dtype=np.int64)
    hi = np.full(n, 0, dtype=np.int64)
    lo[has] = np.minimum.reduceat(diag, starts[has])
    hi[has] = np.maximum.reduceat(diag, starts[has])
    one = has & (lo == hi)
    best[one] = lo[one]
    top[one & (best_votes >= 2), 0] = lo[one & (best_votes >= 2)]
    many = has & (lo != hi)
    if many.any():
        _many_diagonals(
            pair, diag, many=many, best=best, best_votes=best_votes, second=second, top=top
        )
    return _Votes(best, best_votes, second, top, hi - lo)


def _many_diagonals(
    pair: IntArray,
    diag: IntArray,
    *,
    many: BoolArray,
    best: IntArray,
    best_votes: IntArray,
    second: IntArray,
    top: IntArray,
) -> None:
    """Best, second and top diagonals of the pairs whose votes fall on several diagonals."""
    sel = many[pair]
    p, dg = pair[sel], diag[sel]
    order = np.lexsort((dg, p))
    p, dg = p[order], dg[order]
    new = np.ones(p.shape[0], dtype=bool)
    new[1:] = (p[1:] != p[:-1]) | (dg[1:] != dg[:-1])
    run_start = np.flatnonzero(new)
    run_p = p[run_start]
    run_d = dg[run_start]
    run_n = np.diff(np.append(run_start, p.shape[0]))
    # Runs sorted by pair, then most votes, then lowest diagonal (argmax takes the first).
    order = np.lexsort((run_d, -run_n, run_p))
    run_p, run_d, run_n = run_p[order], run_d[order], run_n[order]
    head = np.ones(run_p.shape[0], dtype=bool)
    head[1:] = run_p[1:] != run_p[:-1]
    first = np.flatnonzero(head)
    pairs = run_p[first]
    best[pairs] = run_d[first]
    best_votes[pairs] = run_n[first]
    rank = np.arange(run_p.shape[0]) - np.repeat(first, np.diff(np.append(first, run_p.shape[0])))
    far = np.abs(run_d - best[run_p]) > 2
    if far.any():
        np.maximum.at(second, run_p[far], run_n[far])
    keep = (rank < 6) & (run_n >= 2)
    top[run_p[keep], rank[keep]] = run_d[keep]


@dataclass(frozen=True)
class _Segments:
    cols: IntArray
    matches: IntArray
    start: IntArray  # first column of the segment in the overlap
    end: IntArray  # one past its last column
    cluster: BoolArray  # 10 mismatches within 16 columns inside the segment


def _best_segments_sparse(
    qsrc: ByteArray,
    rsrc: ByteArray,
    *,
    qstart: IntArray,
    rstart: IntArray,
    length: IntArray,
) -> _Segments:
    """The best ungapped segment of each overlap (as `matching._best_segments_sparse`).

    The prefix score rises by MATCH per match and falls by -MISMATCH per
    mismatch, so the best segment ends just before a mismatch or at the end
    of the overlap and starts just after a mismatch or at its start; only
    those points are scored.
    """
    n = length.shape[0]
    zero = np.zeros(n, dtype=np.int64)
    width = int(length.max(initial=0))
    if width == 0:
        return _Segments(zero, zero.copy(), zero.copy(), zero.copy(), np.zeros(n, dtype=bool))
    # Column `length` of each row is marked as a mismatch: the end of the overlap,
    # which then sorts after the pair's mismatches as the element t = j + 1.
    q = gather_rows(qsrc, qstart, width + 1)
    q &= gather_rows(rsrc, rstart, width + 1)
    q[np.arange(n), length] = 0
    flat = np.flatnonzero(q == 0)
    del q
    big = 12 * (width + 2)
    dt = np.int32 if big * (n + 1) < 2**31 else np.int64
    flat = flat.astype(dt, copy=False)
    pair: IntArray
    x_max: IntArray
    pair, x_max = np.divmod(flat, dt(width + 1))
    del flat
    inside = x_max <= length[pair]
    pair, x_max = pair[inside], x_max[inside]
    total = int(pair.shape[0])
    per_pair = np.bincount(pair, minlength=n)  # mismatches + 1
    first = np.cumsum(per_pair) - per_pair
    t: IntArray = np.arange(total, dtype=dt)
    t -= np.repeat(first.astype(dt), per_pair)
    cols, matches, start_x, end_x = segments_at_mismatches(
        pair, x_max, t, first=first, big=big, dtype=dt
    )
    # Ten mismatches within 16 columns: a stretch aligned on the wrong diagonal.
    cluster = np.zeros(n, dtype=bool)
    if total > 9:
        # Few mismatches have a ninth next one within 16 columns: test the rest only there
        # (an end of overlap never counts: it lies at or past the segment's end).
        at = np.flatnonzero(x_max[9:] - x_max[:-9] < 16)
        r9 = pair[at]
        at = at[(pair[at + 9] == r9) & (x_max[at] >= start_x[r9]) & (x_max[at + 9] < end_x[r9])]
        cluster[pair[at]] = True
    return _Segments(cols, matches, start_x, end_x, cluster)


def align_pairs(
    m: Matcher,
    *,
    query: IntArray,
    ref: IntArray,
    strand: IntArray,
    group: IntArray,
    shared: IntArray | None = None,
) -> tuple[FloatArray, IntArray]:
    """Identity (%) and alignment columns of reference `query` against reference `ref`, per pair.

    `strand` -1 aligns the reverse complement of the query. Pairs with the
    same `group` are one `align_many` call, in the order given (its gapped
    alignment budget and, with `shared`, its best shared k-mer count). Columns
    0 means no alignment (`align_many` returned None or an empty hit).
    """
    n = int(query.shape[0])
    ident = np.zeros(n, dtype=np.float64)
    cols = np.zeros(n, dtype=np.int64)
    if n == 0:
        return ident, cols
    # Cut between groups so that no group straddles two passes.
    cuts = [0]
    gstart = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    while cuts[-1] < n:
        target = cuts[-1] + _PAIRS_PER_PASS
        if target >= n:
            cuts.append(n)
            break
        nxt = gstart[gstart > target]
        cuts.append(int(nxt[0]) if nxt.shape[0] else n)
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        sl = slice(a, b)
        i, c = _align_pass(
            m,
            query=query[sl],
            ref=ref[sl],
            strand=strand[sl],
            group=group[sl],
            shared=None if shared is None else shared[sl],
        )
        ident[sl] = i
        cols[sl] = c
    return ident, cols


_TRIM = 11  # columns an accepted ungapped hit may leave out at either end of the overlap


def _align_pass(
    m: Matcher,
    *,
    query: IntArray,
    ref: IntArray,
    strand: IntArray,
    group: IntArray,
    shared: IntArray | None,
) -> tuple[FloatArray, IntArray]:
    """One batch of `align_pairs`.

    First one k-mer sample in five: a pair whose sampled votes all fall on one
    diagonal and whose ungapped segment there covers its overlap but for a few
    columns at the ends, with no stretch of dense mismatches, has no indel the
    full sample would show, and its ungapped hit is what `align_many` returns.
    The other pairs go through the full sample and `align_many`'s rules.
    """
    index = m.index
    n = int(query.shape[0])
    slot_key = query * 2 + (strand == -1)
    uniq_slot, slot = np.unique(slot_key, return_inverse=True)
    pad = int(index.lengths.max()) + 1
    qs = _query_slots(index, uniq_slot // 2, np.where(uniq_slot % 2 == 1, -1, 1), pad)
    top_shared = None
    if shared is not None:
        gfirst = np.concatenate(([True], group[1:] != group[:-1]))
        gid = np.cumsum(gfirst) - 1
        top_shared = np.maximum.reduceat(shared, np.flatnonzero(gfirst))[gid]
    ident = np.zeros(n, dtype=np.float64)
    cols = np.zeros(n, dtype=np.int64)
    every = np.arange(n)
    coarse = _votes_of(index, qs, slot=slot, ref=ref, pairs=every, thin=5)
    single = np.flatnonzero((coarse.best_votes >= 1) & (coarse.spread == 0))
    seg, length = _segments_of(
        index, qs, slot=slot, ref=ref, pairs=single, best=coarse.best[single]
    )
    clean = (
        (length > 0)
        & (seg.start <= _TRIM)
        & (length - seg.end <= _TRIM)
        & (seg.cols >= 0.9 * length)
        & ~seg.cluster
    )
    done = single[clean]
    cols[done] = seg.cols[clean]
    ident[done] = 100.0 * seg.matches[clean] / np.maximum(seg.cols[clean], 1)
    rest = np.setdiff1d(every, done, assume_unique=True)
    # Segments already measured on the diagonal the full sample may confirm.
    known = np.full((n, 3), -1, dtype=np.int64)
    known[single, 0] = coarse.best[single]
    known[single, 1] = seg.cols
    known[single, 2] = seg.matches
    if rest.shape[0]:
        _full_rules(
            m,
            qs,
            known=known,
            pairs=rest,
            slot=slot,
            ref=ref,
            group=group,
            shared=shared,
            top_shared=top_shared,
            ident=ident,
            cols=cols,
        )
    return ident, cols


def _votes_of(
    index: KmerIndex, qs: _Queries, *, slot: IntArray, ref: IntArray, pairs: IntArray, thin: int
) -> _Votes:
    """Diagonal votes of `pairs` (in their order)."""
    uniq_ref, ref_row = np.unique(ref[pairs], return_inverse=True)
    rs = _ref_samples(index, uniq_ref, thin=thin)
    order = np.argsort(slot[pairs], kind="stable")
    v = _diagonal_votes(qs, rs, slot=slot[pairs][order], ref_row=ref_row[order], k=index.k)
    inv = np.empty(pairs.shape[0], dtype=np.int64)
    inv[order] = np.arange(pairs.shape[0])
    return _Votes(v.best[inv], v.best_votes[inv], v.second[inv], v.top[inv], v.spread[inv])


def _segments_of(
    index: KmerIndex,
    qs: _Queries,
    *,
    slot: IntArray,
    ref: IntArray,
    pairs: IntArray,
    best: IntArray,
) -> tuple[_Segments, IntArray]:
    """Best ungapped segments of `pairs` on diagonals `best`, and their overlap lengths."""
    s, r = slot[pairs], ref[pairs]
    qlen = qs.length[s]
    q0 = np.maximum(0, -best)
    q1 = np.minimum(qlen, index.lengths[r] - best)
    length = np.maximum(q1 - q0, 0)
    seg = _best_segments_sparse(
        qs.cat,
        index.seq_masks,
        qstart=qs.start[s] + q0,
        rstart=index.seq_offsets[r] + q0 + best,
        length=length,
    )
    return seg, length


def _full_rules(
    m: Matcher,
    qs: _Queries,
    *,
    known: IntArray,
    pairs: IntArray,
    slot: IntArray,
    ref: IntArray,
    group: IntArray,
    shared: IntArray | None,
    top_shared: IntArray | None,
    ident: FloatArray,
    cols: IntArray,
) -> None:
    """`align_many` for `pairs`: full k-mer sample, ungapped segment, gapped where it would.

    `known[pair]` holds (diagonal, columns, matches) of a segment already
    measured (columns -1 when none); it is used where its diagonal is the full
    sample's best."""
    index = m.index
    votes = _votes_of(index, qs, slot=slot, ref=ref, pairs=pairs, thin=1)
    s, r = slot[pairs], ref[pairs]
    q0 = np.maximum(0, -votes.best)
    q1 = np.minimum(qs.length[s], index.lengths[r] - votes.best)
    length = np.where(votes.best_votes > 0, np.maximum(q1 - q0, 0), 0)
    seg_cols = known[pairs, 1].copy()
    seg_match = known[pairs, 2].copy()
    again = np.flatnonzero((known[pairs, 0] != votes.best) | (seg_cols < 0))
    if again.shape[0]:
        seg, _len = _segments_of(
            index, qs, slot=slot, ref=ref, pairs=pairs[again], best=votes.best[again]
        )
        seg_cols[again] = seg.cols
        seg_match[again] = seg.matches
    ok = length > 0
    pcols = np.where(ok, seg_cols, 0)
    pident = np.where(pcols > 0, 100.0 * seg_match / np.maximum(pcols, 1), 0.0)
    wants_gap = ok & (
        (votes.second >= np.maximum(2, votes.best_votes // 12)) | (seg_cols < 0.9 * length)
    )
    if shared is not None and top_shared is not None:
        wants_gap &= shared[pairs] * 2 >= top_shared[pairs]
    gapped = _within_budget(wants_gap, group=group[pairs], budget=m.max_gapped)
    if gapped.any():
        _gapped_pass(
            m,
            qs,
            pairs=np.flatnonzero(gapped),
            slot=slot[pairs],
            ref=ref[pairs],
            best=votes.best,
            top=votes.top,
            ident=pident,
            cols=pcols,
        )
    ident[pairs] = pident
    cols[pairs] = pcols


def _within_budget(wants: BoolArray, *, group: IntArray, budget: int) -> BoolArray:
    """The first `budget` pairs of each group (in order) among those that want a gapped alignment."""
    if budget <= 0 or not wants.any():
        return np.zeros(wants.shape[0], dtype=bool)
    gfirst = np.concatenate(([True], group[1:] != group[:-1]))
    gstart = np.flatnonzero(gfirst)
    gid = np.cumsum(gfirst) - 1
    csum = np.cumsum(wants)
    before = np.concatenate(([0], csum))[gstart][gid]
    rank = csum - before  # 1-based rank among the group's wanting pairs
    return wants & (rank <= budget)


def _gapped_pass(
    m: Matcher,
    qs: _Queries,
    *,
    pairs: IntArray,
    slot: IntArray,
    ref: IntArray,
    best: IntArray,
    top: IntArray,
    ident: FloatArray,
    cols: IntArray,
) -> None:
    """Replace the ungapped hit of `pairs` by the gapped alignment where it scores better."""
    index = m.index
    qlen = qs.length[slot[pairs]]
    long = pairs[qlen > 300]
    short = pairs[qlen <= 300]
    for c in short.tolist():
        s = int(slot[c])
        qm = qs.cat[qs.start[s] : qs.start[s] + qs.length[s]]
        full = m._biopython(qm, index.ref_mask(int(ref[c])), d=int(best[c]))
        if full is not None and full.identity * full.columns > ident[c] * cols[c]:
            ident[c] = full.identity
            cols[c] = full.columns
    if long.shape[0] == 0:
        return
    # Diagonals as `_finish_segments` hands them to `_chained`: the best, then the
    # others among the six with most votes (at least 2), five at most.
    tops = top[long]
    valid = tops != _NO_DIAG
    n_valid = valid.sum(axis=1)
    chain = n_valid >= 2
    long, tops, valid = long[chain], tops[chain], valid[chain]
    if long.shape[0] == 0:
        return
    d0 = best[long]
    others = valid & (tops != d0[:, None])
    diags = np.full((long.shape[0], 5), _NO_DIAG, dtype=np.int64)
    diags[:, 0] = d0
    for g in range(long.shape[0]):
        rest = tops[g][others[g]][:4]
        diags[g, 1 : 1 + rest.shape[0]] = rest
    for a in range(0, long.shape[0], _CHAINED_PER_PASS):
        sel = long[a : a + _CHAINED_PER_PASS]
        ci, cc = _chained_many(
            qs,
            index,
            slot=slot[sel],
            ref=ref[sel],
            diags=diags[a : a + _CHAINED_PER_PASS],
        )
        better = (cc > 0) & (ci * cc > ident[sel] * cols[sel])
        ident[sel[better]] = ci[better]
        cols[sel[better]] = cc[better]


def _chained_many(
    qs: _Queries,
    index: KmerIndex,
    *,
    slot: IntArray,
    ref: IntArray,
    diags: IntArray,
) -> tuple[FloatArray, IntArray]:
    """`matching._chained` for many pairs at once: identity and columns (0: no alignment)."""
    g_n, nd = diags.shape
    qlen = qs.length[slot]
    rlen = index.lengths[ref]
    width = int(qlen.max())
    w = _WINDOW
    nwin = -(-width // w)
    wpad = nwin * w
    pos = np.arange(wpad)
    real = diags != _NO_DIAG
    dg = np.where(real, diags, 0)
    j = pos[None, None, :] + dg[:, :, None]
    inside = (
        real[:, :, None]
        & (j >= 0)
        & (j < rlen[:, None, None])
        & (pos[None, None, :] < qlen[:, None, None])
    )
    qb = gather_rows(qs.cat, qs.start[slot], wpad)
    # Bases outside the reference are read at its start: `inside` discards them.
    rb = index.seq_masks[np.where(inside, j, 0) + index.seq_offsets[ref][:, None, None]]
    del j
    same = inside & ((qb[:, None, :] & rb) != 0)
    del rb
    score = np.where(same, np.int32(MATCH), np.int32(MISMATCH))
    score[~inside] = _OUTSIDE
    assign = _assign_many(score, dg=dg, qlen=qlen, nwin=nwin)
    rows = np.arange(g_n)[:, None]
    col_score = score[rows, assign, pos[None, :]]
    col_same = same[rows, assign, pos[None, :]]
    del score, same
    dsel = dg[rows, assign]
    delta = np.zeros((g_n, wpad), dtype=np.int64)
    delta[:, 1:] = dsel[:, 1:] - dsel[:, :-1]
    switch = (delta != 0) & (pos[None, :] < qlen[:, None])
    switch[:, 0] = False
    col_score = col_score + np.where(switch, GAP_OPEN + GAP_EXTEND * (np.abs(delta) - 1), 0)
    extra = np.where(switch & (delta > 0), delta, 0)
    # Insertions: the query bases skipped by a switch to a lower diagonal match nothing.
    ins_len = np.where(switch & (delta < 0), -delta, 0)
    mark = np.zeros((g_n, wpad + 1), dtype=np.int64)
    sw_r, sw_p = np.nonzero(ins_len)
    stop = np.minimum(qlen[sw_r], sw_p + ins_len[sw_r, sw_p])
    np.add.at(mark, (sw_r, sw_p), 1)
    np.add.at(mark, (sw_r, stop), -1)
    col_same &= np.cumsum(mark, axis=1)[:, :wpad] == 0
    col_score[pos[None, :] >= qlen[:, None]] = _OUTSIDE
    cs = np.concatenate((np.zeros((g_n, 1), dtype=np.int64), np.cumsum(col_score, axis=1)), axis=1)
    low = np.minimum.accumulate(cs, axis=1)
    gain = cs - low
    end = gain.argmax(axis=1)
    top_gain = gain[np.arange(g_n), end]
    low_end = low[np.arange(g_n), end]
    xs = np.arange(wpad + 1)
    is_low = (cs == low_end[:, None]) & (xs[None, :] <= end[:, None])
    start = wpad - np.argmax(is_low[:, ::-1], axis=1)
    in_seg = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    dels = (extra * in_seg).sum(axis=1)
    matches = (col_same & in_seg).sum(axis=1)
    ncols = (end - start) + dels
    okay = top_gain > 0
    ncols = np.where(okay, ncols, 0)
    ident = np.where(ncols > 0, 100.0 * matches / np.maximum(ncols, 1), 0.0)
    return ident, ncols


def _assign_many(score: IntArray, *, dg: IntArray, qlen: IntArray, nwin: int) -> IntArray:
    """`matching._assign_diagonals` for many pairs (rows of `score`, padded to `nwin` windows)."""
    g_n, nd, wpad = score.shape
    w = _WINDOW
    rows = np.arange(g_n)
    wsum = score.reshape(g_n, nd, nwin, w).sum(axis=3)
    choice = np.zeros((g_n, nwin), dtype=np.int64)
    choice[:, 0] = wsum[:, :, 0].argmax(axis=1)
    for win in range(1, nwin):
        cur = choice[:, win - 1]
        new = wsum[:, :, win].argmax(axis=1)
        cost = -GAP_OPEN - GAP_EXTEND * np.abs(dg[rows, new] - dg[rows, cur])
        gain = wsum[rows, new, win] - wsum[rows, cur, win]
        choice[:, win] = np.where((new != cur) & (gain > cost), new, cur)
    assign = np.repeat(choice, w, axis=1)
    span = np.arange(2 * w + 1)
    for win in range(1, nwin):
        a, b = choice[:, win - 1], choice[:, win]
        sel = np.flatnonzero(a != b)
        if sel.shape[0] == 0:
            continue
        lo = (win - 1) * w
        hi = np.minimum((win + 1) * w, qlen[sel])
        split = lo + span[None, :]
        valid = split <= hi[:, None]
        splitc = np.minimum(split, wpad)
        # Prefix sums of the two diagonals, only for the pairs switching here.
        ca = _prefix_sums(score[sel, a[sel]])
        cb = _prefix_sums(score[sel, b[sel]])
        r = np.arange(sel.shape[0])[:, None]
        total = (ca[r, splitc] - ca[:, lo : lo + 1]) + (cb[r, hi[:, None]] - cb[r, splitc])
        total = np.where(valid, total, np.iinfo(np.int64).min)
        p = lo + total.argmax(axis=1)
        width = min(2 * w, wpad - lo)
        span_pos = lo + np.arange(width)[None, :]
        cur_vals = assign[sel, lo : lo + width]
        new_vals = np.where(
            span_pos < p[:, None],
            a[sel][:, None],
            np.where(span_pos < hi[:, None], b[sel][:, None], cur_vals),
        )
        assign[sel, lo : lo + width] = new_vals
    return assign


def _prefix_sums(rows: IntArray) -> IntArray:
    """Per row: 0, then the running sum of its values (64-bit)."""
    out = np.zeros((rows.shape[0], rows.shape[1] + 1), dtype=np.int64)
    np.cumsum(rows, axis=1, out=out[:, 1:])
    return out


# ----------------------------------------------------------------- candidates
@dataclass(frozen=True)
class ProbeCandidates:
    """Candidates of many probes as flat arrays, grouped by probe, best first within each."""

    probe: IntArray  # position of the probe in the list searched
    refs: IntArray
    strands: IntArray
    shared: IntArray


_PROBES_PER_PASS = 64  # probes per pass of the candidate search
_DENSE_CELLS = 8_000_000  # at most this many dense counters per pass (64 MB)
_POSTINGS_PER_PASS = 8_000_000  # postings gathered per pass, unless one probe has more


def search_probes(
    index: KmerIndex,
    probes: IntArray,
    *,
    top_n: int,
    per_species: int,
    max_kmers: int = 200,
    min_shared: int = 2,
) -> ProbeCandidates:
    """`index.candidates(index.ref_mask(p), top_n, per_species=...)` for every probe `p`,
    with the probe's own species held out, as flat arrays."""
    per_pass = _PROBES_PER_PASS
    parts: list[ProbeCandidates] = []
    for a in range(0, probes.shape[0], per_pass):
        part = _search_pass(
            index,
            probes[a : a + per_pass],
            top_n=top_n,
            per_species=per_species,
            max_kmers=max_kmers,
            min_shared=min_shared,
        )
        parts.append(ProbeCandidates(part.probe + a, part.refs, part.strands, part.shared))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return ProbeCandidates(empty, empty, empty, empty)
    return ProbeCandidates(
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("probe", "refs", "strands", "shared")
        )
    )


def _probe_kmers(
    index: KmerIndex, probes: IntArray, max_kmers: int
) -> tuple[IntArray, IntArray, IntArray]:
    """(probe slot, canonical code, orientation) of each probe's sampled k-mers, as `query_kmers`."""
    k = index.k
    masks = [index.ref_mask(int(p)) for p in probes.tolist()]
    length = np.array([m.shape[0] for m in masks], dtype=np.int64)
    start = np.concatenate(([0], np.cumsum(length + 1)[:-1])).astype(np.int64)
    sep = np.zeros(1, dtype=np.uint8)
    cat = np.concatenate([x for m in masks for x in (m, sep)])
    fwd, rev, valid = kmer_codes(MASK_TO_CODE[cat], k)
    # Only the k-mers of the indexed sample, as `KmerIndex.query_kmers` looks up.
    pos = np.flatnonzero(valid & sampled(np.minimum(fwd, rev), index.sample))
    slot = np.searchsorted(start, pos, side="right") - 1
    n_valid = np.bincount(slot, minlength=probes.shape[0])
    first = np.cumsum(n_valid) - n_valid
    keep = n_valid[slot] <= max_kmers
    big = np.flatnonzero(n_valid > max_kmers)
    if big.shape[0]:
        # np.linspace(0, n - 1, max_kmers).round() for every probe with n > max_kmers.
        step = (n_valid[big] - 1).astype(np.float64) / (max_kmers - 1)
        pick = np.arange(max_kmers, dtype=np.float64)[None, :] * step[:, None]
        pick[:, -1] = n_valid[big] - 1
        keep[(first[big][:, None] + pick.round().astype(np.int64)).ravel()] = True
    pos, slot = pos[keep], slot[keep]
    f, r = fwd[pos], rev[pos]
    canon = np.minimum(f, r)
    key = np.sort((slot << (2 * k + 2)) | (canon << 1) | (r < f).astype(np.int64))
    code_key = key >> 1
    # One entry per code (the forward orientation first, as `query_kmers`).
    head = np.ones(key.shape[0], dtype=bool)
    head[1:] = code_key[1:] != code_key[:-1]
    key = key[head]
    return key >> (2 * k + 2), (key >> 1) & ((1 << (2 * k)) - 1), key & 1


def _search_pass(
    index: KmerIndex,
    probes: IntArray,
    *,
    top_n: int,
    per_species: int,
    max_kmers: int,
    min_shared: int,
) -> ProbeCandidates:
    n_ref = index.n_refs
    n_p = int(probes.shape[0])
    slot, codes, orient = _probe_kmers(index, probes, max_kmers)
    n_kmers = np.bincount(slot, minlength=n_p)
    starts = index.offsets[codes]
    lens = index.offsets[codes + 1] - starts
    cap = max(2000, n_ref // 20)
    keep = lens <= cap
    kept = np.bincount(slot[keep], minlength=n_p)
    # Probes with too few rare k-mers take `candidates` itself (it keeps the rarest ones).
    odd = kept < np.maximum(8, n_kmers // 2)
    keep &= ~odd[slot]
    slot, codes, orient = slot[keep], codes[keep], orient[keep]
    volume = int((index.offsets[codes + 1] - index.offsets[codes]).sum())
    if volume > _POSTINGS_PER_PASS and n_p > 1:
        # Too many postings for one pass (frequent k-mers): halve the probes.
        half = n_p // 2
        kw = {"top_n": top_n, "per_species": per_species, "max_kmers": max_kmers}
        a = _search_pass(index, probes[:half], min_shared=min_shared, **kw)
        b = _search_pass(index, probes[half:], min_shared=min_shared, **kw)
        return ProbeCandidates(
            *(
                np.concatenate((getattr(a, f), getattr(b, f) + (half if f == "probe" else 0)))
                for f in ("probe", "refs", "strands", "shared")
            )
        )
    limit = top_n * per_species * 4
    pb, pr, ps, rev = _shared_counts(
        index, probes, slot=slot, codes=codes, orient=orient, limit=limit
    )
    good = ps >= min_shared
    pb, pr, ps, rev = pb[good], pr[good], ps[good], rev[good]
    sp = index.species_ids[pr]
    mine = sp == index.species_ids[probes][pb]
    pb, pr, sp, ps, rev = pb[~mine], pr[~mine], sp[~mine], ps[~mine], rev[~mine]
    # Only the `limit` best of each probe go on: drop what scores below the
    # limit-th best score of its probe before sorting.
    if pb.shape[0] > limit:
        top = int(ps.max(initial=0)) + 1
        hist = np.bincount(pb * top + ps, minlength=n_p * top).reshape(n_p, top)
        at_least = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]
        floor = np.maximum((at_least >= limit).sum(axis=1) - 1, 0)
        keep = ps >= floor[pb]
        pb, pr, sp, ps, rev = pb[keep], pr[keep], sp[keep], ps[keep], rev[keep]
    order = np.lexsort((pr, -ps, pb))
    pb, pr, sp, ps, rev = pb[order], pr[order], sp[order], ps[order], rev[order]
    rank = rank_within(pb)
    cut = rank < limit
    pb, pr, sp, ps, rev = pb[cut], pr[cut], sp[cut], ps[cut], rev[cut]
    # At most `per_species` per species, in rank order, then the best `top_n`.
    order = np.lexsort((np.arange(pb.shape[0]), sp, pb))
    sp_rank = np.empty(pb.shape[0], dtype=np.int64)
    sp_rank[order] = rank_within(pb[order] * (int(sp.max(initial=0)) + 1) + sp[order])
    cut = sp_rank < per_species
    pb, pr, ps, rev = pb[cut], pr[cut], ps[cut], rev[cut]
    cut = rank_within(pb) < top_n
    pb, pr, ps, rev = pb[cut], pr[cut], ps[cut], rev[cut]
    strands = np.where(rev, -1, 1).astype(np.int64)
    out = ProbeCandidates(pb.astype(np.int64), pr.astype(np.int64), strands, ps.astype(np.int64))
    if not odd.any():
        return out
    return _with_slow_probes(
        index, probes, out, slow=np.flatnonzero(odd), top_n=top_n, per_species=per_species
    )


def _posting_counts(
    index: KmerIndex, *, slot: IntArray, codes: IntArray, orient: IntArray, n_slots: int
) -> tuple[IntArray, IntArray] | IntArray:
    """(slot * 2n + reference * 2 + orientation, shared k-mers) over the given k-mers, sorted;
    or, where that costs less (many postings per reference), every counter as a dense
    (slots, references, 2) array."""
    n_ref = index.n_refs
    starts = index.offsets[codes]
    lens = index.offsets[codes + 1] - starts
    total = int(lens.sum())
    ends = np.cumsum(lens)
    pos = np.arange(total, dtype=np.int64) - np.repeat(ends - lens - starts, lens)
    wide = n_slots * 2 * n_ref >= 2**32
    vals = index.postings[pos].astype(np.int64 if wide else np.uint32)
    del pos
    vals ^= np.repeat(orient.astype(vals.dtype), lens)
    vals += np.repeat((slot * (2 * n_ref)).astype(vals.dtype), lens)
    cells = n_slots * 2 * n_ref
    if total * 8 > cells and cells <= _DENSE_CELLS:
        # Dense counters cost less than sorting this many postings (small libraries).
        dense: IntArray = np.bincount(vals, minlength=n_slots * 2 * n_ref)
        return dense.reshape(n_slots, n_ref, 2)
    vals.sort()
    head = np.ones(vals.shape[0], dtype=bool)
    head[1:] = vals[1:] != vals[:-1]
    first = np.flatnonzero(head)
    return vals[first].astype(np.int64), np.diff(np.append(first, total))


def _shared_counts(
    index: KmerIndex,
    probes: IntArray,
    *,
    slot: IntArray,
    codes: IntArray,
    orient: IntArray,
    limit: int,
) -> tuple[IntArray, IntArray, IntArray, BoolArray]:
    """(probe, reference, shared k-mers on the better strand, whether that is the reverse one)
    of the references sharing k-mers with each probe (from dense counters: of the `limit`
    best of each probe).

    The probes of one species share most of their sampled k-mers; a k-mer all
    of them carry is looked up once for the species and counted for each.
    """
    n_ref = index.n_refs
    n_p = int(probes.shape[0])
    _sp, ginv = np.unique(index.species_ids[probes], return_inverse=True)
    ginv = ginv.astype(np.int64)
    gsize = np.bincount(ginv)
    n_g = int(gsize.shape[0])
    g = ginv[slot]
    ekey = (g << (2 * index.k + 1)) | (codes << 1) | orient
    order = np.argsort(ekey, kind="stable")
    ek = ekey[order]
    head = np.ones(ek.shape[0], dtype=bool)
    head[1:] = ek[1:] != ek[:-1]
    at = np.flatnonzero(head)
    mult = np.diff(np.append(at, ek.shape[0]))
    common_run = (mult == gsize[g[order][at]]) & (gsize[g[order][at]] > 1)
    common = np.repeat(common_run, mult)[np.argsort(order)]
    once = order[at[common_run]]
    ps = np.concatenate((slot[~common], n_p + g[once]))
    pc = np.concatenate((codes[~common], codes[once]))
    po = np.concatenate((orient[~common], orient[once]))
    counted = _posting_counts(index, slot=ps, codes=pc, orient=po, n_slots=n_p + n_g)
    if not isinstance(counted, tuple):
        return _dense_best(index, probes, counted[:n_p] + counted[n_p + ginv], limit=limit)
    key, cnt = counted
    two_n = 2 * n_ref
    # Species rows sort after probe rows (their slots come last).
    split = int(np.searchsorted(key, n_p * two_n))
    sk, sc = key[:split], cnt[:split]
    gk, gc = key[split:] - n_p * two_n, cnt[split:]
    # A probe's own count plus its species' count; a total under 2 can never
    # make a candidate (nor change a strand), so such rows are dropped.
    look = ginv[sk // two_n] * two_n + sk % two_n
    i = np.minimum(np.searchsorted(gk, look), max(gk.shape[0] - 1, 0))
    partner = (gk[i] == look) if gk.shape[0] else np.zeros(look.shape[0], dtype=bool)
    total = sc + np.where(partner, gc[i] if gk.shape[0] else 0, 0)
    keep = total >= 2
    key, cnt = sk[keep], total[keep]
    big = gc >= 2
    if big.any():
        # Species rows stand for each of its probes that has no row of its own.
        members = np.argsort(ginv, kind="stable")
        mstart = np.cumsum(gsize) - gsize
        gr = gk[big] // two_n
        reps = gsize[gr]
        within = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
        exp_slot = members[np.repeat(mstart[gr], reps) + within]
        exp_key = exp_slot * two_n + np.repeat(gk[big] % two_n, reps)
        exp_cnt = np.repeat(gc[big], reps)
        j = np.minimum(np.searchsorted(sk, exp_key), max(sk.shape[0] - 1, 0))
        own = (sk[j] == exp_key) if sk.shape[0] else np.zeros(exp_key.shape[0], dtype=bool)
        key = np.concatenate((key, exp_key[~own]))
        cnt = np.concatenate((cnt, exp_cnt[~own]))
        key, cnt = _sort_unique_keys(key, cnt)
    pair = key >> 1 << 1
    fwd = np.where(key & 1, 0, cnt)
    rev = np.where(key & 1, cnt, 0)
    head = np.ones(pair.shape[0], dtype=bool)
    head[1:] = pair[1:] != pair[:-1]
    at = np.flatnonzero(head)
    if at.shape[0]:
        pair, fwd, rev = pair[at], np.add.reduceat(fwd, at), np.add.reduceat(rev, at)
    return pair // two_n, (pair % two_n) >> 1, np.maximum(fwd, rev), rev > fwd


def _sort_unique_keys(key: IntArray, value: IntArray) -> tuple[IntArray, IntArray]:
    """Distinct non-negative `key`s sorted, with their non-negative values: one plain sort
    of (key, value) packed in 63 bits when they fit, else a stable argsort."""
    if key.shape[0] == 0:
        return key, value
    v_bits = max(1, int(value.max()).bit_length())
    if int(key.max()).bit_length() + v_bits <= 62:
        both = np.sort((key << v_bits) | value)
        return both >> v_bits, both & ((1 << v_bits) - 1)
    order = np.argsort(key, kind="stable")
    return key[order], value[order]


def _dense_best(
    index: KmerIndex, probes: IntArray, counts: IntArray, *, limit: int
) -> tuple[IntArray, IntArray, IntArray, BoolArray]:
    """(probe, reference, score, reverse) of the `limit` best references of each probe
    (ties by reference number) from dense (probes, references, 2) counters."""
    n_p, n_ref, _two = counts.shape
    score = counts.max(axis=2)
    score[index.species_ids[None, :] == index.species_ids[probes][:, None]] = 0
    key = score * (n_ref + 1) + (n_ref - np.arange(n_ref))[None, :]
    if n_ref > limit:
        top = np.argpartition(-key, limit - 1, axis=1)[:, :limit]
    else:
        top = np.broadcast_to(np.arange(n_ref), (n_p, n_ref))
    pb = np.repeat(np.arange(n_p), top.shape[1])
    pr = top.ravel()
    ps = score[pb, pr]
    rev = counts[pb, pr, 1] > counts[pb, pr, 0]
    return pb, pr, ps, rev


def rank_within(sorted_groups: IntArray) -> IntArray:
    """0-based position of each element within its run of equal values."""
    n = sorted_groups.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    head = np.ones(n, dtype=bool)
    head[1:] = sorted_groups[1:] != sorted_groups[:-1]
    first = np.flatnonzero(head)
    return np.arange(n) - np.repeat(first, np.diff(np.append(first, n)))


def _with_slow_probes(
    index: KmerIndex,
    probes: IntArray,
    fast: ProbeCandidates,
    *,
    slow: IntArray,
    top_n: int,
    per_species: int,
) -> ProbeCandidates:
    parts = [fast]
    for s in slow.tolist():
        p = int(probes[s])
        excl = index.species_ids == index.species_ids[p]
        c = index.candidates(index.ref_mask(p), top_n, per_species=per_species, exclude=excl)
        parts.append(
            ProbeCandidates(
                np.full(c.refs.shape[0], s, dtype=np.int64), c.refs, c.strands, c.shared
            )
        )
    probe = np.concatenate([p.probe for p in parts])
    order = np.argsort(probe, kind="stable")
    return ProbeCandidates(
        *(
            np.concatenate([getattr(p, f) for p in parts])[order]
            for f in ("probe", "refs", "strands", "shared")
        )
    )
