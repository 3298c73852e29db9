"""Species decisions: from the hits of one query to a call, its candidates and flags.

Owns `decide` and what it returns (`Decision`, with the hits grouped per
species as `SpeciesHits`). The thresholds come from a `Rule`
(`species_ref.rules`); what the library shows about each species comes from a
`LibraryProfile` (`species_ref.profile`).

The call, in order:
1. below the rule's genus floor: no identification;
2. several species within the barcode gap: ambiguous (at genus level when
   they share one), unless one species is carried by many closer references;
3. at or above the species threshold and supported by the library statistics
   (the query inside the species' variation, clearly closer to it than to its
   nearest other species, enough references; a species known from one or two
   references needs its nearest other species far, less far in a genus whose
   other species the marker separates): a species call;
4. otherwise the genus, when the candidates share one.

Invariants: every flag is a `Flag` (a code and a sentence); the decision never
reads the sentences of QC warnings, only their codes. Flags come out in the
order the call examined them. A decision is built once, never patched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from species_ref.index import KmerIndex
from species_ref.matching import Hit
from species_ref.profile import LibraryProfile, SpeciesStats
from species_ref.rules import Rule
from species_ref.types import QueryQC
from species_ref.vocab import ABOVE_GENUS, DecisionLevel, Flag, FlagCode, QcCode

CitesLookup = Callable[[str], object | None]
ErrorSites = Callable[[str], int | None]


@dataclass(frozen=True)
class SpeciesHits:
    """The hits of one species for one query."""

    species: str
    best_identity: float
    aligned_length: int
    coverage: float
    gaps: int
    n_refs: int  # usable hits of this species
    n_supporting: int  # of which reach the species threshold
    accessions: tuple[str, ...]
    strand: str
    identities: tuple[float, ...] = ()  # every usable hit of the species, best first

    def to_dict(self) -> dict[str, str | int | float | list[str]]:
        return {
            "species": self.species,
            "best_identity": round(self.best_identity, 3),
            "aligned_length": self.aligned_length,
            "coverage": round(self.coverage, 2),
            "gaps": self.gaps,
            "n_refs": self.n_refs,
            "n_supporting": self.n_supporting,
            "accessions": list(self.accessions),
            "strand": self.strand,
        }


@dataclass(frozen=True)
class Decision:
    """Outcome of `decide` for one query."""

    level: DecisionLevel
    taxon: str | None
    rank: str | None  # rank of `taxon`, or ABOVE_GENUS when candidates span genera
    candidates: list[SpeciesHits]
    species_hits: list[SpeciesHits]
    identity: float | None
    coverage: float | None
    next_species_distance: float | None
    flags: list[Flag] = field(default_factory=list)
    statement: str = ""
    stats: SpeciesStats | None = None
    cites: dict[str, str] = field(default_factory=dict)

    @property
    def flag_texts(self) -> list[str]:
        return [f.text for f in self.flags]


@dataclass(frozen=True)
class LibraryView:
    """The library statistics a decision may use, with the references held out of it."""

    profile: LibraryProfile
    index: KmerIndex
    excluded_refs: npt.NDArray[np.bool_] | None = None

    def stats_of(self, species: str) -> SpeciesStats | None:
        sid = self.index.species_id(species)
        if sid is None:
            return None
        return self.profile.stats(sid, excluded_refs=self.excluded_refs)


def group_hits(hits: Sequence[Hit], *, rule: Rule, query_length: int) -> list[SpeciesHits]:
    """Usable hits grouped by species, best species first."""
    by: dict[str, list[Hit]] = {}
    for h in hits:
        if h.aligned_length >= rule.min_overlap_bp or h.query_coverage >= rule.min_coverage:
            by.setdefault(h.species, []).append(h)
    out: list[SpeciesHits] = []
    for sp, hs in by.items():
        hs.sort(key=lambda h: (-h.identity, -h.aligned_length))
        top = hs[0]
        out.append(
            SpeciesHits(
                species=sp,
                best_identity=top.identity,
                aligned_length=top.aligned_length,
                coverage=top.query_coverage,
                gaps=top.gaps,
                n_refs=len(hs),
                n_supporting=sum(1 for h in hs if h.identity >= rule.species_identity),
                accessions=tuple(h.seq_id for h in hs[:5]),
                strand=top.strand,
                identities=tuple(h.identity for h in hs),
            )
        )
    out.sort(key=lambda s: (-s.best_identity, -s.aligned_length, s.species))
    return out


def decide(
    hits: Sequence[Hit],
    *,
    query_length: int,
    rule: Rule,
    library: LibraryView | None = None,
    qc: QueryQC | None = None,
    cites: CitesLookup | None = None,
    error_sites: ErrorSites | None = None,
) -> Decision:
    """Turn the hits of one query into a species decision under `rule`.

    `library` gives the library statistics (used when the rule asks for them);
    `cites(species)` looks a candidate up in the CITES appendices;
    `error_sites(species)` counts the best hit's mismatches at conserved sites
    (see `Matcher.conserved_mismatches`), used when the rule discounts them.
    """
    flags = _query_flags(query_length=query_length, rule=rule, qc=qc)
    groups = group_hits(hits, rule=rule, query_length=query_length)
    if not groups:
        if hits:
            flags.append(
                Flag(
                    FlagCode.NO_USABLE_OVERLAP, "no reference overlaps enough of the query to count"
                )
            )
        return Decision(
            DecisionLevel.NONE, None, None, [], [], None, None, None, flags, "no identification"
        )
    race = _Race.of(groups, rule=rule, query_length=query_length)
    if rule.discount_outlier_records:
        kept, set_aside = _discount_outliers(groups, rule=rule)
        narrowed = _Race.of(kept, rule=rule, query_length=query_length) if set_aside else race
        # Only when setting them aside resolves the tie: a query that stays ambiguous
        # names every species that ties with the best one.
        if set_aside and len(narrowed.ties) == 1:
            groups, race = kept, narrowed
            flags += set_aside
    if race.best.strand == "-":
        flags.append(
            Flag(
                FlagCode.REVERSE_STRAND,
                "reverse strand: the query matched as its reverse complement",
            )
        )
    listed, domestic = _cites_of(race.ties, cites)
    call, stats, call_flags = _call(
        race, rule=rule, query_length=query_length, library=library, error_sites=error_sites
    )
    flags += call_flags
    if call.flag_cites:
        flags += _cites_flags(call, listed, domestic=domestic)
    return Decision(
        level=call.level,
        taxon=call.taxon,
        rank=call.rank,
        candidates=call.candidates,
        species_hits=groups,
        identity=race.identity,
        coverage=race.best.coverage,
        next_species_distance=race.next_distance,
        flags=flags,
        statement=call.statement,
        stats=stats,
        cites=listed,
    )


def _query_flags(*, query_length: int, rule: Rule, qc: QueryQC | None) -> list[Flag]:
    """Flags about the query itself: its length and its QC warnings."""
    short = query_length < rule.short_query_bp
    flags: list[Flag] = []
    if short:
        flags.append(
            Flag(
                FlagCode.SHORT_QUERY,
                f"short query ({query_length} bp): mini-barcode, fewer sites separate species",
            )
        )
    for w in qc.flags if qc is not None else ():
        if w.code is QcCode.SHORT and short:
            continue  # already said by the short-query flag above
        if w.code.is_quality:
            flags.append(Flag(FlagCode.LOW_QUALITY, f"low quality: {w.text}"))
        else:
            flags.append(Flag(FlagCode.QUERY_QC, f"query QC: {w.text}"))
    return flags


def _differing_columns(g: SpeciesHits) -> float:
    """Columns of the species' best alignment that differ from the query."""
    return (100.0 - g.best_identity) / 100.0 * g.aligned_length


