"""Plain data types shared by every species_ref module.

These are frozen value objects: readers produce them, the library store persists
them, the matcher consumes them. Sequences are upper-case IUPAC DNA without gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from species_ref.vocab import QcFlag


@dataclass(frozen=True, slots=True)
class RefRecord:
    """One reference sequence with its species label and provenance."""

    seq_id: str  # accession, BOLD process ID or the source's own ID
    species: str  # binomial, "Genus species"
    marker: str  # region name as given (COI-5P, cytb, 12S-V5, rbcL ...)
    sequence: str  # upper-case IUPAC DNA, no gaps
    source: str = ""  # where it came from (file name, database, original label)

    @property
    def genus(self) -> str:
        return self.species.split(" ", 1)[0]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record a reader refused, and why (reported to the user, never silent)."""

    seq_id: str
    reason: str
    source: str = ""


@dataclass(frozen=True)
class ImportResult:
    """What a reference file yielded: usable records and refused ones."""

    records: tuple[RefRecord, ...]
    rejected: tuple[Rejection, ...] = ()


@dataclass(frozen=True, init=False)
class LibraryVersion:
    """A frozen snapshot of a named reference library.

    `content_hash` is "sha256:<hex>" over the canonical form of `records`; an
    identification that records it can be reproduced exactly later.

    `records` may be read lazily: a version opened for searching (its k-mer
    index cached) never needs its records, so `load_records`, when given, is
    called the first time `records` is read (and may raise `SpeciesRefError`
    when the records on disk do not match the content hash).
    """

    name: str
    version: int
    content_hash: str
    created_at: str  # UTC ISO-8601
    note: str
    #: accepted name -> its other names, from curation (see `species_ref.curation`)
    synonyms: tuple[tuple[str, tuple[str, ...]], ...]
    _records: tuple[RefRecord, ...] | None = field(repr=False, compare=False)
    _load_records: Callable[[], tuple[RefRecord, ...]] | None = field(repr=False, compare=False)

    def __init__(
        self,
        name: str,
        version: int,
        content_hash: str,
        created_at: str,
        records: tuple[RefRecord, ...] = (),
        note: str = "",
        synonyms: tuple[tuple[str, tuple[str, ...]], ...] = (),
        *,
        load_records: Callable[[], tuple[RefRecord, ...]] | None = None,
    ) -> None:
        put = object.__setattr__
        put(self, "name", name)
        put(self, "version", version)
        put(self, "content_hash", content_hash)
        put(self, "created_at", created_at)
        put(self, "note", note)
        put(self, "synonyms", synonyms)
        put(self, "_records", None if load_records is not None else tuple(records))
        put(self, "_load_records", load_records)

    @property
    def records(self) -> tuple[RefRecord, ...]:
        """The records, in canonical order (read from disk on first use when opened lazily)."""
        if self._records is None:
            assert self._load_records is not None
            object.__setattr__(self, "_records", self._load_records())
        assert self._records is not None
        return self._records

    @property
    def species(self) -> frozenset[str]:
        return frozenset(r.species for r in self.records)

    def synonyms_of(self, name: str) -> tuple[str, ...]:
        """The other names curation filed under the accepted `name` (empty if none)."""
        for accepted, others in self.synonyms:
            if accepted == name:
                return others
        return ()


@dataclass(frozen=True)
class QueryQC:
    """Quality figures of a query read, reported with every identification."""

    raw_length: int
    length: int  # after trimming
    mean_quality: float | None  # phred, None for FASTA
    ambiguous_fraction: float
    trimmed: bool
    flags: tuple[QcFlag, ...] = ()  # warnings, each a code and a sentence

    @property
    def warnings(self) -> tuple[str, ...]:
        """The warnings as sentences, in the order QC found them."""
        return tuple(f.text for f in self.flags)

    def to_dict(self) -> dict[str, int | float | bool | None | list[str]]:
        """JSON form stored with identifications (`warnings` are the sentences)."""
        return {
            "raw_length": self.raw_length,
            "length": self.length,
            "mean_quality": self.mean_quality,
            "ambiguous_fraction": self.ambiguous_fraction,
            "trimmed": self.trimmed,
            "warnings": list(self.warnings),
            "warning_codes": [str(f.code) for f in self.flags],
        }


@dataclass(frozen=True)
class Query:
    """A query sequence ready for matching, with where it came from."""

    name: str
    sequence: str  # trimmed, upper-case IUPAC DNA
    source_format: str  # "fasta" | "fastq" | "abi"
    file_sha256: str  # "sha256:<hex>" of the file it was read from
    path: str
    qc: QueryQC
    extra: dict[str, str] = field(default_factory=dict)
