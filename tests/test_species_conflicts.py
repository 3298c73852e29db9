"""Name conflicts in a reference library: synonyms, misidentified records, unseparated species."""

from __future__ import annotations

import random

import pytest

from species_ref.cites import lookup_cites
from species_ref.conflicts import (
    MISIDENTIFIED,
    NOT_SEPARATED,
    SYNONYM,
    TWO_GENERA,
    NameConflict,
    find_conflicts,
)
from species_ref.index import KmerIndex
from species_ref.profile import LibraryProfile
from species_ref.types import RefRecord


def _mutate(rng: random.Random, seq: str, n: int) -> str:
    out = list(seq)
    for i in rng.sample(range(len(seq)), n):
        out[i] = rng.choice([b for b in "ACGT" if b != out[i]])
    return "".join(out)


@pytest.fixture(scope="module")
def conflicts() -> dict[frozenset[str], NameConflict]:
    rng = random.Random(3)
    recs: list[RefRecord] = []

    def add(species: str, seq: str) -> None:
        recs.append(RefRecord(f"R{len(recs):03d}", species, "COI-5P", seq))

    def base() -> str:
        return "".join(rng.choice("ACGT") for _ in range(650))

    alpha = base()
    alpha_two = _mutate(rng, alpha, 52)  # 8 % from Alpha one
    for _ in range(4):
        add("Alpha one", _mutate(rng, alpha, 1))
    for _ in range(3):
        add("Alpha two", _mutate(rng, alpha_two, 1))
    add("Alpha two", recs[0].sequence)  # a record of Alpha one filed as Alpha two
    gamma = base()
    add("Beta gamma", gamma)
    add("Delta gamma", gamma)  # one species under two genus names
    eps = base()
    add("Epsilon prima", eps)
    add("Epsilon secunda", _mutate(rng, eps, 2))  # 0.3 %: not separated by the marker
    zeta = base()
    add("Zeta zeta", zeta)
    add("Eta eta", zeta)  # two genera, same sequence
    iota = base()
    add("Iota prima", iota)
    add("Iota secunda", _mutate(rng, iota, 7))  # 1.1 %: outside the default 0.5 %
    for _ in range(3):
        add("Theta clean", _mutate(rng, base(), 1))
    index = KmerIndex.from_records(recs)
    profile = LibraryProfile.build(index, workers=1)
    found = find_conflicts(index, profile)
    return {frozenset((c.species_a, c.species_b)): c for c in found}


def test_each_kind_of_conflict_is_found_and_read(
    conflicts: dict[frozenset[str], NameConflict],
) -> None:
    assert set(conflicts) == {
        frozenset({"Alpha one", "Alpha two"}),
        frozenset({"Beta gamma", "Delta gamma"}),
        frozenset({"Epsilon prima", "Epsilon secunda"}),
        frozenset({"Zeta zeta", "Eta eta"}),
    }
    mis = conflicts[frozenset({"Alpha one", "Alpha two"})]
    assert mis.kind == MISIDENTIFIED and mis.distance == 0.0
    assert mis.suspect == "R007"
    assert "R007, labelled Alpha two, is identical to Alpha one" in mis.explanation
    assert conflicts[frozenset({"Beta gamma", "Delta gamma"})].kind == SYNONYM
    sister = conflicts[frozenset({"Epsilon prima", "Epsilon secunda"})]
    assert sister.kind == NOT_SEPARATED and 0.2 < sister.distance < 0.5
    assert "within 0.31 %" in sister.explanation
    assert conflicts[frozenset({"Zeta zeta", "Eta eta"})].kind == TWO_GENERA


def test_distance_limit_widens_the_report() -> None:
    rng = random.Random(5)
    seq = "".join(rng.choice("ACGT") for _ in range(650))
    recs = [
        RefRecord("A1", "Iota prima", "COI-5P", seq),
        RefRecord("B1", "Iota secunda", "COI-5P", _mutate(rng, seq, 7)),
    ]
    index = KmerIndex.from_records(recs)
    profile = LibraryProfile.build(index, workers=1)
    assert find_conflicts(index, profile) == []
    (wide,) = find_conflicts(index, profile, within=1.5)
    assert wide.kind == NOT_SEPARATED and wide.accessions == (("A1", "B1"),)


def test_cites_listed_species_of_a_pair_are_named() -> None:
    rng = random.Random(9)
    seq = "".join(rng.choice("ACGT") for _ in range(650))
    recs = [
        RefRecord("P1", "Manis javanica", "COI-5P", seq),
        RefRecord("P2", "Manis culionensis", "COI-5P", seq),
        RefRecord("X1", "Gallus gallus", "COI-5P", "".join(rng.choice("ACGT") for _ in range(650))),
    ]
    index = KmerIndex.from_records(recs)
    (pair,) = find_conflicts(index, LibraryProfile.build(index, workers=1), cites=lookup_cites)
    assert len(pair.cites) == 2 and all("Appendix I" in s for s in pair.cites)
    assert pair.to_dict()["cites"] == list(pair.cites)


def test_a_far_record_that_was_no_probe_is_still_checked_against_the_neighbours() -> None:
    # K2 lies 0.15 % from L1; the first records K1 and L0 are nearer each other (0.6 %)
    # than either is to the other's pair, and each far record lies within 2 % of its
    # first record: no probe of its own, and not the nearest reference the other
    # species' first record found. Only checking every reference of a neighbour
    # species from the far records finds the pair.
    rng = random.Random(11)
    lam = "".join(rng.choice("ACGT") for _ in range(650))
    sites = rng.sample(range(650), 9)

    def changed(at: list[int], base: str = "A", other: str = "C") -> str:
        out = list(lam)
        for i in at:
            out[i] = base if out[i] != base else other
        return "".join(out)

    comp = str.maketrans("ACGT", "TGCA")
    recs = [
        RefRecord("K1", "Kappa one", "COI-5P", changed(sites[:8])),
        RefRecord("K2", "Kappa one", "COI-5P", changed(sites[8:9], "G", "T")),
        # Lambda's records are filed reverse-complemented.
        RefRecord("L0", "Lambda two", "COI-5P", changed(sites[:4]).translate(comp)[::-1]),
        RefRecord("L1", "Lambda two", "COI-5P", lam.translate(comp)[::-1]),
        RefRecord("M1", "Mu three", "COI-5P", "".join(rng.choice("ACGT") for _ in range(650))),
    ]
    index = KmerIndex.from_records(recs)
    profile = LibraryProfile.build(index, workers=1)
    assert not {1, 3} & set(profile.nb_probe.tolist())  # neither K2 nor L1 was a probe
    (found,) = find_conflicts(index, profile)
    assert {found.species_a, found.species_b} == {"Kappa one", "Lambda two"}
    assert found.accessions[0] == ("K2", "L1") and found.distance < 0.2
