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
    assert "Decision rule 'fixed-98.5' as recorded" in text and "species identity 98.5" in text
    assert "Decision rule (name not recorded) as recorded No setting was recorded" in text
    # Once per library version and rule, not after every result.
    assert text.count("was not validated under rule") == 2
    assert verify_dossier(out).valid


# A species call far from the next species, whose library statistics name a sister
# species at 0.0 % (a misidentified record), and a result below the genus floor whose
# CITES look-up named an unrelated listed species.
MOKARRAN: dict[str, Any] = {
    **CURRENT,
    "query": "fin-1",
    "taxon": "Sphyrna mokarran",
    "statement": "consistent with Sphyrna mokarran",
    "identity": 100.0,
    "next_species_distance": 6.96,
    "flags": [],
    "candidates": [{"species": "Sphyrna mokarran", "best_identity": 100.0}],
    "hits": [
        {
            "species": "Sphyrna mokarran",
            "best_identity": 100.0,
            "aligned_length": 600,
            "n_refs": 5,
            "n_supporting": 5,
            "accessions": ["M1", "M2"],
        },
        {"species": "Sphyrna zygaena", "best_identity": 93.04, "aligned_length": 600},
        {"species": "Sphyrna lewini", "best_identity": 92.5, "aligned_length": 600},
    ],  # fmt: skip
    "top_hits": [
        {
            "seq_id": "M1",
            "species": "Sphyrna mokarran",
            "marker": "COI-5P",
            "identity": 100.0,
            "aligned_length": 600,
            "mismatches": 0,
            "gaps": 0,
            "query_start": 0,
            "query_end": 600,
            "ref_start": 12,
            "ref_end": 612,
            "strand": "+",
        },
    ],  # fmt: skip
    "query_sequence": "ACGT" * 150,
    "rule": {
        "name": "default",
        "species_identity": 98.5,
        "species_gap": 1.0,
        "genus_floor": 95.0,
        "discount_conserved_errors": True,
    },  # fmt: skip
    "cites": {"Sphyrna mokarran": "II"},
    "cites_listings": [
        {
            "species": "Sphyrna mokarran",
            "appendix": "II",
            "listed_under": "Sphyrna mokarran",
            "snapshot": "2017-04-21",
            "statement": "Sphyrna mokarran is listed in CITES Appendix II (snapshot 2017-04-21).",
        }
    ],  # fmt: skip
    "species_stats": {
        "species": "Sphyrna mokarran",
        "n_refs": 6,
        "intra_max": 0.3,
        "nn_distance": 0.0,
        "nn_species": "Sphyrna lewini",
    },  # fmt: skip
}
BELOW_FLOOR: dict[str, Any] = {
    **CURRENT,
    "query": "fin-2",
    "level": "none",
    "taxon": None,
    "rank": None,
    "statement": "no identification (best match Saiga tatarica at 75.8 %, below the 95 % genus floor)",
    "identity": 75.8,
    "next_species_distance": 0.4,
    "flags": [],
    "candidates": [],
    "hits": [
        {"species": "Saiga tatarica", "best_identity": 75.8, "aligned_length": 500},
        {"species": "Bos taurus", "best_identity": 75.4, "aligned_length": 500},
    ],
    "cites": {"Saiga tatarica": "II"},
    "cites_listings": [],
    "species_stats": None,
}


def _record_and_build(world: World, tmp_path: Path, *results: dict[str, Any]) -> str:
    item = world.hand_to_lab(world.item(description="Carton of fins"))
    for data in results:
        ev.record_analysis(world.store, item_id=item, signer=world.analyst, result=data)
    out = tmp_path / "dossier.pdf"
    build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor)
    assert verify_dossier(out).valid
    return re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in PdfReader(out).pages))


