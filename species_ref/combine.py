"""One sample, several reads: forward/reverse assembly, unique query names, and one combined call.

Owns:
- `unique_names`: queries named by their file when a trace's sample name (or a
  FASTA ID) is not unique among the queries given together.
- `assemble_reads`: the forward and reverse Sanger reads of one marker joined
  into one contig when they overlap (>= `MIN_OVERLAP` bp at >= `MIN_OVERLAP_IDENTITY`
  %); bases where the two reads disagree become N, so the contig never claims
  more than both reads support.
- `combine_calls`: the calls of one sample's markers made into one finding.
  Species only when at least one marker calls the species and no marker
  contradicts it (another species or genus, or an ambiguous call without it);
  every contradiction is stated. Markers without an identification add nothing.
  Several queries of one gene (forward and reverse reads that did not assemble,
  or queries whose hits name the gene differently, "COI" and "COI-5P":
  `species_ref.markers.gene_key`) are one marker's evidence: they count once,
  and queries of it that contradict each other are a conflict within the marker.
  `flags` carry what the caller knows about the sample beyond the calls (reads
  whose names point to different samples); they never change the call.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from species_ref.markers import gene_key, gene_name, group_label
from species_ref.reading import _qc_flags
from species_ref.types import Query, QueryQC
from species_ref.vocab import DecisionLevel

#: The marker of a query without hits; two such queries are never taken for one marker's reads.
NO_MARKER = "no marker (no hits)"
MIN_OVERLAP = 40
MIN_OVERLAP_IDENTITY = 95.0
_COMP = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")


def revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def unique_names(queries: Sequence[Query]) -> list[Query]:
    """The queries, each renamed to its file name (then "#n") where its name is not unique."""
    counts = Counter(q.name for q in queries)
    if all(n == 1 for n in counts.values()):
        return list(queries)
    renamed = [
        q if counts[q.name] == 1 else dataclasses.replace(q, name=Path(q.path).name)
        for q in queries
    ]
    again = Counter(q.name for q in renamed)
    seen: Counter[str] = Counter()
    out: list[Query] = []
    for q in renamed:
        if again[q.name] > 1:
            seen[q.name] += 1
            q = dataclasses.replace(q, name=f"{q.name}#{seen[q.name]}")
        out.append(q)
    return out


@dataclass(frozen=True)
class Overlap:
    """Where read b (as oriented) overlaps read a."""

    a_start: int
    a_end: int
    b_start: int
    b_end: int
    identity: float
    reverse: bool  # b was reverse-complemented


def find_overlap(a: str, b: str) -> Overlap | None:
    """The best local alignment of `b` (or its reverse complement) with `a`, if long and close enough."""
    from Bio.Align import PairwiseAligner

    aligner = PairwiseAligner(mode="local", match_score=2, mismatch_score=-3)
    aligner.open_gap_score = -5
    aligner.extend_gap_score = -2
    best: Overlap | None = None
    for reverse, other in ((False, b), (True, revcomp(b))):
        try:
            aln = aligner.align(a, other)[0]
        except (IndexError, OverflowError, ValueError):
            continue
        (a_blocks, b_blocks) = aln.aligned
        if len(a_blocks) == 0:
            continue
        a_start, a_end = int(a_blocks[0][0]), int(a_blocks[-1][1])
        b_start, b_end = int(b_blocks[0][0]), int(b_blocks[-1][1])
        same = sum(
            1
            for (s0, e0), (t0, _e1) in zip(a_blocks, b_blocks, strict=True)
            for i in range(e0 - s0)
            if a[s0 + i] == other[t0 + i]
        )
        columns = max(a_end - a_start, b_end - b_start)
        identity = 100.0 * same / columns if columns else 0.0
        if columns >= MIN_OVERLAP and identity >= MIN_OVERLAP_IDENTITY:
            found = Overlap(a_start, a_end, b_start, b_end, identity, reverse)
            if best is None or columns > best.a_end - best.a_start:
                best = found
    return best


def assemble_reads(a: Query, b: Query, *, stem: str | None = None) -> Query | None:
    """One contig from two reads of one marker (forward and reverse), or None if they do not overlap.

    The contig is a's bases before the overlap, the overlap (N where the two
    reads disagree, a gap column taken from a), then b's bases after it. It is
    named "`stem` (F+R)"; without a stem, after what the two reads' names share.
    """
    ov = find_overlap(a.sequence, b.sequence)
    if ov is None:
        return None
    other = revcomp(b.sequence) if ov.reverse else b.sequence
    a_part, b_part = a.sequence[ov.a_start : ov.a_end], other[ov.b_start : ov.b_end]
    if len(a_part) == len(b_part):
        middle = "".join(x if x == y else "N" for x, y in zip(a_part, b_part, strict=True))
    else:
        middle = a_part  # an indel in the overlap: keep one read's bases there
    # Where the reads extend past each other, keep the longer flank of each end.
    left = a.sequence[: ov.a_start] if ov.a_start >= ov.b_start else other[: ov.b_start]
    right_a, right_b = a.sequence[ov.a_end :], other[ov.b_end :]
    right = right_a if len(right_a) >= len(right_b) else right_b
    contig = left + middle + right
    length = len(contig)
    ambiguous = (length - sum(contig.count(x) for x in "ACGT")) / length
    quals = [q.qc.mean_quality for q in (a, b) if q.qc.mean_quality is not None]
    mean_q = min(quals) if quals else None
    qc = QueryQC(
        raw_length=a.qc.raw_length + b.qc.raw_length,
        length=length,
        mean_quality=mean_q,
        ambiguous_fraction=ambiguous,
        trimmed=a.qc.trimmed or b.qc.trimmed,
        flags=_qc_flags(
            length=length, ambiguous=ambiguous, mean_q=mean_q, min_quality=20, untrimmed=False
        ),
    )
    extra = {
        "assembled_from": f"{a.name} ({Path(a.path).name}) + {b.name} ({Path(b.path).name})",
        "overlap": (
            f"{ov.a_end - ov.a_start} bp at {ov.identity:.1f} % identity"
            + (", second read reverse-complemented" if ov.reverse else "")
        ),
        "disagreements": str(middle.count("N") - a_part.count("N")),
    }
    return Query(
        name=f"{stem or _stem(a.name, b.name)} (F+R)",
        sequence=contig,
        source_format=a.source_format,
        file_sha256=a.file_sha256,
        path=a.path,
        qc=qc,
        extra=extra,
    )


def _stem(a: str, b: str) -> str:
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    stem = a[:i].rstrip("_.- ")
    return stem or a


class _Marker(Protocol):
    """What combining needs of one marker's identification."""

    @property
    def level(self) -> DecisionLevel: ...
    @property
    def taxon(self) -> str | None: ...
    @property
    def query(self) -> str: ...
    @property
    def candidates(self) -> Sequence[Any]: ...