class _Race(NamedTuple):
    """The best species of a query and those too close to it to be told apart."""

    groups: list[SpeciesHits]
    best: SpeciesHits
    second: SpeciesHits | None
    ties: list[SpeciesHits]  # the best species first, then those within the gap
    identity: float  # best identity as measured
    #: the ties were narrowed by a whole base on a short identical query (`_identical_short`)
    separated: bool = False

    @classmethod
    def of(cls, groups: list[SpeciesHits], *, rule: Rule, query_length: int) -> _Race:
        best = groups[0]
        i1 = best.best_identity
        second = groups[1] if len(groups) > 1 else None
        ties = [g for g in groups if g.best_identity >= i1 - rule.species_gap]
        if rule.min_gap_bases and query_length < rule.short_query_bp and second is not None:
            # On a 100 bp query one base is 1 %: require whole bases of separation,
            # counted as the differing columns of each species' best alignment (the
            # two may align over a column or two more or less), from every other species.
            floor = _differing_columns(best) + rule.min_gap_bases - 1e-6
            ties += [g for g in groups[1:] if g not in ties and _differing_columns(g) < floor]
        return cls(groups, best, second, ties, i1)

    @property
    def next_distance(self) -> float | None:
        if self.second is None:
            return None
        return round(self.identity - self.second.best_identity, 3)

    @property
    def genera(self) -> list[str]:
        return sorted({_genus(g.species) for g in self.ties})

    @property
    def second_within_gap(self) -> bool:
        return self.second is not None and self.second in self.ties


