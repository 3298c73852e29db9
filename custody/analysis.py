"""A stored species identification, read back as typed values.

An `analyse` event of kind "species-identification" holds the JSON written from
`species_ref.identify.Identification.to_dict()` (plus `analysis`, `source` and
`cites_listings` added by `custody.species`). `AnalysisResult.from_data` is the
one reader of that JSON: everything that shows a stored identification (the
dossier first) reads its attributes, never the keys.

Invariants:
- Reading never fails: a signed event may hold an older shape (written before
  the query source, CITES listings or validation were recorded) or an
  incomplete one; a missing or mistyped value reads as its default (None,
  "", an empty tuple), never as an exception.
- Nothing is recomputed: the values are the ones the analyst signed.
- Decision levels are `Level` (species_ref's `DecisionLevel`) members; its
  `words` (`species_ref.vocab.level_words`) is the one place that turns a level
  into the words a report prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.domain import EventRecord, EventType
from species_ref.vocab import DecisionLevel, level_words

#: The `analysis` value of an `analyse` event that records a species identification.
SPECIES_IDENTIFICATION = "species-identification"

#: A value of a decision rule's setting, as stored.
RuleValue = bool | int | float | str | None


#: How far an identification got: species_ref's decision levels, one type for both
#: packages (`DecisionLevel.words` is the one place a level becomes report words).
Level = DecisionLevel


def parse_level(value: object) -> Level | None:
    """The level named by `value`, or None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return Level(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class SpeciesHit:
    """The best alignment of the query to one species (percentages as stored)."""

    species: str
    best_identity: float | None = None
    aligned_length: int | None = None
    coverage: float | None = None
    gaps: int | None = None
    n_refs: int | None = None
    n_supporting: int | None = None
    accessions: tuple[str, ...] = ()
    strand: str = ""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> SpeciesHit:
        return cls(
            species=_text(data.get("species")),
            best_identity=_number(data.get("best_identity")),
            aligned_length=_count(data.get("aligned_length")),
            coverage=_number(data.get("coverage")),
            gaps=_count(data.get("gaps")),
            n_refs=_count(data.get("n_refs")),
            n_supporting=_count(data.get("n_supporting")),
            accessions=_strings(data.get("accessions")),
            strand=_text(data.get("strand")),
        )


@dataclass(frozen=True, slots=True)
class ReferenceHit:
    """One query-to-reference alignment among the best ten."""

    seq_id: str
    species: str
    marker: str
    identity: float | None = None
    query_coverage: float | None = None
    aligned_length: int | None = None
    strand: str = ""
    mismatches: int | None = None
    gaps: int | None = None
    query_start: int | None = None  # 0-based, half open, on the query as given
    query_end: int | None = None
    ref_start: int | None = None
    ref_end: int | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ReferenceHit:
        return cls(
            seq_id=_text(data.get("seq_id")),
            species=_text(data.get("species")),
            marker=_text(data.get("marker")),
            identity=_number(data.get("identity")),
            query_coverage=_number(data.get("query_coverage")),
            aligned_length=_count(data.get("aligned_length")),
            strand=_text(data.get("strand")),
            mismatches=_count(data.get("mismatches")),
            gaps=_count(data.get("gaps")),
            query_start=_count(data.get("query_start")),
            query_end=_count(data.get("query_end")),
            ref_start=_count(data.get("ref_start")),
            ref_end=_count(data.get("ref_end")),
        )


@dataclass(frozen=True, slots=True)
class QueryQC:
    """Quality figures of the query read (lengths in bases, quality as Phred)."""

    raw_length: int | None = None
    length: int | None = None
    mean_quality: float | None = None
    ambiguous_fraction: float | None = None
    trimmed: bool = False
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> QueryQC:
        return cls(
            raw_length=_count(data.get("raw_length")),
            length=_count(data.get("length")),
            mean_quality=_number(data.get("mean_quality")),
            ambiguous_fraction=_number(data.get("ambiguous_fraction")),
            trimmed=bool(data.get("trimmed")),
            warnings=_sentences(data.get("warnings")),
        )


@dataclass(frozen=True, slots=True)
class QuerySource:
    """The file the query was read from."""

    file: str = ""
    file_sha256: str = ""
    format: str = ""
    details: Mapping[str, str] = field(default_factory=dict)  # base calling of a trace

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> QuerySource:
        details = _mapping(data.get("details"))
        return cls(
            file=_text(data.get("file")),
            file_sha256=_text(data.get("file_sha256")),
            format=_text(data.get("format")),
            details={str(k): _text(v) for k, v in details.items()},
        )


@dataclass(frozen=True, slots=True)
class DecisionRule:
    """The decision rule as recorded: its name and every setting, in stored order."""

    name: str = ""
    description: str = ""
    settings: tuple[tuple[str, RuleValue], ...] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> DecisionRule:
        return cls(
            name=_text(data.get("name")),
            description=_text(data.get("description")),
            settings=tuple(
                (str(k), _rule_value(v))
                for k, v in data.items()
                if k not in ("name", "description")
            ),
        )

    def value(self, name: str) -> RuleValue:
        """The recorded value of setting `name`; None when it was not recorded."""
        return next((v for k, v in self.settings if k == name), None)

    def number(self, name: str) -> float | None:
        """The recorded value of a numeric setting; None when absent or not a number."""
        value = self.value(name)
        return _number(value)


@dataclass(frozen=True, slots=True)
class SpeciesStats:
    """What the library shows about the best-matching species (distances in %)."""

    species: str | None = None
    n_refs: int | None = None
    intra_max: float | None = None
    intra_mean: float | None = None
    nn_distance: float | None = None
    nn_species: str | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> SpeciesStats:
        return cls(
            species=_optional_text(data.get("species")),
            n_refs=_count(data.get("n_refs")),
            intra_max=_number(data.get("intra_max")),
            intra_mean=_number(data.get("intra_mean")),
            nn_distance=_number(data.get("nn_distance")),
            nn_species=_optional_text(data.get("nn_species")),
        )


@dataclass(frozen=True, slots=True)
class CitesListing:
    """The CITES status of the called species or a candidate, from a dated snapshot."""

    species: str
    appendix: str
    statement: str
    listed_under: str = ""
    snapshot: str = ""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CitesListing:
        return cls(
            species=_text(data.get("species")),
            appendix=_text(data.get("appendix")),
            statement=_text(data.get("statement")),
            listed_under=_text(data.get("listed_under")),
            snapshot=_text(data.get("snapshot")),
        )


@dataclass(frozen=True, slots=True)
class LibraryValidation:
    """The library version's measured error rates (rates as fractions of 1)."""

    method: str = ""
    correct_species_rate: float | None = None
    wrong_species_rate: float | None = None
    false_species_rate_absent: float | None = None
    n_present: int | None = None  # test queries of species in the library
    n_absent: int | None = None  # test queries of species held out
    sampled: bool = False
    max_queries: int | None = None
    seed: int | None = None
    rule_name: str = ""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> LibraryValidation:
        summary = _mapping(data.get("summary"))
        return cls(
            method=_text(data.get("method")),
            correct_species_rate=_number(summary.get("correct_species_rate")),
            wrong_species_rate=_number(summary.get("wrong_species_rate")),
            false_species_rate_absent=_number(summary.get("false_species_rate_absent")),
            n_present=_count(summary.get("n_present")),
            n_absent=_count(summary.get("n_absent")),
            sampled=bool(data.get("sampled")),
            max_queries=_count(data.get("max_queries")),
            seed=_count(data.get("seed")),
            rule_name=_text(_mapping(data.get("rule")).get("name")),
        )


@dataclass(frozen=True, slots=True)
class CallErrorRate:
    """How often validation calls made under the same conditions were wrong (rates as fractions)."""

    statement: str
    count: int | None = None
    wrong: int | None = None
    rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    validated: bool = False

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CallErrorRate:
        return cls(
            statement=_text(data.get("statement")),
            count=_count(data.get("count")),
            wrong=_count(data.get("wrong")),
            rate=_number(data.get("rate")),
            ci_low=_number(data.get("ci_low")),
            ci_high=_number(data.get("ci_high")),
            validated=bool(data.get("validated")),
        )


@dataclass(frozen=True, slots=True)
class MarkerFinding:
    """One marker's call within a combined sample finding."""

    query: str
    marker: str
    library: str
    level_text: str
    taxon: str | None = None
    candidates: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> MarkerFinding:
        return cls(
            query=_text(data.get("query")),
            marker=_text(data.get("marker")),
            library=_text(data.get("library")),
            level_text=_text(data.get("level")),
            taxon=_optional_text(data.get("taxon")),
            candidates=_strings(data.get("candidates")),
        )

    @property
    def level_words(self) -> str:
        return level_words(self.level_text)


@dataclass(frozen=True, slots=True)
class CombinedFinding:
    """The one finding made from all markers of a sample (recorded with each marker's result)."""

    sample: str
    level: Level | None
    level_text: str
    taxon: str | None
    statement: str
    markers: tuple[MarkerFinding, ...] = ()
    conflicts: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()  # recorded since reads named after other samples are flagged

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CombinedFinding:
        return cls(
            sample=_text(data.get("sample")),
            level=parse_level(data.get("level")),
            level_text=_text(data.get("level")),
            taxon=_optional_text(data.get("taxon")),
            statement=_text(data.get("statement")),
            markers=tuple(MarkerFinding.from_data(m) for m in _records(data.get("markers"))),
            conflicts=_sentences(data.get("conflicts")),
            flags=_sentences(data.get("flags")),
        )

    @property
    def level_words(self) -> str:
        return level_words(self.level_text)


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """One stored species identification (see the module docstring for tolerance)."""

    query: str = ""
    query_sha256: str = ""
    query_length: int | None = None
    query_sequence: str = ""  # recorded since the dossier's appendix prints it
    level: Level | None = None  # None when the stored level is no known level
    level_text: str = ""  # the level as stored
    taxon: str | None = None
    rank: str | None = None
    statement: str = ""
    identity: float | None = None  # % identity of the best hit
    coverage: float | None = None  # % of the query covered
    next_species_distance: float | None = None  # identity gap to the next species, %
    flags: tuple[str, ...] = ()
    flag_codes: tuple[str, ...] = ()  # the code of each flag, in order (later results only)
    candidates: tuple[SpeciesHit, ...] = ()
    hits: tuple[SpeciesHit, ...] = ()
    top_hits: tuple[ReferenceHit, ...] = ()
    library_name: str = ""
    library_version_number: int | None = None
    library_version: str = ""  # the library's content hash
    rule: DecisionRule = DecisionRule()
    qc: QueryQC | None = None
    source: QuerySource | None = None
    cites: Mapping[str, str] = field(default_factory=dict)  # species -> CITES appendix
    cites_listings: tuple[CitesListing, ...] = ()
    validation: LibraryValidation | None = None
    species_stats: SpeciesStats | None = None
    error_rate: CallErrorRate | None = None  # None: recorded before call error rates were kept
    combined: CombinedFinding | None = None  # the sample's finding over all its markers
    #: other names the library's curation files under the called species (accepted name)
    synonyms: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> AnalysisResult:
        """Read an `analyse` event's data; never raises (missing keys give defaults)."""
        qc, source, stats, validation, rate, combined = (
            _mapping(data.get(k))
            for k in ("qc", "source", "species_stats", "validation", "error_rate", "combined")
        )
        return cls(
            query=_text(data.get("query")),
            query_sha256=_text(data.get("query_sha256")),
            query_length=_count(data.get("query_length")),
            query_sequence=_text(data.get("query_sequence")),
            level=parse_level(data.get("level")),
            level_text=_text(data.get("level")),
            taxon=_optional_text(data.get("taxon")),
            rank=_optional_text(data.get("rank")),
            statement=_text(data.get("statement")),
            identity=_number(data.get("identity")),
            coverage=_number(data.get("coverage")),
            next_species_distance=_number(data.get("next_species_distance")),
            flags=_sentences(data.get("flags")),
            flag_codes=_strings(data.get("flag_codes")),
            candidates=tuple(SpeciesHit.from_data(h) for h in _records(data.get("candidates"))),
            hits=tuple(SpeciesHit.from_data(h) for h in _records(data.get("hits"))),
            top_hits=tuple(ReferenceHit.from_data(h) for h in _records(data.get("top_hits"))),
            library_name=_text(data.get("library_name")),
            library_version_number=_count(data.get("library_version_number")),
            library_version=_text(data.get("library_version")),
            rule=DecisionRule.from_data(_mapping(data.get("rule"))),
            qc=QueryQC.from_data(qc) if qc else None,
            source=QuerySource.from_data(source) if source else None,
            cites={str(k): _text(v) for k, v in _mapping(data.get("cites")).items()},
            cites_listings=tuple(
                CitesListing.from_data(x) for x in _records(data.get("cites_listings"))
            ),
            validation=LibraryValidation.from_data(validation) if validation else None,
            species_stats=SpeciesStats.from_data(stats) if stats else None,
            error_rate=CallErrorRate.from_data(rate) if rate else None,
            combined=CombinedFinding.from_data(combined) if combined else None,
            synonyms=_strings(data.get("synonyms")),
        )

    @property
    def level_words(self) -> str:
        """The level in a report's words ("Species", "Genus only" ...), or as stored."""
        return level_words(self.level_text)

    @property
    def query_bases(self) -> int | None:
        """The query's length after trimming."""
        if self.qc is not None and self.qc.length is not None:
            return self.qc.length
        return self.query_length

    @property
    def markers(self) -> list[str]:
        """The markers of the best reference alignments, sorted."""
        return sorted({h.marker for h in self.top_hits if h.marker})

    @property
    def has_candidates(self) -> bool:
        """True when the call names a taxon or candidate species (a "no identification"
        below the genus floor names none: its closest species are not candidates)."""
        return bool(self.taxon or self.candidates)

    @property
    def relevant_species(self) -> list[str]:
        """The called species and the species tied with the call, in recorded order.

        The recorded CITES look-up covers the species within the barcode gap of the
        best match; they are tied candidates unless the call is a "no
        identification" without candidates (the best match was below the genus floor).
        """
        if not self.has_candidates:
            return []
        names: list[str] = []
        tied = [c.species for c in self.candidates]
        if self.level is not None:
            tied += list(self.cites)
        for name in [self.taxon or "", *tied]:
            if " " in name and name not in names:
                names.append(name)
        return names

    @property
    def relevant_cites(self) -> dict[str, str]:
        """CITES appendix of each relevant species (`relevant_species`) that is listed."""
        relevant = set(self.relevant_species)
        return {k: v for k, v in self.cites.items() if k in relevant}

    @property
    def relevant_listings(self) -> tuple[CitesListing, ...]:
        """The dated CITES listings of the relevant species; from the undated
        look-up when the result was recorded before listings carried a date."""
        relevant = self.relevant_species
        if self.cites_listings:
            return tuple(x for x in self.cites_listings if x.species in relevant)
        return tuple(
            CitesListing(species=k, appendix=v, statement="")
            for k, v in self.relevant_cites.items()
        )

    def appendix_of(self, species: str) -> str:
        """The CITES appendix recorded for `species` when it is a relevant species
        (called or tied); "" otherwise."""
        return self.relevant_cites.get(species, "")

    @property
    def called_appendix(self) -> str:
        """The CITES appendix of the called taxon; for a call above species, every
        listed tied candidate as "species: appendix"; "" when none is listed."""
        listed = self.relevant_cites
        appendix = listed.get(self.taxon or "", "")
        if not appendix and listed:
            appendix = "; ".join(f"{k}: {v}" for k, v in listed.items())
        return appendix

    def flags_coded(self, *codes: str) -> list[str]:
        """The flags recorded with one of `codes` (`species_ref.vocab.FlagCode` values);
        none for a result recorded before flags carried codes."""
        if len(self.flag_codes) != len(self.flags):
            return []
        return [f for f, c in zip(self.flags, self.flag_codes, strict=True) if c in codes]

    @property
    def best_hit(self) -> SpeciesHit | None:
        return self.hits[0] if self.hits else None

    @property
    def next_hit(self) -> SpeciesHit | None:
        """The best hit of the second-best species."""
        return self.hits[1] if len(self.hits) > 1 else None

    def hit_of(self, species: str) -> SpeciesHit | None:
        return next((h for h in self.hits if h.species == species), None)


@dataclass(frozen=True, slots=True)
class Analysis:
    """A species identification as recorded: the signed event and its result."""

    event: EventRecord
    result: AnalysisResult


def is_species_identification(event: EventRecord) -> bool:
    return event.type == EventType.ANALYSE and event.data.get("analysis") == SPECIES_IDENTIFICATION


def species_identifications(events: Iterable[EventRecord]) -> list[Analysis]:
    """The species identifications among `events`, in the order given."""
    return [
        Analysis(event=e, result=AnalysisResult.from_data(e.data))
        for e in events
        if is_species_identification(e)
    ]


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _rule_value(value: object) -> RuleValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _records(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(_text(v) for v in value if v is not None)


def _sentences(value: object) -> tuple[str, ...]:
    """Plain sentences from a list of them; a (code, text) pair or an object with a
    "text" gives its text, so warnings carried with codes read the same."""
    if not isinstance(value, list | tuple):
        return ()
    out = []
    for entry in value:
        if isinstance(entry, Mapping):
            out.append(_text(entry.get("text") or entry.get("message")))
        elif isinstance(entry, list | tuple) and len(entry) == 2:
            out.append(_text(entry[1]))
        elif entry is not None:
            out.append(_text(entry))
    return tuple(out)