@dataclass(frozen=True)
class MarkerCall:
    """One marker's call within a sample."""

    query: str
    marker: str
    library: str
    level: DecisionLevel
    taxon: str | None
    candidates: tuple[str, ...]

    @property
    def gene(self) -> str | None:
        """The gene of the marker ("COI" for COI-5P), None for a query without hits."""
        return None if self.marker == NO_MARKER else gene_name(self.marker)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "marker": self.marker,
            "gene": self.gene,
            "library": self.library,
            "level": str(self.level),
            "taxon": self.taxon,
            "candidates": list(self.candidates),
        }

    def words(self, subject: str | None = None) -> str:
        """The call as a clause whose subject is the marker (or `subject`)."""
        who = subject or self.marker
        if self.level is DecisionLevel.SPECIES:
            return f"{who} calls {self.taxon}"
        if self.level is DecisionLevel.GENUS:
            return f"{who} calls genus {self.taxon}"
        if self.level is DecisionLevel.AMBIGUOUS:
            return f"{who} is ambiguous between {', '.join(self.candidates)}"
        return f"{who} makes no identification"

    def same_call(self, other: MarkerCall) -> bool:
        return (self.level, self.taxon, self.candidates) == (
            other.level,
            other.taxon,
            other.candidates,
        )


@dataclass(frozen=True)
class CombinedCall:
    """The finding of one sample from all its markers."""

    sample: str
    level: DecisionLevel
    taxon: str | None
    statement: str
    markers: tuple[MarkerCall, ...]
    conflicts: tuple[str, ...]
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "level": str(self.level),
            "taxon": self.taxon,
            "statement": self.statement,
            "markers": [m.to_dict() for m in self.markers],
            "conflicts": list(self.conflicts),
            "flags": list(self.flags),
        }