class _Call(NamedTuple):
    level: DecisionLevel
    taxon: str | None
    rank: str | None
    candidates: list[SpeciesHits]
    statement: str
    #: False for a query below the genus floor: its CITES candidates are kept, not flagged.
    flag_cites: bool = True


def _call(
    race: _Race,
    *,
    rule: Rule,
    query_length: int,
    library: LibraryView | None,
    error_sites: ErrorSites | None,
) -> tuple[_Call, SpeciesStats | None, list[Flag]]:
    """The call for a query with usable hits, the statistics it used and its flags."""
    best = race.best
    if race.identity < rule.genus_floor:
        statement = (
            f"no identification (best match {best.species} at {race.identity:.1f} %, "
            f"below the {rule.genus_floor:g} % genus floor)"
        )
        return _Call(DecisionLevel.NONE, None, None, [], statement, flag_cites=False), None, []
    race, flags = _identical_short(race, rule=rule, query_length=query_length, library=library)
    if race.second_within_gap:
        flags.append(_within_gap_flag(race, rule=rule))
    # A species matched by many of its references closer than any other species
    # may still be called with a sister within the gap (provisionally: the
    # library tests below must pass, else the query stays ambiguous).
    dominant = (
        _dominant_support(race.groups, rule=rule, query_length=query_length)
        if len(race.ties) > 1 and race.second is not None
        else None
    )
    if race.identity >= rule.species_identity and len(race.ties) > 1 and dominant is None:
        return _ambiguous(race), None, flags
    if query_length < rule.min_species_bp and race.identity >= rule.species_identity:
        flags.append(
            Flag(
                FlagCode.TOO_SHORT_FOR_SPECIES,
                f"the query is {query_length} bp long; this rule makes no species call on a "
                f"query under {rule.min_species_bp} bp, where a base or two is all that tells "
                "sister species apart",
            )
        )
        if len(race.ties) > 1:
            return _ambiguous(race), None, flags
        return _genus_or_above(race, species_reached=True), None, flags
    identity = race.identity
    if rule.discount_conserved_errors and error_sites is not None and len(race.ties) == 1:
        identity, discounted = _discount_read_errors(race, error_sites=error_sites)
        flags += discounted
    if identity < rule.species_identity:
        return _genus_or_above(race, species_reached=False), None, flags
    stats, reason, checked = _library_check(race, identity=identity, rule=rule, library=library)
    flags += checked
    if reason is None:
        call, support = _species_call(race, dominant=dominant, rule=rule)
        return call, stats, flags + support
    flags.append(reason)
    # The one-base exception did not carry a call: its flags would say it had.
    flags = [f for f in flags if f.code is not FlagCode.SEPARATED_BY_BASE]
    if dominant is not None:
        return _ambiguous(race), stats, flags
    return _genus_or_above(race, species_reached=True), stats, flags


def _within_gap_flag(race: _Race, *, rule: Rule) -> Flag:
    """The flag of a race whose next species ties with the best: within the gap, or (on a
    short query) within the whole bases the rule asks for."""
    closest = _join([g.species for g in race.ties[1:]])
    second = race.second
    if second is None or second.best_identity >= race.identity - rule.species_gap - 1e-9:
        return Flag(
            FlagCode.WITHIN_GAP,
            f"closest other species within the {rule.species_gap:g} % gap: {closest}",
        )
    bases = max(0, round(_differing_columns(second) - _differing_columns(race.best)))
    return Flag(
        FlagCode.WITHIN_GAP,
        f"closest other species only {bases} base{'s' if bases != 1 else ''} further "
        f"({race.identity - second.best_identity:.2f} %): {closest}; on a query under "
        f"{rule.short_query_bp} bp this rule needs {rule.min_gap_bases} differing bases",
    )


