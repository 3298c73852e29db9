"""Measured accuracy of a reference library under a decision rule.

Owns `validate_library`, which runs two experiments against one library
version, reusing its k-mer index and statistics with exclusion masks (nothing
is rebuilt per query):

- leave-one-out (present species): each sampled reference of a species with at
  least two references is held out and identified against the rest. A species
  call is correct when it names the reference's own species, wrong otherwise.
- hold-whole-species-out (absent species): every reference of a sampled
  species that has a congener in the library is removed and up to two of its
  sequences are identified; any species-level call is a false call.

Invariants:
- Library statistics used for a held-out query are recomputed without the
  held-out references, so a removed species never informs its own decision.
- With `max_queries`, references and species are sampled with `seed`; the
  report says so. Rates are fractions of the queries in their experiment.
- An optional `perturb(seq, rng) -> seq` modifies each query (cut, reverse,
  add errors) to measure robustness; the report names it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from species_ref.errorrate import CallCells, conditions, is_wrong
from species_ref.identify import Engine
from species_ref.index import KmerIndex
from species_ref.matching import Hit
from species_ref.parallel import fork_map
from species_ref.profile import PROFILE_METHOD
from species_ref.rules import Rule, get_rule
from species_ref.types import LibraryVersion
from species_ref.vocab import DecisionLevel

Progress = Callable[[int, int], None]
Perturb = Callable[[str, random.Random], str]


@dataclass
class Outcomes:
    """Counts of decisions for one experiment (or one marker within it)."""

    n: int = 0
    correct_species: int = 0
    wrong_species: int = 0
    ambiguous: int = 0
    ambiguous_with_true: int = 0
    genus: int = 0
    genus_correct: int = 0
    none: int = 0

    def add(
        self, *, level: DecisionLevel, taxon: str | None, truth: str, candidates: list[str]
    ) -> None:
        self.n += 1
        if level is DecisionLevel.SPECIES:
            if taxon == truth:
                self.correct_species += 1
            else:
                self.wrong_species += 1
        elif level is DecisionLevel.AMBIGUOUS:
            self.ambiguous += 1
            if truth in candidates:
                self.ambiguous_with_true += 1
        elif level is DecisionLevel.GENUS:
            self.genus += 1
            if taxon == truth.split(" ", 1)[0]:
                self.genus_correct += 1
        else:
            self.none += 1

    def rate(self, count: int) -> float | None:
        """`count` as a share of the queries, rounded as reported (None without queries)."""
        return round(count / self.n, 4) if self.n else None

    @property
    def false_species(self) -> int:
        """Species calls of any species (false calls, in the absent-species experiment)."""
        return self.correct_species + self.wrong_species

    def to_dict(self, *, absent: bool = False) -> dict[str, int | float | None]:
        rate = self.rate
        out: dict[str, int | float | None] = {"n": self.n}
        if absent:
            out["false_species"] = self.correct_species + self.wrong_species
            out["false_species_rate"] = rate(self.correct_species + self.wrong_species)
        else:
            out["correct_species"] = self.correct_species
            out["wrong_species"] = self.wrong_species
            out["correct_species_rate"] = rate(self.correct_species)
            out["wrong_species_rate"] = rate(self.wrong_species)
            out["ambiguous_with_true"] = self.ambiguous_with_true
        out.update(
            ambiguous=self.ambiguous,
            genus=self.genus,
            genus_correct=self.genus_correct,
            none=self.none,
            ambiguous_rate=rate(self.ambiguous),
            genus_rate=rate(self.genus),
            none_rate=rate(self.none),
        )
        return out


@dataclass
class Experiment:
    overall: Outcomes = field(default_factory=Outcomes)
    by_marker: dict[str, Outcomes] = field(default_factory=dict)

    def add(
        self,
        marker: str,
        *,
        level: DecisionLevel,
        taxon: str | None,
        truth: str,
        candidates: list[str],
    ) -> None:
        for outcomes in (self.overall, self.by_marker.setdefault(marker, Outcomes())):
            outcomes.add(level=level, taxon=taxon, truth=truth, candidates=candidates)

    def to_dict(
        self, *, absent: bool = False
    ) -> dict[str, dict[str, int | float | None] | dict[str, dict[str, int | float | None]]]:
        return {
            "overall": self.overall.to_dict(absent=absent),
            "by_marker": {m: o.to_dict(absent=absent) for m, o in sorted(self.by_marker.items())},
        }


@dataclass
class ValidationReport:
    """Rates measured on one library version under one rule."""

    library_name: str
    library_version_number: int
    library_version: str
    rule: Rule
    n_references: int
    n_species: int
    sampled: bool
    max_queries: int | None
    seed: int
    perturbation: str | None
    present: Experiment  # leave-one-out, species still in the library
    absent: Experiment  # held-out species
    call_cells: CallCells = field(default_factory=CallCells.empty)  # both experiments

    def to_dict(self) -> dict[str, Any]:
        p = self.present.overall
        a = self.absent.overall
        return {
            "library_name": self.library_name,
            "library_version_number": self.library_version_number,
            "library_version": self.library_version,
            "rule": self.rule.to_dict(),
            # the species statistics the calls were made with (`species_ref.profile`)
            "statistics_method": PROFILE_METHOD,
            "n_references": self.n_references,
            "n_species": self.n_species,
            "sampled": self.sampled,
            "max_queries": self.max_queries,
            "seed": self.seed,
            "perturbation": self.perturbation,
            "method": (
                "leave-one-out for references of species with other references; "
                "hold-whole-species-out for species with a congener in the library"
            ),
            "summary": {
                "correct_species_rate": p.to_dict()["correct_species_rate"],
                "wrong_species_rate": p.to_dict()["wrong_species_rate"],
                "false_species_rate_absent": a.to_dict(absent=True)["false_species_rate"],
                "n_present": p.n,
                "n_absent": a.n,
            },
            "present": self.present.to_dict(),
            "absent": self.absent.to_dict(absent=True),
            "call_cells": self.call_cells.to_dict(),
            "call_cells_definition": (
                "experiment|marker|query length|identity|gap to the next species|level -> "
                "[validation calls, wrong calls]; see species_ref.errorrate"
            ),
        }

    def __getitem__(self, key: str) -> Any:
        """A key of the JSON form, for callers written when reports were plain dicts."""
        return self.to_dict()[key]


# Task: (ref index, excluded species id or -1, perturbation seed)
Task = tuple[int, int, int]


def exclusion_mask(index: KmerIndex, task: Task) -> npt.NDArray[np.bool_]:
    """References hidden from the library for one task: the query itself, or its whole species."""
    ref, sp_out, _ = task
    exclude = np.zeros(index.n_refs, dtype=bool)
    exclude[ref] = True
    if sp_out >= 0:
        exclude[index.species_ids == sp_out] = True
    return exclude


def task_sequence(version: LibraryVersion, task: Task, perturb: Perturb | None) -> str:
    """The query of one task: the held-out reference's sequence, perturbed when asked."""
    ref, _, pseed = task
    seq = version.records[ref].sequence
    return seq if perturb is None else perturb(seq, random.Random(pseed))


