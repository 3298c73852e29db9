"""K-mer candidate index of one reference library version.

Owns the fast first stage of a search: which references share the most k-mers
with a query, and on which strand. Everything lives in NumPy arrays; an index
is cached as a directory of ``.npy`` files that a search opens memory-mapped,
so starting a search reads only the pages it touches.

Invariants:
- k is odd, so a k-mer never equals its own reverse complement and the
  canonical form (the smaller of the k-mer and its reverse complement, as a
  2-bit integer) identifies both strands unambiguously.
- A k-mer containing anything but A/C/G/T (IUPAC ambiguity codes, N) is skipped
  in references and queries alike; such bases never raise.
- Only a sample of canonical k-mers is indexed: those whose hash falls in one
  of ``sample`` classes (`sampled`), the same for references and queries, so a
  query looks up every one of its k-mers that could be in the index. A k-mer is
  in the sample or not wherever it occurs, so shared k-mers between a query and
  a reference are counted exactly within the sample.
- Postings are CSR arrays: ``offsets[code]:offsets[code + 1]`` slices
  ``postings``, whose values are ``ref_index * 2 + orientation`` (orientation 1
  when the reference carries the k-mer as its reverse complement). Each
  (reference, k-mer) pair is stored once.
- An index belongs to exactly one library content hash; ``load_or_build``
  rebuilds when the cached index was made for another hash, k, sample or
  format.
- The index does not depend on the number of worker processes that built it
  (references are indexed in chunks over the cores, placed in chunk order).
- Reference sequences are kept as IUPAC bit masks (A=1, C=2, G=4, T=8; an
  ambiguity code is the union of its bases) for the alignment stage.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from species_ref.errors import SpeciesRefError
from species_ref.parallel import fork_map
from species_ref.types import LibraryVersion, RefRecord

INDEX_FORMAT = 2
DEFAULT_K = 11
#: one canonical k-mer in DEFAULT_SAMPLE is indexed (see `sampled`)
DEFAULT_SAMPLE = 4

IntArray = npt.NDArray[np.int64]
ByteArray = npt.NDArray[np.uint8]

_HASH_MULT = np.uint32(2654435761)  # Knuth's multiplicative hash (k-mer codes fit 30 bits)
_CHUNK_BASES = 500_000  # small enough for the allocator to reuse its buffers
#: average postings per k-mer from which slices are copied rather than positions gathered
_SLICE_COPY_MIN = 200


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
    bad = np.concatenate(([0], np.cumsum(codes == 4, dtype=np.int64)))
    valid = (bad[k:] - bad[:n]) == 0
    c = np.where(codes == 4, 0, codes).astype(np.int64)
    fwd = np.zeros(n, dtype=np.int64)
    rev = np.zeros(n, dtype=np.int64)
    for j in range(k):
        window = c[j : j + n]
        fwd <<= 2
        fwd |= window
        rev |= (3 - window) << (2 * j)
    return fwd, rev, valid


def sampled(canon: IntArray, sample: int) -> npt.NDArray[np.bool_]:
    """Which canonical k-mer codes are in the indexed sample (one in `sample`, by hash)."""
    if sample <= 1:
        return np.ones(canon.shape[0], dtype=bool)
    h = (canon.astype(np.uint32) * _HASH_MULT) >> np.uint32(16)
    return (h % np.uint32(sample)) == 0


@dataclass(frozen=True)
class CandidateSet:
    """References sharing k-mers with a query, best first.

    ``strands`` is +1 when the query matches the reference as given and -1 when
    its reverse complement does; ``shared`` counts shared distinct sampled
    k-mers out of ``n_kmers`` distinct valid sampled k-mers of the query.
    """

    refs: IntArray
    strands: IntArray
    shared: IntArray
    n_kmers: int


def save_array_dir(
    path: Path, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any], *, prefix: str
) -> None:
    """Write `arrays` as .npy files plus `meta` as meta.json into the directory `path`.

    The directory is written beside it under a temporary name and renamed into
    place, so a reader never sees half of it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix))
    try:
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        if path.exists():
            shutil.rmtree(path)
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.is_dir():
                raise
            # Another process wrote the same cache in the meantime: keep theirs.
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_array_dir_meta(path: Path) -> dict[str, Any]:
    """The meta.json of a directory written by `save_array_dir`."""
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise ValueError("meta.json is not an object")
    return meta


