"""CITES listing look-up for an identified species, from bundled snapshots.

This module owns the answer to "is this species on a CITES Appendix, and which
snapshot says so". Data: species_ref/data/cites_listings.csv.gz, built by
bench/make_cites_bundle.py from the CITES Checklist / Species+ "Index of CITES
Species" export of 2017-04-21 and the Species+ reptile listings of July 2023.

Look-up rules (the "walk"):

1. Reptiles: a species or subspecies row of the 2023 reptile export answers
   first (snapshot "2023-07"); reptile listings changed after 2017.
2. An exact row for the name in the 2017 checklist (any rank).
3. A 2017 row that lists the name among its synonyms.
4. Otherwise walk up: the genus row, then the family row, then the order row,
   learning the family and order of the genus from any row of that genus.
   Rows with an empty appendix are skipped.

A row whose appendix is "NC" (explicitly not covered, e.g. the budgerigar under
the parrot order listing, or the domestic cat under Felidae) stops the walk and
answers "not listed". No row at all gives None. Every answer names the
snapshot it came from: listings change at each Conference of the Parties, and
taxa listed after the snapshot (e.g. mako sharks, 2019) are missing.

Invariants: the bundle is read lazily, once per process; this module never
prints and never touches the network.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from species_ref.errors import SpeciesRefError

BUNDLE = "cites_listings.csv.gz"
LOOKUP = "cites_lookup.json.gz"  # lookup tables of BUNDLE, bound to its SHA-256
LOOKUP_FORMAT = 1
SNAPSHOT_SOURCES = {
    "2017-04-21": "CITES Checklist / Species+ Index of CITES Species, export of 2017-04-21",
    "2023-07": "Species+ listings export for Reptilia, July 2023",
}
NOT_LISTED = "not listed"

_BINOMIAL = re.compile(r"\b([A-Z][a-z]+) ([a-z][a-z-]+)\b")


@dataclass(frozen=True)
class CitesListing:
    """The CITES status of a queried name, with where the answer came from."""

    query: str  # the name asked about, normalised
    taxon: str  # the taxon whose row answered (the species, a synonym's taxon, genus ...)
    rank: str  # rank of that row: species, subspecies, genus, family, order ...
    appendix: str  # "I", "II", "III", "I/II" ... or "not listed" for an NC row
    matched_by: str  # "name", "synonym", "genus", "family" or "order"
    snapshot: str  # "2017-04-21" or "2023-07"
    source: str  # description of the snapshot
    annotation: str = ""
    hash_annotation: str = ""
    english_name: str = ""
    listed_under: str = ""  # the listing entry, e.g. "Trochilidae spp." or "Manis javanica"
    family: str = ""  # taxonomy of the answering row, as the snapshot gives it
    order: str = ""

    @property
    def listed(self) -> bool:
        """True when the answer is an Appendix (I, II or III), False for "not listed"."""
        return self.appendix != NOT_LISTED

    def summary(self) -> str:
        """One plain sentence for reports."""
        if not self.listed:
            head = f"{self.query} is explicitly not covered by CITES (NC)"
        else:
            head = f"{self.query} is listed in CITES Appendix {self.appendix}"
        if self.matched_by == "synonym":
            head += f" as {self.taxon}"
        elif self.matched_by in {"genus", "family", "order"}:
            head += f" through the listing of {self.matched_by} {self.taxon}"
        return f"{head} (snapshot {self.snapshot})."


def _norm(name: str) -> str:
    words = name.replace("_", " ").split()
    if not words:
        return ""
    return " ".join([words[0].capitalize()] + [w.lower() for w in words[1:]])


@dataclass(frozen=True)
class LookupTables:
    """Where each name is answered: data row numbers (0 = first row after the header).

    The same tables whether the rows are in memory or read on demand; built by
    `LookupTables.build` and shipped beside the bundle (`LOOKUP`) so that a
    look-up need not parse the 39,000 rows first.
    """

    reptile_2023: dict[str, int]
    by_name: dict[str, int]
    by_synonym: dict[str, int]
    genus_taxonomy: dict[str, tuple[str, str]]

    @classmethod
    def build(cls, rows: Iterable[dict[str, str]]) -> LookupTables:
        """Tables over `rows` in their order; the first row for a name wins."""
        reptile: dict[str, int] = {}
        by_name: dict[str, int] = {}
        by_synonym: dict[str, int] = {}
        taxonomy: dict[str, tuple[str, str]] = {}
        for number, row in enumerate(rows):
            name = row.get("taxon_name", "").strip()
            if not name:
                continue
            genus = row.get("genus", "").strip()
            if genus and row.get("family") and genus not in taxonomy:
                taxonomy[genus] = (row.get("family", ""), row.get("order", ""))
            if row.get("snapshot") == "2023-07":
                reptile.setdefault(name, number)
                continue
            by_name.setdefault(name, number)
            for genus_syn, epithet in _BINOMIAL.findall(row.get("synonyms", "")):
                by_synonym.setdefault(f"{genus_syn} {epithet}", number)
        return cls(reptile, by_name, by_synonym, taxonomy)

    def to_json(self, *, bundle_sha256: str) -> bytes:
        """The shipped form: gzipped JSON bound to the bundle it indexes."""
        doc = {
            "format": LOOKUP_FORMAT,
            "bundle_sha256": bundle_sha256,
            "reptile_2023": self.reptile_2023,
            "by_name": self.by_name,
            "by_synonym": self.by_synonym,
            "genus_taxonomy": {g: list(fo) for g, fo in self.genus_taxonomy.items()},
        }
        raw = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return gzip.compress(raw.encode("utf-8"), mtime=0)

    @classmethod
    def from_json(cls, blob: bytes, *, bundle_sha256: str) -> LookupTables | None:
        """The tables of a shipped lookup file; None when it is unreadable or
        indexes another bundle than the one given (the caller then builds them)."""
        try:
            doc = json.loads(gzip.decompress(blob).decode("utf-8"))
            if doc.get("format") != LOOKUP_FORMAT or doc.get("bundle_sha256") != bundle_sha256:
                return None
            return cls(
                dict(doc["reptile_2023"]),
                dict(doc["by_name"]),
                dict(doc["by_synonym"]),
                {g: (fo[0], fo[1]) for g, fo in doc["genus_taxonomy"].items()},
            )
        except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None


class _LazyRows:
    """Rows of a bundle read on demand: the CSV is decompressed at the first row asked for.

    Only for bundles whose every row is one physical line (`_one_row_per_line`).
    """

    def __init__(self, blob: bytes) -> None:
        self._blob = blob
        self._lines: list[str] | None = None
        self._header: list[str] = []
        self._rows: dict[int, dict[str, str]] = {}

    def __call__(self, number: int) -> dict[str, str]:
        row = self._rows.get(number)
        if row is None:
            if self._lines is None:
                self._lines = _decompress(self._blob, None).split("\n")
                self._header = next(csv.reader(self._lines[:1]), [])
            fields = next(csv.reader([self._lines[number + 1]]), [])
            row = self._rows[number] = dict(zip(self._header, fields, strict=False))
        return row


def _decompress(blob: bytes, path: str | Path | None) -> str:
    try:
        return gzip.decompress(blob).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        where = path or f"species_ref/data/{BUNDLE}"
        raise SpeciesRefError(
            f"The CITES bundle {where} cannot be read ({e}); rebuild it with "
            "bench/make_cites_bundle.py."
        ) from None


def parse_bundle(text: str) -> tuple[list[dict[str, str]], bool]:
    """Rows of a bundle's CSV text, and whether every row is one physical line."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    rows: list[dict[str, str]] = []
    one_per_line = True
    for fields in reader:
        # Rows made with zip: DictReader does the same at several times the cost.
        rows.append(dict(zip(header, fields, strict=False)))
        one_per_line = one_per_line and reader.line_num == len(rows) + 1
    return rows, one_per_line