def _identical_short(
    race: _Race, *, rule: Rule, query_length: int, library: LibraryView | None
) -> tuple[_Race, list[Flag]]:
    """The race of a short query identical to a reference of a species that the library
    shows apart from its relatives: species a whole base further (`identical_short_gap_bases`)
    no longer tie with it. Any other race is returned unchanged."""
    need = rule.identical_short_gap_bases
    if (
        not need
        or query_length >= rule.short_query_bp
        or query_length < rule.identical_short_min_bp
        or len(race.ties) < 2
        or race.identity < 100.0 - 1e-9
        or not (rule.use_library_stats and library is not None)
    ):
        return race, []
    best = race.best
    st = library.stats_of(best.species)
    # The species' nearest other species must lie `identical_short_min_nn` % away, and at
    # least `need` bases over a stretch as long as the query: on a 40 bp fragment one base
    # is 2.5 %, and a species 1.5 % from its sister shows less than one base there.
    min_nn = max(rule.identical_short_min_nn, 100.0 * need / max(best.aligned_length, 1))
    if st is None or st.nn_distance is None or st.nn_distance < min_nn - 1e-9:
        return race, []
    if any(_differing_columns(g) < need - 1e-6 for g in race.ties[1:]):
        return race, []
    nxt = race.ties[1]
    bases = round(_differing_columns(nxt))
    enough = "a whole base" if need == 1 else f"{need} whole bases"
    flag = Flag(
        FlagCode.SEPARATED_BY_BASE,
        f"the query is identical to a reference of {best.species}; the next species, "
        f"{nxt.species}, differs from it at {bases} of {nxt.aligned_length} aligned bases "
        f"({100.0 - nxt.best_identity:.2f} %). On a query this short the rule otherwise needs a "
        f"{rule.species_gap:g} % gap and {rule.min_gap_bases} differing bases, but {enough} "
        f"suffices for a query identical to a reference of a species whose nearest other "
        f"species in the library, {st.nn_species}, lies {st.nn_distance:.2f} % from it "
        f"(at least {rule.identical_short_min_nn:g} % is needed)",
    )
    narrowed = _Race(race.groups, best, race.second, [best], race.identity, separated=True)
    return narrowed, [flag]


def _discount_read_errors(race: _Race, *, error_sites: ErrorSites) -> tuple[float, list[Flag]]:
    """Best identity with mismatches at conserved sites counted as read errors."""
    best = race.best
    if race.identity >= 100.0:
        return race.identity, []
    n_err = error_sites(best.species)
    if not n_err:
        return race.identity, []
    identity = min(100.0, race.identity + 100.0 * n_err / max(best.aligned_length, 1))
    flag = Flag(
        FlagCode.READ_ERRORS,
        f"{n_err} mismatch(es) at sites conserved in every related reference treated "
        "as probable read errors",
    )
    return identity, [flag]


def _library_check(
    race: _Race, *, identity: float, rule: Rule, library: LibraryView | None
) -> tuple[SpeciesStats | None, Flag | None, list[Flag]]:
    """(statistics used, why the library refuses a species call or None, other flags)."""
    best = race.best
    single = Flag(FlagCode.SINGLE_REFERENCE, f"single reference sequence for {best.species}")
    if not (rule.use_library_stats and library is not None):
        return None, None, [single] if best.n_refs <= 1 else []
    st = library.stats_of(best.species)
    if st is None:
        return None, None, []
    dist = 100.0 - identity
    reason = _outside_library_variation(dist, st, rule=rule)
    if reason is None and rule.genus_unresolved_max < 1.0:
        reason = _genus_unresolved(best.species, rule=rule, library=library)
    flags = [single] if st.n_refs <= 1 else []
    if reason is None and st.n_refs < rule.min_species_refs:
        reason = Flag(
            FlagCode.FEW_REFERENCES,
            f"{best.species} has {st.n_refs} reference(s) in the library; "
            f"this rule needs {rule.min_species_refs} for a species call",
        )
    if reason is None:
        second = race.second
        next_dist = (identity - second.best_identity) if second is not None else None
        waived = _base_stands_for_gap(race, st, rule=rule)
        if waived is not None:
            next_dist = None
            flags.append(waived)
        reason, relief = _few_references(
            dist,
            st,
            next_dist=next_dist,
            measured_dist=100.0 - race.identity,
            rule=rule,
            resolution=lambda: _genus_resolution(best.species, rule=rule, library=library),
        )
        flags += relief
    return st, reason, flags


