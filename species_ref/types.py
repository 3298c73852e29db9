"""Plain data types shared by every species_ref module.

These are frozen value objects: readers produce them, the library store persists
them, the matcher consumes them. Sequences are upper-case IUPAC DNA without gaps.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class LibraryVersion:
    """A frozen snapshot of a named reference library.

    `content_hash` is "sha256:<hex>" over the canonical form of `records`; an
    identification that records it can be reproduced exactly later.
    """

    name: str
    version: int
    content_hash: str
    created_at: str  # UTC ISO-8601
    records: tuple[RefRecord, ...]
    note: str = ""
    #: accepted name -> its other names, from curation (see `species_ref.curation`)
    synonyms: tuple[tuple[str, tuple[str, ...]], ...] = ()

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