class CitesIndex:
    """Index over CITES snapshot rows; build with `CitesIndex(rows)` or `load`."""

    def __init__(self, rows: Iterable[dict[str, str]]) -> None:
        table = list(rows)
        self._tables = LookupTables.build(table)
        self._row: Callable[[int], dict[str, str]] = table.__getitem__

    @classmethod
    def _lazy(cls, tables: LookupTables, blob: bytes) -> CitesIndex:
        index = cls.__new__(cls)
        index._tables = tables
        index._row = _LazyRows(blob)
        return index

    @classmethod
    def load(cls, path: str | Path | None = None) -> CitesIndex:
        """Read a bundle (gzipped CSV); the bundled one when `path` is None.

        The bundled one comes with its lookup tables (`LOOKUP`): rows are then
        parsed only when a look-up needs them. A lookup file that does not
        match the bundle is ignored and the tables are built from the rows.
        """
        try:
            if path is None:
                data = resources.files("species_ref").joinpath("data")
                blob = data.joinpath(BUNDLE).read_bytes()
                try:
                    shipped = data.joinpath(LOOKUP).read_bytes()
                except OSError:
                    shipped = b""
                digest = hashlib.sha256(blob).hexdigest()
                tables = LookupTables.from_json(shipped, bundle_sha256=digest)
                if tables is not None:
                    return cls._lazy(tables, blob)
            else:
                blob = Path(path).read_bytes()
        except OSError as e:
            where = path or f"species_ref/data/{BUNDLE}"
            raise SpeciesRefError(
                f"The CITES bundle {where} cannot be read ({e}); rebuild it with "
                "bench/make_cites_bundle.py."
            ) from None
        rows, _ = parse_bundle(_decompress(blob, path))
        return cls(rows)

    def lookup(self, species: str) -> CitesListing | None:
        """Return the CITES status of a species name, or None when no listing covers it."""
        query = _norm(species)
        if not query:
            return None
        t, row_at = self._tables, self._row
        words = query.split()
        candidates = [query] if len(words) <= 2 else [query, " ".join(words[:2])]
        for name in candidates:
            if name in t.reptile_2023:
                older_at = t.by_name.get(name)
                fallback = row_at(older_at).get("english_names", "") if older_at is not None else ""
                return _answer(query, row_at(t.reptile_2023[name]), "name", english_names=fallback)
            for table, how in ((t.by_name, "name"), (t.by_synonym, "synonym")):
                at = table.get(name)
                if at is not None and row_at(at).get("appendix"):
                    return _answer(query, row_at(at), how)

        genus = words[0]
        if len(words) > 1 and genus in t.by_name:
            row = row_at(t.by_name[genus])
            if row.get("rank") == "GENUS" and row.get("appendix"):
                return _answer(query, row, "genus")
        family, order = t.genus_taxonomy.get(genus, ("", ""))
        for rank, taxon in (("family", family), ("order", order)):
            at = t.by_name.get(taxon) if taxon else None
            if at is not None and row_at(at).get("appendix"):
                return _answer(query, row_at(at), rank)
        return None


