"""Species decisions on real Panthera/Felis fixtures: calls, ambiguity, flags, rules."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
from Bio import SeqIO

from species_ref.decision import SpeciesHits, decide
from species_ref.errors import SpeciesRefError
from species_ref.identify import Engine, Identification, identify
from species_ref.matching import Hit
from species_ref.rules import RULES, Rule, get_rule
from species_ref.types import LibraryVersion, Query, QueryQC, RefRecord
from species_ref.vocab import DecisionLevel, FlagCode, QcCode, QcFlag, level_words

DATA = Path(__file__).parent / "data" / "species_match"
_COMP = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")


def _records(name: str) -> list[RefRecord]:
    out = []
    for rec in SeqIO.parse(str(DATA / name), "fasta"):
        seq_id, species, marker = rec.description.split("|")
        out.append(RefRecord(seq_id, species, marker, str(rec.seq).upper()))
    return out


def _version(records: list[RefRecord], tag: str) -> LibraryVersion:
    return LibraryVersion(f"lib-{tag}", 3, f"sha256:{tag}-{len(records)}", "", tuple(records))


def _query(seq: str, name: str = "q1", warnings: tuple[QcFlag, ...] = ()) -> Query:
    qc = QueryQC(len(seq), len(seq), None, 0.0, False, warnings)
    return Query(name, seq, "fasta", "sha256:00", "q.fasta", qc)


def _one(seq: str, version: LibraryVersion, **kw: object) -> Identification:
    return identify([_query(seq)], Engine(version), workers=1, **kw)[0]  # type: ignore[arg-type]


def _revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def test_exact_match_is_a_species_call() -> None:
    recs = _records("coi_panthera.fasta")
    version = _version(recs, "coi")
    leo = next(r for r in recs if r.species == "Panthera leo")
    res = _one(leo.sequence, version)
    assert res.level == "species"
    assert res.taxon == "Panthera leo"
    assert res.statement == "consistent with Panthera leo"
    d = res.to_dict()
    assert d["identity"] == 100.0
    assert d["library_version"] == version.content_hash
    assert d["library_name"] == "lib-coi" and d["library_version_number"] == 3
    assert d["candidates"][0]["species"] == "Panthera leo"
    assert leo.seq_id in d["candidates"][0]["accessions"]


def test_reverse_complement_query_is_called_and_flagged() -> None:
    recs = _records("coi_panthera.fasta")
    leo = next(r for r in recs if r.species == "Panthera leo")
    res = _one(_revcomp(leo.sequence), _version(recs, "coi"))
    assert res.taxon == "Panthera leo"
    assert any(f.startswith("reverse strand") for f in res.flag_texts)


def test_removed_species_is_not_called_as_its_congener() -> None:
    recs = _records("coi_panthera.fasta")
    for removed in ("Panthera uncia", "Panthera pardus", "Panthera leo"):
        library = [r for r in recs if r.species != removed]
        queries = [r for r in recs if r.species == removed]
        results = identify(
            [_query(r.sequence, r.seq_id) for r in queries],
            Engine(_version(library, "without-" + removed.split()[1])),
            workers=1,
        )
        assert all(res.level != "species" for res in results), removed


def test_identical_congener_sequences_are_ambiguous_at_genus() -> None:
    recs = _records("12s_v5_zebrasoma_ursus.fasta") + _records("12s_v5_felidae.fasta")
    version = _version(recs, "12s")
    # Zebrasoma scopas AF055606 (98 bp) lies wholly inside Z. flavescens AP006032.
    scopas = next(r for r in recs if r.seq_id == "AF055606")
    for rule in ("default", "mini-barcode", "strict"):
        res = _one(scopas.sequence, version, rule=rule)
        assert res.level == "ambiguous", rule
        names = {c.species for c in res.candidates}
        assert {"Zebrasoma scopas", "Zebrasoma flavescens"} <= names
        assert res.taxon == "Zebrasoma"
        assert res.rank == "genus"
        assert res.statement.startswith("ambiguous between ")
        assert res.statement.endswith("reported at genus level Zebrasoma")
        assert any(f.startswith("short query (98 bp)") for f in res.flag_texts)


def test_short_markers_never_guess_a_species_among_congeners() -> None:
    recs = _records("12s_v5_felidae.fasta")
    version = _version(recs, "12s-all")
    results = identify([_query(r.sequence, r.seq_id) for r in recs], Engine(version), workers=1)
    for rec, res in zip(recs, results, strict=True):
        if res.level == "species":
            assert res.taxon == rec.species


def test_short_query_is_flagged() -> None:
    recs = _records("coi_panthera.fasta")
    tig = next(r for r in recs if r.species == "Panthera tigris")
    res = _one(tig.sequence[100:250], _version(recs, "coi"))
    assert any(f.startswith("short query (150 bp)") for f in res.flag_texts)
    assert res.to_dict()["coverage"] == 100.0


def test_iupac_query_is_tolerated() -> None:
    recs = _records("coi_panthera.fasta")
    seq = list(next(r for r in recs if r.species == "Panthera uncia").sequence)
    seq[40], seq[200], seq[400] = "N", "R", "Y"
    res = _one("".join(seq), _version(recs, "coi"))
    assert res.level in {"species", "ambiguous", "genus"}
    assert res.identity is not None and res.identity > 99.0


def test_low_quality_warning_becomes_a_flag() -> None:
    recs = _records("coi_panthera.fasta")
    q = _query(recs[0].sequence, warnings=(QcFlag(QcCode.LOW_QUALITY, "mean phred 18 below 20"),))
    res = identify([q], Engine(_version(recs, "coi")), workers=1)[0]
    assert "low quality: mean phred 18 below 20" in res.flag_texts
    assert FlagCode.LOW_QUALITY in [f.code for f in res.flags]


def test_rule_values_and_required_keys_are_in_the_result() -> None:
    recs = _records("coi_panthera.fasta")
    res = _one(recs[0].sequence, _version(recs, "coi"), rule="strict")
    d = res.to_dict()
    assert d["rule"] == get_rule("strict").to_dict()
    assert d["rule"]["species_identity"] == 99.0
    for key in (
        "query",
        "level",
        "taxon",
        "candidates",
        "identity",
        "coverage",
        "flags",
        "library_version",
        "library_name",
        "library_version_number",
        "rule",
        "hits",
        "next_species_distance",
        "qc",
        "query_sha256",
        "cites",
        "statement",
        "validation",
    ):
        assert key in d


def test_custom_rule_and_unknown_rule_name() -> None:
    recs = _records("coi_panthera.fasta")
    rule = Rule(name="lab", species_identity=99.5)
    res = _one(recs[0].sequence, _version(recs, "coi"), rule=rule)
    assert res.to_dict()["rule"]["species_identity"] == 99.5
    with pytest.raises(SpeciesRefError, match="default"):
        get_rule("nope")
    assert {"default", "strict", "mini-barcode"} <= set(RULES)


def test_cites_lookup_flags_listed_candidates() -> None:
    recs = _records("coi_panthera.fasta")
    tig = next(r for r in recs if r.species == "Panthera tigris")

    class Listing:
        appendix = "I"

    def lookup(species: str) -> object | None:
        return Listing() if species.startswith("Panthera") else None

    res = _one(tig.sequence, _version(recs, "coi"), cites=lookup)
    assert res.to_dict()["cites"] == {"Panthera tigris": "I"}
    assert any("CITES-listed" in f and "Appendix I" in f for f in res.flag_texts)


def test_listing_that_leaves_out_the_domesticated_form_is_not_read_as_settled() -> None:
    # Dog and wolf, yak and wild yak share their barcodes: a call of the species
    # must say that its CITES appendix depends on the wild form, which DNA cannot show.
    recs = _records("coi_panthera.fasta")
    leo = next(r for r in recs if r.species == "Panthera leo")

    class Listing:
        def __init__(self, annotation: str) -> None:
            self.appendix = "II"
            self.annotation = annotation

    domestic = Listing("Appendix II:Excludes the domesticated form.")
    res = _one(leo.sequence, _version(recs, "coi"), cites=lambda sp: domestic)
    called = [f for f in res.flag_texts if f.startswith("CITES-listed species: Panthera leo")]
    assert called and "leaves out the domesticated form" in called[0]
    assert "applies only if other evidence shows the specimen is of the wild form" in called[0]
    wild_only = Listing("Appendix II:Annual export quotas apply.")
    res = _one(leo.sequence, _version(recs, "coi"), cites=lambda sp: wild_only)
    assert "CITES-listed species: Panthera leo (Appendix II)" in res.flag_texts


def test_distant_query_is_no_identification() -> None:
    recs = _records("coi_panthera.fasta")
    library = [r for r in recs if r.species.startswith("Panthera")]
    felis = next(r for r in recs if r.species == "Felis catus")
    res = _one(felis.sequence, _version(library, "panthera-only"))
    assert res.level == "none"
    assert res.taxon is None
    assert res.statement.startswith("no identification")


def test_batch_with_two_workers_keeps_order() -> None:
    recs = _records("coi_panthera.fasta")
    version = _version(recs, "coi")
    queries = [_query(r.sequence, r.seq_id) for r in recs] * 2
    results = identify(queries, Engine(version), workers=2)
    assert [r.query for r in results] == [q.name for q in queries]


def test_read_errors_at_conserved_sites_are_discounted_and_flagged() -> None:
    recs = _records("coi_panthera.fasta")
    leo = next(r for r in recs if r.species == "Panthera leo")
    seq = list(leo.sequence)
    swap = {"A": "C", "C": "A", "G": "T", "T": "G"}
    for i in range(40, len(seq) - 40, 60):  # about 1.6 % substitutions
        seq[i] = swap[seq[i]]
    res = _one("".join(seq), _version(recs, "coi"))
    assert res.identity is not None and res.identity < 98.5
    assert any("probable read errors" in f for f in res.flag_texts)
    strict = _one("".join(seq), _version(recs, "coi"), rule="strict")
    assert not any("probable read errors" in f for f in strict.flag_texts)
    assert strict.level != "species"


def _diverged(seq: str, *, every: int, offset: int = 0) -> str:
    """`seq` with a substitution every `every` sites (100 / every % divergence)."""
    out = list(seq)
    swap = {"A": "G", "G": "A", "C": "T", "T": "C"}
    for i in range(offset, len(out), every):
        out[i] = swap.get(out[i], out[i])
    return "".join(out)


def _few_refs_library(sister_every: int, *, unresolved: bool = False) -> LibraryVersion:
    """Testgenus alpha from one reference, its sister beta 100 / `sister_every` % away,
    gamma 8 % away (one 11-mer in each 12 bases intact, so the k-mer search still finds it);
    with `unresolved`, delta and epsilon about 0.5 % apart: half of the
    genus' other species then lie within the species threshold of another."""
    base = next(r for r in _records("coi_panthera.fasta") if r.species == "Panthera leo")
    seq = base.sequence
    recs = [
        RefRecord("A1", "Testgenus alpha", "COI-5P", seq),
        RefRecord("B1", "Testgenus beta", "COI-5P", _diverged(seq, every=sister_every)),
        RefRecord("B2", "Testgenus beta", "COI-5P", _diverged(seq, every=sister_every, offset=3)),
        RefRecord("G1", "Testgenus gamma", "COI-5P", _diverged(seq, every=12)),
    ]
    if unresolved:
        delta = _diverged(seq, every=7, offset=2)
        recs += [
            RefRecord("D1", "Testgenus delta", "COI-5P", delta),
            RefRecord("E1", "Testgenus epsilon", "COI-5P", _diverged(delta, every=200, offset=1)),
        ]
    return _version(recs, f"few-refs-{sister_every}-{unresolved}")