def test_distances_rule_and_cites_read_as_one_consistent_account(
    world: World, tmp_path: Path
) -> None:
    text = _record_and_build(world, tmp_path, MOKARRAN, BELOW_FLOOR)
    assert "The library files" not in text  # no other names filed under the call
    # The rule in words, with what held; the raw settings only in Appendix B.
    assert "calls a species only when (1) the best match reaches 98.5 % identity" in text
    assert (
        "Here the best match, Sphyrna mokarran, is at 100.00 %; the next species, Sphyrna "
        "zygaena, matches 6.96 percentage points less well; and the library checks passed"
    ) in text
    assert "discount conserved errors True" not in text
    settings = text[text.index("Appendix B. Identification details") :]
    assert "discount conserved errors yes" in settings
    # "Next species" in plain words, and the library's 0.0 % reconciled with the call.
    assert "Distance to the next species: 6.96 %. This means that the best reference" in text
    assert "the next-closest species, Sphyrna zygaena, is 93.04 % identical to the query, " in text
    assert "about 42 more differing base(s)" in text  # 6.96 % of 600 aligned bases
    assert "6.96 percentage points less than the best reference of Sphyrna mokarran" in text
    assert "nearest other species in the library is Sphyrna lewini at 0.0 %" not in text
    assert (
        "Between reference sequences (not involving the query), the reference of another species "
        "closest to any reference of Sphyrna mokarran belongs to Sphyrna lewini, 0.00 % away."
    ) in text
    assert "This does not contradict the call" in text and "misidentified" in text
    assert "its best reference matches the query at 92.50 %" in text
    # The CITES listing is dated, with a caution for a snapshot years older than the analysis.
    assert "Sphyrna mokarran App. II 2017-04-21" in text
    assert "App. II (listing of 2017-04-21)" in text  # the hits table too
    assert "Caution: the CITES listing shown comes from the snapshot of 2017-04-21" in text
    # Below the genus floor: no candidate, so no CITES listing belongs to the result.
    assert "Saiga tatarica: App. II" not in text and "App. II 2017" not in text.replace(
        "Sphyrna mokarran App. II 2017", ""
    )
    assert "No species is called or tied with the call" in text
    assert "these species are not candidates" in text
    # Error rates and limitations once for the library version, true for it.
    assert text.count("Mitochondrial and plastid markers") == 1
    assert text.count("The error rates quoted were measured on this library version") == 1
    assert "Correct species calls (species in the library) 32.2 %" in text
    # Appendix B: the best alignment's summary and the query sequence.
    assert "M1 Sphyrna mokarran COI-5P 100.00 % 600 bp 0 0 1-600 13-612 +" in settings
    assert "ACGTACGTACGT" in settings.replace(" ", "")


def test_a_species_not_listed_reads_so_without_a_date_warning(world: World, tmp_path: Path) -> None:
    statement = "Sphyrna mokarran has no CITES listing in the bundled snapshots."
    unlisted = {
        **MOKARRAN,
        "cites": {},
        "cites_listings": [
            {"species": "Sphyrna mokarran", "appendix": "not listed", "statement": statement}
        ],
    }
    text = _record_and_build(world, tmp_path, unlisted)
    assert "Sphyrna mokarran: not listed (in the bundled snapshots)" in text
    assert statement in text
    assert "date not recorded" not in text and "was not recorded with this analysis" not in text


def test_a_recent_listing_carries_no_caution(world: World, tmp_path: Path) -> None:
    recent = {
        **MOKARRAN,
        "cites_listings": [{**MOKARRAN["cites_listings"][0], "snapshot": "2026-07"}],
    }
    text = _record_and_build(world, tmp_path, recent)
    assert "Sphyrna mokarran App. II 2026-07" in text and "Caution: the CITES" not in text


def test_identify_prints_cites_readably_for_called_species_only(world: World) -> None:
    from typer.testing import CliRunner

    from custody.cli.main import app
    from custody.species import bundled_data

    cli = CliRunner()
    imported = cli.invoke(app, ["ref", "import", "demo", str(bundled_data("demo_library.fasta"))])
    assert imported.exit_code == 0, imported.output
    result = cli.invoke(
        app, ["identify", str(bundled_data("demo_queries.fasta")), "--library", "demo"]
    )
    assert result.exit_code == 0, result.output
    blocks = result.stdout.split("\ndemo_")
    below = next(b for b in blocks if "Manis_pentadactyla_COI-5P" in b)
    # 88 % identity: the species that matched best are no candidates, so no CITES line.
    assert "NONE" in below and "CITES" not in below
    called = next(b for b in blocks if "Manis_pentadactyla_12S-V5" in b)
    assert "CITES: Manis pentadactyla: Appendix I (listing of 2017-04-21)" in called
    assert "next species Manis crassicaudata 8.071 % less identical" in called
    assert "{" not in result.stdout and "'I'" not in result.stdout


