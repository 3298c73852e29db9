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
  processes that built the profile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from species_ref.errors import SpeciesRefError
from species_ref.index import IntArray, KmerIndex, save_npz_atomically
from species_ref.matching import Matcher
from species_ref.parallel import fork_map

Progress = Callable[[int, int], None]
BoolArray = npt.NDArray[np.bool_]
PROFILE_FORMAT = 1


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
        lo, hi = np.searchsorted(self._pair_sp_sorted, [species_id, species_id + 1])
        rows = self._pair_order[lo:hi]
        nlo, nhi = np.searchsorted(self._nb_sp_sorted, [species_id, species_id + 1])
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
            intra_mean=float(dists.mean()) if dists.shape[0] else None,
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
        cost of all pairs). Neighbours: for up to three references per species,
        the nearest reference of each of the closest six other species.
        """
        m = matcher or Matcher(index)
        n_sp = len(index.species_names)
        order = np.argsort(index.species_ids, kind="stable")
        bounds = np.searchsorted(index.species_ids[order], np.arange(n_sp + 1))
        groups = [order[bounds[s] : bounds[s + 1]] for s in range(n_sp)]
        job = _ProfileJob(matcher=m, index=index, groups=groups)
        parts = fork_map(
            _species_profile_rows,
            range(n_sp),
            shared=job,
            workers=workers,
            progress=progress,
            min_per_worker=100,
        )

        def ints(name: str) -> IntArray:
            return np.concatenate(
                [np.array(getattr(p, name), dtype=np.int64) for p in parts]
                or [np.zeros(0, dtype=np.int64)]
            )

        def floats(name: str) -> npt.NDArray[np.float64]:
            return np.concatenate(
                [np.array(getattr(p, name), dtype=np.float64) for p in parts]
                or [np.zeros(0, dtype=np.float64)]
            )

        return cls(
            content_hash=index.content_hash,
            pair_a=ints("pa"),
            pair_b=ints("pb"),
            pair_dist=floats("pd"),
            nb_probe=ints("na"),
            nb_ref=ints("nr"),
            nb_dist=floats("nd"),
            species_ids=index.species_ids,
            species_names=index.species_names,
        )

    def save(self, path: Path) -> None:
        save_npz_atomically(
            path,
            format=np.array(PROFILE_FORMAT),
            content_hash=np.array(self.content_hash),
            pair_a=self.pair_a,
            pair_b=self.pair_b,
            pair_dist=self.pair_dist,
            nb_probe=self.nb_probe,
            nb_ref=self.nb_ref,
            nb_dist=self.nb_dist,
            species_ids=self.species_ids,
            species_names=np.array(self.species_names, dtype=object).astype(str),
        )

    @classmethod
    def load(cls, path: Path) -> LibraryProfile:
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["format"]) != PROFILE_FORMAT:
                    raise ProfileError(f"Profile file {path} has an old format; delete it.")
                return cls(
                    content_hash=str(data["content_hash"]),
                    pair_a=data["pair_a"],
                    pair_b=data["pair_b"],
                    pair_dist=data["pair_dist"],
                    nb_probe=data["nb_probe"],
                    nb_ref=data["nb_ref"],
                    nb_dist=data["nb_dist"],
                    species_ids=data["species_ids"],
                    species_names=[str(x) for x in data["species_names"]],
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ProfileError(f"Profile file {path} cannot be read ({exc}); delete it.") from exc

    @classmethod
    def load_or_build(
        cls,
        index: KmerIndex,
        cache_dir: Path | None,
        *,
        matcher: Matcher | None = None,
        progress: Progress | None = None,
    ) -> LibraryProfile:
        """The cached profile of the index's library version, built and cached when missing."""
        if cache_dir is None:
            return cls.build(index, matcher=matcher, progress=progress)
        digest = hashlib.sha256(index.content_hash.encode()).hexdigest()[:24]
        path = Path(cache_dir) / f"species_profile_{digest}_k{index.k}_v{PROFILE_FORMAT}.npz"
        if path.exists():
            try:
                prof = cls.load(path)
                if prof.content_hash == index.content_hash:
                    return prof
            except ProfileError:
                pass
        prof = cls.build(index, matcher=matcher, progress=progress)
        prof.save(path)
        return prof


