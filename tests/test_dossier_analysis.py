"""Stored species identifications read back as typed values, and shown in the dossier
whatever shape they were recorded in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from custody import events as ev
from custody.analysis import (
    SPECIES_IDENTIFICATION,
    AnalysisResult,
    Level,
    species_identifications,
)
from custody.dossier.build import build_dossier, verify_dossier
from custody.dossier.case import collect_case
from tests.conftest import CASE, World

# Trimmed from an analyse event the demo records (Identification.to_dict() plus
# what custody.species adds): every key the reader knows, with the stored types.
CURRENT: dict[str, Any] = {
    "analysis": SPECIES_IDENTIFICATION,
    "query": "demo_Manis_pentadactyla_12S-V5",
    "query_sha256": "sha256:" + "a" * 64,
    "query_length": 100,
    "level": "species",
    "taxon": "Manis pentadactyla",
    "rank": "species",
    "statement": "consistent with Manis pentadactyla",
    "identity": 98.98,
    "coverage": 98.0,
    "next_species_distance": 3.1,
    "flags": [
        "short query (100 bp): mini-barcode, fewer sites separate species",
        "CITES-listed species: Manis pentadactyla (Appendix I)",
    ],
    "candidates": [],
    "hits": [
        {
            "species": "Manis pentadactyla",
            "best_identity": 98.98,
            "aligned_length": 98,
            "coverage": 98.0,
            "gaps": 0,
            "n_refs": 3,
            "n_supporting": 2,
            "accessions": ["AY012154", "MH423733"],
            "strand": "+",
        },
        {"species": "Manis culionensis", "best_identity": 95.9, "n_refs": 1},
    ],
    "top_hits": [
        {"seq_id": "AY012154", "species": "Manis pentadactyla", "marker": "12S-V5"},
        {"seq_id": "X1", "species": "Manis culionensis", "marker": "cytb"},
    ],
    "library_name": "demo-barcodes",
    "library_version_number": 1,
    "library_version": "sha256:" + "b" * 64,
    "rule": {"description": "98.5 % identity", "genus_floor": 95.0, "name": "default"},
    "qc": {
        "ambiguous_fraction": 0.0,
        "length": 100,
        "mean_quality": None,
        "raw_length": 100,
        "trimmed": False,
        "warnings": ["short query (100 bp): mini-barcode"],
    },
    "cites": {"Manis pentadactyla": "I"},
    "cites_listings": [
        {
            "appendix": "I",
            "listed_under": "Manis pentadactyla",
            "snapshot": "2017-04-21",
            "species": "Manis pentadactyla",
            "statement": "Manis pentadactyla is listed in CITES Appendix I (snapshot 2017-04-21).",
        }
    ],
    "source": {
        "details": {"description": "held out of the demo library"},
        "file": "sample_query.fasta",
        "file_sha256": "sha256:" + "c" * 64,
        "format": "fasta",
    },
    "species_stats": {
        "intra_max": 10.204,
        "n_refs": 3,
        "nn_distance": 3.906,
        "nn_species": "Manis culionensis",
        "species": "Manis pentadactyla",
    },
    "validation": {
        "method": "leave-one-out",
        "rule": {"name": "default"},
        "sampled": True,
        "max_queries": 200,
        "seed": 7,
        "summary": {
            "correct_species_rate": 0.322,
            "wrong_species_rate": 0.009,
            "false_species_rate_absent": 0.061,
            "n_present": 200,
            "n_absent": 180,
        },
    },
}


def test_current_shape_reads_as_recorded() -> None:
    r = AnalysisResult.from_data(CURRENT)
    assert r.level is Level.SPECIES and r.level_words == "Species"
    assert (r.taxon, r.statement) == ("Manis pentadactyla", "consistent with Manis pentadactyla")
    assert (r.identity, r.coverage, r.next_species_distance) == (98.98, 98.0, 3.1)
    assert r.flags == tuple(CURRENT["flags"])
    assert [h.species for h in r.hits] == ["Manis pentadactyla", "Manis culionensis"]
    best = r.hits[0]
    assert (best.aligned_length, best.gaps, best.n_refs, best.n_supporting) == (98, 0, 3, 2)
    assert best.accessions == ("AY012154", "MH423733")
    assert r.markers == ["12S-V5", "cytb"]
    assert r.query_bases == 100 and r.qc is not None and r.qc.mean_quality is None
    assert r.qc.warnings == ("short query (100 bp): mini-barcode",)
    assert r.rule.name == "default" and r.rule.settings == (("genus_floor", 95.0),)
    assert r.source is not None and r.source.details == {
        "description": "held out of the demo library"
    }
    assert r.called_appendix == "I" and r.appendix_of("Manis culionensis") == ""
    assert [x.snapshot for x in r.cites_listings] == ["2017-04-21"]
    assert r.species_stats is not None and r.species_stats.nn_species == "Manis culionensis"
    v = r.validation
    assert v is not None and (v.correct_species_rate, v.n_absent, v.seed) == (0.322, 180, 7)
    assert v.sampled and v.rule_name == "default"


def test_each_level_has_its_report_words_and_an_unknown_one_shows_as_stored() -> None:
    words = {level: AnalysisResult.from_data({"level": level.value}).level_words for level in Level}
    assert words == {
        Level.SPECIES: "Species",
        Level.AMBIGUOUS: "Ambiguous",
        Level.GENUS: "Genus only",
        Level.NONE: "No identification",
    }
    odd = AnalysisResult.from_data({"level": "subspecies"})
    assert odd.level is None and odd.level_words == "subspecies"


def test_cites_appendix_of_a_call_above_species_lists_the_listed_candidates() -> None:
    listed = {"Manis javanica": "I", "Manis culionensis": "I"}
    genus = AnalysisResult.from_data({"level": "genus", "taxon": "Manis", "cites": listed})
    assert genus.called_appendix == "Manis javanica: I; Manis culionensis: I"
    assert AnalysisResult.from_data({"taxon": "Manis", "cites": None}).called_appendix == ""


def test_cites_of_species_that_are_neither_called_nor_tied_are_not_relevant() -> None:
    # Below the genus floor the closest species are no candidates: their listings are
    # not the item's, whatever the look-up recorded.
    below = AnalysisResult.from_data(
        {"level": "none", "taxon": None, "candidates": [], "cites": {"Saiga tatarica": "II"}}
    )
    assert below.relevant_species == [] and below.called_appendix == ""
    assert below.appendix_of("Saiga tatarica") == "" and below.relevant_listings == ()
    species = AnalysisResult.from_data(
        {**CURRENT, "cites": {"Manis pentadactyla": "I", "Manis javanica": "I"}}
    )
    # A species call keeps the species recorded within its gap (tied, not excluded).
    assert species.relevant_species == ["Manis pentadactyla", "Manis javanica"]
    assert [x.snapshot for x in species.relevant_listings] == ["2017-04-21"]
    unknown = AnalysisResult.from_data({"level": "subspecies", "cites": {"Manis javanica": "I"}})
    assert unknown.relevant_cites == {}


def test_warnings_and_flags_carried_with_codes_read_as_their_text() -> None:
    r = AnalysisResult.from_data(
        {
            "flags": [["single-ref", "only one reference sequence"], {"text": "CITES-listed"}],
            "qc": {"length": 90, "warnings": [["short", "short query (90 bp)"]]},
        }
    )
    assert r.flags == ("only one reference sequence", "CITES-listed")
    assert r.qc is not None and r.qc.warnings == ("short query (90 bp)",)


def test_missing_or_mistyped_values_read_as_defaults() -> None:
    empty = AnalysisResult.from_data({})
    assert (empty.level, empty.statement, empty.hits, empty.validation) == (None, "", (), None)
    assert empty.source is None and empty.qc is None and empty.cites == {}
    odd = AnalysisResult.from_data(
        {
            "identity": "99",
            "hits": "none",
            "cites": ["Manis javanica"],
            "qc": [1],
            "validation": {"summary": "n/a", "sampled": 1},
            "rule": {"name": "default", "weights": [1, 2]},
            "top_hits": [None, {"marker": 5}],
            "query_length": True,
        }
    )
    assert odd.identity is None and odd.hits == () and odd.cites == {} and odd.qc is None
    assert odd.validation is not None and odd.validation.correct_species_rate is None
    assert odd.rule.settings == (("weights", "[1, 2]"),)
    assert odd.markers == ["5"] and odd.query_length is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(CURRENT)), value=json_values)
def test_any_value_under_any_key_reads_without_error(key: str, value: Any) -> None:
    r = AnalysisResult.from_data({**CURRENT, key: value})
    assert isinstance(r.level_words, str) and isinstance(r.called_appendix, str)
    assert all(isinstance(f, str) for f in r.flags)


def _older_case(world: World) -> str:
    """An item handed to the analyst, who records identifications in older shapes."""
    item = world.item(description="Bag of scales from the market stall")
    ev.record_transfer(
        world.store, item_id=item, signer=world.officer, receiver=world.analyst, purpose="DNA"
    )
    ev.record_receive(world.store, item_id=item, signer=world.analyst, condition="bag intact")
    older = [
        # Barely more than a statement.
        {"analysis": SPECIES_IDENTIFICATION, "statement": "no usable sequence"},
        # Recorded before query sources, CITES listings, validation and statistics.
        {
            "analysis": SPECIES_IDENTIFICATION,
            "query": "scale-1",
            "level": "genus",
            "taxon": "Manis",
            "statement": "genus Manis (ambiguous between two species)",
            "identity": 97.5,
            "coverage": 100,
            "flags": ["several species above threshold"],
            "hits": [{"species": "Manis javanica", "best_identity": 97.5, "n_refs": 4}],
            "cites": {"Manis javanica": "I"},
            "rule": {"name": "fixed-98.5", "species_identity": 98.5},
        },
    ]
    for data in older:
        ev.record_analysis(world.store, item_id=item, signer=world.analyst, result=data)
    return item


def test_identifications_recorded_in_older_shapes_still_make_a_valid_dossier(
    world: World, tmp_path: Path
) -> None:
    item = _older_case(world)
    case = collect_case(world.store, CASE)
    assert [a.result.level for a in case.analyses] == [None, Level.GENUS]
    assert [a.event.item_id for a in species_identifications(case.events)] == [item, item]
    out = tmp_path / "dossier.pdf"
    build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor)
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in PdfReader(out).pages))
    assert "Genus only: genus Manis (ambiguous between two species)" in text
    assert ": no usable sequence" in text
    # The summary shows each finding, and for a genus the listed candidates' appendices,
    # saying that the date of the listing was not recorded.
    assert "Manis javanica: App. I (listing date not recorded)" in text
    assert "97.50 %" in text and "several species above threshold" in text
    assert "Rule 'fixed-98.5' as recorded" in text and "species identity 98.5" in text
    # Once per library version and rule, not after every result.
    assert text.count("was not validated under rule") == 2
    assert verify_dossier(out).valid
