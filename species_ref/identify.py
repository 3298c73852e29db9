"""Identification of query sequences against one reference library version.

Owns the public entry point `identify` and the `Identification` record it
returns: the k-mer index proposes candidates, the matcher aligns them, the
decision rules (with the library's own statistics) make the call.

Invariants:
- An identification records everything needed to reproduce it: library name,
  version number and content hash, the rule with every value, the query's
  SHA-256 and QC figures.
- Results come back in the order of the queries, whatever the number of
  worker processes.
- Nothing is printed; progress goes to the optional `progress(done, total)`.

`Identification.to_dict()` keys: query, query_sha256, query_length, level
(species | ambiguous | genus | none), taxon, rank, statement, identity,
coverage, next_species_distance (identity gap to the next species, %), flags
(plain English), candidates (species within the call: best_identity,
aligned_length, coverage, gaps, n_refs, n_supporting, accessions, strand),
hits (every species with a usable hit, same fields, best first),
library_name, library_version_number, library_version (content hash), rule
(name and every value), qc, cites (species -> appendix, when a lookup is
given), validation (as passed in), species_stats (the library statistics of
the best species: n_refs, intra_max, intra_mean, nn_distance, nn_species),
top_hits (the ten best reference alignments).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from species_ref.decision import (
    Decision,
    LibraryProfile,
    Rule,
    SpeciesHits,
    decide,
    get_rule,
)
from species_ref.errors import SpeciesRefError
from species_ref.index import KmerIndex
from species_ref.matching import Hit, Matcher
from species_ref.types import LibraryVersion, Query

Progress = Callable[[int, int], None]
CitesLookup = Callable[[str], object | None]


class IndexMismatch(SpeciesRefError):
    """An index or profile was built for another library version."""


@dataclass
class Identification:
    """The identification of one query (see `to_dict` for the JSON form)."""

    query: str
    query_sha256: str
    query_length: int
    level: str
    taxon: str | None
    rank: str | None
    statement: str
    identity: float | None
    coverage: float | None
    next_species_distance: float | None
    flags: list[str]
    candidates: list[SpeciesHits]
    hits: list[SpeciesHits]
    library_name: str
    library_version_number: int
    library_version: str  # content hash
    rule: Rule
    qc: dict[str, Any] | None = None
    cites: dict[str, str] | None = None
    validation: dict[str, Any] | None = None
    species_stats: dict[str, Any] | None = None
    top_hits: list[Hit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; keys are stable (documented in the module docstring)."""
        return {
            "query": self.query,
            "query_sha256": self.query_sha256,
            "query_length": self.query_length,
            "level": self.level,
            "taxon": self.taxon,
            "rank": self.rank,
            "statement": self.statement,
            "identity": None if self.identity is None else round(self.identity, 3),
            "coverage": None if self.coverage is None else round(self.coverage, 2),
            "next_species_distance": self.next_species_distance,
            "flags": list(self.flags),
            "candidates": [c.to_dict() for c in self.candidates],
            "hits": [h.to_dict() for h in self.hits],
            "library_name": self.library_name,
            "library_version_number": self.library_version_number,
            "library_version": self.library_version,
            "rule": self.rule.to_dict(),
            "qc": self.qc,
            "cites": self.cites,
            "validation": self.validation,
            "species_stats": self.species_stats,
            "top_hits": [h.to_dict() for h in self.top_hits[:10]],
        }


def sequence_sha256(seq: str) -> str:
    return "sha256:" + hashlib.sha256(seq.upper().encode("ascii", "replace")).hexdigest()


