"""Species identification inside custody: reference libraries beside the store,
and `analyse` events that record identifications on items.

Invariants: every query file is read and checked before anything is matched
or written (a bad file changes nothing); an identification recorded on an item
holds the query (its trimmed sequence and hashes), trimming figures, the library's name, version and
content hash, the rule with its values, the hits and the call, so it can be
reproduced exactly later; the analyst signs it, and an actor who may not
record analyses is refused before any work is done.

Results stay typed (`SpeciesAnalysis`) until they are written into an event or
printed as JSON; `SpeciesAnalysis.to_dict()` is that JSON, and its keys and
value shapes never change (stored events and issued dossiers hold it); keys may
be added (`query_sequence` was, for the dossier's appendix).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from custody.domain import EventType
from custody.errors import InvalidInput
from custody.files import read_text

if TYPE_CHECKING:
    from custody.events import Recorded, Signer
    from custody.store import Store
    from species_ref.cites import CitesListing
    from species_ref.combine import CombinedCall
    from species_ref.conflicts import NameConflict, ProblemRecord
    from species_ref.curation import Decision as CurationDecision
    from species_ref.identify import Engine, Identification, ValidationDoc
    from species_ref.library import LibraryStore
    from species_ref.rules import Rule
    from species_ref.types import LibraryVersion, Query
    from species_ref.validate import ValidationReport

ProgressFn = Callable[[int, int], None]
CitesLookup = Callable[[str], "CitesListing | None"]

BUNDLED_LIBRARY = "demo-barcodes"
ANALYSIS = "species-identification"
VALIDATION_PREFIX = "validation-"


def bundled_data(name: str) -> Path:
    import species_ref

    return Path(species_ref.__file__).parent / "data" / name


class ReferenceHome(Protocol):
    """Anything that knows where reference libraries live: an open `Store`, or the CLI's
    light stand-in when nothing else of the store is needed."""

    @property
    def references_dir(self) -> Path: ...


def reference_store(store: ReferenceHome) -> LibraryStore:
    from species_ref.library import LibraryStore

    return LibraryStore(store.references_dir)


def validation_key(rule: str) -> str:
    return f"{VALIDATION_PREFIX}{rule}"


def current_validation(
    refs: LibraryStore, *, library: str, version: int, rule: Rule
) -> ValidationDoc | None:
    """The stored validation of a library version under `rule` as it is now.

    A validation made under an earlier revision of the rule, or with species
    statistics computed by an earlier method, measured other calls, so it does
    not supply error rates to calls made now (the call then says the library was
    not validated under its rule).
    """
    from species_ref.profile import PROFILE_METHOD

    data = refs.attachment(library, version, validation_key(rule.name))
    if not data:
        return None
    recorded = data.get("rule")
    revision = recorded.get("revision", 1) if isinstance(recorded, dict) else 1
    if revision != rule.revision or data.get("statistics_method") != PROFILE_METHOD:
        return None
    return data


def validation_sentence(rule_name: str, data: Mapping[str, Any]) -> str:
    """A stored validation in words: its rates, what it measured, and whether calls made
    now take their error rates from it."""
    from species_ref.profile import PROFILE_METHOD
    from species_ref.rules import RULES

    recorded = data.get("rule")
    revision = recorded.get("revision", 1) if isinstance(recorded, dict) else 1
    summary = data.get("summary") or {}

    def pct(key: str) -> str:
        value = summary.get(key)
        return f"{100 * value:.1f} %" if isinstance(value, int | float) else "not recorded"

    text = (
        f"validation under rule '{rule_name}' (revision {revision}): {pct('correct_species_rate')} "
        f"correct and {pct('wrong_species_rate')} wrong species calls on "
        f"{summary.get('n_present', '?')} queries of species in the library, "
        f"{pct('false_species_rate_absent')} species calls on {summary.get('n_absent', '?')} "
        "queries of species left out"
    )
    rule = RULES.get(rule_name)
    if rule is not None and (
        revision != rule.revision or data.get("statistics_method") != PROFILE_METHOD
    ):
        text += (
            "; made under an earlier revision of the rule or of the species statistics, so "
            "calls made now do not take error rates from it (run `custody ref validate` again)"
        )
    return text


@dataclass(frozen=True)
class ReferenceImport:
    """A library version made by an import, and what the import refused."""

    version: LibraryVersion
    rejected: list[tuple[str, int]]  # (reason category, count), most frequent first


def import_reference(
    store: Store,
    *,
    name: str,
    files: Sequence[Path],
    fmt: str = "auto",
    marker: str | None = None,
    note: str = "",
    max_ambiguous: float = 0.01,
    progress: ProgressFn | None = None,
    signer: Signer | None = None,
) -> ReferenceImport:
    """Import reference files as the next version of library `name` (see `LibraryStore.import_version`).

    With `signer`, the importing actor signs the new version's manifest (`custody.libsign`).
    """
    from species_ref.errors import SpeciesRefError
    from species_ref.refimport import rejection_counts

    try:
        version, result = reference_store(store).import_version(
            name,
            files,
            fmt=fmt,
            marker=marker,
            note=note,
            progress=progress,
            max_ambiguous=max_ambiguous,
        )
    except MemoryError:
        raise SpeciesRefError(
            f"Library '{name}' is too large to import in this machine's memory; import it on a "
            "machine with more memory or split it by marker. Nothing was imported."
        ) from None
    if signer is not None:
        from custody.libsign import sign_version

        sign_version(store, name=version.name, version=version.version, signer=signer)
    return ReferenceImport(version, rejection_counts(result.rejected).most_common())


def prepare_reference(
    store: Store,
    *,
    library: str,
    version: int | None = None,
    progress: ProgressFn | None = None,
    loaded: LibraryVersion | None = None,
) -> Engine:
    """Build and cache a library version's k-mer index and species statistics.

    Done once per version (normally right after import), so the first
    identification does not pay for it; later calls find the cache. Returns the
    ready search engine. `loaded` is the version when the caller holds it
    already (the import that made it), so its records are not read again.
    """
    from species_ref.errors import SpeciesRefError
    from species_ref.identify import Engine

    refs = reference_store(store)
    lib = loaded if loaded is not None else refs.open(library, version)
    try:
        return Engine(lib, cache_dir=refs.cache_dir(lib.name, lib.version), progress=progress)
    except MemoryError:
        raise SpeciesRefError(
            f"The search index of library '{lib.name}' version {lib.version} does not fit in this "
            "machine's memory; the version is stored, but identify against it on a machine with "
            "more memory or split the library by marker."
        ) from None


@dataclass(frozen=True)
class ReferenceCuration:
    """A curated library version, what was applied and skipped, and whether it is new."""

    version: LibraryVersion
    applied: int
    skipped: int
    records_removed: int
    created: bool
    synonyms: dict[str, list[str]]


@dataclass(frozen=True)
class EarlierCuration:
    """A curation behind the version a curated version was made from."""

    version: int | None
    decisions_file: str
    decisions_sha256: str
    applied: int | None


@dataclass(frozen=True)
class LibraryCurationRecord:
    """How a curated library version was made, as an identification records it.

    Counts only: the decisions themselves (reviewer, reason, source) are in the
    version's manifest, which the identification cites by hash. `from_data` reads
    a stored record and never raises (a missing or mistyped value reads as None or "").
    """

    curated_from: int | None
    curated_from_hash: str
    decisions_file: str
    decisions_sha256: str
    applied: int | None
    skipped: int | None
    records_excluded: int | None
    names_merged: int | None
    accepted_names: int | None
    earlier: tuple[EarlierCuration, ...] = ()

    @classmethod
    def of_manifest(cls, manifest: Mapping[str, Any]) -> LibraryCurationRecord | None:
        """The curation a version's manifest lists; None for a version imported from files."""
        cur = manifest.get("curation")
        if not isinstance(cur, Mapping):
            return None
        synonyms = cur.get("synonyms")
        synonyms = synonyms if isinstance(synonyms, Mapping) else {}
        applied = cur.get("applied")
        return cls.from_data(
            {
                "curated_from": cur.get("curated_from"),
                "decisions_file": cur.get("decisions_file"),
                "decisions_sha256": cur.get("decisions_sha256"),
                "applied": len(applied) if isinstance(applied, list) else None,
                "skipped": cur.get("skipped_count"),
                "records_excluded": cur.get("records_removed"),
                "names_merged": sum(len(v) for v in synonyms.values() if isinstance(v, list)),
                "accepted_names": len(synonyms),
                "earlier": [
                    {**e, "applied": e.get("applied_count")}
                    for e in cur.get("earlier") or []
                    if isinstance(e, Mapping)
                ],
            }
        )

    @classmethod
    def from_data(cls, data: object) -> LibraryCurationRecord | None:
        if not isinstance(data, Mapping):
            return None
        base = data.get("curated_from")
        base = base if isinstance(base, Mapping) else {}
        earlier = data.get("earlier")
        return cls(
            curated_from=_whole(base.get("version")),
            curated_from_hash=_str(base.get("content_hash")),
            decisions_file=_str(data.get("decisions_file")),
            decisions_sha256=_str(data.get("decisions_sha256")),
            applied=_whole(data.get("applied")),
            skipped=_whole(data.get("skipped")),
            records_excluded=_whole(data.get("records_excluded")),
            names_merged=_whole(data.get("names_merged")),
            accepted_names=_whole(data.get("accepted_names")),
            earlier=tuple(
                EarlierCuration(
                    version=_whole(e.get("version")),
                    decisions_file=_str(e.get("decisions_file")),
                    decisions_sha256=_str(e.get("decisions_sha256")),
                    applied=_whole(e.get("applied")),
                )
                for e in (earlier if isinstance(earlier, list) else [])
                if isinstance(e, Mapping)
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "curated_from": {"version": self.curated_from, "content_hash": self.curated_from_hash},
            "decisions_file": self.decisions_file,
            "decisions_sha256": self.decisions_sha256,
            "applied": self.applied,
            "skipped": self.skipped,
            "records_excluded": self.records_excluded,
            "names_merged": self.names_merged,
            "accepted_names": self.accepted_names,
            "earlier": [
                {
                    "version": e.version,
                    "decisions_file": e.decisions_file,
                    "decisions_sha256": e.decisions_sha256,
                    "applied": e.applied,
                }
                for e in self.earlier
            ],
        }


#: The key of an identification's event data that holds its library's curation:
#: a `LibraryCurationRecord`, or null for a version imported from files (absent in
#: identifications recorded before it was kept).
LIBRARY_CURATION = "library_curation"


def recorded_library_curation(data: Mapping[str, Any]) -> tuple[bool, LibraryCurationRecord | None]:
    """(whether the identification recorded its library's curation, the curation or None)."""
    return LIBRARY_CURATION in data, LibraryCurationRecord.from_data(data.get(LIBRARY_CURATION))


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def curate_reference(
    store: Store,
    *,
    name: str,
    decisions: Path,
    version: int | None = None,
    note: str = "",
    signer: Signer | None = None,
    progress: ProgressFn | None = None,
) -> ReferenceCuration:
    """Apply a reviewed decisions file to a library version as its next version, and index it.

    The file is read and checked first: a bad file is refused with one
    sentence and nothing is written. With `signer`, the curating actor signs the
    new version's manifest, which lists every decision (`custody.libsign`).
    """
    from species_ref.curation import read_decisions

    checked = read_decisions(decisions)
    refs = reference_store(store)
    lib, result, created = refs.curate_version(name, checked, version=version, note=note)
    if created and signer is not None:
        from custody.libsign import sign_version

        sign_version(store, name=lib.name, version=lib.version, signer=signer)
    prepare_reference(store, library=lib.name, version=lib.version, progress=progress, loaded=lib)
    return ReferenceCuration(
        version=lib,
        applied=len(result.applied),
        skipped=len(result.skipped),
        records_removed=sum(
            int(d.get("records_changed", 0)) for d in result.applied if d["kind"] == "exclude"
        ),
        created=created,
        synonyms=result.synonyms,
    )


def reference_conflicts(
    store: Store,
    *,
    library: str,
    version: int | None = None,
    within: float = 0.5,
    engine: Engine | None = None,
) -> list[NameConflict]:
    """Species pairs of a library version with references within `within` % of each other.

    `engine` is the version's engine when the caller has it (from `prepare_reference`).
    """
    from species_ref.cites import lookup_cites
    from species_ref.conflicts import find_conflicts

    if engine is None:
        engine = prepare_reference(store, library=library, version=version)
    return find_conflicts(engine.index, engine.profile, within=within, cites=lookup_cites)


@dataclass(frozen=True)
class CurationProposal:
    """Problem records found by re-identification, and the decisions proposed from the evidence."""

    problems: list[ProblemRecord]
    decisions: list[CurationDecision]
    toml: str


def propose_curation(
    store: Store,
    *,
    library: str,
    version: int | None = None,
    reviewer: str = "",
    rule: str = "default",
    progress: ProgressFn | None = None,
) -> CurationProposal:
    """Re-identify every record of a version against the rest and propose curation decisions.

    The proposal is a decisions file a reviewer edits and signs off (their name
    in `reviewer`) before `curate_reference` applies it.
    """
    from collections import Counter

    from species_ref.conflicts import reidentify_records
    from species_ref.curation import Evidence, decisions_toml, propose_decisions

    engine = prepare_reference(store, library=library, version=version)
    lib = engine.version
    conflicts = reference_conflicts(store, library=lib.name, version=lib.version, engine=engine)
    problems = reidentify_records(engine, rule=rule, progress=progress)
    refs = Counter(r.species for r in lib.records)
    evidence = Evidence(f"{lib.name} v{lib.version}", tuple(conflicts), tuple(problems), refs)
    decisions = propose_decisions([evidence], reviewer=reviewer or "TO BE REVIEWED")
    header = {
        "title": f"Proposed curation of {lib.name} version {lib.version}",
        "library": f"{lib.name} v{lib.version} {lib.content_hash}",
        "method": (
            "proposed from the library's own name conflicts and leave-one-out "
            f"re-identification under rule {rule}; review each decision before applying it"
        ),
    }
    return CurationProposal(problems, decisions, decisions_toml(decisions, header=header))


def reference_validations(store: Store, *, library: str, version: int) -> dict[str, ValidationDoc]:
    """Every validation stored with a library version, by rule name.

    Registered rules come first in their registry order, then any other rule
    names alphabetically.
    """
    from species_ref.rules import RULES

    refs = reference_store(store)
    names = [
        key.removeprefix(VALIDATION_PREFIX)
        for key in refs.attachment_keys(library, version)
        if key.startswith(VALIDATION_PREFIX)
    ]
    order = {name: i for i, name in enumerate(RULES)}
    names.sort(key=lambda n: (order.get(n, len(order)), n))
    found: dict[str, ValidationDoc] = {}
    for name in names:
        data = refs.attachment(library, version, validation_key(name))
        if data:
            found[name] = data
    return found


@dataclass(frozen=True)
class QuerySource:
    """The file a query came from."""

    file: str
    file_sha256: str
    format: str
    details: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, query: Query) -> QuerySource:
        return cls(
            file=Path(query.path).name,
            file_sha256=query.file_sha256,
            format=query.source_format,
            details=dict(query.extra),
        )

    def to_dict(self) -> dict[str, str | dict[str, str]]:
        return {
            "file": self.file,
            "file_sha256": self.file_sha256,
            "format": self.format,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class CitesStatus:
    """The CITES status of the called species or a candidate, with its snapshot."""

    species: str
    appendix: str  # "I", "II", "I/II" ... or "not listed"
    statement: str
    listed_under: str | None = None  # None when no listing covers the species
    snapshot: str | None = None

    @classmethod
    def look_up(cls, species: str, lookup: CitesLookup) -> CitesStatus:
        listing = lookup(species)
        if listing is None:
            statement = f"{species} has no CITES listing in the bundled snapshots."
            return cls(species, "not listed", statement)
        return cls(
            species=species,
            appendix=listing.appendix,
            statement=listing.summary(),
            listed_under=listing.listed_under or listing.taxon,
            snapshot=listing.snapshot,
        )

    def to_dict(self) -> dict[str, str]:
        if self.listed_under is None:
            return {"species": self.species, "appendix": self.appendix, "statement": self.statement}
        return {
            "species": self.species,
            "appendix": self.appendix,
            "listed_under": self.listed_under,
            "snapshot": self.snapshot or "",
            "statement": self.statement,
        }


@dataclass(frozen=True, eq=False)
class SpeciesAnalysis(Mapping[str, Any]):
    """One query's identification as custody records it: the call, CITES status, source.

    Read it through its attributes. It is also a read-only mapping of its JSON
    form (`to_dict()`), for callers written when results were plain dicts.
    """

    identification: Identification
    cites_listings: list[CitesStatus]
    source: QuerySource
    sequence: str = ""  # the query as matched (trimmed), printed in the dossier's appendix

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored in `analyse` events and printed by `identify --json`."""
        out = {
            **self.identification.to_dict(),
            "cites_listings": [c.to_dict() for c in self.cites_listings],
            "source": self.source.to_dict(),
        }
        if self.sequence:
            out["query_sequence"] = self.sequence
        return out

    def event_data(self) -> dict[str, Any]:
        """The data of the `analyse` event that records this identification."""
        return {"analysis": ANALYSIS, **self.to_dict()}

    @cached_property
    def _json(self) -> dict[str, Any]:
        return self.to_dict()

    def __getitem__(self, key: str) -> Any:
        return self._json[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)


def identify_files(
    store: ReferenceHome,
    *,
    files: Sequence[Path],
    library: str,
    version: int | None = None,
    rule: str = "default",
    analyst: Signer | None = None,
    progress: ProgressFn | None = None,
    notify: Callable[[str], None] | None = None,
) -> list[SpeciesAnalysis]:
    """Read, QC and identify every query in `files`; one typed result per query.

    With `analyst` (who will record the results), an actor who may not record
    analyses is refused before any file is read. Forward and reverse reads are
    assembled (`assemble_read_pairs`; `notify` hears of pairs that do not overlap).
    """
    from species_ref.cites import bundled_index, lookup_cites, walk_synonyms
    from species_ref.combine import unique_names
    from species_ref.identify import Engine, identify
    from species_ref.reading import read_queries
    from species_ref.rules import get_rule

    if analyst is not None:
        from custody.events import check_permission

        check_permission(analyst.actor, EventType.ANALYSE)
    chosen_rule = get_rule(rule)
    queries = assemble_read_pairs(
        unique_names([q for path in files for q in read_queries(path)]), notify=notify
    )
    refs = reference_store(store)
    lib = refs.open(library, version)  # records are read only if the index must be built
    validation = current_validation(refs, library=lib.name, version=lib.version, rule=chosen_rule)
    engine = Engine(lib, cache_dir=refs.cache_dir(lib.name, lib.version))
    bundled_index()  # read once here, before the search workers fork and share it
    results = identify(
        queries,
        engine,
        rule=chosen_rule,
        cites=lookup_cites,
        validation=validation,
        progress=progress,
    )
    walked = walk_synonyms(lookup_cites, lib.synonyms_of) if lib.synonyms else lookup_cites
    return [
        SpeciesAnalysis(
            identification=result,
            cites_listings=_cites_statuses(result, walked),
            source=QuerySource.of(query),
            sequence=query.sequence,
        )
        for query, result in zip(queries, results, strict=True)
    ]


def _cites_statuses(result: Identification, lookup: CitesLookup) -> list[CitesStatus]:
    """CITES status of the called species and every candidate, with the snapshot date."""
    names: list[str] = []
    for name in [result.taxon, *(c.species for c in result.candidates)]:
        if name and " " in name and name not in names:
            names.append(name)
    return [CitesStatus.look_up(name, lookup) for name in names]


def validate_reference(
    store: Store,
    *,
    library: str,
    version: int | None = None,
    rule: str = "default",
    max_queries: int | None = None,
    progress: ProgressFn | None = None,
) -> ValidationReport:
    """Measure a library version's error rates and attach them to it (used by every result)."""
    from species_ref.identify import Engine
    from species_ref.rules import get_rule
    from species_ref.validate import validate_library

    chosen = get_rule(rule)
    refs = reference_store(store)
    lib = refs.load(library, version)
    engine = Engine(lib, cache_dir=refs.cache_dir(lib.name, lib.version))
    report = validate_library(
        lib, rule=chosen, progress=progress, max_queries=max_queries, engine=engine
    )
    refs.attach(lib.name, lib.version, validation_key(chosen.name), report.to_dict())
    return report


def record_identifications(
    store: Store,
    *,
    plan: Mapping[str, Sequence[SpeciesAnalysis]],
    signer: Signer,
    at: str | None = None,
) -> Recorded:
    """One signed `analyse` event per identification, on the item it was run on
    (`assign_to_items`), all in one transaction."""
    from custody.events import ItemAct, record_item_events
    from custody.libsign import citation
    from species_ref.errors import SpeciesRefError

    refs = reference_store(store)
    curations: dict[tuple[str, int], dict[str, Any]] = {}

    def curation(name: str, version: int) -> dict[str, Any]:
        """{LIBRARY_CURATION: the version's curation or None}; {} when its manifest is unread."""
        if (name, version) not in curations:
            try:
                record = LibraryCurationRecord.of_manifest(refs.manifest(name, version))
            except SpeciesRefError:
                curations[name, version] = {}
            else:
                curations[name, version] = {LIBRARY_CURATION: record.to_dict() if record else None}
        return curations[name, version]

    def cited(r: SpeciesAnalysis) -> dict[str, Any]:
        ident = r.identification
        cite = citation(
            store, name=ident.library_name, version=ident.library_version_number
        )  # the signed manifest the identification relied on
        return {
            **r.event_data(),
            **({"library_manifest": cite} if cite else {}),
            # how a curated version was made, so a dossier can say it without the library
            **curation(ident.library_name, ident.library_version_number),
        }

    acts = [
        ItemAct(item_id, EventType.ANALYSE, cited(r))
        for item_id, results in plan.items()
        for r in results
    ]
    return record_item_events(store, acts=acts, signer=signer, at=at)


#: How a name marks one direction of a sample's reads: a separator, an optional read
#: number, then F, R, Fwd, Rev, Forward or Reverse (S9_F, S9-R, S9.F, S9_1_F, S9_2_R);
#: or F or R right after a digit (AT-HV1F, M13R). A bare number (S9_1, coi2) marks no
#: direction: it numbers samples, replicates or regions as often as reads.
_READ_DIRECTION = re.compile(
    r"(?:[_.\-](?:[12][_.\-])?(?P<word>F|R|FWD|REV|FORWARD|REVERSE)|(?<=\d)(?P<glued>[FR]))$",
    re.IGNORECASE,
)
#: The plate well and run number a sequencer appends to the sample name (_C01_011, -H12).
_PLATE_WELL = re.compile(r"[_\-][A-P]\d{1,2}(?:[_\-]\d{1,4})?$")


def _read_direction(name: str) -> tuple[str, str] | None:
    """(sample stem, "F" or "R") of a read's name, or None if the name marks no direction."""
    for candidate in (name, _PLATE_WELL.sub("", name)):
        m = _READ_DIRECTION.search(candidate)
        if m is None or m.start() == 0:
            continue
        mark = (m.group("word") or m.group("glued")).upper()
        return candidate[: m.start()], "F" if mark in ("F", "FWD", "FORWARD") else "R"
    return None


def _read_stem(name: str, file: str, *, by_file: bool) -> tuple[str, str] | None:
    """(sample stem, direction) a read's file name (`by_file`) or name marks, if any."""
    if by_file or name == file:  # a query named after its file: the file's stem
        name = Path(file).stem
    return _read_direction(name)


def read_pairs(reads: Sequence[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """The forward and reverse reads of one sample among reads given as (name, file name):
    (index of the forward read, index of the reverse read, sample stem) per pair.

    Two reads pair when their file names mark them as the two directions of one stem
    (each file holding only that read), whatever the sample names inside the traces;
    failing that, when their names do. A stem with more than two reads pairs none.
    """
    per_file = Counter(file for _name, file in reads)
    paired: set[int] = set()
    out: list[tuple[int, int, str]] = []
    for by_file in (True, False):
        stems: dict[str, list[tuple[int, str]]] = {}
        for i, (name, file) in enumerate(reads):
            if i in paired or (by_file and per_file[file] > 1):
                continue
            found = _read_stem(name, file, by_file=by_file)
            if found is not None:
                stems.setdefault(found[0], []).append((i, found[1]))
        for stem, members in stems.items():
            if len(members) == 2 and {d for _i, d in members} == {"F", "R"}:
                (f, _), (r, _) = sorted(members, key=lambda m: m[1])
                out.append((f, r, stem))
                paired |= {f, r}
    return sorted(out)


def read_samples(reads: Sequence[tuple[str, str]]) -> list[str]:
    """The samples that reads given as (name, file name) are named after, in order: the stems
    of those whose file name (each file holding one read) or name marks a read direction.

    A marker name ending the stem (S9_COI_F, S9_cytb_R) names the read's marker, not
    its sample, so it is left out.
    """
    from species_ref.markers import without_marker

    per_file = Counter(file for _name, file in reads)
    samples: dict[str, None] = {}
    for name, file in reads:
        found = _read_stem(name, file, by_file=per_file[file] == 1)
        if found is not None:
            samples[without_marker(found[0])] = None
    return list(samples)


def assemble_read_pairs(
    queries: Sequence[Query], *, notify: Callable[[str], None] | None = None
) -> list[Query]:
    """Forward and reverse reads of one sample (`read_pairs`) as one assembled query
    when they overlap; every other query as it is, in order.

    Reads named as a pair that do not overlap stay two queries, each with a QC
    warning that says so (and `notify` is told, in one sentence). Each is then named
    by its file when the reads' own names (a trace's run number) do not mark them as
    the pair.
    """
    import dataclasses

    from species_ref.combine import assemble_reads
    from species_ref.vocab import QcCode, QcFlag

    replace: dict[int, Query | None] = {}
    for f, r, stem in read_pairs([(q.name, Path(q.path).name) for q in queries]):
        a, b = queries[f], queries[r]
        contig = assemble_reads(a, b, stem=stem)
        if contig is not None:
            replace[min(f, r)], replace[max(f, r)] = contig, None
            continue
        files = (Path(a.path).name, Path(b.path).name)
        fn, rn = (_read_direction(q.name) for q in (a, b))
        # Run numbers or one shared sample name inside the traces tell the reads apart
        # from nothing: the file names, which made the pair, name them.
        by_file = not (fn and rn and fn[0] == rn[0] and fn[1] != rn[1])
        flag = QcFlag(
            QcCode.READS_NOT_ASSEMBLED,
            f"forward and reverse reads of {stem} do not overlap ({files[0]} and {files[1]}); "
            "identified separately",
        )
        for i, q in ((f, a), (r, b)):
            qc = dataclasses.replace(q.qc, flags=(*q.qc.flags, flag))
            name = Path(q.path).stem if by_file else q.name
            replace[i] = dataclasses.replace(q, name=name, qc=qc)
        if notify is not None:
            notify(
                f"{files[0]} and {files[1]} are named as the forward and reverse reads of "
                f"{stem} but do not overlap, so they were not assembled; each is identified "
                "on its own."
            )
    out: list[Query] = []
    for i, q in enumerate(queries):
        if i not in replace:
            out.append(q)
        elif replace[i] is not None:
            out.append(replace[i])  # type: ignore[arg-type]
    return out


def marker_of(result: SpeciesAnalysis) -> str | None:
    """The marker a query was matched on (that of its best hit), None without hits."""
    hits = result.identification.top_hits
    return hits[0].marker if hits else None


def one_sample(results: Sequence[SpeciesAnalysis]) -> bool:
    """True when the queries can be one sample's: each on another gene (`gene_key`), or
    the forward and reverse reads of one sample (`read_pairs`)."""
    from species_ref.markers import gene_key

    if len(results) <= 1:
        return True
    found = [marker_of(r) for r in results]
    genes = [gene_key(m) for m in found if m is not None]
    if len(genes) == len(found) and len(set(genes)) == len(genes):
        return True
    reads = [(r.identification.query, r.source.file) for r in results]
    return len(results) == 2 and bool(read_pairs(reads))


def read_query_map(path: Path) -> dict[str, str]:
    """A `--map` file: CSV with the columns query and item, one row per query."""
    import csv

    text = read_text(path, what="query map")
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise InvalidInput(
            f"The query map {path} is not a readable CSV ({e}); save it as CSV with the "
            "header query,item."
        ) from None
    mapping: dict[str, str] = {}
    for n, row in enumerate(rows, start=2):
        query, item = (row.get("query") or "").strip(), (row.get("item") or "").strip()
        if not query or not item:
            raise InvalidInput(
                f"Row {n} of the query map {path} needs a query and an item (header: query,item)."
            )
        if mapping.setdefault(query, item) != item:
            raise InvalidInput(f"Query {query} is mapped to two items in {path}; keep one row.")
    return mapping


def assign_to_items(
    results: Sequence[SpeciesAnalysis], *, item: str | None, mapping: Mapping[str, str] | None
) -> dict[str, list[SpeciesAnalysis]]:
    """Which item each identification is recorded on; refuses a file of several samples
    given one item, and queries the map leaves out."""
    if mapping is not None:
        names = [r.identification.query for r in results]
        missing = [n for n in names if n not in mapping]
        if missing:
            raise InvalidInput(
                f"Query {missing[0]} is not in the query map; add a row '{missing[0]},ITEM'."
            )
        out: dict[str, list[SpeciesAnalysis]] = {}
        for r in results:
            out.setdefault(mapping[r.identification.query], []).append(r)
        return out
    if item is None:
        return {}
    if not one_sample(results):
        several_files = len({r.source.file for r in results}) > 1
        shown = ", ".join(
            f"{r.identification.query} in {r.source.file}"
            if several_files and r.identification.query != r.source.file
            else r.identification.query
            for r in results[:4]
        )
        raise InvalidInput(
            f"The query files hold {len(results)} queries ({shown}{', ...' if len(results) > 4 else ''}) "
            f"that are not one sample's markers or forward/reverse reads; record each on its own "
            "item with --map queries.csv (columns query,item) or one file per item."
        )
    return {item: list(results)}


@dataclass(frozen=True)
class SampleAnalysis:
    """One sample's markers: each query's identification in the library of its marker, and one finding."""

    sample: str
    results: list[SpeciesAnalysis]  # one per marker query (assembled reads count once)
    combined: CombinedCall

    def event_results(self) -> list[SpeciesAnalysis]:
        """The per-marker results with the combined finding added (key "combined")."""
        return [
            SampleResult(
                identification=r.identification,
                cites_listings=r.cites_listings,
                source=r.source,
                sequence=r.sequence,
                combined=self.combined,
            )
            for r in self.results
        ]


@dataclass(frozen=True, eq=False)
class SampleResult(SpeciesAnalysis):
    """A marker's identification that is part of a combined sample finding."""

    combined: CombinedCall | None = None

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.combined is not None:
            data["combined"] = self.combined.to_dict()
        return data


def _best_score(result: Identification) -> tuple[float, int]:
    """How well a query's hits fit a library: best identity times coverage, then alignment length."""
    hits = result.top_hits
    if not hits:
        return (0.0, 0)
    h = hits[0]
    return (h.identity * h.query_coverage, h.aligned_length)


def identify_sample(
    store: Store,
    *,
    files: Sequence[Path],
    libraries: Sequence[str],
    sample: str,
    rule: str = "default",
    analyst: Signer | None = None,
    progress: ProgressFn | None = None,
    notify: Callable[[str], None] | None = None,
) -> SampleAnalysis:
    """Identify one sample's marker queries, each in the library its hits fit best, and combine.

    Only reads whose names mark them as a sample's forward and reverse reads
    (`read_pairs`) are assembled, when they overlap (`assemble_read_pairs`, which
    warns through `notify` when they do not). Other queries of one gene are kept,
    and count once in the combined call. The caller says that the queries are one
    sample's; when the reads' names point to several samples (`read_samples`), the
    combined finding carries a flag that says so, and `notify` is told.
    """
    from species_ref.cites import bundled_index, lookup_cites, walk_synonyms
    from species_ref.combine import NO_MARKER, MarkerCall, combine_calls, unique_names
    from species_ref.identify import Engine, identify
    from species_ref.reading import read_queries
    from species_ref.rules import get_rule

    if analyst is not None:
        from custody.events import check_permission

        check_permission(analyst.actor, EventType.ANALYSE)
    if not libraries:
        raise InvalidInput("Name at least one library with --library.")
    chosen_rule = get_rule(rule)
    # Reads named as one sample's forward and reverse reads are assembled before any
    # search, whichever marker their hits fall on.
    read = unique_names([q for path in files for q in read_queries(path)])
    named = read_samples([(q.name, Path(q.path).name) for q in read])
    flags: list[str] = []
    if len(named) > 1:
        flags.append(
            f"the reads' names point to {len(named)} different samples ({', '.join(named)}); "
            f"they were combined as sample {sample} because they were given as one sample"
        )
        if notify is not None:
            notify(
                f"The reads' names point to {len(named)} different samples ({', '.join(named)}), "
                f"but they are combined as one sample, {sample}, as asked; check that they "
                "are one sample's reads."
            )
    queries = assemble_read_pairs(read, notify=notify)
    refs = reference_store(store)
    engines: dict[str, Engine] = {}
    validations: dict[str, ValidationDoc | None] = {}
    for name in dict.fromkeys(libraries):
        lib = refs.open(name)
        engines[name] = Engine(lib, cache_dir=refs.cache_dir(lib.name, lib.version))
        validations[name] = current_validation(
            refs, library=lib.name, version=lib.version, rule=chosen_rule
        )

    bundled_index()  # read once here, before the search workers fork and share it

    def run(name: str, batch: Sequence[Query]) -> list[Identification]:
        return identify(
            batch, engines[name], rule=chosen_rule, cites=lookup_cites,
            validation=validations[name], progress=progress,
        )  # fmt: skip

    per_lib = {name: run(name, queries) for name in engines}
    final: list[tuple[str, Query, Identification]] = []
    for i, q in enumerate(queries):
        name = max(engines, key=lambda n: _best_score(per_lib[n][i]))
        final.append((name, q, per_lib[name][i]))
    results: list[SpeciesAnalysis] = []
    calls: list[MarkerCall] = []
    for name, q, res in final:
        lib = engines[name].version
        lookup = walk_synonyms(lookup_cites, lib.synonyms_of) if lib.synonyms else lookup_cites
        results.append(
            SpeciesAnalysis(
                res, _cites_statuses(res, lookup), QuerySource.of(q), sequence=q.sequence
            )
        )
        calls.append(
            MarkerCall(
                query=res.query,
                marker=res.top_hits[0].marker if res.top_hits else NO_MARKER,
                library=f"{lib.name} v{lib.version}",
                level=res.level,
                taxon=res.taxon,
                candidates=tuple(c.species for c in res.candidates),
            )
        )
    combined = combine_calls(sample, calls, flags=flags)
    return SampleAnalysis(sample=sample, results=results, combined=combined)
