"""The words of species identification: decision levels, flag and QC codes, conflict kinds.

Owns the codes as `StrEnum`s (their values are what results store in JSON,
so they never change) and the one place each code becomes words for a
reader: `DecisionLevel.words` / `level_words`, `ConflictKind.words`.

A flag or QC warning travels as a code with its sentence (`Flag`, `QcFlag`):
code decides, the sentence informs. No module classifies a warning by reading
its sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DecisionLevel(StrEnum):
    """How far down the taxonomy a query was identified."""

    SPECIES = "species"
    AMBIGUOUS = "ambiguous"
    GENUS = "genus"
    NONE = "none"

    @property
    def words(self) -> str:
        """The level as a reader sees it ("Genus only")."""
        return _LEVEL_WORDS[self]


_LEVEL_WORDS = {
    DecisionLevel.SPECIES: "Species",
    DecisionLevel.AMBIGUOUS: "Ambiguous",
    DecisionLevel.GENUS: "Genus only",
    DecisionLevel.NONE: "No identification",
}


def level_words(level: str | None) -> str:
    """Words for a level as stored in a result (unknown values are shown as they are)."""
    try:
        return DecisionLevel(str(level)).words
    except ValueError:
        return str(level)


#: rank reported when the candidates of a call span genera.
ABOVE_GENUS = "family or above"


class QcCode(StrEnum):
    """Why a query's quality control warned."""

    VERY_SHORT = "very-short"  # below the minimum overlap of barcode search engines
    SHORT = "short"  # mini-barcode length
    AMBIGUOUS_BASES = "ambiguous-bases"
    LOW_QUALITY = "low-quality"  # mean phred below the threshold
    NOT_TRIMMED = "not-trimmed"  # qualities present, trimming switched off
    #: named as one sample's forward and reverse reads, but they do not overlap
    READS_NOT_ASSEMBLED = "reads-not-assembled"

    @property
    def is_quality(self) -> bool:
        """A warning about base-call quality (reported as "low quality: ...")."""
        return self in (QcCode.LOW_QUALITY, QcCode.NOT_TRIMMED)


@dataclass(frozen=True, slots=True)
class QcFlag:
    """One QC warning of a query: its code and the sentence shown to people."""

    code: QcCode
    text: str


class FlagCode(StrEnum):
    """What a flag on a decision reports."""

    SHORT_QUERY = "short-query"
    TOO_SHORT_FOR_SPECIES = "too-short-for-species"  # under the rule's minimum for a species call
    LOW_QUALITY = "low-quality"
    QUERY_QC = "query-qc"
    NO_USABLE_OVERLAP = "no-usable-overlap"
    OUTLIER_RECORDS = "outlier-records"
    REVERSE_STRAND = "reverse-strand"
    WITHIN_GAP = "within-gap"
    READ_ERRORS = "read-errors"
    SINGLE_REFERENCE = "single-reference"
    OUTSIDE_LIBRARY_VARIATION = "outside-library-variation"
    GENUS_UNRESOLVED = "genus-unresolved"
    FEW_REFERENCES = "few-references"
    GENUS_RESOLVED = "genus-resolved"  # few references, called: the marker separates the genus
    IDENTICAL_MATCH = "identical-match"  # few references, called: identical, congener separated
    DOMINANT_SUPPORT = "dominant-support"
    SEPARATED_BY_BASE = "separated-by-base"  # short identical query, one base to the next species
    CITES_CALLED = "cites-called"
    CITES_WITHIN_GAP = "cites-within-gap"
    CITES_CANDIDATE = "cites-candidate"


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag on a decision: its code and the sentence shown to people."""

    code: FlagCode
    text: str


class ConflictKind(StrEnum):
    """What two species with (almost) identical references probably are."""

    SYNONYM = "synonym"
    MISIDENTIFIED = "misidentified record"
    TWO_GENERA = "two genera"
    NOT_SEPARATED = "not separated"

    @property
    def words(self) -> str:
        """The kind as a reader sees it (the stored value is already plain words)."""
        return self.value
