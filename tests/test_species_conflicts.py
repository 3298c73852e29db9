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