def _genus(name: str) -> str:
    return name.split(" ", 1)[0]


def _consistent(call: MarkerCall, species: str) -> bool:
    """Whether a marker's call allows `species`."""
    if call.level is DecisionLevel.SPECIES:
        return call.taxon == species
    if call.level is DecisionLevel.GENUS:
        return call.taxon == _genus(species)
    if call.level is DecisionLevel.AMBIGUOUS:
        return species in call.candidates
    return True


def _by_marker(calls: Sequence[MarkerCall]) -> dict[str, list[MarkerCall]]:
    """The calls grouped by gene (`gene_key`), in the order the genes first appear."""
    groups: dict[str, list[MarkerCall]] = {}
    for i, c in enumerate(calls):
        groups.setdefault(
            gene_key(c.marker) if c.marker != NO_MARKER else f"{NO_MARKER} {i}", []
        ).append(c)
    return groups


def _one_name(reads: Sequence[MarkerCall]) -> bool:
    return len({r.marker for r in reads}) == 1


def _read_subject(r: MarkerCall, reads: Sequence[MarkerCall]) -> str:
    """One query of a gene as the subject of a clause ("COI-5P read s_F")."""
    return f"{r.marker} {'read' if _one_name(reads) else 'query'} {r.query}"


def _marker_words(reads: Sequence[MarkerCall]) -> str:
    """What one gene's queries call: once when they agree ("COI-5P (2 reads) calls ...",
    "COI (2 queries: COI, COI-5P) calls ..."), query by query when they do not."""
    first = reads[0]
    if len(reads) == 1:
        return first.words()
    if all(first.same_call(r) for r in reads):
        return first.words(group_label([r.marker for r in reads]))
    return "; ".join(r.words(_read_subject(r, reads)) for r in reads)


def _read_conflict(reads: Sequence[MarkerCall]) -> str | None:
    """How the queries of one gene contradict each other, if they do."""
    named = {r.taxon for r in reads if r.level is DecisionLevel.SPECIES and r.taxon}
    informative = [r for r in reads if r.level is not DecisionLevel.NONE]
    if not any(not _consistent(r, sp) for sp in named for r in informative):
        return None
    if _one_name(reads):
        said = [r.words(f"read {r.query}") for r in reads]
        where = reads[0].marker
    else:
        said = [r.words(f"query {r.query} ({r.marker})") for r in reads]
        where = (
            f"{gene_name(reads[0].marker)} ({', '.join(dict.fromkeys(r.marker for r in reads))})"
        )
    return f"within {where}, {', '.join(said[:-1])} but {said[-1]}"


def combine_calls(
    sample: str, calls: Sequence[MarkerCall], *, flags: Sequence[str] = ()
) -> CombinedCall:
    """One finding from one sample's marker calls (rule in the module docstring), with `flags`."""
    return dataclasses.replace(_combine(sample, calls), flags=tuple(flags))


@dataclass(frozen=True)
class Disagreement:
    """How the calls of one sample contradict each other."""

    who: str  # "reads" (of one marker), "queries of one gene" or "markers"
    conflicts: tuple[str, ...]  # each contradiction, as the finding states it
    calls: tuple[str, ...]  # what each gene's queries call; a gene split within as its split

    @property
    def subject(self) -> str:
        """Who disagrees, for a reader without the statement ("the reads of one marker")."""
        return "reads of one marker" if self.who == "reads" else self.who


