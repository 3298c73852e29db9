"""Library statistics: what a reference library shows about each of its species.

Owns `LibraryProfile`, computed once per library version and cached next to
the k-mer index: how variable each species is (distances among its own
references), how far it sits from the nearest other species, and how many
references support it. `SpeciesStats` is one species' share of it.

Why: a fixed 98.5 % threshold calls a query from a species absent from the
library as its nearest relative whenever the two are closer than 1.5 %. A
species call therefore also requires that the query sits inside the variation
the library shows for that species and clearly closer to it than the species
is to its nearest neighbour (see `species_ref.decision`).

Invariants:
- Distances are percent (100 - identity) over the aligned overlap; pairs of
  references that overlap less than 80 % of the shorter one are ignored, so
  whole-gene and mini-barcode records of a species do not inflate its spread.
- Statistics can be computed with references or species excluded (validation
  holds them out) without recomputing any alignment.
- The statistics of a species do not depend on the number of worker
  processes that built the profile, nor on how its species were cut into
  tasks: each distance is what `Matcher.align_many` gives for the same call
  (computed for a few hundred species at once by `species_ref.batchalign`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from species_ref.batchalign import ProbeCandidates, align_pairs, rank_within, search_probes
from species_ref.errors import SpeciesRefError
from species_ref.index import (
    IntArray,
    KmerIndex,
    open_array_dir,
    read_array_dir_meta,
    remove_cached,
    save_array_dir,
)
from species_ref.matching import Matcher
from species_ref.parallel import fork_map

Progress = Callable[[int, int], None]
BoolArray = npt.NDArray[np.bool_]
#: 2: a directory of .npy files opened memory-mapped (1: one .npz file, read whole)
PROFILE_FORMAT = 2
#: how the statistics are computed, part of the cache's name so that statistics
#: computed otherwise are never reused: 1 = three probe references per species,
#: 24 candidates each; 2 = the first and farthest reference plus the first of
#: each other marker (three at most), 16 candidates each (half the build time
#: for a one-marker library at national scale, the decisions of the validation
#: designs unchanged); 3 = as 2, the farthest reference probed only when it lies
#: more than `FAR_PROBE_MIN` % from the first (a third less build time at
#: national scale; docs/decision-rules.md has what it changes)
PROFILE_METHOD = 3
#: the farthest reference is a probe of its own only beyond this distance (%) from
#: the first: nearer, it cannot be more than that much closer to another species
#: than the first is (the triangle inequality), and on the validation designs such
#: probes refused 35 right calls for one false call (docs/decision-rules.md)
FAR_PROBE_MIN = 2.0


@dataclass(frozen=True)
class SpeciesStats:
    """What the library shows about one species (distances in percent)."""

    species: str
    n_refs: int
    n_pairs: int  # usable pairs among its references
    intra_max: float | None
    intra_mean: float | None
    nn_distance: float | None  # to the nearest other species seen
    nn_species: str | None

    def to_dict(self) -> dict[str, str | int | float | None]:
        def rounded(x: float | None) -> float | None:
            return None if x is None else round(float(x), 3)

        return {
            "species": self.species,
            "n_refs": self.n_refs,
            "n_pairs": self.n_pairs,
            "intra_max": rounded(self.intra_max),
            "intra_mean": rounded(self.intra_mean),
            "nn_distance": rounded(self.nn_distance),
            "nn_species": self.nn_species,
        }


class LibraryProfile:
    """Per-species statistics of one library version, held as flat NumPy arrays.

    `pair_*` rows are distances between two references of the same species
    (at most `max_intra_refs` references per species are compared). `nb_*` rows
    are, for up to `max_probes` references of each species, the nearest
    reference of each of the closest other species.
    """

    def __init__(
        self,
        *,
        content_hash: str,
        pair_a: IntArray,
        pair_b: IntArray,
        pair_dist: npt.NDArray[np.float64],
        nb_probe: IntArray,
        nb_ref: IntArray,
        nb_dist: npt.NDArray[np.float64],
        species_ids: npt.NDArray[np.int32],
        species_names: Sequence[str],
    ) -> None:
        self.content_hash = content_hash
        self.pair_a = pair_a
        self.pair_b = pair_b
        self.pair_dist = pair_dist
        self.nb_probe = nb_probe
        self.nb_ref = nb_ref
        self.nb_dist = nb_dist
        self.species_ids = species_ids
        self.species_names = list(species_names)
        self.n_refs_per_species = np.bincount(species_ids, minlength=len(self.species_names))
        pair_sp = species_ids[pair_a] if pair_a.shape[0] else np.zeros(0, dtype=np.int32)
        self._pair_order = np.argsort(pair_sp, kind="stable")
        self._pair_sp_sorted = pair_sp[self._pair_order]
        probe_sp = species_ids[nb_probe] if nb_probe.shape[0] else np.zeros(0, dtype=np.int32)
        self._nb_order = np.argsort(probe_sp, kind="stable")
        self._nb_sp_sorted = probe_sp[self._nb_order]
        self._stats_cache: dict[int, SpeciesStats] = {}

    def stats(
        self,
        species_id: int,
        *,
        excluded_refs: BoolArray | None = None,
    ) -> SpeciesStats:
        """Statistics of a species, ignoring references flagged in `excluded_refs`."""
        if excluded_refs is None:
            cached = self._stats_cache.get(species_id)
            if cached is None:
                cached = self._stats_cache[species_id] = self._stats(species_id, None)
            return cached
        return self._stats(species_id, excluded_refs)

    def _stats(self, species_id: int, excluded_refs: BoolArray | None) -> SpeciesStats:
        # Keys of the arrays' own dtype: a Python list would make NumPy convert the
        # whole sorted array on every call.
        keys = np.array([species_id, species_id + 1], dtype=self._pair_sp_sorted.dtype)
        lo, hi = np.searchsorted(self._pair_sp_sorted, keys)
        rows = self._pair_order[lo:hi]
        keys = np.array([species_id, species_id + 1], dtype=self._nb_sp_sorted.dtype)
        nlo, nhi = np.searchsorted(self._nb_sp_sorted, keys)
        nrows = self._nb_order[nlo:nhi]
        n_refs = int(self.n_refs_per_species[species_id])
        if excluded_refs is not None:
            rows = rows[~(excluded_refs[self.pair_a[rows]] | excluded_refs[self.pair_b[rows]])]
            nrows = nrows[
                ~(excluded_refs[self.nb_probe[nrows]] | excluded_refs[self.nb_ref[nrows]])
            ]
            n_refs -= int(excluded_refs[self.species_ids == species_id].sum())
        dists = self.pair_dist[rows]
        nn: float | None = None
        nn_sp: str | None = None
        if nrows.shape[0]:
            j = nrows[int(self.nb_dist[nrows].argmin())]
            nn = float(self.nb_dist[j])
            nn_sp = self.species_names[int(self.species_ids[self.nb_ref[j]])]
        return SpeciesStats(
            species=self.species_names[species_id],
            n_refs=n_refs,
            n_pairs=int(dists.shape[0]),
            intra_max=float(dists.max()) if dists.shape[0] else None,
            # The mean as NumPy takes it (the same sum, divided by the count), without its overhead.
            intra_mean=float(np.add.reduce(dists)) / dists.shape[0] if dists.shape[0] else None,
            nn_distance=nn,
            nn_species=nn_sp,
        )

    def genus_unresolved_share(
        self,
        genus: str,
        *,
        threshold: float,
        skip: str,
        excluded_refs: BoolArray | None = None,
    ) -> tuple[float, int] | None:
        """Share of the genus' species (other than `skip`) within `threshold` % of another.

        Returns (share, number of species measured), or None when no other
        species of the genus has a measured nearest neighbour.
        """
        if not hasattr(self, "_genus_members"):
            members: dict[str, list[int]] = {}
            for i, name in enumerate(self.species_names):
                members.setdefault(name.split(" ", 1)[0], []).append(i)
            self._genus_members = members
        close = 0
        measured = 0
        for sid in self._genus_members.get(genus, []):
            if self.species_names[sid] == skip:
                continue
            st = self.stats(sid, excluded_refs=excluded_refs)
            if st.n_refs <= 0 or st.nn_distance is None:
                continue
            measured += 1
            close += st.nn_distance < threshold
        if measured == 0:
            return None
        return close / measured, measured

    # ------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        index: KmerIndex,
        *,
        matcher: Matcher | None = None,
        progress: Progress | None = None,
        workers: int | None = None,
    ) -> LibraryProfile:
        """Compute the statistics of every species of an index (`workers` None: every core).

        Spread: distances from one reference of the species to up to 30 others,
        then from the farthest of those to the same set (two "stars" bound the
        largest pairwise distance within a factor of two at a fraction of the
        cost of all pairs). Neighbours: for the first reference of each species,
        its farthest one when that lies more than 2 % from the first, and the first
        of each other marker it has (three at most), the nearest reference of each
        of the closest six other species.
        """
        m = matcher or Matcher(index)
        n_sp = len(index.species_names)
        order = np.argsort(index.species_ids, kind="stable")
        bounds = np.searchsorted(index.species_ids[order], np.arange(n_sp + 1))
        groups = [order[bounds[s] : bounds[s + 1]] for s in range(n_sp)]
        job = _ProfileJob(matcher=m, index=index, groups=groups)
        chunks = [(a, min(a + _SPECIES_PER_TASK, n_sp)) for a in range(0, n_sp, _SPECIES_PER_TASK)]

        def tick(finished: int, _total: int) -> None:
            if progress is not None:
                progress(min(n_sp, finished * _SPECIES_PER_TASK), n_sp)

        parts = fork_map(
            _chunk_profile_rows,
            chunks,
            shared=job,
            workers=workers,
            progress=tick if progress is not None else None,
            min_per_worker=1,
        )

        def cat(name: str, dtype: type) -> npt.NDArray[Any]:
            arrays = [getattr(p, name) for p in parts]
            return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype=dtype)

        return cls(
            content_hash=index.content_hash,
            pair_a=cat("pa", np.int64),
            pair_b=cat("pb", np.int64),
            pair_dist=cat("pd", np.float64),
            nb_probe=cat("na", np.int64),
            nb_ref=cat("nr", np.int64),
            nb_dist=cat("nd", np.float64),
            species_ids=index.species_ids,
            species_names=index.species_names,
        )

    def _arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {
            "pair_a": self.pair_a,
            "pair_b": self.pair_b,
            "pair_dist": self.pair_dist,
            "nb_probe": self.nb_probe,
            "nb_ref": self.nb_ref,
            "nb_dist": self.nb_dist,
            "species_ids": self.species_ids,
            "species_names": np.array(self.species_names, dtype=object).astype(str),
        }

    def save(self, path: Path) -> None:
        """Write the profile as a directory of .npy files plus meta.json, atomically."""
        meta = {"format": PROFILE_FORMAT, "content_hash": self.content_hash}
        save_array_dir(Path(path), self._arrays(), meta, prefix=".profile-")

    @classmethod
    def load(cls, path: Path) -> LibraryProfile:
        """Open a profile written by `save`, its arrays memory-mapped (read-only)."""
        path = Path(path)
        try:
            meta = read_array_dir_meta(path)
            if meta.get("format") != PROFILE_FORMAT:
                raise ProfileError(f"Profile {path} has an old format; delete it.")
            a = open_array_dir(path, _ARRAYS)
            return cls(
                content_hash=str(meta["content_hash"]),
                **{name: a[name] for name in _ARRAYS if name != "species_names"},
                species_names=a["species_names"].tolist(),
            )
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ProfileError(f"Profile {path} cannot be read ({exc}); delete it.") from exc

    @classmethod
    def load_or_build(
        cls,
        index: KmerIndex,
        cache_dir: Path | None,
        *,
        matcher: Matcher | None = None,
        progress: Progress | None = None,
    ) -> LibraryProfile:
        """The cached profile of the index's library version, built and cached when missing.

        A profile cached by an earlier release (another format or method) is
        rebuilt, not reused, and removed once the new one is written: statistics
        computed another way would not be the ones this release validated.
        """
        if cache_dir is None:
            return cls.build(index, matcher=matcher, progress=progress)
        digest = hashlib.sha256(index.content_hash.encode()).hexdigest()[:24]
        stem = f"species_profile_{digest}_k{index.k}"
        path = Path(cache_dir) / f"{stem}_v{PROFILE_FORMAT}_m{PROFILE_METHOD}"
        if path.is_dir():
            try:
                prof = cls.load(path)
                if prof.content_hash == index.content_hash:
                    return prof
            except ProfileError:
                pass
        prof = cls.build(index, matcher=matcher, progress=progress)
        prof.save(path)
        # This library's profiles of other formats or methods (`stem_v1.npz`, `stem_v2`).
        remove_cached(Path(cache_dir), pattern=f"{stem}_v*", keep=path.name)
        try:
            return cls.load(path)
        except ProfileError:  # replaced by another process meanwhile: use the one built
            return prof


#: the arrays of a profile, one .npy file each
_ARRAYS = (
    "pair_a", "pair_b", "pair_dist", "nb_probe", "nb_ref", "nb_dist", "species_ids",
    "species_names",
)  # fmt: skip


class ProfileError(SpeciesRefError):
    """Library statistics cannot be loaded."""


#: species per task of the parallel build: enough pairs per task for the batched
#: alignment to pay off, small enough for progress and an even spread over workers.
_SPECIES_PER_TASK = 200
_MAX_STAR = 30
_MAX_PROBES = 3
#: neighbour species kept per probe (a species' probe rows: at most this many)
NEIGHBOURS = 6
_CANDIDATES = 16
_CANDIDATES_PER_SPECIES = 2


@dataclass(frozen=True)
class _ProfileRows:
    """Rows of the profile for a run of species, in species order."""

    pa: IntArray
    pb: IntArray
    pd: npt.NDArray[np.float64]
    na: IntArray
    nr: IntArray
    nd: npt.NDArray[np.float64]


@dataclass(frozen=True)
class _ProfileJob:
    """What every worker building a profile shares (inherited through fork)."""

    matcher: Matcher
    index: KmerIndex
    groups: list[IntArray]  # references of each species id


def usable(columns: IntArray, len_a: IntArray, len_b: IntArray) -> BoolArray:
    """Pairs aligned over at least 80 % of the shorter reference (the statistics' rule)."""
    ok: BoolArray = columns >= 0.8 * np.minimum(len_a, len_b)
    return ok


def star_sample(members: IntArray) -> IntArray:
    """At most 31 of a species' references, evenly spread, the first one included."""
    if members.shape[0] > _MAX_STAR + 1:
        pick = np.linspace(0, members.shape[0] - 1, _MAX_STAR + 1).round().astype(np.int64)
        sample: IntArray = members[pick]
        return sample
    return members


def _distances(
    m: Matcher, *, query: IntArray, ref: IntArray, group: IntArray
) -> tuple[npt.NDArray[np.float64], BoolArray]:
    """Distance (%) of each (query, reference) pair, same orientation, and whether it is usable."""
    ident, cols = align_pairs(
        m, query=query, ref=ref, strand=np.ones(query.shape[0], dtype=np.int64), group=group
    )
    lens = m.index.lengths
    return 100.0 - ident, usable(cols, lens[query], lens[ref])


def _chunk_profile_rows(job: _ProfileJob, span: tuple[int, int]) -> _ProfileRows:
    """Rows of species `span[0]` to `span[1] - 1`: two stars each, then the probes' neighbours.

    Spread: distances from the first reference of a sample of up to 31 to the
    others, then from the farthest of those to the rest. Probes: the first
    reference, the farthest when it lies more than `FAR_PROBE_MIN` % from the
    first, then the first of each other marker of the sample (with no usable
    pair, the next reference), three at most.
    """
    m = job.matcher
    marker_codes = job.index.marker_codes
    species = list(range(*span))
    samples = [star_sample(job.groups[s]) for s in species]
    centre = np.array([int(x[0]) for x in samples], dtype=np.int64)
    q1 = np.concatenate(
        [np.repeat(c, x.shape[0] - 1) for c, x in zip(centre, samples, strict=True)]
    )
    r1 = np.concatenate([x[1:] for x in samples]).astype(np.int64)
    g1 = np.concatenate([np.full(x.shape[0] - 1, i) for i, x in enumerate(samples)]).astype(
        np.int64
    )
    d1, u1 = _distances(m, query=q1, ref=r1, group=g1)
    far = np.full(len(species), -1, dtype=np.int64)
    far_dist = np.zeros(len(species), dtype=np.float64)
    useful = np.flatnonzero(u1)
    if useful.shape[0]:
        # The farthest usable reference of each species (the first one on ties).
        order = np.lexsort((useful, -d1[useful], g1[useful]))
        pick = useful[order]
        head = np.ones(pick.shape[0], dtype=bool)
        head[1:] = g1[pick][1:] != g1[pick][:-1]
        far[g1[pick[head]]] = r1[pick[head]]
        far_dist[g1[pick[head]]] = d1[pick[head]]
    q2_parts, r2_parts, g2_parts = [], [], []
    probes: list[int] = []
    probe_owner: list[int] = []
    for i, x in enumerate(samples):
        c, f = int(centre[i]), int(far[i])
        mine = [c]
        if f >= 0:
            if far_dist[i] > FAR_PROBE_MIN:
                mine.append(f)
            rest = x[(x != f) & (x != c)]
            q2_parts.append(np.full(rest.shape[0], f))
            r2_parts.append(rest)
            g2_parts.append(np.full(rest.shape[0], i))
        # Then the first reference of each other marker of the sample, so that each
        # marker's nearest species is seen, and with no usable pair the next reference.
        seen = {int(marker_codes[c])}
        for extra in x[1:].tolist():
            if len(mine) >= _MAX_PROBES:
                break
            code = int(marker_codes[extra])
            if code not in seen and extra not in mine:
                mine.append(int(extra))
                seen.add(code)
        if f < 0 and len(mine) == 1 and x.shape[0] > 1:
            mine.append(int(x[1]))
        probes += mine
        probe_owner += [i] * len(mine)
    empty = np.zeros(0, dtype=np.int64)
    q2 = np.concatenate(q2_parts).astype(np.int64) if q2_parts else empty
    r2 = np.concatenate(r2_parts).astype(np.int64) if r2_parts else empty
    g2 = np.concatenate(g2_parts).astype(np.int64) if g2_parts else empty
    d2, u2 = _distances(m, query=q2, ref=r2, group=g2)
    na, nr, nd = _neighbour_rows(m, np.array(probes, dtype=np.int64))
    owner = np.array(probe_owner, dtype=np.int64)
    # Species order, and within a species: first star, second star, neighbours.
    pair_owner = np.concatenate((g1[u1], g2[u2]))
    pair_order = np.argsort(pair_owner, kind="stable")
    nb_order = np.argsort(owner[na], kind="stable")
    probe_arr = np.array(probes, dtype=np.int64)
    return _ProfileRows(
        pa=np.concatenate((q1[u1], q2[u2]))[pair_order],
        pb=np.concatenate((r1[u1], r2[u2]))[pair_order],
        pd=np.concatenate((d1[u1], d2[u2]))[pair_order],
        na=probe_arr[na][nb_order],
        nr=nr[nb_order],
        nd=nd[nb_order],
    )


def neighbour_candidates(index: KmerIndex, probes: IntArray) -> ProbeCandidates:
    """The k-mer candidates the statistics align each probe with (its own species held out)."""
    return search_probes(index, probes, top_n=_CANDIDATES, per_species=_CANDIDATES_PER_SPECIES)


def _neighbour_rows(
    m: Matcher, probes: IntArray
) -> tuple[IntArray, IntArray, npt.NDArray[np.float64]]:
    """For each probe, the nearest reference of each of the closest other species.

    Returns (probe position, reference, distance) rows, probe by probe, nearest
    first (ties by reference number), `NEIGHBOURS` per probe at most.
    """
    index = m.index
    cands = neighbour_candidates(index, probes)
    empty = np.zeros(0, dtype=np.int64)
    if cands.refs.shape[0] == 0:
        return empty, empty, np.zeros(0, dtype=np.float64)
    ident, cols = align_pairs(
        m,
        query=probes[cands.probe],
        ref=cands.refs,
        strand=cands.strands,
        group=cands.probe,
        shared=cands.shared,
    )
    lens = index.lengths
    ok = (cols > 0) & usable(cols, lens[probes[cands.probe]], lens[cands.refs])
    at = np.flatnonzero(ok)
    probe, ref, dist = cands.probe[at], cands.refs[at], 100.0 - ident[at]
    sp = index.species_ids[ref].astype(np.int64)
    # Nearest reference of each species per probe (the first candidate on ties) ...
    order = np.lexsort((at, dist, sp, probe))
    probe, ref, dist, sp = probe[order], ref[order], dist[order], sp[order]
    head = np.ones(probe.shape[0], dtype=bool)
    head[1:] = (probe[1:] != probe[:-1]) | (sp[1:] != sp[:-1])
    probe, ref, dist = probe[head], ref[head], dist[head]
    # ... then the closest species first, ties by reference number.
    order = np.lexsort((ref, dist, probe))
    probe, ref, dist = probe[order], ref[order], dist[order]
    keep = rank_within(probe) < NEIGHBOURS
    return probe[keep], ref[keep], dist[keep]