def test_single_reference_species_with_a_close_sister_is_not_called() -> None:
    # Testgenus alpha is known from one reference and its sister species lies
    # 2.5 % away in a genus whose species this marker does not separate well:
    # an unsampled sister could share the query's sequence.
    version = _few_refs_library(40, unresolved=True)
    query = version.records[0].sequence
    res = _one(query, version)
    assert res.level == "genus"
    assert res.taxon == "Testgenus"
    assert any(
        "known from 1 reference only" in f and "nearest other species" in f for f in res.flag_texts
    )
    lab = _one(query, version, rule="fixed-98.5")
    assert lab.level == "species" and lab.taxon == "Testgenus alpha"


def test_single_reference_species_in_a_genus_the_marker_separates_is_called() -> None:
    # The same query and sister 2.5 % away, but every other species of the genus
    # lies far from the others: a sister sharing the sequence is unlikely.
    version = _few_refs_library(40)
    res = _one(version.records[0].sequence, version)
    assert res.level == "species" and res.taxon == "Testgenus alpha"
    resolved = [f for f in res.flags if f.code is FlagCode.GENUS_RESOLVED]
    assert len(resolved) == 1
    assert resolved[0].text == (
        "Testgenus alpha is known from 1 reference only, but this marker separates the species "
        "of Testgenus in the library (none of its 2 other species lie within 1.5 % of another "
        "species), so a closely related species sharing the query's sequence is unlikely"
    )
    # Revision 1 of the default rule and the strict rule keep it at genus level.
    r1 = dataclasses.replace(get_rule("default"), resolved_genus_max=0.0, revision=1)
    assert _one(version.records[0].sequence, version, rule=r1).level == "genus"
    assert _one(version.records[0].sequence, version, rule="strict").level == "genus"