def sample_tasks(
    index: KmerIndex, *, max_queries: int | None = None, seed: int = 0
) -> tuple[list[Task], bool]:
    """The validation tasks of a library and whether they were sampled.

    Leave-one-out tasks (species id -1) for references of species that keep
    another reference; hold-whole-species-out tasks for species with a
    congener, up to two queries each. `max_queries` caps each experiment.
    """
    rng = random.Random(seed)
    n_refs = index.n_refs
    counts = np.bincount(index.species_ids, minlength=len(index.species_names))
    # Present: references of species that keep at least one other reference.
    loo_refs = [i for i in range(n_refs) if counts[index.species_ids[i]] > 1]
    sampled = False
    if max_queries is not None and len(loo_refs) > max_queries:
        loo_refs = sorted(rng.sample(loo_refs, max_queries))
        sampled = True
    # Absent: species with a congener in the library (the hard case), all removed.
    genus_of = list(index.genus_names)
    genus_species: dict[str, int] = {}
    for g in genus_of:
        genus_species[g] = genus_species.get(g, 0) + 1
    out_species = [s for s in range(len(genus_of)) if genus_species[genus_of[s]] > 1]
    per_species = 2
    n_out = sum(min(int(counts[s]), per_species) for s in out_species)
    if max_queries is not None and n_out > max_queries:
        out_species = sorted(rng.sample(out_species, max(1, max_queries * 2 // 3)))
        sampled = True
    tasks: list[Task] = [(ref, -1, rng.randrange(2**31)) for ref in loo_refs]
    order = np.argsort(index.species_ids, kind="stable")
    bounds = np.searchsorted(index.species_ids[order], np.arange(len(genus_of) + 1))
    for s in out_species:
        members = order[bounds[s] : bounds[s + 1]].tolist()
        pick = members if len(members) <= per_species else rng.sample(members, per_species)
        tasks.extend((int(ref), s, rng.randrange(2**31)) for ref in pick)
    return tasks, sampled


@dataclass(frozen=True)
class _Run:
    """What every worker of a validation shares (inherited through fork)."""

    engine: Engine
    rule: Rule
    perturb: Perturb | None


@dataclass(frozen=True)
class _Outcome:
    """The decision on one validation query, with the truth it is judged against."""

    absent: bool  # hold-whole-species-out query
    marker: str
    truth: str
    level: DecisionLevel
    taxon: str | None
    candidates: tuple[str, ...]
    cell: str = ""  # the conditions of the call (`species_ref.errorrate.conditions`)


def _run_task(run: _Run, task: Task) -> _Outcome:
    ref, sp_out, _ = task
    eng = run.engine
    index = eng.index
    seq = task_sequence(eng.version, task, run.perturb)
    dec, hits = eng.decide_sequence(seq, rule=run.rule, exclude=exclusion_mask(index, task))
    marker = index.markers[ref]
    return _Outcome(
        absent=sp_out >= 0,
        marker=index.markers[ref],
        truth=index.species_names[int(index.species_ids[ref])],
        level=dec.level,
        taxon=dec.taxon if dec.level != DecisionLevel.NONE else None,
        candidates=tuple(c.species for c in dec.candidates),
        cell=conditions(
            marker=_call_marker(hits, dec.taxon) or marker,
            query_length=len(seq),
            identity=dec.identity,
            gap=dec.next_species_distance,
            level=dec.level,
        ),
    )


def _call_marker(hits: list[Hit], taxon: str | None) -> str | None:
    """The marker a call is counted under: as `identify` reports it (best hit of the taxon)."""
    for h in hits:
        if taxon and (h.species == taxon or h.genus == taxon):
            return h.marker
    return hits[0].marker if hits else None


def validate_library(
    version: LibraryVersion,
    *,
    rule: Rule | str = "default",
    progress: Progress | None = None,
    max_queries: int | None = None,
    seed: int = 0,
    engine: Engine | None = None,
    perturb: Perturb | None = None,
    perturbation_name: str | None = None,
    workers: int | None = None,
) -> ValidationReport:
    """Leave-one-out and hold-whole-species-out validation of `version` under `rule`.

    `max_queries` caps each experiment (sampled with `seed`); `engine` reuses a
    prebuilt index and profile; `perturb` modifies every query.
    """
    r = get_rule(rule)
    eng = engine or Engine(version)
    index = eng.index
    tasks, sampled = sample_tasks(index, max_queries=max_queries, seed=seed)
    n_refs = index.n_refs
    run = _Run(engine=eng, rule=r, perturb=perturb)
    outcomes = fork_map(_run_task, tasks, shared=run, workers=workers, progress=progress)
    present = Experiment()
    absent = Experiment()
    cells = CallCells.empty()
    for o in outcomes:
        if o.level is not DecisionLevel.NONE:
            wrong = is_wrong(
                level=o.level, taxon=o.taxon, truth=o.truth, candidates=list(o.candidates),
                absent=o.absent,
            )  # fmt: skip
            cells.add(o.cell, wrong, absent=o.absent)
        target = absent if o.absent else present
        target.add(
            o.marker, level=o.level, taxon=o.taxon, truth=o.truth, candidates=list(o.candidates)
        )
    return ValidationReport(
        library_name=version.name,
        library_version_number=version.version,
        library_version=version.content_hash,
        rule=r,
        n_references=n_refs,
        n_species=len(index.species_names),
        sampled=sampled,
        max_queries=max_queries,
        seed=seed,
        perturbation=perturbation_name,
        present=present,
        absent=absent,
        call_cells=cells,
    )
