"""Name conflicts in a reference library: references of two species that (almost) agree.

Owns `find_conflicts`: from a library version's k-mer index and species
statistics, every pair of species names with a reference of each within a
given distance (0.5 % by default), the accessions concerned and a plain-words
reading of what the conflict probably is. A lab reviews these before taking a
library to court: a query matching either name ends as "ambiguous" at best,
and when one of the two names is absent from the library the other is called
with nothing in the data to warn against it (most false species calls measured
on the public reference data are such pairs).

What a conflict is taken to be:
- "synonym": the same epithet under two genus names (Puma / Herpailurus
  yagouaroundi), most likely one species under an old and a new name.
- "misidentified record": one reference sits with the other species and far
  from its own species' other references (a "Bos taurus" COI inside Bubalus
  bubalis), most likely a mislabelled or misidentified record.
- "two genera": species of two genera agree and neither reading above fits;
  a mislabelled record or an unflagged synonym is more likely than biology.
- "not separated": the marker does not tell the two congeners apart in this
  library (sister species, hybridisation or a synonym nobody flagged).

Invariants: distances are percent over the aligned overlap, as everywhere in
the package; the pairs come from the nearest-neighbour rows of the species
statistics (the first reference of each species, its farthest when more than
2 % away, and the first of each other marker, three at most, against the
closest references of the nearest other species) plus exact sequence identity over
all references, so an identical pair is never missed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from species_ref.index import KmerIndex
from species_ref.matching import Matcher
from species_ref.profile import (
    FAR_PROBE_MIN,
    NEIGHBOURS,
    LibraryProfile,
    neighbour_candidates,
    star_sample,
    usable,
)
from species_ref.vocab import ConflictKind, DecisionLevel

SYNONYM = ConflictKind.SYNONYM
MISIDENTIFIED = ConflictKind.MISIDENTIFIED
NOT_SEPARATED = ConflictKind.NOT_SEPARATED
TWO_GENERA = ConflictKind.TWO_GENERA

#: a reference is read as misidentified when its own species' other references
#: lie at least this far away (median, percent) while the other species is within
#: the conflict distance.
OWN_SPECIES_FAR = 2.0


@dataclass(frozen=True)
class NameConflict:
    """Two species names with references within `distance` % of each other."""

    species_a: str
    species_b: str
    distance: float  # smallest distance between a reference of each, percent
    accessions: tuple[tuple[str, str], ...]  # (reference of a, reference of b) pairs found
    kind: ConflictKind
    explanation: str
    suspect: str = ""  # the accession read as misidentified, if any
    cites: tuple[str, ...] = ()  # CITES statements of listed species among the two

    def to_dict(self) -> dict[str, str | float | list[str] | list[list[str]]]:
        return {
            "species_a": self.species_a,
            "species_b": self.species_b,
            "distance": round(self.distance, 3),
            "accessions": [list(p) for p in self.accessions],
            "kind": str(self.kind),
            "explanation": self.explanation,
            "suspect": self.suspect,
            "cites": list(self.cites),
        }


def find_conflicts(
    index: KmerIndex,
    profile: LibraryProfile,
    *,
    within: float = 0.5,
    matcher: Matcher | None = None,
    cites: Callable[[str], Any] | None = None,
) -> list[NameConflict]:
    """Every pair of species with references within `within` %, closest first.

    `cites` (a name -> listing or None look-up, such as `lookup_cites`) adds the
    CITES statement of each listed species of a pair.
    """
    m = matcher or Matcher(index, max_gapped=2)
    found: dict[tuple[int, int], dict[tuple[int, int], float]] = {}

    def add(ra: int, rb: int, dist: float) -> None:
        sa, sb = int(index.species_ids[ra]), int(index.species_ids[rb])
        if sa == sb:
            return
        if sa > sb:
            sa, sb, ra, rb = sb, sa, rb, ra
        refs = found.setdefault((sa, sb), {})
        refs[(ra, rb)] = min(dist, refs.get((ra, rb), dist))

    close = np.flatnonzero(profile.nb_dist <= within)
    for i in close.tolist():
        add(int(profile.nb_probe[i]), int(profile.nb_ref[i]), float(profile.nb_dist[i]))
    for ra, rb, dist in _farthest_not_probed(m, index, profile, within=within):
        add(ra, rb, dist)
    for ra, rb in _identical_pairs(index):
        add(ra, rb, 0.0)

    out: list[NameConflict] = []
    for (sa, sb), refs in found.items():
        best = min(refs.values())
        nearest = sorted(refs.items(), key=lambda kv: (kv[1], kv[0]))
        name_a, name_b = index.species_names[sa], index.species_names[sb]
        accessions = tuple((index.seq_ids[a], index.seq_ids[b]) for (a, b), _d in nearest[:5])
        kind, explanation, suspect = _reading(
            m, index, name_a=name_a, name_b=name_b, pair=nearest[0][0], distance=best
        )
        listed: list[str] = []
        if cites is not None:
            for name in (name_a, name_b):
                listing = cites(name)
                if listing is not None and getattr(listing, "listed", False):
                    listed.append(listing.summary())
        out.append(
            NameConflict(
                name_a, name_b, best, accessions, kind, explanation, suspect, tuple(listed)
            )
        )
    out.sort(key=lambda c: (c.distance, c.species_a, c.species_b))
    return out


def _farthest_not_probed(
    m: Matcher, index: KmerIndex, profile: LibraryProfile, *, within: float
) -> list[tuple[int, int, float]]:
    """(reference, reference of another species, distance) within `within` % that the
    statistics do not hold: from the farthest reference of a species that was no
    probe of its own (it lies within 2 % of the species' first reference).

    It is aligned, both ways round, against the references (`star_sample`:
    31 at most, evenly spread) of each neighbour species its first
    reference found within `within` plus the distance between the two plus
    `FAR_PROBE_MIN` of slack: a species farther than that from the first
    reference cannot lie within `within` of the farthest, were distances over
    partial overlaps a true metric. When every neighbour the first reference
    kept lies that close (a dense genus: species beyond them may lie in range
    too), the farthest reference's own candidates are searched and aligned too.
    """
    n_refs = index.n_refs
    if profile.pair_a.shape[0] == 0 or profile.nb_probe.shape[0] == 0:
        return []
    first = np.full(len(index.species_names), n_refs, dtype=np.int64)
    np.minimum.at(first, index.species_ids.astype(np.int64), np.arange(n_refs, dtype=np.int64))
    probe_sp = index.species_ids[profile.nb_probe]
    # A farthest reference that was no probe lies within `FAR_PROBE_MIN` of the first
    # (and the reach below keeps as much again of slack).
    reachable = profile.nb_dist <= within + 2 * FAR_PROBE_MIN
    from_first = (profile.nb_probe == first[probe_sp]) & reachable
    firsts = np.unique(profile.nb_probe[from_first])
    if firsts.shape[0] == 0:
        return []
    # The first star: rows whose first reference is the species' first reference.
    order = np.argsort(profile.pair_a, kind="stable")
    sorted_a = profile.pair_a[order]
    nb_order = np.argsort(profile.nb_probe, kind="stable")
    sorted_probe = profile.nb_probe[nb_order]
    probed = set(profile.nb_probe.tolist())
    out: list[tuple[int, int, float]] = []
    dense: list[int] = []
    for c in firsts.tolist():
        lo, hi = np.searchsorted(sorted_a, [c, c + 1])
        rows = order[lo:hi]
        if rows.shape[0] == 0:
            continue
        j = rows[int(profile.pair_dist[rows].argmax())]
        # Distances over the partial overlaps of short records bend the triangle
        # inequality by a percent or two: the reach keeps that much slack.
        f = int(profile.pair_b[j])
        reach = within + float(profile.pair_dist[j]) + FAR_PROBE_MIN
        if f in probed:
            continue
        lo, hi = np.searchsorted(sorted_probe, [c, c + 1])
        mine = nb_order[lo:hi]
        near = mine[profile.nb_dist[mine] <= reach]
        for sp in dict.fromkeys(index.species_ids[profile.nb_ref[near]].tolist()):
            refs = star_sample(_species_refs(index, int(sp)))
            both = np.concatenate((refs, refs))
            strands = np.repeat(np.array([1, -1]), refs.shape[0])
            out += _within(m, f, both, strands, within=within)
        if mine.shape[0] >= NEIGHBOURS and near.shape[0] == mine.shape[0]:
            dense.append(f)
    if dense:
        found = neighbour_candidates(index, np.array(dense, dtype=np.int64))
        for k, f in enumerate(dense):
            sel = found.probe == k
            out += _within(m, f, found.refs[sel], found.strands[sel], within=within)
    return out


def _within(
    m: Matcher, query: int, refs: np.ndarray, strands: np.ndarray, *, within: float
) -> list[tuple[int, int, float]]:
    """(query, reference, distance) for the references aligned to reference `query`
    over at least 80 % of the shorter one, at most `within` % away (the nearer strand)."""
    if refs.shape[0] == 0:
        return []
    lens = m.index.lengths
    best: dict[int, float] = {}
    raws = m.align_many(m.index.ref_mask(query), refs=refs, strands=strands)
    for ref, r in zip(refs.tolist(), raws, strict=True):
        if r is None or not usable(np.array(r.columns), lens[query], lens[ref]):
            continue
        best[ref] = min(100.0 - r.identity, best.get(ref, 100.0))
    return [(query, ref, d) for ref, d in best.items() if d <= within]


def _identical_pairs(index: KmerIndex) -> list[tuple[int, int]]:
    """One (reference, reference) pair per two species sharing an identical sequence.

    References are grouped by a hash of their sequence (a few bytes per
    reference, whatever the library's size); a group is confirmed byte for
    byte before it counts.
    """
    masks, offsets = index.seq_masks, index.seq_offsets.tolist()
    species = index.species_ids.tolist()
    by_digest: dict[int, dict[int, int]] = {}
    for ref in range(index.n_refs):
        key = hash(masks[offsets[ref] : offsets[ref + 1]].tobytes())
        by_digest.setdefault(key, {}).setdefault(species[ref], ref)
    pairs: list[tuple[int, int]] = []
    for by_species in by_digest.values():
        if len(by_species) < 2:
            continue
        refs = sorted(by_species.values())
        same = [r for r in refs if np.array_equal(index.ref_mask(r), index.ref_mask(refs[0]))]
        pairs += [(a, b) for i, a in enumerate(same) for b in same[i + 1 :]]
    return pairs


def _reading(
    m: Matcher,
    index: KmerIndex,
    *,
    name_a: str,
    name_b: str,
    pair: tuple[int, int],
    distance: float,
) -> tuple[ConflictKind, str, str]:
    genus_a, _, epithet_a = name_a.partition(" ")
    genus_b, _, epithet_b = name_b.partition(" ")
    at = "identical" if distance == 0 else f"within {distance:.2f} %"
    near = "identical to" if distance == 0 else f"within {distance:.2f} % of"
    if epithet_a and epithet_a == epithet_b and genus_a != genus_b:
        return (
            SYNONYM,
            f"{name_a} and {name_b} have {at} references and share the epithet: probably "
            "one species under two genus names; keep the accepted name only.",
            "",
        )
    for ref, own, other in ((pair[0], name_a, name_b), (pair[1], name_b, name_a)):
        own_distance = _distance_to_own_species(m, index, ref)
        if own_distance is not None and own_distance >= OWN_SPECIES_FAR:
            acc = index.seq_ids[ref]
            return (
                MISIDENTIFIED,
                f"Reference {acc}, labelled {own}, is {near} {other} but {own_distance:.1f} % "
                f"from the other references of {own}: probably misidentified or mislabelled; "
                "check it against its source and remove or relabel it.",
                acc,
            )
    if genus_a != genus_b:
        return (
            TWO_GENERA,
            f"{name_a} and {name_b} have {at} references although they are placed in two "
            "genera: check both records against their sources (a mislabelled record or an "
            "unflagged synonym is likely).",
            "",
        )
    return (
        NOT_SEPARATED,
        f"{name_a} and {name_b} have {at} references: the marker does not separate them "
        "in this library (sister species, hybrids or an unflagged synonym); a query matching "
        "either is reported as ambiguous, and one of them absent would be called as the other.",
        "",
    )


_MEMBERS: weakref.WeakKeyDictionary[KmerIndex, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def _species_refs(index: KmerIndex, species_id: int) -> np.ndarray:
    """`index.refs_of_species(species_id)` without a pass over every reference per call."""
    grouped = _MEMBERS.get(index)
    if grouped is None:
        order = np.argsort(index.species_ids, kind="stable")
        bounds = np.searchsorted(index.species_ids[order], np.arange(len(index.species_names) + 1))
        grouped = _MEMBERS[index] = (order, bounds)
    order, bounds = grouped
    return order[bounds[species_id] : bounds[species_id + 1]]


def _distance_to_own_species(m: Matcher, index: KmerIndex, ref: int, most: int = 5) -> float | None:
    """Median distance (%) of a reference to up to `most` other references of its species."""
    others = _species_refs(index, int(index.species_ids[ref]))
    others = others[others != ref][:most]
    if others.shape[0] < 2:
        return None
    dists = []
    for other in others.tolist():
        measured = m.pair_identity(ref, other)
        if measured is not None:
            dists.append(100.0 - measured[0])
    if len(dists) < 2:
        return None
    return float(np.median(dists))


@dataclass(frozen=True)
class ProblemRecord:
    """A reference that, identified against the rest of the library, classifies elsewhere.

    As IDTAXA's "problem sequences": the record's label disagrees with where
    the library's other references put it.
    """

    seq_id: str
    marker: str
    label: str  # the species the record is filed under
    classified_as: str  # the species or genus the rest of the library calls it
    level: DecisionLevel  # species or genus
    other_genus: bool  # classified to another genus than its label's
    identity: float | None
    next_species_distance: float | None
    own_refs: int  # other references of its label species in the library
    as_refs: int  # references of the species it classifies as (0 for a genus call)
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq_id": self.seq_id,
            "marker": self.marker,
            "label": self.label,
            "classified_as": self.classified_as,
            "level": str(self.level),
            "other_genus": self.other_genus,
            "identity": None if self.identity is None else round(self.identity, 3),
            "next_species_distance": self.next_species_distance,
            "own_refs": self.own_refs,
            "as_refs": self.as_refs,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class _Reid:
    engine: Any  # species_ref.identify.Engine (imported lazily: identify imports this package)
    rule: Any


def _reidentify_one(run: _Reid, ref: int) -> ProblemRecord | None:
    eng = run.engine
    index: KmerIndex = eng.index
    exclude = np.zeros(index.n_refs, dtype=bool)
    exclude[ref] = True
    seq = eng.version.records[ref].sequence
    dec, _hits = eng.decide_sequence(seq, rule=run.rule, exclude=exclude)
    if dec.level not in (DecisionLevel.SPECIES, DecisionLevel.GENUS) or not dec.taxon:
        return None
    sid = int(index.species_ids[ref])
    label = index.species_names[sid]
    label_genus = label.split(" ", 1)[0]
    called_genus = dec.taxon.split(" ", 1)[0]
    if dec.level is DecisionLevel.SPECIES and dec.taxon == label:
        return None
    if dec.level is DecisionLevel.GENUS and called_genus == label_genus:
        return None
    own = int(np.count_nonzero(index.species_ids == sid)) - 1
    as_id = index.species_id(dec.taxon) if dec.level is DecisionLevel.SPECIES else None
    as_refs = 0 if as_id is None else int(np.count_nonzero(index.species_ids == as_id))
    where = "another genus" if called_genus != label_genus else "another species"
    at = "" if dec.identity is None else f" at {dec.identity:.1f} %"
    return ProblemRecord(
        seq_id=index.seq_ids[ref],
        marker=index.markers[ref],
        label=label,
        classified_as=dec.taxon,
        level=dec.level,
        other_genus=called_genus != label_genus,
        identity=dec.identity,
        next_species_distance=dec.next_species_distance,
        own_refs=own,
        as_refs=as_refs,
        explanation=(
            f"Reference {index.seq_ids[ref]}, labelled {label}, is identified as {dec.taxon} "
            f"({dec.level}){at} against the rest of the library ({where}; {own} other "
            f"references of {label}, {as_refs} of {dec.taxon}): check it against its source."
        ),
    )


def reidentify_records(
    engine: Any,
    *,
    rule: Any = "default",
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> list[ProblemRecord]:
    """Leave-one-out re-identification of every reference; those that classify elsewhere.

    Each reference is held out and identified against the rest of the library
    under `rule` (an `Engine` shares its index and statistics; nothing is
    rebuilt). A record is a problem when the call is decisive and disagrees
    with its label: a species call of another species, or a species or genus
    call in another genus. Sorted by label, then ID.
    """
    from species_ref.parallel import fork_map
    from species_ref.rules import get_rule

    run = _Reid(engine=engine, rule=get_rule(rule))
    found = fork_map(
        _reidentify_one,
        list(range(engine.index.n_refs)),
        shared=run,
        workers=workers,
        progress=progress,
    )
    problems = [p for p in found if p is not None]
    problems.sort(key=lambda p: (p.label, p.seq_id, p.marker))
    return problems