def test_single_reference_species_with_the_next_species_4_percent_away_is_called() -> None:
    # One reference, matched at 100 %, the next species 4 % away: called even in a
    # genus the marker does not separate well.
    version = _few_refs_library(24, unresolved=True)
    res = _one(version.records[0].sequence, version)
    assert res.level == "species" and res.taxon == "Testgenus alpha"
    assert any(f.startswith("single reference sequence") for f in res.flag_texts)
    assert not any(f.code is FlagCode.GENUS_RESOLVED for f in res.flags)


def test_absent_species_close_to_a_congener_with_a_small_gap_is_not_called() -> None:
    # The query's species is missing; its congener alpha matches at 99.5 % and beta
    # only 0.3 % less well: no species call, whatever the genus looks like.
    seq = next(r for r in _records("coi_panthera.fasta") if r.species == "Panthera leo").sequence
    recs = [
        RefRecord("A1", "Testgenus alpha", "COI-5P", _diverged(seq, every=200)),
        RefRecord("B1", "Testgenus beta", "COI-5P", _diverged(seq, every=125, offset=1)),
        RefRecord("G1", "Testgenus gamma", "COI-5P", _diverged(seq, every=12)),
        RefRecord("H1", "Testgenus eta", "COI-5P", _diverged(seq, every=6, offset=4)),
    ]
    version = _version(recs, "absent-congener")
    res = _one(seq, version)
    assert res.identity is not None and 99.3 < res.identity < 99.7
    assert res.level != "species"
    assert res.taxon == "Testgenus"


def test_single_reference_species_with_a_distant_sister_is_called() -> None:
    version = _few_refs_library(16)  # sister species about 6 % away
    res = _one(version.records[0].sequence, version)
    assert res.level == "species"
    assert res.taxon == "Testgenus alpha"
    assert any(f.startswith("single reference sequence") for f in res.flag_texts)