def _base_stands_for_gap(race: _Race, st: SpeciesStats, *, rule: Rule) -> Flag | None:
    """For a species known from few references, whether the whole base of a short identical
    query (`_identical_short`) stands for the next-species gap the few-references tests ask
    for (the tests of its nearest other species still apply); None when it does not.

    Not when the next species is a congener but the species' nearest measured species is
    not: the library then has not measured how far the species lies from its genus."""
    second = race.second
    if not (race.separated and rule.identical_short_few_refs and second is not None):
        return None
    if st.n_refs > rule.few_refs:
        return None
    genus = _genus(race.best.species)
    if _genus(second.species) == genus and (
        st.nn_species is None or _genus(st.nn_species) != genus
    ):
        return None
    return Flag(
        FlagCode.SEPARATED_BY_BASE,
        f"{race.best.species} is known from {_refs(st.n_refs)} only; for such a species the "
        f"rule otherwise asks the next species to match {rule.few_refs_min_gap:g} % less well, "
        "but the whole base stands for that here, as the query is identical to its reference "
        "(the test of its nearest other species in the library still applies)",
    )


def _genus_unresolved(species: str, *, rule: Rule, library: LibraryView) -> Flag | None:
    """Why the marker cannot be trusted to separate the species of this genus, or None."""
    genus = _genus(species)
    threshold = 100.0 - rule.species_identity
    share = library.profile.genus_unresolved_share(
        genus, threshold=threshold, skip=species, excluded_refs=library.excluded_refs
    )
    if share is None or share[0] <= rule.genus_unresolved_max:
        return None
    return Flag(
        FlagCode.GENUS_UNRESOLVED,
        f"{share[0]:.0%} of the other {share[1]} species of {genus} in the library lie within "
        f"{threshold:g} % of another species: this marker does not separate species of the genus",
    )


def _species_call(
    race: _Race, *, dominant: tuple[float, float, int] | None, rule: Rule
) -> tuple[_Call, list[Flag]]:
    best = race.best
    statement = f"consistent with {best.species}"
    flags: list[Flag] = []
    if dominant is not None:
        others = _join([g.species for g in race.ties[1:]])
        lo, hi, n_close = dominant
        span = f"{lo:.2f} %" if hi - lo < 0.005 else f"{lo:.2f}-{hi:.2f} %"
        nxt = race.groups[1]
        flags.append(
            Flag(
                FlagCode.DOMINANT_SUPPORT,
                f"{n_close} references of {best.species} match the query at {span}, "
                f"closer than any reference of another species (next: {nxt.species} "
                f"at {nxt.best_identity:.2f} %)",
            )
        )
        statement += (
            f" ({others} within the {rule.species_gap:g} % gap, not excluded by it; "
            f"called on the support of {n_close} closer references)"
        )
    call = _Call(DecisionLevel.SPECIES, best.species, "species", [best], statement)
    return call, flags


def _ambiguous(race: _Race) -> _Call:
    """An ambiguous call between the tied species, at genus level when they share one."""
    names = _join([g.species for g in race.ties])
    genera = race.genera
    if len(genera) == 1:
        statement = f"ambiguous between {names}; reported at genus level {genera[0]}"
        return _Call(DecisionLevel.AMBIGUOUS, genera[0], "genus", race.ties, statement)
    statement = f"ambiguous between {names}; candidates span genera, no genus reported"
    return _Call(DecisionLevel.AMBIGUOUS, None, ABOVE_GENUS, race.ties, statement)


def _genus_or_above(race: _Race, *, species_reached: bool) -> _Call:
    """Genus level: the best identity is between the genus floor and the species
    threshold, or the library statistics do not support a species call."""
    genera = race.genera
    if len(genera) == 1:
        statement = f"consistent with genus {genera[0]}; species not determined"
        if species_reached:
            statement += f" (nearest species {race.best.species})"
        return _Call(DecisionLevel.GENUS, genera[0], "genus", race.ties, statement)
    statement = (
        f"no identification at genus level: closest species {_join([g.species for g in race.ties])} "
        "belong to different genera"
    )
    return _Call(DecisionLevel.NONE, None, ABOVE_GENUS, race.ties, statement)