def disagreement(calls: Sequence[MarkerCall]) -> Disagreement | None:
    """The contradictions among one sample's calls (rule in the module docstring), if any."""
    markers = _by_marker(calls)
    species_named = sorted({c.taxon for c in calls if c.level is DecisionLevel.SPECIES and c.taxon})
    split = {m: found for m, reads in markers.items() if (found := _read_conflict(reads))}
    conflicts = list(split.values())
    for sp in species_named:
        for marker, reads in markers.items():
            against = [
                c for c in reads if c.level is not DecisionLevel.NONE and not _consistent(c, sp)
            ]
            if against and marker not in split:  # a marker at odds with itself is stated once
                said_against = (
                    _marker_words(against)
                    if len(against) == len(reads)
                    else "; ".join(c.words(_read_subject(c, reads)) for c in against)
                )
                conflicts.append(f"{said_against}, which contradicts {sp}")
    if not conflicts:
        return None
    if len(split) < len(conflicts):
        who = "markers"
    elif all(_one_name(markers[m]) for m in split):
        who = "reads"
    else:
        who = "queries of one gene"
    said = tuple(split.get(m) or _marker_words(reads) for m, reads in markers.items())
    return Disagreement(who, tuple(conflicts), said)


def _combine(sample: str, calls: Sequence[MarkerCall]) -> CombinedCall:
    informative = [c for c in calls if c.level is not DecisionLevel.NONE]
    markers = _by_marker(calls)
    said = "; ".join(_marker_words(reads) for reads in markers.values())
    species_named = sorted(
        {c.taxon for c in informative if c.level is DecisionLevel.SPECIES and c.taxon}
    )
    conflicts: list[str] = []
    if not informative:
        return CombinedCall(
            sample,
            DecisionLevel.NONE,
            None,
            f"No marker identifies sample {sample} ({said}).",
            tuple(calls),
            (),
        )
    found = disagreement(calls)
    conflicts += found.conflicts if found else ()
    if len(species_named) == 1 and not conflicts:
        sp = species_named[0]
        n = sum(
            1 for reads in markers.values() if any(c.level is DecisionLevel.SPECIES for c in reads)
        )
        total = f"{len(markers)} marker{'s' if len(markers) != 1 else ''}"
        return CombinedCall(
            sample, DecisionLevel.SPECIES, sp,
            f"Sample {sample}: {sp}, called by {n} of {total} and contradicted by none ({said}).",
            tuple(calls), (),
        )  # fmt: skip
    # No agreed species: the candidates every informative marker allows.
    pool: set[str] = set()
    for c in informative:
        pool |= set(c.candidates) | (
            {c.taxon} if c.taxon and c.level is DecisionLevel.SPECIES else set()
        )
    allowed = sorted(sp for sp in pool if all(_consistent(c, sp) for c in informative))
    genera = {_genus(c.taxon) for c in informative if c.taxon} | {
        _genus(s) for c in informative for s in c.candidates
    }
    if found:
        statement = f"The {found.who} of sample {sample} disagree: " + "; ".join(conflicts) + "."
        level, taxon = DecisionLevel.NONE, None
        if len(genera) == 1:
            (g,) = genera
            level, taxon = DecisionLevel.GENUS, g
            statement += f" They agree on genus {g} only."
        return CombinedCall(sample, level, taxon, statement, tuple(calls), tuple(conflicts))
    if allowed:
        if len(genera) == 1:
            (g,) = genera
            level = DecisionLevel.AMBIGUOUS if len(allowed) > 1 else DecisionLevel.GENUS
            statement = (
                f"Sample {sample}: no marker is decisive; together they leave "
                f"{', '.join(allowed)} ({said})."
            )
            return CombinedCall(
                sample,
                level,
                g if level is DecisionLevel.GENUS else None,
                statement,
                tuple(calls),
                (),
            )
        return CombinedCall(
            sample, DecisionLevel.AMBIGUOUS, None,
            f"Sample {sample}: no marker is decisive; together they leave {', '.join(allowed)} ({said}).",
            tuple(calls), (),
        )  # fmt: skip
    if len(genera) == 1:
        (g,) = genera
        return CombinedCall(
            sample,
            DecisionLevel.GENUS,
            g,
            f"Sample {sample}: genus {g} ({said}).",
            tuple(calls),
            (),
        )
    statement = f"The markers of sample {sample} share no candidate ({said})."
    return CombinedCall(sample, DecisionLevel.NONE, None, statement, tuple(calls), (statement,))