def open_array_dir(path: Path, names: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
    """The named arrays of a directory written by `save_array_dir`, memory-mapped read-only
    (as plain ndarray views: indexing a np.memmap costs more)."""
    return {
        name: np.asarray(np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False))
        for name in names
    }


class StringTable(Sequence[str]):
    """Strings kept as one UTF-8 blob and offsets; an item is decoded when asked for."""

    def __init__(self, blob: ByteArray, offsets: IntArray) -> None:
        self.blob = blob
        self.offsets = offsets

    @classmethod
    def of(cls, strings: Sequence[str]) -> StringTable:
        encoded = [s.encode("utf-8") for s in strings]
        lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets)

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        j = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError("string table index out of range")
        return self.blob[int(self.offsets[j]) : int(self.offsets[j + 1])].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        text = self.blob.tobytes()
        bounds = self.offsets.tolist()
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            yield text[a:b].decode("utf-8")


class CodedStrings(Sequence[str]):
    """A few distinct strings repeated many times: names and one small code per item."""

    def __init__(self, names: Sequence[str], codes: npt.NDArray[np.int32]) -> None:
        self.names = list(names)
        self.codes = codes

    @classmethod
    def of(cls, strings: Sequence[str]) -> CodedStrings:
        names = sorted(set(strings))
        where = {s: i for i, s in enumerate(names)}
        codes = np.fromiter((where[s] for s in strings), dtype=np.int32, count=len(strings))
        return cls(names, codes)

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self.names[c] for c in self.codes[i].tolist()]
        return self.names[int(self.codes[i])]

    def __iter__(self) -> Iterator[str]:
        names = self.names
        return (names[c] for c in self.codes.tolist())