def test_summary_names_a_combined_finding_only_when_the_samples_agree(
    world: World, tmp_path: Path
) -> None:
    from custody.records import record_sample

    def sampled(description: str, *results: dict[str, Any]) -> str:
        item = world.hand_to_lab(world.item(description=description))
        for n, data in enumerate(results, start=1):
            child = record_sample(
                world.store, item_id=item, signer=world.analyst, description=f"scale {n}"
            ).id
            ev.record_analysis(world.store, item_id=child, signer=world.analyst, result=data)
        return item

    agree = sampled("Bag A", CURRENT, CURRENT)
    partial = sampled("Bag B", CURRENT, BELOW_FLOOR)
    ambiguous = {
        **CURRENT,
        "level": "ambiguous",
        "taxon": "Manis",
        "rank": "genus",
        "statement": "ambiguous between Manis javanica and Manis culionensis; reported at genus level Manis",
        "candidates": [{"species": "Manis javanica"}, {"species": "Manis culionensis"}],
    }
    tied = sampled("Bag C", ambiguous)
    out = tmp_path / "dossier.pdf"
    build_dossier(world.store, case_no=CASE, out=out, signer=world.prosecutor)
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in PdfReader(out).pages))
    start = text.index("Each analysed sample's own finding")
    summary = text[start : text.index(f"2. Item {agree}", start)]
    row_a = summary[summary.index(agree) : summary.index(f"{agree}.1")]
    assert "1.1: Manis pentadactyla (species) 1.2: Manis pentadactyla (species)" in row_a
    assert "All 2 analysed samples agree: Manis pentadactyla (species)." in row_a
    row_b = summary[summary.index(partial) : summary.index(f"{partial}.1")]
    assert "2.2: no identification" in row_b and "agree" not in row_b
    assert (
        "Not every analysis identifies: Manis pentadactyla (species) from 1 of 2 analyses; "
        "the others gave no identification."
    ) in row_b
    row_c = summary[summary.index(tied) : summary.index(f"{tied}.1")]
    assert "3.1: Manis (ambiguous: Manis javanica and Manis culionensis)" in row_c
    # The sub-sample that gave no identification shows its own result, not its sibling's.
    row_b2 = summary[summary.index(f"{partial}.2") :]
    assert row_b2.split(f"{partial}.2", 1)[1].split(" in custody")[0].count("Manis") == 0