def _dominant_support(
    groups: Sequence[SpeciesHits], *, rule: Rule, query_length: int
) -> tuple[float, float, int] | None:
    """(lowest, highest identity, count) of the best species' references that carry it.

    Those references must be within `dominant_max_distance` % of the query and
    more identical than every reference of any other species by at least one
    whole base (on short queries `dominant_short_gap_bases`, else `min_gap_bases`).
    None when fewer than `dominant_refs` qualify (`dominant_refs_short` on short
    queries), or the rule does not use dominance.
    """
    if not rule.dominant_refs or len(groups) < 2:
        return None
    best, second = groups[0], groups[1]
    short = query_length < rule.short_query_bp
    refs = (rule.dominant_refs_short or rule.dominant_refs) if short else rule.dominant_refs
    need = (rule.dominant_short_gap_bases or max(1, rule.min_gap_bases)) if short else 1
    floor = max(
        100.0 - rule.dominant_max_distance,
        second.best_identity + 100.0 * need / max(best.aligned_length, 1) - 1e-9,
    )
    close = [x for x in best.identities if x >= floor]
    if len(close) < refs:
        return None
    return min(close), max(close), len(close)


def _discount_outliers(
    groups: list[SpeciesHits], *, rule: Rule
) -> tuple[list[SpeciesHits], list[Flag]]:
    """Drop tied species whose close hits are a minority of their references.

    Public libraries carry misidentified records: one Sphyrna zygaena record
    that is really S. lewini makes every S. lewini query "ambiguous". A species
    is set aside when at least `outlier_far_refs` of its aligned references are
    more than `outlier_far` % less identical than its best one and they
    outnumber its close references (at most two). Never all of the tied
    species are set aside. Returns the groups kept and one flag per species
    set aside.
    """
    if len(groups) < 2:
        return groups, []
    i1 = groups[0].best_identity
    window = [g for g in groups if g.best_identity >= i1 - max(rule.species_gap, 1.0)]
    if len(window) < 2:
        return groups, []
    dropped: list[SpeciesHits] = []
    for g in window:
        close = sum(1 for x in g.identities if x >= g.best_identity - rule.species_gap)
        far = _far_count(g, rule)
        if far >= rule.outlier_far_refs and close < far and close <= 2:
            dropped.append(g)
    # Never the species that matches best: setting it aside would move the call to a
    # species that matches the query less well.
    kept_best = max((g.best_identity for g in window if g not in dropped), default=0.0)
    dropped = [g for g in dropped if g.best_identity <= kept_best + 1e-9]
    if not dropped or len(dropped) == len(window):
        return groups, []
    flags = [
        Flag(
            FlagCode.OUTLIER_RECORDS,
            f"{g.species} resembles the query through {len(g.identities) - _far_count(g, rule)} "
            f"of its {len(g.identities)} closest references only (others over "
            f"{rule.outlier_far:g} % further): possibly misidentified records, not counted",
        )
        for g in dropped
    ]
    return [g for g in groups if g not in dropped], flags


def _far_count(g: SpeciesHits, rule: Rule) -> int:
    return sum(1 for x in g.identities if x < g.best_identity - rule.outlier_far)


def _outside_library_variation(dist: float, st: SpeciesStats, *, rule: Rule) -> Flag | None:
    """Why a within-threshold match is still not a species call, or None if it is."""

    def outside(text: str) -> Flag:
        return Flag(FlagCode.OUTSIDE_LIBRARY_VARIATION, text)

    if st.nn_distance is not None and dist > rule.nn_fraction * st.nn_distance:
        return outside(
            f"query is {dist:.2f} % from {st.species}, too close to the "
            f"{st.nn_distance:.2f} % separating it from {st.nn_species} in the library: "
            "it may be a species missing from the library"
        )
    if st.intra_max is not None:
        allowed = st.intra_max * rule.spread_factor + rule.spread_margin
        if dist > allowed:
            return outside(
                f"query is {dist:.2f} % from {st.species}, outside the variation seen among "
                f"its {st.n_refs} references (at most {st.intra_max:.2f} %)"
            )
        return None
    if dist > rule.singleton_max_distance:
        return outside(
            f"query is {dist:.2f} % from {st.species}, which has no measured variation "
            f"in the library (allowed {rule.singleton_max_distance:g} %)"
        )
    if st.nn_distance is not None and dist > rule.singleton_nn_fraction * st.nn_distance:
        return outside(
            f"query is {dist:.2f} % from {st.species}, known from a single reference "
            f"that is only {st.nn_distance:.2f} % from {st.nn_species}"
        )
    return None