def test_query_farther_than_the_species_nearest_neighbour_is_not_a_species_call() -> None:
    from species_ref.decision import _outside_library_variation
    from species_ref.profile import SpeciesStats

    rule = get_rule("default")
    st = SpeciesStats("Panthera onca", 6, 15, 1.2, 0.5, 1.0, "Panthera leo")
    # 1.1 % from the species, which is only 1.0 % from its nearest other species.
    reason = _outside_library_variation(1.1, st, rule=rule)
    assert reason is not None and "missing from the library" in reason.text
    assert "Panthera leo" in reason.text
    assert reason.code is FlagCode.OUTSIDE_LIBRARY_VARIATION
    # Inside both the species' spread and its distance to the nearest species.
    assert _outside_library_variation(0.8, st, rule=rule) is None


def _dominant_library(
    *, n_alpha: int = 5, alpha_every: int = 10_000, beta: str = "Testgenus beta", n_beta: int = 1
) -> tuple[LibraryVersion, str]:
    """Species alpha: `n_alpha` references, one identical to the query and the others
    one base away (or a base every `alpha_every` sites); beta three bases away."""
    seq = next(r for r in _records("coi_panthera.fasta") if r.species == "Panthera leo").sequence
    recs = [RefRecord("A0", "Testgenus alpha", "COI-5P", seq)]
    recs += [
        RefRecord(
            f"A{i}",
            "Testgenus alpha",
            "COI-5P",
            _diverged(seq, every=alpha_every, offset=50 * i)
            if alpha_every >= len(seq)
            else _diverged(seq, every=alpha_every, offset=i),
        )
        for i in range(1, n_alpha)
    ]
    recs += [
        RefRecord(f"B{j}", beta, "COI-5P", _diverged(seq, every=300, offset=7 + j))
        for j in range(n_beta)
    ]
    recs.append(RefRecord("G1", "Testgenus gamma", "COI-5P", _diverged(seq, every=9)))
    return _version(recs, f"dominant-{n_alpha}-{alpha_every}-{beta}-{n_beta}"), seq


def _mini_hit(species: str, *, columns: int, differing: int) -> Hit:
    return Hit(
        ref_index=0, seq_id=species.replace(" ", "_"), species=species, marker="12S-V5",
        identity=100.0 * (columns - differing) / columns, aligned_length=columns,
        query_coverage=100.0 * columns / 100, mismatches=differing, gaps=0, strand="+",
        query_start=0, query_end=columns, ref_start=0, ref_end=columns, shared_kmers=20,
        method="ungapped",
    )  # fmt: skip


def test_mini_barcode_separation_is_counted_in_whole_bases_across_alignment_lengths() -> None:
    # One base from the best species over 99 aligned columns, three from the next over
    # 100: two bases separate them, as the rule asks, though the identities differ by
    # 1.99 % of the best alignment.
    rule = get_rule("default")
    best = _mini_hit("Testgenus alpha", columns=99, differing=1)
    two_apart = _mini_hit("Testgenus beta", columns=100, differing=3)
    called = decide([best, two_apart], query_length=100, rule=rule)
    assert called.level is DecisionLevel.SPECIES and called.taxon == "Testgenus alpha"
    one_apart = _mini_hit("Testgenus beta", columns=100, differing=2)
    tied = decide([best, one_apart], query_length=100, rule=rule)
    assert tied.level is not DecisionLevel.SPECIES
    assert any(f.code is FlagCode.WITHIN_GAP for f in tied.flags)


def test_species_matched_by_many_references_is_called_despite_a_close_second() -> None:
    version, seq = _dominant_library()
    res = _one(seq, version)
    assert res.level == "species" and res.taxon == "Testgenus alpha"
    assert res.statement == (
        "consistent with Testgenus alpha (Testgenus beta within the 1 % gap, not excluded by "
        "it; called on the support of 5 closer references)"
    )
    assert any(
        f.startswith("5 references of Testgenus alpha match the query at 99.85-100.00 %")
        and "next: Testgenus beta at 99.54 %" in f
        for f in res.flag_texts
    )
    assert any(f.startswith("closest other species within the 1 % gap") for f in res.flag_texts)
    # A listed sister within the gap is reported, but not as the called species.
    listed = _one(seq, version, cites=lambda sp: "II" if sp == "Testgenus beta" else None)
    assert listed.taxon == "Testgenus alpha"
    assert (
        "CITES-listed species within the barcode gap, not excluded by it: "
        "Testgenus beta (Appendix II)"
    ) in listed.flag_texts
    assert not any(f.startswith("CITES-listed species: ") for f in listed.flag_texts)
    # The common lab rule and the strict rule keep it ambiguous.
    for rule in ("fixed-98.5", "strict"):
        other = _one(seq, version, rule=rule)
        assert other.level == "ambiguous" and other.taxon == "Testgenus", rule


def test_two_close_references_are_not_enough() -> None:
    version, seq = _dominant_library(n_alpha=2)
    res = _one(seq, version)
    assert res.level == "ambiguous" and res.taxon == "Testgenus"
    assert {c.species for c in res.candidates} == {"Testgenus alpha", "Testgenus beta"}
    # Three are, under revision 2 of the default rule (five under revision 1).
    three, seq3 = _dominant_library(n_alpha=3)
    assert _one(seq3, three).taxon == "Testgenus alpha"
    r1 = dataclasses.replace(get_rule("default"), dominant_refs=5, revision=1)
    assert _one(seq3, three, rule=r1).level == "ambiguous"