def _answer(
    query: str, row: dict[str, str], matched_by: str, *, english_names: str = ""
) -> CitesListing:
    appendix = row.get("appendix", "")
    snapshot = row.get("snapshot", "")
    names = row.get("english_names", "") or english_names
    return CitesListing(
        query=query,
        taxon=row["taxon_name"],
        rank=row.get("rank", "").lower(),
        appendix=NOT_LISTED if appendix == "NC" else appendix,
        matched_by=matched_by,
        snapshot=snapshot,
        source=SNAPSHOT_SOURCES.get(snapshot, snapshot),
        annotation=row.get("annotation", ""),
        hash_annotation=row.get("hash_annotation", ""),
        english_name=names.split(",")[0].strip() if names else "",
        listed_under=row.get("listed_under", ""),
        family=row.get("family", ""),
        order=row.get("order", ""),
    )


@lru_cache(maxsize=1)
def bundled_index() -> CitesIndex:
    """Return the index over the bundled snapshots, loaded on first use and cached."""
    return CitesIndex.load()


def lookup_cites(species: str) -> CitesListing | None:
    """Return the CITES listing that covers `species` ("Genus species"), or None.

    See the module docstring for the matching walk and the snapshots used.
    """
    return bundled_index().lookup(species)


def walk_synonyms(
    lookup: Callable[[str], CitesListing | None], synonyms_of: Callable[[str], Iterable[str]]
) -> Callable[[str], CitesListing | None]:
    """A look-up that also asks under the other names a curated library files a species under.

    A species's own listing by name wins; otherwise the first other name with
    a listing of its own (by name or CITES synonym) answers, reported as a
    listing "as" that name. Listings through a genus, family or order are
    kept only when no other name is listed by name.
    """

    def walked(species: str) -> CitesListing | None:
        own = lookup(species)
        if own is not None and own.matched_by in {"name", "synonym"}:
            return own
        for other in synonyms_of(species):
            alt = lookup(other)
            if alt is not None and alt.matched_by in {"name", "synonym"} and alt.listed:
                return replace(alt, query=_norm(species), matched_by="synonym")
        return own

    return walked