def _genus_resolution(
    species: str, *, rule: Rule, library: LibraryView
) -> tuple[float, int] | None:
    """(share within the species threshold, species measured) when the marker separates
    the other species of the genus in the library; None when it does not or cannot tell."""
    share = library.profile.genus_unresolved_share(
        _genus(species),
        threshold=100.0 - rule.species_identity,
        skip=species,
        excluded_refs=library.excluded_refs,
    )
    if share is None or share[1] < rule.resolved_genus_min_species:
        return None
    return share if share[0] <= rule.resolved_genus_max else None


def _few_references(
    dist: float,
    st: SpeciesStats,
    *,
    next_dist: float | None,
    measured_dist: float,
    rule: Rule,
    resolution: Callable[[], tuple[float, int] | None],
) -> tuple[Flag | None, list[Flag]]:
    """(why a species known from few references is not called or None, other flags).

    With one or two references the library cannot show how far the species
    varies, nor that no unsampled sister species shares its sequence. Species
    whose nearest relative in the library is close, or queries that sit close
    to a second species, are therefore reported at genus level, unless the
    marker separates the other species of the genus in the library: then a
    sister sharing the query's sequence is unlikely, and smaller distances do
    (`resolution()` is asked only then, it costs a pass over the genus). A query
    identical to a reference, whose nearest other species is a congener at least
    `few_refs_exact_min_nn` % away, is called as well: the library shows the
    marker separating species of that genus, and a sister would have to share
    the query's sequence exactly (`measured_dist`: before any read-error discount).
    """
    if st.n_refs > rule.few_refs:
        return None, []
    refused = _few_refs_refusal(
        dist, st, next_dist=next_dist, min_nn=rule.few_refs_min_nn, min_gap=rule.few_refs_min_gap
    )
    if refused is None:
        return None, []
    resolved = resolution() if rule.resolved_genus_max > 0 else None
    if resolved is not None:
        min_nn = min(rule.few_refs_min_nn, rule.resolved_min_nn)
        min_gap = min(
            rule.few_refs_min_gap, max(rule.resolved_min_gap, rule.resolved_gap_ratio * dist)
        )
        genus = _genus(st.species)
        share, measured = resolved
        where = f", even in {genus}, whose other species this marker separates in the library"
        refused = _few_refs_refusal(
            dist, st, next_dist=next_dist, min_nn=min_nn, min_gap=min_gap, where=where
        )
        if refused is None:
            close = round(share * measured)
            none_close = "none" if close == 0 else f"only {close}"
            relief = Flag(
                FlagCode.GENUS_RESOLVED,
                f"{st.species} is known from {_refs(st.n_refs)} only, but this marker separates "
                f"the species of {genus} in the library ({none_close} of its {measured} other "
                f"species lie within {100.0 - rule.species_identity:g} % of another species), "
                "so a closely related species sharing the query's sequence is unlikely",
            )
            return None, [relief]
    if not _identical_to_separated_species(measured_dist, st, rule=rule):
        return refused, []
    exact_refused = _few_refs_refusal(
        dist,
        st,
        next_dist=next_dist,
        min_nn=min(rule.few_refs_min_nn, rule.few_refs_exact_min_nn),
        min_gap=rule.few_refs_min_gap,
        where=", even for a query identical to its references",
    )
    if exact_refused is not None:
        return (refused if resolved is not None else exact_refused), []
    them = "it" if st.n_refs == 1 else "one of them"
    relief = Flag(
        FlagCode.IDENTICAL_MATCH,
        f"{st.species} is known from {_refs(st.n_refs)} only, but the query is identical to "
        f"{them} and its nearest other species in the library is a congener, "
        f"{st.nn_species}, {st.nn_distance:.2f} % away: this marker separates species of the "
        "genus, so a closely related species sharing the query's sequence exactly is unlikely",
    )
    return None, [relief]