def test_references_less_identical_than_the_other_species_do_not_count() -> None:
    # One alpha reference is identical; the four others are about 0.9 % away,
    # farther than beta's three references (0.46 %).
    version, seq = _dominant_library(alpha_every=110, n_beta=3)
    res = _one(seq, version)
    assert res.level == "ambiguous", res.statement
    assert not any("closer than any reference" in f for f in res.flag_texts)


def test_refused_dominance_stays_ambiguous_across_genera() -> None:
    version, seq = _dominant_library(beta="Othergenus beta")
    refusing = dataclasses.replace(get_rule("default"), name="needs-ten", min_species_refs=10)
    res = _one(seq, version, rule=refusing)
    assert res.level == "ambiguous"
    assert res.rank == "family or above" and res.taxon is None
    assert {c.species for c in res.candidates} == {"Testgenus alpha", "Othergenus beta"}
    assert res.statement.endswith("candidates span genera, no genus reported")
    assert not any("closer than any reference" in f for f in res.flag_texts)
    assert _one(seq, version).taxon == "Testgenus alpha"


def test_dominance_needs_the_query_at_the_species_and_enough_separation() -> None:
    version, seq = _dominant_library()
    # 0.6 % from every alpha reference: no longer a near-identical match.
    far = _one(_diverged(seq, every=170, offset=20), version)
    assert far.level != "species"
    # On a 150 bp window one base separates beta. Revision 4 asked for two bases on
    # short queries; revision 5 calls on two references, each a base closer than beta's.
    window = seq[0:150]
    r4 = dataclasses.replace(
        get_rule("default"), dominant_refs_short=0, dominant_short_gap_bases=0, revision=4
    )
    short = _one(window, version, rule=r4)
    assert short.level != "species"
    assert not any("closer than any reference" in f for f in short.flag_texts)
    called = _one(window, version)
    assert called.level == "species" and called.taxon == "Testgenus alpha"
    assert any(
        f.startswith("3 references of Testgenus alpha match the query at 100.00 %")
        for f in called.flag_texts
    ), called.flag_texts


def test_one_identical_reference_does_not_carry_a_short_query_past_a_sister() -> None:
    # Alpha's second reference differs inside the window, as beta's does: one alpha
    # reference alone is a base closer than beta.
    version, seq = _dominant_library(n_alpha=2)
    res = _one(seq[0:150], version)
    assert res.level != "species"
    assert not any("closer than any reference" in f for f in res.flag_texts)
    # The strict rule and the mini-barcode rule keep two bases and more references.
    three, seq3 = _dominant_library()
    for rule in ("strict", "mini-barcode"):
        assert _one(seq3[0:150], three, rule=rule).level != "species", rule


def _substituted(seq: str, sites: list[int]) -> str:
    out = list(seq)
    swap = {"A": "G", "G": "A", "C": "T", "T": "C"}
    for i in sites:
        out[i] = swap.get(out[i], out[i])
    return "".join(out)


def _one_base_library(beta_sites_outside: int) -> tuple[LibraryVersion, str]:
    """Alpha: three references, one identical to the first 120 bases of the query; beta one
    base off inside those 120 and `beta_sites_outside` bases off beyond them; gamma far."""
    seq = next(r for r in _records("coi_panthera.fasta") if r.species == "Panthera leo").sequence
    recs = [
        RefRecord("A0", "Testgenus alpha", "COI-5P", seq),
        # The other two alpha references differ inside the window, so no two references
        # carry the short query past beta (that exception is tested above).
        RefRecord("A1", "Testgenus alpha", "COI-5P", _substituted(seq, [30, 400])),
        RefRecord("A2", "Testgenus alpha", "COI-5P", _substituted(seq, [31, 500])),
        RefRecord(
            "B0",
            "Testgenus beta",
            "COI-5P",
            _substituted(seq, [60] + [150 + 40 * i for i in range(beta_sites_outside)]),
        ),
        RefRecord("G1", "Testgenus gamma", "COI-5P", _diverged(seq, every=9)),
    ]
    return _version(recs, f"one-base-{beta_sites_outside}"), seq[0:120]


def test_short_identical_query_is_called_one_base_from_a_sister_the_library_separates() -> None:
    # Beta differs from alpha at 11 sites over the full barcode (1.70 %): the library
    # shows the two apart, and the query is identical to alpha, one base from beta.
    version, window = _one_base_library(beta_sites_outside=10)
    res = _one(window, version)
    assert res.level == "species" and res.taxon == "Testgenus alpha", res.statement
    assert res.statement == "consistent with Testgenus alpha"
    flag = next(f for f in res.flags if f.code is FlagCode.SEPARATED_BY_BASE)
    assert flag.text.startswith(
        "the query is identical to a reference of Testgenus alpha; the next species, "
        "Testgenus beta, differs from it at 1 of 120 aligned bases (0.83 %)"
    ), flag.text
    assert (
        "whose nearest other species in the library, Testgenus beta, lies 1.70 % from it "
        "(at least 1 % is needed)" in flag.text
    )
    assert not any(f.code is FlagCode.WITHIN_GAP for f in res.flags)
    # Revision 5 asked for two bases on every short query.
    r5 = dataclasses.replace(get_rule("default"), identical_short_gap_bases=0, revision=5)
    assert _one(window, version, rule=r5).level == "ambiguous"
    # The strict and mini-barcode rules keep their two or three bases.
    for rule in ("strict", "mini-barcode"):
        assert _one(window, version, rule=rule).level != "species", rule


