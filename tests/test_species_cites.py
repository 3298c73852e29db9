"""CITES look-up against the bundled snapshots, and the genus -> family -> order walk."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from pathlib import Path

import pytest

from species_ref.cites import (
    BUNDLE,
    LOOKUP,
    CitesIndex,
    LookupTables,
    lookup_cites,
    parse_bundle,
)
from species_ref.errors import SpeciesRefError


def test_pangolin_is_appendix_i() -> None:
    hit = lookup_cites("Manis javanica")
    assert hit is not None
    assert (hit.appendix, hit.rank, hit.matched_by) == ("I", "species", "name")
    assert hit.snapshot == "2017-04-21"
    assert "Pangolin" in hit.english_name
    assert hit.listed


def test_grey_parrot_is_appendix_i() -> None:
    hit = lookup_cites("Psittacus erithacus")
    assert hit is not None and hit.appendix == "I"
    assert (
        hit.summary() == "Psittacus erithacus is listed in CITES Appendix I (snapshot 2017-04-21)."
    )


def test_hammerhead_is_appendix_ii() -> None:
    hit = lookup_cites("Sphyrna lewini")
    assert hit is not None and hit.appendix == "II" and hit.family == "Sphyrnidae"


def test_hummingbird_missing_from_the_checklist_is_covered_by_the_higher_listing() -> None:
    # Described in 2017, after the snapshot: not in the checklist as a species.
    hit = lookup_cites("Oreotrochilus cyanolaemus")
    assert hit is not None
    assert hit.appendix == "II"
    assert hit.matched_by == "genus" and hit.taxon == "Oreotrochilus"
    assert hit.family == "Trochilidae"
    assert "through the listing of genus Oreotrochilus" in hit.summary()


def test_budgerigar_is_explicitly_not_covered() -> None:
    hit = lookup_cites("Melopsittacus undulatus")
    assert hit is not None
    assert hit.appendix == "not listed" and not hit.listed
    assert "not covered" in hit.summary()


def test_domestic_cat_nc_row_stops_the_felidae_walk() -> None:
    hit = lookup_cites("Felis catus")
    assert hit is not None and not hit.listed


@pytest.mark.parametrize(
    "name", ["Homo sapiens", "Bos taurus", "Sus scrofa", "", "Nonexistus fakeus"]
)
def test_unlisted_species_give_none(name: str) -> None:
    assert lookup_cites(name) is None


def test_reptiles_answer_from_the_2023_snapshot() -> None:
    # Indian star tortoise: Appendix II in 2017, moved to Appendix I in 2019.
    hit = lookup_cites("Geochelone elegans")
    assert hit is not None
    assert hit.appendix == "I" and hit.snapshot == "2023-07"
    assert "Reptilia" in hit.source
    turtle = lookup_cites("Chelonia mydas")
    assert turtle is not None and turtle.snapshot == "2023-07"
    assert turtle.listed_under == "Cheloniidae spp."
    assert turtle.english_name  # borrowed from the 2017 row


def test_synonyms_and_subspecies_and_spelling() -> None:
    hit = lookup_cites("Phataginus tricuspis")
    assert hit is not None and hit.matched_by == "synonym" and hit.taxon == "Manis tricuspis"
    assert "as Manis tricuspis" in hit.summary()
    tiger = lookup_cites("panthera_tigris altaica")
    assert tiger is not None and tiger.taxon == "Panthera tigris" and tiger.appendix == "I"


def test_taxa_listed_after_the_snapshot_are_missing() -> None:
    # Mako sharks were listed in 2019; the 2017 snapshot cannot know.
    assert lookup_cites("Isurus oxyrinchus") is None


# --- the walk on a tiny synthetic index ---------------------------------------------

_HEADER = (
    "snapshot,taxon_name,rank,appendix,annotation,hash_annotation,listed_under,kingdom,phylum,"
    "class,order,family,genus,species,subspecies,synonyms,english_names"
)
_ROWS = [
    "2017-04-21,Avesformes,ORDER,II,,,Avesformes spp.,Animalia,Chordata,Aves,Avesformes,,,,,,",
    "2017-04-21,Pluma,GENUS,,,,Pluma spp.,Animalia,Chordata,Aves,Avesformes,Plumidae,Pluma,,,,",
    "2017-04-21,Plumidae,FAMILY,I/II,,,Plumidae spp.,Animalia,Chordata,Aves,Avesformes,Plumidae,,,,,",
    "2017-04-21,Pluma alba,SPECIES,I,,,Pluma alba,Animalia,Chordata,Aves,Avesformes,Plumidae,"
    "Pluma,alba,,Pluma candida Smith 1900,White plume",
    "2017-04-21,Rostra nigra,SPECIES,II,,,Rostra nigra,Animalia,Chordata,Aves,Avesformes,"
    "Rostridae,Rostra,nigra,,,",
    "2017-04-21,Domus,GENUS,NC,,,Domus spp.,Animalia,Chordata,Aves,Avesformes,Domidae,Domus,,,,",
]


@pytest.fixture
def index(tmp_path: Path) -> CitesIndex:
    path = tmp_path / "mini.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([_HEADER, *_ROWS]) + "\n").encode()))
    return CitesIndex.load(path)


def test_walk_goes_to_the_family_when_the_genus_row_has_no_appendix(index: CitesIndex) -> None:
    hit = index.lookup("Pluma rubra")
    assert hit is not None
    assert (hit.taxon, hit.rank, hit.matched_by, hit.appendix) == (
        "Plumidae",
        "family",
        "family",
        "I/II",
    )


def test_walk_goes_to_the_order_when_no_family_row_exists(index: CitesIndex) -> None:
    hit = index.lookup("Rostra alba")
    assert hit is not None
    assert (hit.taxon, hit.matched_by, hit.appendix) == ("Avesformes", "order", "II")


def test_nc_genus_row_stops_the_walk(index: CitesIndex) -> None:
    hit = index.lookup("Domus domesticus")
    assert hit is not None and not hit.listed and hit.taxon == "Domus"


def test_species_and_synonym_rows_win_over_the_walk(index: CitesIndex) -> None:
    assert index.lookup("Pluma alba").appendix == "I"  # type: ignore[union-attr]
    syn = index.lookup("Pluma candida")
    assert syn is not None and syn.matched_by == "synonym" and syn.taxon == "Pluma alba"


def test_unknown_genus_gives_none(index: CitesIndex) -> None:
    assert index.lookup("Ignotus ignotus") is None


def test_unreadable_bundle_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(SpeciesRefError, match="cannot be read"):
        CitesIndex.load(bad)


def test_bundle_keeps_only_the_needed_columns() -> None:
    from importlib import resources

    blob = resources.files("species_ref").joinpath("data", "cites_listings.csv.gz").read_bytes()
    header = next(csv.reader(io.StringIO(gzip.decompress(blob).decode()[:2000])))
    assert header == _HEADER.split(",")


def _shipped() -> tuple[bytes, bytes]:
    from importlib import resources

    data = resources.files("species_ref").joinpath("data")
    return data.joinpath(BUNDLE).read_bytes(), data.joinpath(LOOKUP).read_bytes()


def test_shipped_lookup_tables_are_those_of_the_shipped_bundle() -> None:
    # A bundle rebuilt without its tables would silently fall back to the slow path.
    blob, shipped = _shipped()
    tables = LookupTables.from_json(shipped, bundle_sha256=hashlib.sha256(blob).hexdigest())
    assert tables is not None, "rerun bench/make_cites_bundle.py --lookup-only"
    rows, one_per_line = parse_bundle(gzip.decompress(blob).decode())
    assert one_per_line
    assert tables == LookupTables.build(rows)


def test_rows_read_on_demand_answer_as_the_whole_bundle_does() -> None:
    blob, _ = _shipped()
    lazy = CitesIndex.load()
    full = CitesIndex(parse_bundle(gzip.decompress(blob).decode())[0])
    names = [
        "Manis javanica", "Psittacus erithacus", "Python regius", "Felis catus",
        "Loxodonta africana", "Carcharhinus longimanus", "Dalbergia nigra", "Homo sapiens",
        "Crocodylus niloticus", "Falco tachiro", "Accipiter fakeus", "Gena spa", "Canis lupus dingo",
    ]  # fmt: skip
    answers = [lazy.lookup(n) for n in names]
    assert answers == [full.lookup(n) for n in names]
    assert sum(a is not None for a in answers) >= 9


def test_lookup_tables_of_another_bundle_are_ignored(tmp_path: Path) -> None:
    blob, shipped = _shipped()
    assert LookupTables.from_json(shipped, bundle_sha256="0" * 64) is None
    assert LookupTables.from_json(b"not gzip", bundle_sha256="0" * 64) is None
