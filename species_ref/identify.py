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
(name and every value), qc (`QueryQC.to_dict`: figures, warnings and
warning_codes), cites (species -> appendix, when a lookup is given),
validation (as passed in), species_stats (the library statistics of the best
species: n_refs, intra_max, intra_mean, nn_distance, nn_species), top_hits
(the ten best reference alignments), flag_codes (the `FlagCode` of each flag,
in the order of `flags`; added later, so older stored results lack it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from species_ref.cites import walk_synonyms
from species_ref.decision import Decision, LibraryView, SpeciesHits, decide
from species_ref.errorrate import ErrorRate, error_rate_of
from species_ref.errors import SpeciesRefError
from species_ref.index import KmerIndex
from species_ref.matching import Hit, Matcher
from species_ref.parallel import fork_map
from species_ref.profile import LibraryProfile, SpeciesStats
from species_ref.rules import Rule, get_rule
from species_ref.types import LibraryVersion, Query, QueryQC
from species_ref.vocab import DecisionLevel, Flag

Progress = Callable[[int, int], None]
CitesLookup = Callable[[str], object | None]
#: a validation report as stored with a library version (`ValidationReport.to_dict()`).
ValidationDoc = dict[str, Any]


class IndexMismatch(SpeciesRefError):
    """An index or profile was built for another library version."""


@dataclass
class Identification:
    """The identification of one query (see `to_dict` for the JSON form)."""

    query: str
    query_sha256: str
    query_length: int
    level: DecisionLevel
    taxon: str | None
    rank: str | None
    statement: str
    identity: float | None
    coverage: float | None
    next_species_distance: float | None
    flags: list[Flag]
    candidates: list[SpeciesHits]
    hits: list[SpeciesHits]
    library_name: str
    library_version_number: int
    library_version: str  # content hash
    rule: Rule
    qc: QueryQC | None = None
    cites: dict[str, str] | None = None
    validation: ValidationDoc | None = None
    species_stats: SpeciesStats | None = None
    top_hits: list[Hit] = field(default_factory=list)
    synonyms: list[str] = field(default_factory=list)  # other names of the called species
    error_rate: ErrorRate | None = None  # measured error of validation calls like this one

    @property
    def flag_texts(self) -> list[str]:
        """The flags as sentences, in order."""
        return [f.text for f in self.flags]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; keys are stable (documented in the module docstring).

        Stored in custody events and issued dossiers: keys may be added, never
        renamed or reshaped.
        """
        return {
            "query": self.query,
            "query_sha256": self.query_sha256,
            "query_length": self.query_length,
            "level": str(self.level),
            "taxon": self.taxon,
            "rank": self.rank,
            "statement": self.statement,
            "identity": None if self.identity is None else round(self.identity, 3),
            "coverage": None if self.coverage is None else round(self.coverage, 2),
            "next_species_distance": self.next_species_distance,
            "flags": self.flag_texts,
            "candidates": [c.to_dict() for c in self.candidates],
            "hits": [h.to_dict() for h in self.hits],
            "library_name": self.library_name,
            "library_version_number": self.library_version_number,
            "library_version": self.library_version,
            "rule": _rule_dict(self.rule),
            "qc": None if self.qc is None else self.qc.to_dict(),
            "cites": self.cites,
            "validation": self.validation,
            "species_stats": None if self.species_stats is None else self.species_stats.to_dict(),
            "top_hits": [h.to_dict() for h in self.top_hits[:10]],
            "flag_codes": [str(f.code) for f in self.flags],
            "synonyms": list(self.synonyms),
            "error_rate": None if self.error_rate is None else self.error_rate.to_dict(),
        }


_RULE_DICTS: dict[Rule, dict[str, Any]] = {}


def _rule_dict(rule: Rule) -> dict[str, Any]:
    """`rule.to_dict()`, made once per rule (a rule is frozen); each result gets its own copy."""
    made = _RULE_DICTS.get(rule)
    if made is None:
        made = _RULE_DICTS[rule] = rule.to_dict()
    return dict(made)


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
        qc: QueryQC | None = None,
        cites: CitesLookup | None = None,
        exclude: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[Decision, list[Hit]]:
        """Match `seq` (with the references in `exclude` held out) and decide under `rule`."""
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
            library=self.library_view(exclude),
            qc=qc,
            cites=cites,
            error_sites=error_sites,
        )
        return dec, hits

    def library_view(self, exclude: npt.NDArray[np.bool_] | None = None) -> LibraryView:
        """The library statistics for decisions, with the references in `exclude` held out."""
        return LibraryView(profile=self.profile, index=self.index, excluded_refs=exclude)

    def identify_one(
        self,
        query: Query,
        *,
        rule: Rule,
        cites: CitesLookup | None = None,
        validation: ValidationDoc | None = None,
    ) -> Identification:
        v = self.version
        if cites is not None and v.synonyms:
            cites = walk_synonyms(cites, v.synonyms_of)  # type: ignore[arg-type]
        dec, hits = self.decide_sequence(query.sequence, rule=rule, qc=query.qc, cites=cites)
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
            flags=list(dec.flags),
            candidates=dec.candidates,
            hits=dec.species_hits,
            library_name=v.name,
            library_version_number=v.version,
            library_version=v.content_hash,
            rule=rule,
            qc=query.qc,
            cites=dec.cites if cites is not None else None,
            validation=validation,
            species_stats=dec.stats,
            top_hits=hits[:10],
            synonyms=list(v.synonyms_of(dec.taxon)) if dec.taxon else [],
            error_rate=error_rate_of(
                validation, dec, query_length=len(query.sequence), marker=_marker_of(hits, dec)
            ),
        )


@dataclass(frozen=True)
class _Batch:
    """What every worker identifying a batch shares (inherited through fork)."""

    engine: Engine
    rule: Rule
    cites: CitesLookup | None
    validation: ValidationDoc | None


def _identify_one(batch: _Batch, query: Query) -> Identification:
    return batch.engine.identify_one(
        query, rule=batch.rule, cites=batch.cites, validation=batch.validation
    )


def identify(
    queries: Sequence[Query],
    engine: Engine,
    *,
    rule: Rule | str = "default",
    cites: CitesLookup | None = None,
    validation: ValidationDoc | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> list[Identification]:
    """Identify each query with `engine` (one library version) under the named or given `rule`.

    `cites` looks a species up in the CITES appendices. `validation` (the
    library's measured rates from `validate_library(...).to_dict()`) is copied
    into each result. `workers` None uses every core for batches (see
    `species_ref.parallel.fork_map`). Results are in the order of `queries`.
    """
    batch = _Batch(engine=engine, rule=get_rule(rule), cites=cites, validation=validation)
    return fork_map(_identify_one, queries, shared=batch, workers=workers, progress=progress)


def _marker_of(hits: Sequence[Hit], dec: Decision) -> str | None:
    """The marker of the call: that of the best hit of the called taxon, else of the best hit."""
    for h in hits:
        if dec.taxon and (h.species == dec.taxon or h.genus == dec.taxon):
            return h.marker
    return hits[0].marker if hits else None