def test_one_base_is_not_enough_when_the_library_does_not_separate_the_sister() -> None:
    # Beta only 4 bases from alpha over the full barcode (0.6 %): sisters that close
    # may share the query's base, so the query stays ambiguous.
    version, window = _one_base_library(beta_sites_outside=3)
    res = _one(window, version)
    assert res.level == "ambiguous" and res.taxon == "Testgenus", res.statement
    assert not any(f.code is FlagCode.SEPARATED_BY_BASE for f in res.flags)
    assert any(f.code is FlagCode.WITHIN_GAP for f in res.flags)
    # A query one base from alpha (two from beta's nearest) is no identical match either.
    separated, _ = _one_base_library(beta_sites_outside=10)
    off = _one(_substituted(window, [90]), separated)
    assert not any(f.code is FlagCode.SEPARATED_BY_BASE for f in off.flags)


def test_one_base_needs_a_query_long_enough_to_show_the_species_apart() -> None:
    # Beta 7 bases from alpha over the full barcode (1.08 %): on 120 bases that is more
    # than a base, and one base carries the call; on 90 bases it is less than one (1.11 %
    # would be needed), and under 80 bases the rule makes no exception at all.
    version, window = _one_base_library(beta_sites_outside=6)
    assert _one(window, version).taxon == "Testgenus alpha"
    ninety = _one(window[:90], version)
    assert ninety.level == "ambiguous", ninety.statement
    separated, _ = _one_base_library(beta_sites_outside=10)
    seventy = _one(window[:70], separated)
    assert seventy.level == "ambiguous", seventy.statement
    assert _one(window[:90], separated).taxon == "Testgenus alpha"


def _singleton_one_base_library(beta: str, outside: int = 30) -> tuple[LibraryVersion, str]:
    """Alpha from one reference; `beta` one base off inside the first 120 bases and
    `outside` bases off beyond them (30: 4.8 % over the full barcode); gamma far."""
    seq = next(r for r in _records("coi_panthera.fasta") if r.species == "Panthera leo").sequence
    recs = [
        RefRecord("A0", "Testgenus alpha", "COI-5P", seq),
        RefRecord(
            "B0", beta, "COI-5P", _substituted(seq, [60] + [150 + 15 * i for i in range(outside)])
        ),
        RefRecord("G1", "Testgenus gamma", "COI-5P", _diverged(seq, every=9)),
    ]
    return _version(recs, f"singleton-one-base-{beta}-{outside}"), seq[0:120]


@pytest.mark.parametrize("beta", ["Othergenus beta", "Testgenus beta"])
def test_one_base_stands_for_the_gap_of_a_species_known_from_one_reference(beta: str) -> None:
    # Alpha is known from one reference, 4.8 % from every other species: the few-references
    # tests pass on its nearest species, and the whole base stands for the 2 % they ask
    # between the query's best and next species.
    version, window = _singleton_one_base_library(beta)
    res = _one(window, version)
    assert res.level == "species" and res.taxon == "Testgenus alpha", res.statement
    texts = [f.text for f in res.flags if f.code is FlagCode.SEPARATED_BY_BASE]
    assert len(texts) == 2
    assert texts[1].startswith(
        "Testgenus alpha is known from 1 reference only; for such a species the rule otherwise "
        "asks the next species to match 2 % less well, but the whole base stands for that here"
    )
    without = dataclasses.replace(get_rule("default"), identical_short_few_refs=False)
    refused = _one(window, version, rule=without)
    assert refused.level == "genus"
    assert any(f.code is FlagCode.FEW_REFERENCES for f in refused.flags)


def test_a_refused_call_does_not_claim_the_one_base_exception() -> None:
    # Beta, a congener, lies 1.54 % from alpha (known from one reference): too close for
    # the few-references tests, so the query stays at genus level, and no flag may say
    # that the whole base carried a call.
    version, window = _singleton_one_base_library("Testgenus beta", outside=9)
    res = _one(window, version)
    assert res.level == "genus", res.statement
    assert any(f.code is FlagCode.FEW_REFERENCES for f in res.flags)
    assert not any(f.code is FlagCode.SEPARATED_BY_BASE for f in res.flags)


def test_a_tie_in_whole_bases_is_not_called_within_the_percent_gap() -> None:
    # 40 columns: one base is 2.5 %, beyond the 1 % gap but short of the two bases a
    # short query needs.
    best, second = (
        dataclasses.replace(_mini_hit(name, columns=40, differing=n), query_coverage=100.0)
        for name, n in (("Testgenus alpha", 0), ("Testgenus beta", 1))
    )
    res = decide([best, second], query_length=40, rule=get_rule("default"))
    assert res.level is DecisionLevel.AMBIGUOUS
    flag = next(f for f in res.flags if f.code is FlagCode.WITHIN_GAP)
    assert flag.text == (
        "closest other species only 1 base further (2.50 %): Testgenus beta; on a query under "
        "300 bp this rule needs 2 differing bases"
    )