def test_the_rule_in_words_names_the_exception_or_the_failed_condition(
    world: World, tmp_path: Path
) -> None:
    dominant_flag = (
        "5 references of Sphyrna mokarran match the query at 99.80-100.00 %, closer than any "
        "reference of another species (next: Sphyrna zygaena at 99.50 %)"
    )
    dominant = {
        **MOKARRAN,
        "query": "fin-3",
        "next_species_distance": 0.5,
        "hits": [MOKARRAN["hits"][0], {**MOKARRAN["hits"][1], "best_identity": 99.5}],
        "flags": [dominant_flag],
        "flag_codes": ["dominant-support"],
    }
    outside = (
        "query is 1.00 % from Sphyrna mokarran, outside the variation seen among its 6 "
        "references (at most 0.30 %)"
    )
    genus = {
        **MOKARRAN,
        "query": "fin-4",
        "level": "genus",
        "taxon": "Sphyrna",
        "rank": "genus",
        "statement": "consistent with genus Sphyrna; species not determined",
        "identity": 99.0,
        "flags": [outside],
        "flag_codes": ["outside-library-variation"],
    }
    identical_flag = (
        "Sphyrna mokarran is known from 2 references only, but the query is identical to one "
        "of them and its nearest other species in the library is a congener, Sphyrna zygaena, "
        "3.10 % away: this marker separates species of the genus, so a closely related species "
        "sharing the query's sequence exactly is unlikely"
    )
    identical = {
        **MOKARRAN,
        "query": "fin-5",
        "identity": 100.0,
        "flags": [identical_flag],
        "flag_codes": ["identical-match"],
    }
    one_base_flag = (
        "the query is identical to a reference of Sphyrna mokarran; the next species, Sphyrna "
        "zygaena, differs from it at 1 of 100 aligned bases (1.00 %). On a query this short the "
        "rule otherwise needs a 1 % gap and 2 differing bases, but a whole base suffices for a "
        "query identical to a reference of a species whose nearest other species in the "
        "library, Sphyrna zygaena, lies 3.10 % from it (at least 1 % is needed)"
    )
    one_base = {
        **MOKARRAN,
        "query": "fin-6",
        "next_species_distance": 1.0,
        "hits": [
            {**MOKARRAN["hits"][0], "aligned_length": 100},
            {**MOKARRAN["hits"][1], "best_identity": 99.0, "aligned_length": 100},
        ],
        "flags": [one_base_flag],
        "flag_codes": ["separated-by-base"],
    }
    short_tie = {
        **MOKARRAN,
        "query": "fin-7",
        "level": "ambiguous",
        "taxon": "Sphyrna",
        "rank": "genus",
        "statement": "ambiguous between Sphyrna mokarran and Sphyrna zygaena; reported at genus level Sphyrna",
        "candidates": [{"species": "Sphyrna mokarran"}, {"species": "Sphyrna zygaena"}],
        "next_species_distance": 2.5,
        "rule": {**MOKARRAN["rule"], "min_gap_bases": 2},
    }
    text = _record_and_build(world, tmp_path, dominant, genus, identical, one_base, short_tie)
    assert (
        "Here condition (2) failed: Sphyrna mokarran and Sphyrna zygaena match within 2.50 "
        "percentage points of the best match (100.00 %), fewer than the 2 differing bases the "
        "rule asks for on a query this short, so the marker does not tell them apart"
    ) in text
    assert (
        "and the library checks passed through the exception the rule makes for a species "
        f"known from one or two references: {identical_flag}. The call is therefore at "
        "species level."
    ) in text
    assert (
        "condition (2) did not hold, since Sphyrna zygaena lies 0.50 percentage points behind, "
        "within the gap; the rule makes an exception for a species matched by several "
        f"references closer than any other species', which applied: {dominant_flag}"
    ) in text
    assert (
        "Sphyrna zygaena lies 1.00 percentage points behind, closer than condition (2) allows "
        "on a query this short; the rule makes an exception for a short query identical to a "
        f"reference, which applied: {one_base_flag}"
    ) in text
    assert (
        "Here the best match, at 99.00 %, reached the species threshold, but condition (3) "
        f"failed: {outside}; the closest species all belong to Sphyrna"
    ) in text
    # The genus call gives its nearest species' listing as that, not as the item's.
    assert "CITES listing of the nearest species (no species called)" in text
    assert (
        "The call names no species (consistent with genus Sphyrna; species not determined). "
        "The listing above is that of the species the query matched best, given for the "
        "reader's information: it is not the listing of the item's species"
    ) in text


def test_a_dossier_issued_before_these_changes_still_verifies() -> None:
    """Issued with the code of the typed dossier (before withdrawn analyses were shown as
    such): the bundle's format is unchanged, so it verifies as it did."""
    from typer.testing import CliRunner

    from custody.cli.main import app

    issued = Path(__file__).parent / "data" / "dossiers" / "issued-before-court-record.pdf"
    check = verify_dossier(issued)
    assert check.valid, (check.problems, check.findings)
    assert check.report_id == f"{CASE}-R1" and check.events > 0
    result = CliRunner().invoke(app, ["dossier", "verify", str(issued)])
    assert result.exit_code == 0 and result.stdout.startswith("VALID")


def test_a_fixed_threshold_rule_is_not_said_to_have_checked_the_library(
    world: World, tmp_path: Path
) -> None:
    fixed = {
        **MOKARRAN,
        "rule": {
            "name": "fixed-98.5",
            "species_identity": 98.5,
            "species_gap": 1.0,
            "use_library_stats": False,
        },  # fmt: skip
        "species_stats": None,
    }
    text = _record_and_build(world, tmp_path, fixed)
    assert "Rule 'fixed-98.5' calls a species only when (1)" in text
    assert "(3)" not in text and "library checks passed" not in text
    assert "matches 6.96 percentage points less well. The call is therefore at species level." in (
        text
    )


