"""Marker names and the genes they belong to.

Reference data names one barcode in several ways: "COI" and "COI-5P" (also
COI-3P, COI-mini, CO1, COX1) are regions or spellings of one gene, and so are
12S, 12S-V5 and 12S-MiFish, or cytb and cytb-mini. Two queries of one gene are
not independent evidence, so a sample's markers are counted by gene.

Invariant: `gene_key` is the one place that decides whether two marker names
are one gene: the name before a '-' suffix, case-insensitive, with COI, CO1 and
COX1 as one. A hyphen that joins two genes (an intergenic spacer such as
trnH-psbA) or follows a one-letter name (D-loop) is part of the name, not a suffix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_COI = frozenset({"coi", "co1", "cox1", "cox-1", "co-1"})
#: A suffix that names another gene: the marker is a spacer between two genes.
_GENE_SUFFIX = re.compile(r"^(?:trn|psb|rbc|mat|rps|rpl|nad|atp|cox|cob|nd\d)", re.IGNORECASE)


def _base(marker: str) -> str:
    """The marker name without its region suffix, as written."""
    name = marker.strip()
    if name.casefold() in _COI:
        return name
    head, sep, tail = name.partition("-")
    if not sep or len(head) < 2 or _GENE_SUFFIX.match(tail):
        return name
    return head


def gene_key(marker: str) -> str:
    """The key that two marker names of one gene share ("COI-5P" and "CO1" give "coi")."""
    base = _base(marker).casefold()
    return "coi" if base in _COI else base


def gene_name(marker: str) -> str:
    """The gene of a marker as a reader sees it ("COI" for COI-5P or CO1, "12S" for 12S-V5)."""
    return "COI" if gene_key(marker) == "coi" else _base(marker)


def group_label(markers: Sequence[str]) -> str:
    """A name for several queries of one gene: the marker itself when they all name it alike
    ("COI-5P (2 reads)"), else the gene with the markers ("COI (2 queries: COI, COI-5P)")."""
    names = list(dict.fromkeys(markers))
    if len(markers) == 1:
        return markers[0]
    if len(names) == 1:
        return f"{names[0]} ({len(markers)} reads)"
    return f"{gene_name(names[0])} ({len(markers)} queries: {', '.join(names)})"


#: A marker name at the end of a sample or read name (S9_COI, S9-cytb, S9_COI-5P, S9.12S-V5).
_TRAILING_MARKER = re.compile(
    r"[_.\-](?:COI|CO1|COX1|cytb|cob|12S|16S|18S|28S|rbcL|matK|ITS[12]?|trnL|ND[1-6]|D-?loop)"
    r"(?:-[A-Za-z0-9]+)?$",
    re.IGNORECASE,
)


def without_marker(name: str) -> str:
    """A sample or read name without the marker name that ends it ("S9_COI-5P" gives "S9")."""
    while (shorter := _TRAILING_MARKER.sub("", name)) != name and shorter:
        name = shorter
    return name