class KmerIndex:
    """Canonical k-mer index (CSR arrays) plus encoded references of one library version."""

    def __init__(
        self,
        *,
        content_hash: str,
        k: int,
        offsets: npt.NDArray[np.signedinteger[Any]],
        postings: npt.NDArray[np.int32],
        seq_masks: ByteArray,
        seq_offsets: IntArray,
        species_ids: npt.NDArray[np.int32],
        species_names: Sequence[str],
        seq_ids: Sequence[str],
        markers: Sequence[str],
        sample: int = 1,
    ) -> None:
        self.content_hash = content_hash
        self.k = k
        self.sample = sample
        self.offsets = offsets
        self.postings = postings
        self.seq_masks = seq_masks
        self.seq_offsets = seq_offsets
        self.species_ids = species_ids
        self.species_names = list(species_names)
        self.seq_ids: Sequence[str] = (
            seq_ids if isinstance(seq_ids, StringTable) else StringTable.of(seq_ids)
        )
        self.markers: Sequence[str] = (
            markers if isinstance(markers, CodedStrings) else CodedStrings.of(markers)
        )
        self.n_refs = len(self.seq_ids)
        self.lengths = np.diff(seq_offsets)

    @cached_property
    def genus_names(self) -> list[str]:
        return [s.split(" ", 1)[0] for s in self.species_names]

    @cached_property
    def _species_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.species_names)}

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls, version: LibraryVersion, *, k: int = DEFAULT_K, sample: int = DEFAULT_SAMPLE
    ) -> KmerIndex:
        """Build the index of every record of a library version."""
        return cls.from_records(
            version.records, content_hash=version.content_hash, k=k, sample=sample
        )

    @classmethod
    def from_records(
        cls,
        records: Sequence[RefRecord],
        *,
        content_hash: str = "",
        k: int = DEFAULT_K,
        sample: int = DEFAULT_SAMPLE,
    ) -> KmerIndex:
        """Build an index from reference records (the order fixes the reference indices)."""
        if k % 2 == 0 or not 5 <= k <= 15:
            raise IndexBuildError(f"K-mer size {k} is not supported; use an odd k from 5 to 15.")
        if not 1 <= sample <= 16:
            raise IndexBuildError(f"K-mer sample {sample} is not supported; use 1 to 16.")
        if not records:
            raise IndexBuildError(
                "The reference library is empty; import reference sequences first."
            )
        names = sorted({r.species for r in records})
        sp_index = {name: i for i, name in enumerate(names)}
        n_refs = len(records)
        species_ids = np.fromiter(
            (sp_index[r.species] for r in records), dtype=np.int32, count=n_refs
        )
        lengths = np.fromiter((len(r.sequence) for r in records), dtype=np.int64, count=n_refs)
        seq_offsets = np.zeros(n_refs + 1, dtype=np.int64)
        np.cumsum(lengths, out=seq_offsets[1:])
        seq_masks = np.empty(int(seq_offsets[-1]), dtype=np.uint8)
        step = 20_000  # references encoded a slice at a time: no joined copy of them all
        for first in range(0, n_refs, step):
            text = "".join(r.sequence for r in records[first : first + step])
            seq_masks[seq_offsets[first] : seq_offsets[min(first + step, n_refs)]] = BITMASK[
                np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)
            ]
        offsets, postings = _build_postings(seq_masks, seq_offsets, k=k, sample=sample)
        return cls(
            content_hash=content_hash,
            k=k,
            offsets=offsets,
            postings=postings,
            seq_masks=seq_masks,
            seq_offsets=seq_offsets,
            species_ids=species_ids,
            species_names=names,
            seq_ids=StringTable.of([r.seq_id for r in records]),
            markers=CodedStrings.of([r.marker for r in records]),
            sample=sample,
        )

    # ------------------------------------------------------------ persistence
    def _arrays(self) -> dict[str, npt.NDArray[Any]]:
        assert isinstance(self.seq_ids, StringTable) and isinstance(self.markers, CodedStrings)
        return {
            "offsets": self.offsets,
            "postings": self.postings,
            "seq_masks": self.seq_masks,
            "seq_offsets": self.seq_offsets,
            "species_ids": self.species_ids,
            "seq_id_blob": self.seq_ids.blob,
            "seq_id_offsets": self.seq_ids.offsets,
            "marker_codes": self.markers.codes,
        }

    def save(self, path: Path) -> None:
        """Write the index as a directory of .npy files plus meta.json, atomically."""
        meta = {
            "format": INDEX_FORMAT,
            "content_hash": self.content_hash,
            "k": self.k,
            "sample": self.sample,
            "n_refs": self.n_refs,
            "species_names": self.species_names,
            "marker_names": list(self.markers.names),  # type: ignore[attr-defined]
        }
        save_array_dir(Path(path), self._arrays(), meta, prefix=".index-")

    @classmethod
    def load(cls, path: Path) -> KmerIndex:
        """Open an index written by `save`, its arrays memory-mapped (read-only)."""
        path = Path(path)
        try:
            meta = read_array_dir_meta(path)
            if meta.get("format") != INDEX_FORMAT:
                raise IndexBuildError(f"Index {path} has an old format; delete it to rebuild.")
            a = open_array_dir(
                path,
                [
                    "offsets",
                    "postings",
                    "seq_masks",
                    "seq_offsets",
                    "species_ids",
                    "seq_id_blob",
                    "seq_id_offsets",
                    "marker_codes",
                ],
            )
            index = cls(
                content_hash=str(meta["content_hash"]),
                k=int(meta["k"]),
                offsets=a["offsets"],
                postings=a["postings"],
                seq_masks=a["seq_masks"],
                seq_offsets=np.asarray(a["seq_offsets"]),
                species_ids=a["species_ids"],
                species_names=[str(x) for x in meta["species_names"]],
                seq_ids=StringTable(a["seq_id_blob"], a["seq_id_offsets"]),
                markers=CodedStrings([str(x) for x in meta["marker_names"]], a["marker_codes"]),
                sample=int(meta["sample"]),
            )
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise IndexBuildError(f"Index {path} cannot be read ({exc}); delete it.") from exc
        if index.n_refs != int(meta["n_refs"]) or index.offsets.shape[0] != 4**index.k + 1:
            raise IndexBuildError(f"Index {path} is incomplete; delete it.")
        return index

    @classmethod
    def load_or_build(
        cls,
        version: LibraryVersion,
        cache_dir: Path | None,
        *,
        k: int = DEFAULT_K,
        sample: int = DEFAULT_SAMPLE,
    ) -> KmerIndex:
        """Open the cached index of this library version from `cache_dir`, or build and cache it.

        With ``cache_dir=None`` the index is built in memory only. Indexes of
        older formats in `cache_dir` are removed when a new one is written.
        """
        if cache_dir is None:
            return cls.build(version, k=k, sample=sample)
        path = Path(cache_dir) / _cache_name(version.content_hash, k, sample)
        if path.is_dir():
            try:
                index = cls.load(path)
                if index.content_hash == version.content_hash and index.k == k:
                    return index
            except IndexBuildError:
                pass
        index = cls.build(version, k=k, sample=sample)
        index.save(path)
        _remove_stale(Path(cache_dir), keep=path.name)
        try:
            return cls.load(path)
        except IndexBuildError:  # replaced by another process meanwhile: use the one built
            return index

    # ---------------------------------------------------------------- access
    @property
    def marker_codes(self) -> npt.NDArray[np.int32]:
        """One small code per reference; references of one marker share it."""
        assert isinstance(self.markers, CodedStrings)
        return self.markers.codes

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
        """Distinct sampled canonical k-mer codes of a query and their orientation (1 = reverse).

        With `max_kmers`, k-mers are taken at evenly spaced positions so that at
        most that many are used (long queries rank candidates just as well from a
        sample, at a fraction of the cost). `kmers` is the `kmer_codes` of the
        query when the caller has them already.
        """
        if kmers is None:
            mask = encode_mask(seq) if isinstance(seq, str) else seq
            kmers = kmer_codes(MASK_TO_CODE[mask], self.k)
        fwd, rev, valid = kmers
        canon = np.minimum(fwd, rev)
        pos = np.flatnonzero(valid & sampled(canon, self.sample))
        if max_kmers is not None and pos.shape[0] > max_kmers:
            pos = pos[np.linspace(0, pos.shape[0] - 1, max_kmers).round().astype(np.int64)]
        orient = (rev[pos] < fwd[pos]).astype(np.int64)
        key = _sorted_unique(canon[pos] * 2 + orient)
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
        k-mers of the indexed sample, evenly spaced, are looked up (`kmers`:
        see `query_kmers`).
        """
        codes, qorient = self.query_kmers(seq, max_kmers=max_kmers, kmers=kmers)
        n_kmers = int(codes.shape[0])
        empty = np.zeros(0, dtype=np.int64)
        if n_kmers == 0:
            return CandidateSet(empty, empty, empty, 0)
        starts = self.offsets[codes].astype(np.int64)
        lens = self.offsets[codes + 1].astype(np.int64) - starts
        cap = max_postings if max_postings is not None else max(2000, self.n_refs // 20)
        keep = lens <= cap
        if keep.sum() < max(8, n_kmers // 2):
            order = np.argsort(lens, kind="stable")[: max(8, n_kmers // 2)]
            keep = np.zeros(n_kmers, dtype=bool)
            keep[order] = True
        starts, lens, qorient = starts[keep], lens[keep], qorient[keep]
        refs, c_plus, c_minus = self._shared_counts(starts, lens, qorient, min_count=min_shared)
        if exclude is not None and refs.shape[0]:
            held = exclude[refs]
            c_plus[held] = 0
            c_minus[held] = 0
        score = np.maximum(c_plus, c_minus)
        pool = np.flatnonzero(score >= min_shared)
        if pool.shape[0] == 0:
            return CandidateSet(empty, empty, empty, n_kmers)
        limit = top_n * per_species * 4
        if pool.shape[0] > limit:
            part = np.argpartition(-score[pool], limit)[:limit]
            pool = pool[part]
        pool = pool[np.lexsort((refs[pool], -score[pool]))]
        chosen = _per_species_first(
            pool.tolist(), self.species_ids[refs[pool]].tolist(), top_n=top_n, per=per_species
        )
        pick = np.array(chosen, dtype=np.int64)
        strands = np.where(c_minus[pick] > c_plus[pick], -1, 1).astype(np.int64)
        return CandidateSet(refs[pick], strands, score[pick].astype(np.int64), n_kmers)

    def _shared_counts(
        self, starts: IntArray, lens: IntArray, qorient: IntArray, *, min_count: int = 1
    ) -> tuple[IntArray, IntArray, IntArray]:
        """References with any shared k-mer, and their shared counts on each strand;
        with `min_count` 2 or more, references sharing a single k-mer are left out.

        Works on the postings of the query's k-mers only (sorted and counted),
        so its cost does not grow with the size of the library. In a large
        library most references share a single k-mer with a query by chance;
        a caller that needs two or more drops them before they are counted.
        """
        total = int(lens.sum())
        empty = np.zeros(0, dtype=np.int64)
        if total == 0:
            return empty, empty, empty
        postings = self.postings
        if total >= _SLICE_COPY_MIN * lens.shape[0]:
            # Long posting lists (a large library): copying each k-mer's contiguous
            # slice is cheaper than gathering every position.
            vals = np.concatenate(
                [postings[s : s + n] for s, n in zip(starts.tolist(), lens.tolist(), strict=True)]
            )
        else:
            ends = np.cumsum(lens)
            vals = postings[
                np.arange(total, dtype=np.int64) - np.repeat(ends - lens - starts, lens)
            ]
        if qorient.any():
            vals ^= np.repeat(qorient.astype(vals.dtype), lens)
        vals.sort()  # 32-bit values sort faster than 64-bit ones
        ref_of = vals >> 1
        if min_count >= 2 and total > 1:
            repeated = ref_of[1:] == ref_of[:-1]
            keep = np.zeros(total, dtype=bool)
            keep[1:] = repeated
            keep[:-1] |= repeated
            vals, ref_of = vals[keep], ref_of[keep]
            total = int(vals.shape[0])
            if total == 0:
                return empty, empty, empty
        new_ref = np.empty(total, dtype=bool)
        new_ref[0] = True
        np.not_equal(ref_of[1:], ref_of[:-1], out=new_ref[1:])
        first = np.flatnonzero(new_ref)
        last = np.empty_like(first)  # one past each reference's values
        last[:-1] = first[1:]
        last[-1] = total
        odd = np.cumsum(vals & 1)  # values with the orientation bit: reverse complement
        c_minus = odd[last - 1] - odd[first] + (vals[first] & 1)
        return ref_of[first].astype(np.int64), (last - first) - c_minus, c_minus.astype(np.int64)


def _per_species_first(pool: list[int], species: list[int], *, top_n: int, per: int) -> list[int]:
    """The first entries of `pool` (best first), at most `per` of one species, `top_n` in all."""
    chosen: list[int] = []
    seen: dict[int, int] = {}
    for item, s in zip(pool, species, strict=True):
        c = seen.get(s, 0)
        if c >= per:
            continue
        seen[s] = c + 1
        chosen.append(item)
        if len(chosen) >= top_n:
            break
    return chosen


def _kmer_codes32(codes: ByteArray, k: int) -> tuple[npt.NDArray[np.uint32], ...]:
    """`kmer_codes` in 32-bit arithmetic (k <= 15), for building.

    Codes of length 2m are made from two codes of length m (and odd lengths
    from one base more), so a k-mer takes about log2(k) passes, not k.
    """
    n = codes.shape[0] - k + 1
    bad = np.concatenate(([0], np.cumsum(codes == 4, dtype=np.int32)))
    valid = (bad[k:] - bad[:n]) == 0
    c = np.where(codes == 4, 0, codes).astype(np.uint32)
    fwd = widen_codes(c, k, rev=False)[:n]
    rev = widen_codes(np.uint32(3) - c, k, rev=True)[:n]
    return fwd, rev, valid


def widen_codes(c: npt.NDArray[np.uint32], k: int, *, rev: bool) -> npt.NDArray[np.uint32]:
    """Codes of the windows of length k: position i holds c[i..i+k-1] read forwards
    (first base highest), or read backwards when `rev` (first base lowest)."""
    if k == 1:
        return c
    m = k // 2
    half = widen_codes(c, m, rev=rev)
    n2 = half.shape[0] - m
    lo, hi = half[:n2], half[m : m + n2]
    shift = np.uint32(2 * m)
    out = (hi << shift) | lo if rev else (lo << shift) | hi
    if k % 2:
        n = n2 - 1
        last = c[2 * m : 2 * m + n]
        if rev:
            out = (last << np.uint32(2 * (k - 1))) | out[:n]
        else:
            out = (out[:n] << np.uint32(2)) | last
    return out


def _window_keys(
    seq_masks: ByteArray, seq_offsets: IntArray, *, first: int, last: int, k: int, sample: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """(k-mer code, posting) of every distinct sampled k-mer of references first..last-1,
    sorted by code then posting."""
    base = int(seq_offsets[first])
    codes = MASK_TO_CODE[seq_masks[base : int(seq_offsets[last])]]
    if codes.shape[0] < k:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    fwd, rev, valid = _kmer_codes32(codes, k)
    # Windows running over the end of a reference into the next one are not k-mers.
    ends = seq_offsets[first + 1 : last + 1] - base
    cross = (ends[:, None] - np.arange(1, k, dtype=np.int64)[None, :]).ravel()
    cross = cross[(cross >= 0) & (cross < valid.shape[0])]
    valid[cross] = False
    canon = np.minimum(fwd, rev)
    keep = np.flatnonzero(valid & sampled(canon, sample))
    orient = rev[keep] < fwd[keep]
    canon = canon[keep]
    del fwd, rev, valid
    # `keep` is sorted: cut it at the reference starts rather than search every position.
    per_ref = np.diff(np.searchsorted(keep, seq_offsets[first : last + 1] - base))
    ref = np.repeat(np.arange(first, last, dtype=np.int64), per_ref)
    n_post = 2 * (int(seq_offsets.shape[0]) - 1)
    key = _sorted_unique(canon.astype(np.int64) * n_post + ref * 2 + orient)
    return (key // n_post).astype(np.int32), (key % n_post).astype(np.int32)


def _chunk_spans(seq_offsets: IntArray) -> list[tuple[int, int]]:
    """(first, last) references of each chunk of about `_CHUNK_BASES` bases, in order."""
    n_refs = int(seq_offsets.shape[0]) - 1
    spans = []
    first = 0
    while first < n_refs:
        last = int(np.searchsorted(seq_offsets, seq_offsets[first] + _CHUNK_BASES, "right"))
        last = min(max(last - 1, first + 1), n_refs)
        spans.append((first, last))
        first = last
    return spans


@dataclass(frozen=True)
class _SpillJob:
    """What the workers building postings share (inherited through fork)."""

    seq_masks: ByteArray
    seq_offsets: IntArray
    k: int
    sample: int
    folder: Path


def _spill_chunk(job: _SpillJob, item: tuple[int, int, int]) -> int:
    """Write the sorted (code, posting) pairs of one chunk to its own file; return their count."""
    number, first, last = item
    codes, posts = _window_keys(
        job.seq_masks, job.seq_offsets, first=first, last=last, k=job.k, sample=job.sample
    )
    with open(job.folder / f"{number}.bin", "wb") as fh:
        codes.tofile(fh)
        posts.tofile(fh)
    return int(codes.shape[0])


def _build_postings(
    seq_masks: ByteArray, seq_offsets: IntArray, *, k: int, sample: int
) -> tuple[npt.NDArray[np.signedinteger[Any]], npt.NDArray[np.int32]]:
    """CSR offsets (32-bit when they fit) and postings of every distinct sampled
    (k-mer, reference) pair.

    References are taken in chunks of about `_CHUNK_BASES` bases, spread over
    the cores (`fork_map`); each chunk's pairs, sorted by code, go to a
    temporary file, and a counting sort then places them chunk by chunk in
    order, so the result does not depend on the worker count and memory stays
    near the final size whatever the library size.
    """
    spans = _chunk_spans(seq_offsets)
    counts = np.zeros(4**k, dtype=np.int64)
    with tempfile.TemporaryDirectory(prefix="kmer-spill-") as folder:
        job = _SpillJob(seq_masks, seq_offsets, k, sample, Path(folder))
        items = [(i, a, b) for i, (a, b) in enumerate(spans)]
        sizes = fork_map(_spill_chunk, items, shared=job, min_per_worker=2)
        for i, size in enumerate(sizes):
            codes = np.fromfile(job.folder / f"{i}.bin", dtype=np.int32, count=size)
            present, _run_start, run_len = _runs(codes)
            counts[present] += run_len
        offsets = np.zeros(4**k + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        del counts
        postings = np.empty(int(offsets[-1]), dtype=np.int32)
        fill = offsets[:-1].copy()
        for i, size in enumerate(sizes):
            with open(job.folder / f"{i}.bin", "rb") as fh:
                codes = np.fromfile(fh, dtype=np.int32, count=size)
                posts = np.fromfile(fh, dtype=np.int32, count=size)
            present, run_start, run_len = _runs(codes)
            within = np.arange(size, dtype=np.int64) - np.repeat(run_start, run_len)
            postings[np.repeat(fill[present], run_len) + within] = posts
            fill[present] += run_len
            (job.folder / f"{i}.bin").unlink()
    if offsets[-1] < np.iinfo(np.int32).max:
        return offsets.astype(np.int32), postings  # half the size on disk and in memory
    return offsets, postings


def _runs(codes: npt.NDArray[np.int32]) -> tuple[IntArray, IntArray, IntArray]:
    """The distinct values of a sorted array, where each run starts, and its length."""
    if codes.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    start = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    length = np.diff(np.append(start, codes.shape[0]))
    return codes[start].astype(np.int64), start, length


def _sorted_unique(values: IntArray) -> IntArray:
    # np.unique hashes on recent NumPy, which is several times slower than sorting here.
    out = np.sort(values)
    if out.shape[0] < 2:
        return out
    keep = np.ones(out.shape[0], dtype=bool)
    keep[1:] = out[1:] != out[:-1]
    return out[keep]


def _cache_name(content_hash: str, k: int, sample: int) -> str:
    digest = hashlib.sha256(content_hash.encode()).hexdigest()[:24]
    return f"kmer_index_{digest}_k{k}_s{sample}_v{INDEX_FORMAT}"


def _remove_stale(cache_dir: Path, *, keep: str) -> None:
    """Remove k-mer indexes of other formats or versions from a cache directory."""
    remove_cached(cache_dir, pattern="kmer_index_*", keep=keep)


def remove_cached(cache_dir: Path, *, pattern: str, keep: str) -> None:
    """Remove the cache entries (files or directories) matching `pattern`, except `keep`."""
    for old in cache_dir.glob(pattern):
        if old.name == keep:
            continue
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
