"""K-mer candidate index of one reference library version.

Owns the fast first stage of a search: which references share the most k-mers
with a query, and on which strand. Everything lives in NumPy arrays so an index
of 100,000 references builds in seconds and is cached to one ``.npz`` file.

Invariants:
- k is odd, so a k-mer never equals its own reverse complement and the
  canonical form (the smaller of the k-mer and its reverse complement, as a
  2-bit integer) identifies both strands unambiguously.
- A k-mer containing anything but A/C/G/T (IUPAC ambiguity codes, N) is skipped
  in references and queries alike; such bases never raise.
- Postings are CSR arrays: ``offsets[code]:offsets[code + 1]`` slices
  ``postings``, whose values are ``ref_index * 2 + orientation`` (orientation 1
  when the reference carries the k-mer as its reverse complement). Each
  (reference, k-mer) pair is stored once.
- An index belongs to exactly one library content hash; ``load_or_build``
  rebuilds when the cached file was made for another hash, k or format.
- Reference sequences are kept as IUPAC bit masks (A=1, C=2, G=4, T=8; an
  ambiguity code is the union of its bases) for the alignment stage.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from species_ref.errors import SpeciesRefError
from species_ref.types import LibraryVersion, RefRecord

INDEX_FORMAT = 1
DEFAULT_K = 11

IntArray = npt.NDArray[np.int64]
ByteArray = npt.NDArray[np.uint8]


class IndexBuildError(SpeciesRefError):
    """A k-mer index cannot be built or loaded."""


def _lut(pairs: dict[str, int], default: int) -> ByteArray:
    table = np.full(256, default, dtype=np.uint8)
    for letters, value in pairs.items():
        for ch in letters:
            table[ord(ch)] = value
            table[ord(ch.lower())] = value
    return table


#: IUPAC letter -> bit mask of the bases it stands for (0 for anything else).
BITMASK = _lut(
    {
        "A": 1,
        "C": 2,
        "G": 4,
        "TU": 8,
        "R": 5,
        "Y": 10,
        "S": 6,
        "W": 9,
        "K": 12,
        "M": 3,
        "B": 14,
        "D": 13,
        "H": 11,
        "V": 7,
        "N": 15,
    },
    0,
)
#: bit mask -> complementary bit mask (A<->T, C<->G; reverses the four bits).
COMPLEMENT_MASK = np.array([int(f"{i:04b}"[::-1], 2) for i in range(16)], dtype=np.uint8)
#: bit mask -> 2-bit code (A0 C1 G2 T3), 4 for ambiguity codes.
MASK_TO_CODE = np.full(16, 4, dtype=np.uint8)
MASK_TO_CODE[[1, 2, 4, 8]] = [0, 1, 2, 3]


def encode_mask(seq: str) -> ByteArray:
    """IUPAC bit masks of a DNA string (unknown characters become 0, matching nothing)."""
    return BITMASK[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]


def revcomp_mask(mask: ByteArray) -> ByteArray:
    """Reverse complement of a bit-mask sequence."""
    return COMPLEMENT_MASK[mask[::-1]]


KmerCodes = tuple[IntArray, IntArray, npt.NDArray[np.bool_]]


def kmer_codes(codes: ByteArray, k: int) -> KmerCodes:
    """Forward and reverse-complement k-mer codes of 2-bit codes, and which windows are valid.

    Position i describes the window ``codes[i:i + k]``; a window holding a code 4
    (ambiguity or separator) is invalid.
    """
    n = codes.shape[0] - k + 1
    if n <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=bool)
    c = codes.astype(np.int64)
    bad = np.concatenate(([0], np.cumsum(c == 4)))
    valid = (bad[k:] - bad[:n]) == 0
    c = np.where(c == 4, 0, c)
    fwd = np.zeros(n, dtype=np.int64)
    rev = np.zeros(n, dtype=np.int64)
    for j in range(k):
        window = c[j : j + n]
        fwd = (fwd << 2) | window
        rev |= (3 - window) << (2 * j)
    return fwd, rev, valid


@dataclass(frozen=True)
class CandidateSet:
    """References sharing k-mers with a query, best first.

    ``strands`` is +1 when the query matches the reference as given and -1 when
    its reverse complement does; ``shared`` counts shared distinct k-mers out of
    ``n_kmers`` distinct valid k-mers of the query.
    """

    refs: IntArray
    strands: IntArray
    shared: IntArray
    n_kmers: int


def save_npz_atomically(path: Path, **arrays: Any) -> None:
    """Write arrays to an .npz cache file via a temporary file, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class KmerIndex:
    """Canonical k-mer index (CSR arrays) plus encoded references of one library version."""

    def __init__(
        self,
        *,
        content_hash: str,
        k: int,
        offsets: IntArray,
        postings: npt.NDArray[np.int32],
        seq_masks: ByteArray,
        seq_offsets: IntArray,
        species_ids: npt.NDArray[np.int32],
        species_names: Sequence[str],
        seq_ids: Sequence[str],
        markers: Sequence[str],
    ) -> None:
        self.content_hash = content_hash
        self.k = k
        self.offsets = offsets
        self.postings = postings
        self.seq_masks = seq_masks
        self.seq_offsets = seq_offsets
        self.species_ids = species_ids
        self.species_names = list(species_names)
        self.seq_ids = list(seq_ids)
        self.markers = list(markers)
        self.genus_names = [s.split(" ", 1)[0] for s in self.species_names]
        self.n_refs = len(self.seq_ids)
        self.lengths = np.diff(seq_offsets)
        # 2-bit codes of every reference base (4 = ambiguity), padded so that a
        # k-mer window starting at the last base never reads past the end.
        self.seq_codes = np.concatenate((MASK_TO_CODE[seq_masks], np.full(k, 4, dtype=np.uint8)))
        self._species_index = {name: i for i, name in enumerate(self.species_names)}

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, version: LibraryVersion, *, k: int = DEFAULT_K) -> KmerIndex:
        """Build the index of every record of a library version."""
        return cls.from_records(version.records, content_hash=version.content_hash, k=k)

    @classmethod
    def from_records(
        cls, records: Sequence[RefRecord], *, content_hash: str = "", k: int = DEFAULT_K
    ) -> KmerIndex:
        """Build an index from reference records (the order fixes the reference indices)."""
        if k % 2 == 0 or not 5 <= k <= 15:
            raise IndexBuildError(f"K-mer size {k} is not supported; use an odd k from 5 to 15.")
        if not records:
            raise IndexBuildError(
                "The reference library is empty; import reference sequences first."
            )
        names = sorted({r.species for r in records})
        sp_index = {name: i for i, name in enumerate(names)}
        species_ids = np.array([sp_index[r.species] for r in records], dtype=np.int32)
        masks = [encode_mask(r.sequence) for r in records]
        lengths = np.array([m.shape[0] for m in masks], dtype=np.int64)
        seq_offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        seq_masks = np.concatenate(masks) if masks else np.zeros(0, dtype=np.uint8)
        n_refs = len(records)
        # Each chunk of references yields its (code, posting) pairs sorted by code;
        # a counting sort then places them, so memory stays near the final size.
        parts: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]] = []
        counts = np.zeros(4**k, dtype=np.int64)
        chunk_bases = 4_000_000
        start = 0
        while start < n_refs:
            stop = start
            size = 0
            while stop < n_refs and (size < chunk_bases or stop == start):
                size += int(lengths[stop]) + 1
                stop += 1
            key = cls._chunk_keys(masks[start:stop], first_ref=start, n_refs=n_refs, k=k)
            codes = (key // (2 * n_refs)).astype(np.int32)
            posts = (key % (2 * n_refs)).astype(np.int32)
            del key
            counts += np.bincount(codes, minlength=4**k)
            parts.append((codes, posts))
            start = stop
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        postings = np.empty(int(offsets[-1]), dtype=np.int32)
        fill = offsets[:-1].copy()
        for codes, posts in parts:
            first = np.searchsorted(codes, codes, side="left")
            dest = fill[codes] + (np.arange(codes.shape[0]) - first)
            postings[dest] = posts
            fill += np.bincount(codes, minlength=4**k)
        del parts
        return cls(
            content_hash=content_hash,
            k=k,
            offsets=offsets,
            postings=postings,
            seq_masks=seq_masks,
            seq_offsets=seq_offsets,
            species_ids=species_ids,
            species_names=names,
            seq_ids=[r.seq_id for r in records],
            markers=[r.marker for r in records],
        )

    @staticmethod
    def _chunk_keys(masks: Sequence[ByteArray], *, first_ref: int, n_refs: int, k: int) -> IntArray:
        sep = np.full(1, 0, dtype=np.uint8)
        joined = np.concatenate([x for m in masks for x in (m, sep)])
        codes = MASK_TO_CODE[joined]
        fwd, rev, valid = kmer_codes(codes, k)
        lens = np.array([m.shape[0] + 1 for m in masks], dtype=np.int64)
        ref = np.repeat(np.arange(first_ref, first_ref + len(masks), dtype=np.int64), lens)
        ref = ref[: fwd.shape[0]]
        canon = np.minimum(fwd, rev)
        orient = (rev < fwd).astype(np.int64)
        key = canon * (2 * n_refs) + ref * 2 + orient
        return _sorted_unique(key[valid])

    # ------------------------------------------------------------ persistence
    def save(self, path: Path) -> None:
        """Write the index to an .npz file atomically."""
        save_npz_atomically(
            path,
            format=np.array(INDEX_FORMAT),
            content_hash=np.array(self.content_hash),
            k=np.array(self.k),
            offsets=self.offsets,
            postings=self.postings,
            seq_masks=self.seq_masks,
            seq_offsets=self.seq_offsets,
            species_ids=self.species_ids,
            species_names=np.array(self.species_names, dtype=object).astype(str),
            seq_ids=np.array(self.seq_ids, dtype=object).astype(str),
            markers=np.array(self.markers, dtype=object).astype(str),
        )

    @classmethod
    def load(cls, path: Path) -> KmerIndex:
        """Read an index written by `save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["format"]) != INDEX_FORMAT:
                    raise IndexBuildError(
                        f"Index file {path} has an old format; delete it to rebuild."
                    )
                return cls(
                    content_hash=str(data["content_hash"]),
                    k=int(data["k"]),
                    offsets=data["offsets"],
                    postings=data["postings"],
                    seq_masks=data["seq_masks"],
                    seq_offsets=data["seq_offsets"],
                    species_ids=data["species_ids"],
                    species_names=[str(x) for x in data["species_names"]],
                    seq_ids=[str(x) for x in data["seq_ids"]],
                    markers=[str(x) for x in data["markers"]],
                )
        except (OSError, KeyError, ValueError) as exc:
            raise IndexBuildError(f"Index file {path} cannot be read ({exc}); delete it.") from exc

    @classmethod
    def load_or_build(
        cls, version: LibraryVersion, cache_dir: Path | None, *, k: int = DEFAULT_K
    ) -> KmerIndex:
        """Load the cached index of this library version from `cache_dir`, or build and cache it.

        With ``cache_dir=None`` the index is built in memory only.
        """
        if cache_dir is None:
            return cls.build(version, k=k)
        path = Path(cache_dir) / _cache_name(version.content_hash, k)
        if path.exists():
            try:
                index = cls.load(path)
                if index.content_hash == version.content_hash and index.k == k:
                    return index
            except IndexBuildError:
                pass
        index = cls.build(version, k=k)
        index.save(path)
        return index

    # ---------------------------------------------------------------- access
    def species_id(self, name: str) -> int | None:
        return self._species_index.get(name)

    def ref_mask(self, ref: int) -> ByteArray:
        """Bit-mask sequence of reference `ref`."""
        return self.seq_masks[self.seq_offsets[ref] : self.seq_offsets[ref + 1]]

    def refs_of_species(self, species_id: int) -> IntArray:
        return np.flatnonzero(self.species_ids == species_id)

    # ---------------------------------------------------------------- search
    def query_kmers(
        self,
        seq: str | ByteArray,
        *,
        max_kmers: int | None = None,
        kmers: KmerCodes | None = None,
    ) -> tuple[IntArray, IntArray]:
        """Distinct canonical k-mer codes of a query and their orientation (1 = reverse).

        With `max_kmers`, k-mers are taken at evenly spaced positions so that at
        most that many are used (long queries rank candidates just as well from a
        sample, at a fraction of the cost). `kmers` is the `kmer_codes` of the
        query when the caller has them already.
        """
        if kmers is None:
            mask = encode_mask(seq) if isinstance(seq, str) else seq
            kmers = kmer_codes(MASK_TO_CODE[mask], self.k)
        fwd, rev, valid = kmers
        pos = np.flatnonzero(valid)
        if max_kmers is not None and pos.shape[0] > max_kmers:
            pos = pos[np.linspace(0, pos.shape[0] - 1, max_kmers).round().astype(np.int64)]
        fwd, rev = fwd[pos], rev[pos]
        canon = np.minimum(fwd, rev)
        orient = (rev < fwd).astype(np.int64)
        key = _sorted_unique(canon * 2 + orient)
        codes = key >> 1
        # A k-mer seen on both strands of the query keeps one orientation.
        first = np.ones(codes.shape[0], dtype=bool)
        first[1:] = codes[1:] != codes[:-1]
        return codes[first], (key & 1)[first]

    def candidates(
        self,
        seq: str | ByteArray,
        top_n: int = 25,
        *,
        per_species: int = 5,
        exclude: npt.NDArray[np.bool_] | None = None,
        min_shared: int = 2,
        max_postings: int | None = None,
        max_kmers: int | None = 200,
        kmers: KmerCodes | None = None,
    ) -> CandidateSet:
        """Rank references by shared canonical k-mers with `seq`, on the better strand.

        At most `per_species` references of one species are returned so that
        close relatives are always among the `top_n`. `exclude` (a boolean mask
        over references) hides references, as when a sequence or a whole species
        is held out for validation. K-mers found in more than `max_postings`
        references (default: the larger of 2,000 and 5 % of the library) are
        skipped unless too few rarer ones remain. At most `max_kmers` query
        k-mers, evenly spaced, are looked up (`kmers`: see `query_kmers`).
        """
        codes, qorient = self.query_kmers(seq, max_kmers=max_kmers, kmers=kmers)
        n_kmers = int(codes.shape[0])
        empty = np.zeros(0, dtype=np.int64)
        if n_kmers == 0:
            return CandidateSet(empty, empty, empty, 0)
        starts = self.offsets[codes]
        lens = self.offsets[codes + 1] - starts
        cap = max_postings if max_postings is not None else max(2000, self.n_refs // 20)
        keep = lens <= cap
        if keep.sum() < max(8, n_kmers // 2):
            order = np.argsort(lens, kind="stable")[: max(8, n_kmers // 2)]
            keep = np.zeros(n_kmers, dtype=bool)
            keep[order] = True
        starts, lens, qorient = starts[keep], lens[keep], qorient[keep]
        total = int(lens.sum())
        if total == 0:
            return CandidateSet(empty, empty, empty, n_kmers)
        ends = np.cumsum(lens)
        pos = np.arange(total, dtype=np.int64) - np.repeat(ends - lens - starts, lens)
        vals = self.postings[pos].astype(np.int64) ^ np.repeat(qorient, lens)
        counts = np.bincount(vals, minlength=2 * self.n_refs).reshape(-1, 2)
        if exclude is not None:
            counts[exclude] = 0
        score = np.maximum(counts[:, 0], counts[:, 1])
        pool = np.flatnonzero(score >= min_shared)
        if pool.shape[0] == 0:
            return CandidateSet(empty, empty, empty, n_kmers)
        limit = top_n * per_species * 4
        if pool.shape[0] > limit:
            part = np.argpartition(-score[pool], limit)[:limit]
            pool = pool[part]
        pool = pool[np.lexsort((pool, -score[pool]))]
        chosen: list[int] = []
        per: dict[int, int] = {}
        sp = self.species_ids[pool]
        for ref, s in zip(pool.tolist(), sp.tolist(), strict=True):
            c = per.get(s, 0)
            if c >= per_species:
                continue
            per[s] = c + 1
            chosen.append(ref)
            if len(chosen) >= top_n:
                break
        refs = np.array(chosen, dtype=np.int64)
        strands = np.where(counts[refs, 1] > counts[refs, 0], -1, 1).astype(np.int64)
        return CandidateSet(refs, strands, score[refs].astype(np.int64), n_kmers)


def _sorted_unique(values: IntArray) -> IntArray:
    # np.unique hashes on recent NumPy, which is several times slower than sorting here.
    out = np.sort(values)
    if out.shape[0] < 2:
        return out
    keep = np.ones(out.shape[0], dtype=bool)
    keep[1:] = out[1:] != out[:-1]
    return out[keep]


def _cache_name(content_hash: str, k: int) -> str:
    digest = hashlib.sha256(content_hash.encode()).hexdigest()[:24]
    return f"kmer_index_{digest}_k{k}_v{INDEX_FORMAT}.npz"