def _combined(*markers: tuple[str, str, str | None]) -> dict[str, Any]:
    return {
        "sample": "S1",
        "level": "species",
        "taxon": "Sphyrna mokarran",
        "statement": "Sample S1: Sphyrna mokarran, called by 1 of 2 markers and contradicted "
        "by none (COI-5P calls Sphyrna mokarran; 12S calls genus Sphyrna).",
        "markers": [
            {"query": q, "marker": m, "library": "lib v1", "level": lvl, "taxon": t}
            for q, m, (lvl, t) in (
                (q, m, ("species", t) if t and " " in t else ("genus", t)) for q, m, t in markers
            )
        ],
        "conflicts": [],
    }


def test_a_combined_finding_and_the_error_rate_of_each_call_are_printed(
    world: World, tmp_path: Path
) -> None:
    combined = _combined(("fin-1", "COI-5P", "Sphyrna mokarran"), ("fin-1b", "12S", "Sphyrna"))
    rate = {
        "count": 214, "wrong": 2, "rate": 0.0093, "ci_low": 0.0011, "ci_high": 0.0334,
        "validated": True,
        "statement": "Of 214 validation calls like this one (species calls on COI-5P) on species "
        "in the library, 2 were wrong: 0.9 %, 95 % CI 0.1-3.3 %.",
    }  # fmt: skip
    coi = {**MOKARRAN, "combined": combined, "error_rate": rate}
    s12 = {
        **MOKARRAN,
        "query": "fin-1b",
        "level": "genus",
        "taxon": "Sphyrna",
        "statement": "genus Sphyrna",
        "top_hits": [{**MOKARRAN["top_hits"][0], "marker": "12S"}],
        "combined": combined,
    }
    text = _record_and_build(world, tmp_path, coi, s12)
    # The item's finding is the combined one, not two disagreeing analyses.
    assert "Sphyrna mokarran (species), combined over COI-5P and 12S" in text
    assert "disagree" not in text
    assert "Combined finding for sample S1" in text
    assert (
        "A combined finding has no measured error rate of its own: validations measure the "
        "calls of one marker at a time. Each marker's call states its own error rate in its "
        "section; the one given in this section is that of query fin-1 alone."
    ) in text
    assert "COI-5P (fin-1, lib v1): Sphyrna mokarran (species)" in text
    assert "12S (fin-1b, lib v1): Sphyrna (genus only)" in text
    # Each call states its measured error rate, or why there is none.
    assert "Error rate of this call" in text
    assert "2 were wrong: 0.9 %, 95 % CI 0.1-3.3 %" in text
    assert "recorded before error rates of individual calls were kept" in text or (
        "was not validated under this rule" in text
    )


def test_a_combined_finding_whose_markers_disagree_reads_as_a_disagreement(
    world: World, tmp_path: Path
) -> None:
    conflicts = [
        "cytb calls Sphyrna lewini, which contradicts Sphyrna mokarran",
        "COI-5P calls Sphyrna mokarran, which contradicts Sphyrna lewini",
    ]
    combined = {
        **_combined(("fin-1", "COI-5P", "Sphyrna mokarran"), ("fin-1c", "cytb", "Sphyrna lewini")),
        "level": "genus",
        "taxon": "Sphyrna",
        "statement": "The markers of sample S1 disagree: " + "; ".join(conflicts) + ". They "
        "agree on genus Sphyrna only.",
        "conflicts": conflicts,
    }  # fmt: skip
    # The best alignments of the COI query include references labelled "COI" as well.
    coi_hits = [MOKARRAN["top_hits"][0], {**MOKARRAN["top_hits"][0], "marker": "COI"}]
    coi = {**MOKARRAN, "top_hits": coi_hits, "combined": combined}
    cytb = {
        **MOKARRAN,
        "query": "fin-1c",
        "taxon": "Sphyrna lewini",
        "statement": "consistent with Sphyrna lewini",
        "top_hits": [{**MOKARRAN["top_hits"][0], "marker": "cytb"}],
        "combined": combined,
    }
    text = _record_and_build(world, tmp_path, coi, cytb)
    start = text.index("Each analysed sample's own finding")
    summary = text[start : text.index("2. Item", start)]
    assert (
        "Sphyrna (genus only): the markers disagree on the species (COI-5P calls Sphyrna "
        "mokarran, cytb calls Sphyrna lewini)"
    ) in summary
    assert "combined over" not in summary and " agree:" not in summary
    assert "COI," not in summary  # markers by the name of each marker's call, once each