class ProfileError(SpeciesRefError):
    """Library statistics cannot be loaded."""


@dataclass
class _ProfileRows:
    pa: list[int] = field(default_factory=list)
    pb: list[int] = field(default_factory=list)
    pd: list[float] = field(default_factory=list)
    na: list[int] = field(default_factory=list)
    nr: list[int] = field(default_factory=list)
    nd: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _ProfileJob:
    """What every worker building a profile shares (inherited through fork)."""

    matcher: Matcher
    index: KmerIndex
    groups: list[IntArray]  # references of each species id


def _species_profile_rows(job: _ProfileJob, species: int) -> _ProfileRows:
    rows = _ProfileRows()
    excl = np.zeros(job.index.n_refs, dtype=bool)
    _species_rows(job.matcher, job.index, members=job.groups[species], excl=excl, rows=rows)
    return rows


def _species_rows(
    m: Matcher,
    index: KmerIndex,
    *,
    members: IntArray,
    excl: BoolArray,
    rows: _ProfileRows,
    max_star: int = 30,
    max_probes: int = 3,
    neighbours: int = 6,
) -> None:
    if members.shape[0] > max_star + 1:
        pick = np.linspace(0, members.shape[0] - 1, max_star + 1).round().astype(int)
        sample = members[pick]
    else:
        sample = members
    probes = [int(sample[0])]
    if sample.shape[0] > 1:
        centre = int(sample[0])
        dists = _distances(m, index, a=centre, others=sample[1:])
        for b, dist in dists:
            rows.pa.append(centre)
            rows.pb.append(b)
            rows.pd.append(dist)
        if dists:
            far = max(dists, key=lambda x: x[1])[0]
            probes.append(far)
            rest = sample[(sample != far) & (sample != centre)]
            for b, dist in _distances(m, index, a=far, others=rest):
                rows.pa.append(far)
                rows.pb.append(b)
                rows.pd.append(dist)
        for extra in sample[1:].tolist():
            if len(probes) >= max_probes:
                break
            if int(extra) not in probes:
                probes.append(int(extra))
    excl[members] = True
    for a in probes:
        _probe_neighbours(m, index, a=a, excl=excl, neighbours=neighbours, rows=rows)
    excl[members] = False


def _usable(columns: int, len_a: int, len_b: int) -> bool:
    return columns >= 0.8 * min(len_a, len_b)


def _distances(
    m: Matcher, index: KmerIndex, *, a: int, others: IntArray
) -> list[tuple[int, float]]:
    """Distances from reference `a` to `others` (same orientation), usable overlaps only."""
    if others.shape[0] == 0:
        return []
    strands = np.ones(others.shape[0], dtype=np.int64)
    raws = m.align_many(index.ref_mask(a), refs=others, strands=strands)
    out: list[tuple[int, float]] = []
    la = int(index.lengths[a])
    for b, raw in zip(others.tolist(), raws, strict=True):
        if raw is not None and _usable(raw.columns, la, int(index.lengths[b])):
            out.append((int(b), 100.0 - raw.identity))
    return out


def _probe_neighbours(
    m: Matcher,
    index: KmerIndex,
    *,
    a: int,
    excl: BoolArray,
    neighbours: int,
    rows: _ProfileRows,
) -> None:
    mask = index.ref_mask(a)
    cands = index.candidates(mask, 24, per_species=2, exclude=excl)
    if cands.refs.shape[0] == 0:
        return
    raws = m.align_many(mask, refs=cands.refs, strands=cands.strands, shared=cands.shared)
    best: dict[int, tuple[float, int]] = {}
    la = int(index.lengths[a])
    for ref, raw in zip(cands.refs.tolist(), raws, strict=True):
        if raw is None or not _usable(raw.columns, la, int(index.lengths[ref])):
            continue
        sp = int(index.species_ids[ref])
        dist = 100.0 - raw.identity
        if sp not in best or dist < best[sp][0]:
            best[sp] = (dist, ref)
    for dist, ref in sorted(best.values())[:neighbours]:
        rows.na.append(a)
        rows.nr.append(ref)
        rows.nd.append(dist)
