"""Species identification inside custody: reference libraries beside the store,
and `analyse` events that record identifications on items.

Invariants: every query file is read and checked before anything is matched
or written (a bad file changes nothing); an identification recorded on an item
holds the query hashes, trimming figures, the library's name, version and
content hash, the rule with its values, the hits and the call, so it can be
reproduced exactly later; the analyst signs it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from custody.domain import EventType
from custody.events import ItemAct, Recorded, Signer, record_item_events
from custody.store import Store

ProgressFn = Callable[[int, int], None]

BUNDLED_LIBRARY = "demo-barcodes"


def bundled_data(name: str) -> Path:
    import species_ref

    return Path(species_ref.__file__).parent / "data" / name


def reference_store(store: Store) -> Any:
    from species_ref.library import LibraryStore

    return LibraryStore(store.references_dir)


def validation_key(rule: str) -> str:
    return f"validation-{rule}"


def prepare_reference(
    store: Store,
    *,
    library: str,
    version: int | None = None,
    progress: ProgressFn | None = None,
) -> Any:
    """Build and cache a library version's k-mer index and species statistics.

    Done once per version (normally right after import), so the first
    identification does not pay for it; later calls find the cache. Returns the
    ready search engine (`species_ref.identify.Engine`).
    """
    from species_ref.identify import Engine

    refs = reference_store(store)
    lib = refs.load(library, version)
    return Engine(lib, cache_dir=refs.cache_dir(lib.name, lib.version), progress=progress)


def reference_conflicts(
    store: Store,
    *,
    library: str,
    version: int | None = None,
    within: float = 0.5,
    engine: Any = None,
) -> list[dict[str, Any]]:
    """Species pairs of a library version with references within `within` % of each other.

    `engine` is the version's engine when the caller has it (from `prepare_reference`).
    """
    from species_ref.cites import lookup_cites
    from species_ref.conflicts import find_conflicts

    if engine is None:
        engine = prepare_reference(store, library=library, version=version)
    found = find_conflicts(engine.index, engine.profile, within=within, cites=lookup_cites)
    return [c.to_dict() for c in found]


def identify_files(
    store: Store,
    *,
    files: Sequence[Path],
    library: str,
    version: int | None = None,
    rule: str = "default",
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """Read, QC and identify every query in `files`; returns one result dict per query."""
    from species_ref.cites import lookup_cites
    from species_ref.decision import get_rule
    from species_ref.identify import identify
    from species_ref.reading import read_queries

    chosen_rule = get_rule(rule)
    queries = [q for path in files for q in read_queries(path)]
    refs = reference_store(store)
    lib = refs.load(library, version)
    validation = refs.attachment(lib.name, lib.version, validation_key(chosen_rule.name))
    results = identify(
        queries,
        lib,
        rule=chosen_rule,
        cites=lookup_cites,
        validation=validation,
        progress=progress,
        cache_dir=refs.cache_dir(lib.name, lib.version),
    )
    out = []
    for query, result in zip(queries, results, strict=True):
        data = result.to_dict()
        data["cites_listings"] = _cites_details(data, lookup_cites)
        data["source"] = {
            "file": Path(query.path).name,
            "file_sha256": query.file_sha256,
            "format": query.source_format,
            "details": dict(query.extra),
        }
        out.append(data)
    return out


def _cites_details(result: dict[str, Any], lookup: Callable[[str], Any]) -> list[dict[str, str]]:
    """CITES status of the called species and every candidate, with the snapshot date."""
    names: list[str] = []
    for name in [result.get("taxon"), *(c.get("species") for c in result.get("candidates", []))]:
        if name and " " in name and name not in names:
            names.append(name)
    details = []
    for name in names:
        listing = lookup(name)
        if listing is None:
            details.append(
                {
                    "species": name,
                    "appendix": "not listed",
                    "statement": f"{name} has no CITES listing in the bundled snapshots.",
                }
            )
            continue
        details.append(
            {
                "species": name,
                "appendix": listing.appendix,
                "listed_under": listing.listed_under or listing.taxon,
                "snapshot": listing.snapshot,
                "statement": listing.summary(),
            }
        )
    return details


def validate_reference(
    store: Store,
    *,
    library: str,
    version: int | None = None,
    rule: str = "default",
    max_queries: int | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Measure a library version's error rates and attach them to it (used by every result)."""
    from species_ref.decision import get_rule
    from species_ref.identify import Engine
    from species_ref.validate import validate_library

    chosen = get_rule(rule)
    refs = reference_store(store)
    lib = refs.load(library, version)
    engine = Engine(lib, cache_dir=refs.cache_dir(lib.name, lib.version))
    report = validate_library(
        lib, rule=chosen, progress=progress, max_queries=max_queries, engine=engine
    )
    data: dict[str, Any] = report.to_dict()
    refs.attach(lib.name, lib.version, validation_key(chosen.name), data)
    return data


def record_identifications(
    store: Store,
    *,
    item_id: str,
    signer: Signer,
    results: Sequence[dict[str, Any]],
    at: str | None = None,
) -> Recorded:
    """One signed `analyse` event per identification, all in one transaction."""
    acts = [
        ItemAct(item_id, EventType.ANALYSE, {"analysis": "species-identification", **r})
        for r in results
    ]
    return record_item_events(store, acts=acts, signer=signer, at=at)