def test_one_base_does_not_stand_for_the_gap_when_the_genus_was_not_measured() -> None:
    from species_ref.decision import _base_stands_for_gap, _Race
    from species_ref.profile import SpeciesStats

    def hits(species: str, identity: float) -> SpeciesHits:
        return SpeciesHits(species, identity, 100, 100.0, 0, 1, 1, ("x",), "+")

    best, nxt = hits("Testgenus alpha", 100.0), hits("Testgenus beta", 99.0)
    race = _Race([best, nxt], best, nxt, [best], 100.0, separated=True)
    rule = get_rule("default")
    # The nearest species measured is in another genus: the library has not measured how
    # far alpha lies from beta, its congener one base away on this query.
    elsewhere = SpeciesStats("Testgenus alpha", 1, 0, None, None, 6.0, "Othergenus delta")
    assert _base_stands_for_gap(race, elsewhere, rule=rule) is None
    measured = SpeciesStats("Testgenus alpha", 1, 0, None, None, 3.0, "Testgenus beta")
    assert _base_stands_for_gap(race, measured, rule=rule) is not None
    # Not for a race the exception did not narrow.
    assert _base_stands_for_gap(race._replace(separated=False), measured, rule=rule) is None


def test_no_species_call_on_a_query_under_80_bp() -> None:
    recs = _records("coi_panthera.fasta")
    version = _version(recs, "coi")
    leo = next(r for r in recs if r.species == "Panthera leo").sequence
    short = _one(leo[100:179], version)
    assert short.level == "genus" and short.taxon == "Panthera", short.statement
    flag = next(f for f in short.flags if f.code is FlagCode.TOO_SHORT_FOR_SPECIES)
    assert flag.text.startswith(
        "the query is 79 bp long; this rule makes no species call on a query under 80 bp"
    )
    assert _one(leo[100:180], version).taxon == "Panthera leo"
    # The common lab rule has no such floor.
    assert _one(leo[100:179], version, rule="fixed-98.5").taxon == "Panthera leo"


def _hits(species: str, identities: list[float], columns: int = 600) -> list[Hit]:
    return [
        Hit(
            ref_index=i,
            seq_id=f"{species.split()[1]}{i}",
            species=species,
            marker="COI-5P",
            identity=x,
            aligned_length=columns,
            query_coverage=100.0,
            mismatches=round((100 - x) * columns / 100),
            gaps=0,
            strand="+",
            query_start=0,
            query_end=columns,
            ref_start=0,
            ref_end=columns,
            shared_kmers=50,
            method="ungapped",
        )  # fmt: skip
        for i, x in enumerate(identities)
    ]


def test_a_genus_call_does_not_give_its_nearest_species_listing_as_a_tie() -> None:
    # 97 % from alpha, 8 % from beta: a genus call, with no species tied.
    hits = _hits("Testgenus alpha", [97.0]) + _hits("Testgenus beta", [92.0])
    res = decide(hits, query_length=600, rule=get_rule("default"), cites=lambda sp: "I")
    assert res.level is DecisionLevel.GENUS and res.taxon == "Testgenus"
    (flag,) = [f for f in res.flags if f.code is FlagCode.CITES_CANDIDATE]
    assert flag.text == (
        "CITES-listed nearest species: Testgenus alpha (Appendix I); the call names no "
        "species, so this is not the listing of the item's species"
    )
    assert "among ties" not in flag.text


def test_the_best_matching_species_is_never_set_aside_as_misidentified_records() -> None:
    # Alpha matches the query exactly through one reference, its three others lie 4 %
    # away; beta matches at 99.2 % through three. Setting alpha aside would call beta,
    # a species that matches the query less well than alpha does.
    alpha = _hits("Testgenus alpha", [100.0, 96.0, 96.0, 96.0])
    beta = _hits("Testgenus beta", [99.2, 99.2, 99.2])
    res = decide(alpha + beta, query_length=600, rule=get_rule("default"))
    assert res.level is DecisionLevel.AMBIGUOUS, res.statement
    assert {c.species for c in res.candidates} == {"Testgenus alpha", "Testgenus beta"}
    assert not any(f.code is FlagCode.OUTLIER_RECORDS for f in res.flags)
    # Nor one that ties with it when the query stays ambiguous anyway: the ambiguity then
    # names every species that ties.
    gamma = _hits("Testgenus gamma", [99.6, 99.6, 99.6])
    exact = _hits("Testgenus beta", [100.0, 100.0, 100.0])
    res = decide(alpha + exact + gamma, query_length=600, rule=get_rule("default"))
    assert res.level is DecisionLevel.AMBIGUOUS, res.statement
    assert {c.species for c in res.candidates} == {
        "Testgenus alpha", "Testgenus beta", "Testgenus gamma"
    }  # fmt: skip
    assert not any(f.code is FlagCode.OUTLIER_RECORDS for f in res.flags)
    # A species that only ties with the best one is still set aside when that resolves
    # the tie, as before.
    tied = _hits("Testgenus alpha", [99.2, 96.0, 96.0, 96.0])
    res = decide(tied + beta, query_length=600, rule=get_rule("default"))
    assert res.taxon == "Testgenus beta"
    assert any(f.code is FlagCode.OUTLIER_RECORDS for f in res.flags)


