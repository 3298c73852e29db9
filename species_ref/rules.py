"""Decision rule sets: every threshold a species call depends on, by name.

Owns `Rule` (the thresholds), the registry `RULES` and `get_rule`. A result
records the rule with every value, so a call can be reproduced and explained.

Invariants: identities and distances are percent; rules are frozen; the names
in `RULES` are the ones users pass (`--rule`) and the ones validations are
stored under. How the default values were tuned: docs/decision-rules.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from species_ref.errors import SpeciesRefError


class UnknownRule(SpeciesRefError):
    """A decision rule set name is not registered."""


@dataclass(frozen=True)
class Rule:
    """Thresholds of a species decision (identities and distances in percent)."""

    name: str
    #: identity needed for a species-level call (lab practice 98-99 %).
    species_identity: float = 98.5
    #: the next species must be at least this much less identical ("barcode gap").
    species_gap: float = 1.0
    #: a hit counts if its alignment is at least this long ...
    min_overlap_bp: int = 300
    #: ... or covers at least this share of the query (coverage of the query).
    min_coverage: float = 85.0
    #: below this identity: no identification; between it and species_identity: genus.
    genus_floor: float = 95.0
    #: queries shorter than this are reported as short / mini-barcode.
    short_query_bp: int = 300
    #: use the library's own per-species statistics (False = fixed-threshold rule).
    use_library_stats: bool = True
    #: the query-to-species distance must not exceed this share of the species'
    #: distance to its nearest other species in the library.
    nn_fraction: float = 0.5
    #: ... nor the species' own maximum spread times this factor plus spread_margin.
    spread_factor: float = 1.5
    spread_margin: float = 0.5
    #: for species with a single usable reference (spread unknown): largest distance.
    singleton_max_distance: float = 1.0
    #: ... and, for them, at most this share of the distance to the nearest other species.
    singleton_nn_fraction: float = 1.0
    #: short queries: a species call also needs this many distinguishing bases
    #: between the best and the next species (0 disables).
    min_gap_bases: int = 2
    #: fewest references (left in the library) a species needs for a species call.
    min_species_refs: int = 1
    #: no species call when more than this share of the other species of the
    #: genus (with a measured nearest neighbour) lie within the species threshold
    #: of another species: the marker does not separate species in that genus,
    #: so an unsampled congener may share the query's sequence (1.0 disables).
    genus_unresolved_max: float = 1.0
    #: no species call for a query shorter than this (0 disables): on a 40 bp fragment two
    #: bases are 5 %, and sister species often share such a stretch; the genus is still given.
    min_species_bp: int = 0
    #: mismatches at sites conserved in every related reference count as probable
    #: read errors when testing the species threshold and library statistics.
    discount_conserved_errors: bool = False
    #: a species that reaches the query only through a minority of its references
    #: (at least `outlier_far_refs` others more than `outlier_far` % less identical)
    #: is treated as carrying misidentified records and left out of the ties.
    discount_outlier_records: bool = True
    outlier_far: float = 2.0
    outlier_far_refs: int = 2
    #: a species with at most `few_refs` references left in the library shows
    #: little of its variation and little of its barcode gap, so a species call
    #: also needs its nearest other species in the library at least
    #: `few_refs_min_nn` % away (a closer sister species suggests unsampled
    #: sisters may match as well) ...
    few_refs: int = 2
    few_refs_min_nn: float = 0.0
    #: ... and the query's next species at least `few_refs_min_gap` % less
    #: identical than the best one (0 disables either test).
    few_refs_min_gap: float = 0.0
    #: ... but a query at most `few_refs_exact_distance` % from a reference of the
    #: species (as measured: 0 is an identical sequence) needs the nearest other
    #: species only `few_refs_exact_min_nn` % away when that species is a
    #: congener: the library shows the marker separating species of the genus,
    #: and an unsampled sister would have to share the query's sequence exactly
    #: (0 disables).
    few_refs_exact_distance: float = 0.0
    few_refs_exact_min_nn: float = 0.0
    #: ... unless the marker separates the species of the genus in the library:
    #: at most `resolved_genus_max` of its other species (at least
    #: `resolved_genus_min_species` of them with a measured nearest neighbour)
    #: lie within the species threshold of another species (0 disables). Then
    #: an unsampled sister is unlikely to share the query's sequence, and the
    #: nearest other species need only be `resolved_min_nn` % away and the
    #: query's next species `resolved_min_gap` % and `resolved_gap_ratio` times
    #: the query's own distance less identical.
    resolved_genus_max: float = 0.0
    resolved_genus_min_species: int = 2
    resolved_min_nn: float = 0.0
    resolved_min_gap: float = 0.0
    resolved_gap_ratio: float = 0.0
    #: a species with at least `dominant_refs` references within
    #: `dominant_max_distance` % of the query, each more identical than any other
    #: species' reference by a whole base (`min_gap_bases` on short queries), is
    #: called even when another species lies within the gap, provided the
    #: library tests pass (0 disables). The matcher aligns at most five
    #: references per species, so 5 means every aligned reference.
    dominant_refs: int = 0
    dominant_max_distance: float = 0.2
    #: ... on short queries, `dominant_refs_short` references (0: `dominant_refs`), each
    #: closer than any other species' reference by `dominant_short_gap_bases` whole bases
    #: (0: `min_gap_bases`): on a 100 bp mini-barcode, two references identical to the
    #: query, each a base closer than every reference of any other species.
    dominant_refs_short: int = 0
    dominant_short_gap_bases: int = 0
    #: on short queries, a query identical to a reference of the best species needs
    #: only `identical_short_gap_bases` whole bases to every other species (0:
    #: `min_gap_bases`) when the best species' nearest other species in the library
    #: is at least `identical_short_min_nn` % away: the library then shows the species
    #: apart from its relatives, and the query carries its sequence exactly.
    identical_short_gap_bases: int = 0
    identical_short_min_nn: float = 0.0
    #: ... provided the query is at least `identical_short_min_bp` long (one base is then at
    #: most 1.25 % of it) and the nearest other species differs by `identical_short_gap_bases`
    #: bases over a stretch that long (its distance scaled to the query's length).
    identical_short_min_bp: int = 0
    #: ... and for a species known from `few_refs` references or fewer, that base also
    #: stands for the next-species gap the few-references tests ask for (their tests of the
    #: species' nearest other species still apply), unless the next species is a congener
    #: and the species' nearest measured species is not.
    identical_short_few_refs: bool = False
    #: bumped whenever the values of a registered rule, or how the decision reads
    #: them, change, so a stored result or validation says which revision of the
    #: named rule it was made under. Revision 3 (2 of strict and mini-barcode):
    #: `min_gap_bases` counts the differing columns of each species' best alignment,
    #: where it compared identities over the best one's length (one column more or
    #: less turned two bases into 1.97). Revision 4 (default, conservative): a query
    #: identical to a species known from few references is called when its nearest
    #: other species is a congener 2.5 % away (`few_refs_exact_min_nn`). Revision 5
    #: (default, conservative): on short queries, two references a base closer than any
    #: other species' carry a call (`dominant_refs_short`, `dominant_short_gap_bases`).
    #: Revision 6 (default, conservative): a short query identical to a reference of a
    #: species at least 1 % from every other species needs one base to the next species
    #: instead of two (`identical_short_gap_bases`, `identical_short_min_nn`,
    #: `identical_short_min_bp`), and for a species known from few references that base
    #: stands for the next-species gap (`identical_short_few_refs`); no species call on a
    #: query under 80 bp (`min_species_bp`).
    revision: int = 1
    description: str = ""

    def to_dict(self) -> dict[str, float | int | bool | str]:
        return asdict(self)


# Why these values: docs/decision-rules.md (measurements of each choice).
RULES: dict[str, Rule] = {
    "default": Rule(
        name="default",
        revision=6,
        dominant_refs=3,
        dominant_refs_short=2,
        dominant_short_gap_bases=1,
        identical_short_gap_bases=1,
        identical_short_min_nn=1.0,
        identical_short_min_bp=80,
        identical_short_few_refs=True,
        min_species_bp=80,
        nn_fraction=1.0,
        singleton_max_distance=0.5,
        discount_conserved_errors=True,
        few_refs_min_nn=4.0,
        few_refs_min_gap=2.0,
        few_refs_exact_min_nn=2.5,
        resolved_genus_max=0.35,
        resolved_min_nn=2.0,
        resolved_min_gap=1.5,
        resolved_gap_ratio=4.0,
        description=(
            "98.5 % identity, 1 % gap to the next species, hit counted when >= 300 nt "
            "or >= 85 % of the query is aligned; a species call must also fall inside "
            "the species' observed variation and closer to it than its distance to the "
            "nearest other species in the library; a species known from one or two "
            "references also needs its nearest other species >= 4 % away and the "
            "next species >= 2 % less identical to the query (nearest species >= 2.5 % when "
            "the query is identical to a reference and that species is a congener), or, in a "
            "genus whose other species the marker separates (at most 35 % of them within "
            "1.5 % of another species), >= 2 % and >= 1.5 % and four times the query's "
            "distance. A species "
            "with three references within 0.2 % of the query, each closer than any other "
            "species' reference by a whole base (on queries under 300 bp: two references, "
            "each a base closer), is called despite another species within the gap. On "
            "queries under 300 bp, one base to the next species suffices instead of two "
            "when the query (80 bp or more) is identical to a reference of a species at least "
            "1 % from every other species in the library; for a species known from one or two "
            "references that base also stands for the 2 % to the next species. No species call "
            "on a query under 80 bp."
        ),
    ),
    "strict": Rule(
        name="strict",
        revision=2,
        species_identity=99.0,
        species_gap=1.5,
        nn_fraction=0.25,
        spread_factor=1.2,
        spread_margin=0.3,
        singleton_max_distance=0.3,
        singleton_nn_fraction=0.1,
        min_gap_bases=3,
        genus_unresolved_max=0.5,
        few_refs_min_nn=4.0,
        few_refs_min_gap=2.0,
        description="Stricter thresholds for contested cases: 99 % identity, 1.5 % gap.",
    ),
    "mini-barcode": Rule(
        name="mini-barcode",
        revision=2,
        dominant_refs=5,
        species_identity=98.0,
        species_gap=1.0,
        min_overlap_bp=60,
        min_coverage=90.0,
        short_query_bp=300,
        min_gap_bases=2,
        nn_fraction=1.0,
        singleton_max_distance=0.5,
        discount_conserved_errors=True,
        few_refs_min_nn=4.0,
        few_refs_min_gap=2.0,
        description=(
            "For 60-250 bp mini-barcodes (12S-V5, cytb-mini): hits need 90 % query "
            "coverage, and at least two bases must separate the best species from "
            "the next (also for a species called despite a sister within the gap: "
            "five of its references within 0.2 % and two bases closer than any other)."
        ),
    ),
    "conservative": Rule(
        name="conservative",
        revision=6,
        dominant_refs=3,
        dominant_refs_short=2,
        dominant_short_gap_bases=1,
        identical_short_gap_bases=1,
        identical_short_min_nn=1.0,
        identical_short_min_bp=80,
        identical_short_few_refs=True,
        min_species_bp=80,
        resolved_genus_max=0.35,
        resolved_min_nn=2.0,
        resolved_min_gap=1.5,
        resolved_gap_ratio=4.0,
        nn_fraction=1.0,
        singleton_max_distance=0.5,
        discount_conserved_errors=True,
        min_species_refs=2,
        few_refs_min_nn=4.0,
        few_refs_min_gap=2.0,
        few_refs_exact_min_nn=2.5,
        description=(
            "The default rule, but no species call from a species known by a single "
            "reference (most false calls for absent species go to such species)."
        ),
    ),
    "fixed-98.5": Rule(
        name="fixed-98.5",
        use_library_stats=False,
        min_gap_bases=0,
        discount_outlier_records=False,
        description="The common lab rule alone (98.5 %, one species, 1 % gap), no library statistics.",
    ),
}


def get_rule(name: str | Rule) -> Rule:
    """The registered rule set called `name` (a `Rule` is returned unchanged)."""
    if isinstance(name, Rule):
        return name
    try:
        return RULES[name]
    except KeyError:
        known = ", ".join(sorted(RULES))
        raise UnknownRule(f"Rule set {name!r} is not defined; use one of: {known}.") from None