def test_a_call_of_an_accepted_name_names_the_other_names_it_covers(
    world: World, tmp_path: Path
) -> None:
    # The library files a name under the called species (curation): the court reads
    # that the call covers it, and where the decision is recorded.
    filed = {**MOKARRAN, "synonyms": ["Sphyrna ligo"]}
    text = _record_and_build(world, tmp_path, filed)
    assert "The library files Sphyrna ligo under Sphyrna mokarran" in text
    assert "so this call covers it as well" in text
    assert "reviewer, reason and source, is in the manifest of" in text


CURATION: dict[str, Any] = {
    "curated_from": {"version": 2, "content_hash": "sha256:" + "e" * 64},
    "decisions_file": "decisions-2026.toml",
    "decisions_sha256": "sha256:" + "f" * 64,
    "applied": 12,
    "skipped": 3,
    "records_excluded": 9,
    "names_merged": 2,
    "accepted_names": 1,
    "earlier": [
        {"version": 2, "decisions_file": "first.toml", "decisions_sha256": "sha256:1", "applied": 1}
    ],
}


def test_the_library_section_states_a_curated_versions_curation(
    world: World, tmp_path: Path
) -> None:
    curated = {
        **MOKARRAN,
        "library_version_number": 3,
        "library_version": "sha256:" + "d" * 64,
        "library_curation": CURATION,
    }  # its signer: test_species_curation, with a signed library the verification checks
    imported = {**MOKARRAN, "query": "fin-2", "library_curation": None}
    older = {**MOKARRAN, "query": "fin-3", "library_name": "older-lib"}  # before it was kept
    text = _record_and_build(world, tmp_path, curated, imported, older)
    section = text[text.index("Reference libraries, error rates and limitations Library") :]
    v3 = section[section.index("Library demo-barcodes version 3") :]
    v3 = v3[: v3.index("Limitations Mitochondrial")]
    assert "Not signed: the analyses cite no signed manifest" in v3
    assert (
        "Curation Curated version: made from version 2 of demo-barcodes by applying a curation "
        "decisions file, not imported from source files." in v3
    )
    assert f"Content hash of version 2 sha256:{'e' * 64}" in v3
    assert "Decisions file decisions-2026.toml" in v3
    assert f"Decisions file SHA-256 sha256:{'f' * 64}" in v3
    assert (
        "Decisions 12 decisions applied; 3 skipped (about records or names not in version 2)" in v3
    )
    assert "Records excluded 9" in v3
    assert "Synonyms 2 names merged as synonyms under 1 accepted name" in v3
    assert "Earlier curation Version 2 made with first.toml (SHA-256 sha256:1): 1 decision" in v3
    assert "its content hash must equal the one above" in v3
    assert "{" not in v3 and "records_excluded" not in v3
    v1 = section[section.index("Library demo-barcodes version 1") :]
    assert "Curation None: imported from its source files." in v1[: v1.index("Limitations")]
    assert "Not signed: the analyses cite no signed manifest" in v1[: v1.index("Limitations")]
    old = section[section.index("Library older-lib version 1") :]
    assert "Curation Not recorded with the analyses" in old[: old.index("Limitations")]


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(sorted(CURATION)),
        st.none() | st.integers() | st.text() | st.lists(st.integers()) | st.booleans(),
    )
)
def test_a_recorded_curation_of_any_shape_reads_without_error(data: dict[str, Any]) -> None:
    from custody.species import LibraryCurationRecord

    record = LibraryCurationRecord.from_data(data)
    assert record is not None and record.to_dict()["decisions_file"] in (
        "",
        data.get("decisions_file"),
    )