def test_dominance_never_asks_for_more_references_than_are_aligned() -> None:
    from species_ref.matching import Matcher

    per_species = inspect.signature(Matcher.__init__).parameters["per_species"].default
    assert all(
        max(rule.dominant_refs, rule.dominant_refs_short) <= per_species for rule in RULES.values()
    )


def test_qc_warnings_become_flags_by_their_code_not_their_words() -> None:
    recs = _records("coi_panthera.fasta")
    window = next(r for r in recs if r.species == "Panthera tigris").sequence[100:190]
    warnings = (
        # said again by the decision's own short-query flag: dropped
        QcFlag(QcCode.SHORT, "short query (90 bp): mini-barcode"),
        # a different code whose sentence merely mentions "short query": kept
        QcFlag(QcCode.VERY_SHORT, "very short query (90 bp): below the 100 bp minimum"),
        QcFlag(QcCode.NOT_TRIMMED, "not quality-trimmed"),
        QcFlag(QcCode.AMBIGUOUS_BASES, "phred and quality are words, not codes"),
    )
    res = identify([_query(window, warnings=warnings)], Engine(_version(recs, "coi")), workers=1)[0]
    qc_flags = [(f.code, f.text) for f in res.flags if f.code != FlagCode.SHORT_QUERY][:3]
    assert qc_flags == [
        (FlagCode.QUERY_QC, "query QC: very short query (90 bp): below the 100 bp minimum"),
        (FlagCode.LOW_QUALITY, "low quality: not quality-trimmed"),
        (FlagCode.QUERY_QC, "query QC: phred and quality are words, not codes"),
    ]
    assert res.flag_texts[0].startswith("short query (90 bp)")


def test_stored_json_keeps_its_shape_and_adds_codes() -> None:
    recs = _records("coi_panthera.fasta")
    leo = next(r for r in recs if r.species == "Panthera leo")
    res = _one(_revcomp(leo.sequence), _version(recs, "coi"))
    d = res.to_dict()
    assert d["level"] == "species" and type(d["level"]) is str
    assert all(type(f) is str for f in d["flags"])
    assert d["flag_codes"] == [str(f.code) for f in res.flags]
    assert "reverse-strand" in d["flag_codes"]
    assert d["qc"]["warnings"] == [] and d["qc"]["warning_codes"] == []
    assert set(d["species_stats"]) == {
        "species", "n_refs", "n_pairs", "intra_max", "intra_mean", "nn_distance", "nn_species"
    }  # fmt: skip


def test_each_level_has_one_wording() -> None:
    assert [lv.words for lv in DecisionLevel] == [
        "Species",
        "Ambiguous",
        "Genus only",
        "No identification",
    ]
    assert level_words("genus") == "Genus only"
    assert level_words("something-newer") == "something-newer"


def _identical_match_library(*, sister_genus: str = "Testgenus") -> LibraryVersion:
    """Testgenus alpha from one reference, its nearest species (in `sister_genus`) about
    2.6 % away, and a genus whose other species lie within 0.5 % of each other: the
    genus test gives no relief."""
    version = _few_refs_library(36, unresolved=True)
    recs = [
        RefRecord(r.seq_id, r.species.replace("Testgenus", sister_genus), r.marker, r.sequence)
        if r.species == "Testgenus beta"
        else r
        for r in version.records
    ]
    return _version(recs, f"identical-{sister_genus}")


def test_query_identical_to_a_few_refs_species_whose_nearest_species_is_a_congener_is_called() -> (
    None
):
    # One reference, its nearest species a congener 2.6 % away: a query identical to
    # the reference is a species call that says why; one base off, it is not.
    version = _identical_match_library()
    ref = version.records[0].sequence
    res = _one(ref, version)
    assert res.level == "species" and res.taxon == "Testgenus alpha"
    relief = [f for f in res.flags if f.code is FlagCode.IDENTICAL_MATCH]
    assert len(relief) == 1
    assert relief[0].text.startswith(
        "Testgenus alpha is known from 1 reference only, but the query is identical to it and "
        "its nearest other species in the library is a congener, Testgenus beta, 2.63 % away"
    )
    assert relief[0].text.endswith("sharing the query's sequence exactly is unlikely")
    one_off = ref[:300] + {"A": "G", "G": "A", "C": "T", "T": "C"}[ref[300]] + ref[301:]
    near = _one(one_off, version)
    assert near.level == "genus"
    assert any("known from 1 reference only" in f and "4 %" in f for f in near.flag_texts)
    # Revision 3 of the default rule and the strict rule keep the identical query at genus.
    r3 = dataclasses.replace(get_rule("default"), few_refs_exact_min_nn=0.0, revision=3)
    assert _one(ref, version, rule=r3).level == "genus"
    assert _one(ref, version, rule="strict").level == "genus"


def test_query_identical_to_a_few_refs_species_whose_nearest_species_is_another_genus_is_not_called() -> (
    None
):
    # The nearest species 2.6 % away belongs to another genus: the library does not show
    # the marker separating congeners, so an identical query stays at genus level.
    version = _identical_match_library(sister_genus="Othergenus")
    res = _one(version.records[0].sequence, version)
    assert res.level == "genus" and res.taxon == "Testgenus"
    assert not any(f.code is FlagCode.IDENTICAL_MATCH for f in res.flags)
    assert any("Othergenus beta" in f and "4 %" in f for f in res.flag_texts)