class Engine:
    """Index, matcher and library statistics of one library version, ready to identify."""

    def __init__(
        self,
        version: LibraryVersion,
        *,
        index: KmerIndex | None = None,
        profile: LibraryProfile | None = None,
        cache_dir: Path | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.version = version
        self.index = index or KmerIndex.load_or_build(version, cache_dir)
        if self.index.content_hash != version.content_hash:
            raise IndexMismatch(
                f"The k-mer index was built for {self.index.content_hash}, not library "
                f"{version.name} v{version.version}; rebuild it with KmerIndex.build(version)."
            )
        self.matcher = Matcher(self.index)
        # Library statistics spend gapped alignments sparingly: only the nearest
        # references of each probe need exact distances.
        self.profile = profile or LibraryProfile.load_or_build(
            self.index, cache_dir, matcher=Matcher(self.index, max_gapped=2), progress=progress
        )
        if self.profile.content_hash != version.content_hash:
            raise IndexMismatch(
                f"The library profile was built for {self.profile.content_hash}, not library "
                f"{version.name} v{version.version}; rebuild it with LibraryProfile.build(index)."
            )

    def decide_sequence(
        self,
        seq: str,
        *,
        rule: Rule,
        qc: Any = None,
        cites: CitesLookup | None = None,
        exclude: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[Decision, list[Hit]]:
        hits = self.matcher.match(seq, exclude=exclude)

        def error_sites(species: str) -> int | None:
            best = next((h for h in hits if h.species == species), None)
            if best is None:
                return None
            return self.matcher.conserved_mismatches(seq, best, others=hits)

        dec = decide(
            hits,
            query_length=len(seq),
            rule=rule,
            profile=self.profile,
            index=self.index,
            qc=qc,
            cites=cites,
            excluded_refs=exclude,
            error_sites=error_sites,
        )
        return dec, hits

    def identify_one(
        self,
        query: Query,
        *,
        rule: Rule,
        cites: CitesLookup | None = None,
        validation: dict[str, Any] | None = None,
    ) -> Identification:
        dec, hits = self.decide_sequence(query.sequence, rule=rule, qc=query.qc, cites=cites)
        v = self.version
        return Identification(
            query=query.name,
            query_sha256=sequence_sha256(query.sequence),
            query_length=len(query.sequence),
            level=dec.level,
            taxon=dec.taxon,
            rank=dec.rank,
            statement=dec.statement,
            identity=dec.identity,
            coverage=dec.coverage,
            next_species_distance=dec.next_species_distance,
            flags=dec.flags,
            candidates=dec.candidates,
            hits=dec.species_hits,
            library_name=v.name,
            library_version_number=v.version,
            library_version=v.content_hash,
            rule=rule,
            qc=asdict(query.qc) if query.qc is not None else None,
            cites=dec.cites if cites is not None else None,
            validation=validation,
            species_stats=dec.stats.to_dict() if dec.stats is not None else None,
            top_hits=hits[:10],
        )


# Worker processes inherit the engine through fork: nothing large is pickled.
_WORKER: dict[str, Any] = {}


def _work(i: int) -> Identification:
    eng: Engine = _WORKER["engine"]
    return eng.identify_one(
        _WORKER["queries"][i],
        rule=_WORKER["rule"],
        cites=_WORKER["cites"],
        validation=_WORKER["validation"],
    )


def resolve_workers(workers: int, n_items: int) -> int:
    """Worker processes to use: `workers`, or with 0 every core, never more than items."""
    if workers <= 0:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(workers, n_items // 20 or 1))


def identify(
    queries: Sequence[Query],
    version: LibraryVersion,
    *,
    rule: Rule | str = "default",
    index: KmerIndex | None = None,
    cites: CitesLookup | None = None,
    validation: dict[str, Any] | None = None,
    progress: Progress | None = None,
    workers: int = 0,
    profile: LibraryProfile | None = None,
    cache_dir: Path | None = None,
    engine: Engine | None = None,
) -> list[Identification]:
    """Identify each query against library `version` under the named or given `rule`.

    `index`/`profile` reuse prebuilt structures; otherwise they are loaded from
    or cached in `cache_dir` (built in memory when it is None). `cites` looks a
    species up in the CITES appendices. `validation` (the library's measured
    rates from `validate_library(...).to_dict()`) is copied into each result.
    `workers=0` uses every core for batches.
    """
    r = get_rule(rule)
    eng = engine or Engine(version, index=index, profile=profile, cache_dir=cache_dir)
    total = len(queries)
    n_workers = resolve_workers(workers, total)
    results: list[Identification] = []
    if n_workers <= 1:
        for i, q in enumerate(queries):
            results.append(eng.identify_one(q, rule=r, cites=cites, validation=validation))
            if progress is not None:
                progress(i + 1, total)
        return results
    _WORKER.update(engine=eng, queries=queries, rule=r, cites=cites, validation=validation)
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(n_workers) as pool:
            chunk = max(1, min(64, total // (n_workers * 8) or 1))
            for res in pool.imap(_work, range(total), chunksize=chunk):
                results.append(res)
                if progress is not None:
                    progress(len(results), total)
    finally:
        _WORKER.clear()
    return results