def _identical_to_separated_species(measured_dist: float, st: SpeciesStats, *, rule: Rule) -> bool:
    """Whether the query is identical to a reference of the species (as measured, before
    any read-error discount) and the species' nearest other species is a congener."""
    return (
        rule.few_refs_exact_min_nn > 0
        and measured_dist <= rule.few_refs_exact_distance + 1e-9
        and st.nn_species is not None
        and _genus(st.nn_species) == _genus(st.species)
    )


def _refs(n: int) -> str:
    return f"{n} reference{'s' if n != 1 else ''}"


def _few_refs_refusal(
    dist: float,
    st: SpeciesStats,
    *,
    next_dist: float | None,
    min_nn: float,
    min_gap: float,
    where: str = "",
) -> Flag | None:
    """Why a species known from few references is not called under these distances."""
    refs = _refs(st.n_refs)
    if min_nn > 0 and st.nn_distance is not None and st.nn_distance < min_nn:
        return Flag(
            FlagCode.FEW_REFERENCES,
            f"{st.species} is known from {refs} only and its nearest other species in the "
            f"library, {st.nn_species}, is only {st.nn_distance:.2f} % away (this rule needs "
            f"{min_nn:g} %{where}): a closely related species missing from the "
            "library could match the query as well",
        )
    if min_gap > 0 and next_dist is not None and next_dist < min_gap:
        return Flag(
            FlagCode.FEW_REFERENCES,
            f"{st.species} is known from {refs} only and the next species matches the query "
            f"only {next_dist:.2f} % less well (this rule needs {min_gap:.2g} % "
            f"for a species known from so few references{where})",
        )
    return None


def _cites_of(
    ties: Sequence[SpeciesHits], lookup: CitesLookup | None
) -> tuple[dict[str, str], set[str]]:
    """CITES appendix of each tied species that is listed (empty without a look-up), and
    the species whose listing leaves out their domesticated form."""
    found: dict[str, str] = {}
    domestic: set[str] = set()
    if lookup is None:
        return found, domestic
    for g in ties:
        listing = lookup(g.species)
        if listing is not None:
            found[g.species] = str(getattr(listing, "appendix", listing))
            if "domestic" in str(getattr(listing, "annotation", "")).lower():
                domestic.add(g.species)
    return found, domestic


#: Said of a listing that leaves the domesticated form out (dog and wolf, yak and
#: wild yak ...): the barcode cannot settle it, so the call must not read as settling it.
_DOMESTIC_CAVEAT = (
    "; the listing leaves out the domesticated form, which a DNA barcode does not tell "
    "apart from the wild one, so the appendix applies only if other evidence shows the "
    "specimen is of the wild form"
)


def _cites_flags(call: _Call, listed: dict[str, str], *, domestic: set[str]) -> list[Flag]:
    if not listed:
        return []

    def named(species: Sequence[str]) -> str:
        return _join([f"{sp} (Appendix {listed[sp]})" for sp in species])

    if call.level is not DecisionLevel.SPECIES:
        if len(call.candidates) <= 1:
            return [
                Flag(
                    FlagCode.CITES_CANDIDATE,
                    f"CITES-listed nearest species: {named(list(listed))}; the call names no "
                    "species, so this is not the listing of the item's species",
                )
            ]
        return [
            Flag(
                FlagCode.CITES_CANDIDATE,
                f"CITES-listed candidate among ties: {named(list(listed))}",
            )
        ]
    called = [sp for sp in listed if sp == call.taxon]
    others = [sp for sp in listed if sp != call.taxon]
    flags = []
    if called:
        caveat = _DOMESTIC_CAVEAT if called[0] in domestic else ""
        flags.append(Flag(FlagCode.CITES_CALLED, f"CITES-listed species: {named(called)}{caveat}"))
    if others:
        flags.append(
            Flag(
                FlagCode.CITES_WITHIN_GAP,
                f"CITES-listed species within the barcode gap, not excluded by it: {named(others)}",
            )
        )
    return flags


def _genus(species: str) -> str:
    return species.split(" ", 1)[0]


def _join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
