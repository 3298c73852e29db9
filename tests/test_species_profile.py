"""Library statistics computed in batches say what one alignment per query says."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from species_ref.batchalign import align_pairs, search_probes
from species_ref.index import KmerIndex
from species_ref.matching import Matcher
from species_ref.profile import LibraryProfile
from species_ref.types import RefRecord

_COMP = str.maketrans("ACGTRYKMSWN", "TGCAYRMKSWN")


def _mutate(rng: random.Random, seq: str, rate: float) -> str:
    out = list(seq)
    for i in range(len(out)):
        if rng.random() < rate:
            out[i] = rng.choice([b for b in "ACGT" if b != out[i]])
    return "".join(out)


def _library(seed: int = 7) -> KmerIndex:
    """Genera of species with substitutions, indels, reverse-complemented records,
    ambiguity codes and mini-barcodes, as real libraries have them."""
    rng = random.Random(seed)
    recs: list[RefRecord] = []
    for g in range(4):
        genus = "".join(rng.choice("ACGT") for _ in range(650))
        for s in range(5):
            anc = _mutate(rng, genus, rng.uniform(0.02, 0.09))
            name = f"Genus{g} sp{s}"
            for i in range(rng.choice([1, 2, 4, 7, 12])):
                seq = _mutate(rng, anc, rng.uniform(0.0, 0.01))
                roll = rng.random()
                if roll < 0.12:
                    cut = rng.randint(60, 580)
                    seq = seq[:cut] + seq[cut + rng.choice([1, 3, 6]) :]
                elif roll < 0.2:
                    cut = rng.randint(60, 580)
                    seq = seq[:cut] + "".join(rng.choice("ACGT") for _ in range(3)) + seq[cut:]
                elif roll < 0.28:
                    start = rng.randint(0, 400)
                    seq = seq[start : start + rng.randint(120, 250)]
                elif roll < 0.34:
                    pos = rng.randint(0, len(seq) - 1)
                    seq = seq[:pos] + rng.choice("RYKMSWN") + seq[pos + 1 :]
                if rng.random() < 0.1:
                    seq = seq.translate(_COMP)[::-1]
                # A few species carry records of a second marker (probed on their own).
                marker = "12S" if g == 3 and i == 2 else "COI-5P"
                recs.append(RefRecord(f"G{g}S{s}R{i}", name, marker, seq))
    return KmerIndex.from_records(recs)


@pytest.fixture(scope="module")
def index() -> KmerIndex:
    return _library()


@pytest.mark.parametrize("counters", ["dense", "sorted", "sorted in small passes"])
def test_candidates_of_many_probes_are_those_of_one_search_each(
    index: KmerIndex, counters: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import species_ref.batchalign as batchalign

    if counters != "dense":
        monkeypatch.setattr(batchalign, "_DENSE_CELLS", 0)
    if counters == "sorted in small passes":
        monkeypatch.setattr(batchalign, "_POSTINGS_PER_PASS", 1000)
    probes = np.arange(0, index.n_refs, 3, dtype=np.int64)
    found = search_probes(index, probes, top_n=24, per_species=2)
    for i, p in enumerate(probes.tolist()):
        own = index.species_ids == index.species_ids[p]
        one = index.candidates(index.ref_mask(p), 24, per_species=2, exclude=own)
        sel = found.probe == i
        assert found.refs[sel].tolist() == one.refs.tolist()
        assert found.strands[sel].tolist() == one.strands.tolist()
        assert found.shared[sel].tolist() == one.shared.tolist()


@pytest.mark.parametrize("max_gapped", [2, 10])
def test_batched_alignment_gives_the_identity_and_length_of_align_many(
    index: KmerIndex, max_gapped: int
) -> None:
    m = Matcher(index, max_gapped=max_gapped)
    probes = np.arange(index.n_refs, dtype=np.int64)
    found = search_probes(index, probes, top_n=24, per_species=2)
    ident, cols = align_pairs(
        m,
        query=probes[found.probe],
        ref=found.refs,
        strand=found.strands,
        group=found.probe,
        shared=found.shared,
    )
    methods = set()
    for i, p in enumerate(probes.tolist()):
        sel = np.flatnonzero(found.probe == i)
        raws = m.align_many(
            index.ref_mask(p),
            refs=found.refs[sel],
            strands=found.strands[sel],
            shared=found.shared[sel],
        )
        for j, raw in zip(sel.tolist(), raws, strict=True):
            want = (0.0, 0) if raw is None else (raw.identity, raw.columns)
            assert (ident[j], cols[j]) == pytest.approx(want, abs=1e-9)
            if raw is not None:
                methods.add(raw.method)
    assert methods == {"ungapped", "aligned", "chained"}  # every path of the aligner was met


def _profile_one_call_per_query(
    index: KmerIndex, m: Matcher, far_probed: list[bool] | None = None
) -> dict[str, np.ndarray]:
    """The statistics as computed one `align_many` call per query (the reference method).

    `far_probed` receives, per species with a usable pair, whether its farthest
    reference was a probe."""
    pa: list[int] = []
    pb: list[int] = []
    pd: list[float] = []
    na: list[int] = []
    nr: list[int] = []
    nd: list[float] = []
    lens = index.lengths

    def usable(raw: Any, a: int, b: int) -> bool:
        return raw is not None and bool(raw.columns >= 0.8 * min(lens[a], lens[b]))

    for sp in range(len(index.species_names)):
        members = np.flatnonzero(index.species_ids == sp)
        sample = members
        if members.shape[0] > 31:
            sample = members[np.linspace(0, members.shape[0] - 1, 31).round().astype(int)]
        centre = int(sample[0])
        probes = [centre]
        if sample.shape[0] > 1:
            others = sample[1:]
            raws = m.align_many(
                index.ref_mask(centre), refs=others, strands=np.ones(others.shape[0], dtype=int)
            )
            star = [
                (int(b), 100 - r.identity)
                for b, r in zip(others, raws, strict=True)
                if usable(r, centre, b)
            ]
            for b, d in star:
                pa.append(centre), pb.append(b), pd.append(d)
            if star:
                far, far_dist = max(star, key=lambda x: x[1])
                if far_dist > 2.0:  # nearer, the first reference stands for it
                    probes.append(far)
                if far_probed is not None:
                    far_probed.append(far_dist > 2.0)
                rest = sample[(sample != far) & (sample != centre)]
                if rest.shape[0]:
                    raws = m.align_many(
                        index.ref_mask(far), refs=rest, strands=np.ones(rest.shape[0], dtype=int)
                    )
                    for b, r in zip(rest.tolist(), raws, strict=True):
                        if usable(r, far, b):
                            pa.append(far), pb.append(b), pd.append(100 - r.identity)
            seen = {index.markers[centre]}
            for extra in sample[1:].tolist():
                if len(probes) >= 3:
                    break
                if index.markers[extra] not in seen and extra not in probes:
                    probes.append(extra)
                    seen.add(index.markers[extra])
            if not star and len(probes) == 1:
                probes.append(int(sample[1]))
        excl = index.species_ids == sp
        for a in probes:
            c = index.candidates(index.ref_mask(a), 16, per_species=2, exclude=excl)
            raws = m.align_many(index.ref_mask(a), refs=c.refs, strands=c.strands, shared=c.shared)
            best: dict[int, tuple[float, int]] = {}
            for ref, r in zip(c.refs.tolist(), raws, strict=True):
                if not usable(r, a, ref):
                    continue
                s, d = int(index.species_ids[ref]), 100 - r.identity
                if s not in best or d < best[s][0]:
                    best[s] = (d, ref)
            for d, ref in sorted(best.values())[:6]:
                na.append(a), nr.append(ref), nd.append(d)
    return {
        "pair_a": np.array(pa),
        "pair_b": np.array(pb),
        "pair_dist": np.array(pd),
        "nb_probe": np.array(na),
        "nb_ref": np.array(nr),
        "nb_dist": np.array(nd),
    }


def test_profile_rows_are_those_of_one_alignment_call_per_query(index: KmerIndex) -> None:
    m = Matcher(index, max_gapped=2)
    built = LibraryProfile.build(index, matcher=m, workers=1)
    far_probed: list[bool] = []
    want = _profile_one_call_per_query(index, m, far_probed)
    # Both kinds of species are met: farthest reference probed, and left to the first.
    assert any(far_probed) and not all(far_probed)
    for name, values in want.items():
        got = getattr(built, name)
        assert got.shape == values.shape, name
        assert np.allclose(got, values, rtol=0, atol=1e-9), name


def test_statistics_do_not_depend_on_workers_or_batch_size(
    index: KmerIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    import species_ref.batchalign as batchalign
    import species_ref.profile as profile

    one = LibraryProfile.build(index, workers=1)
    monkeypatch.setattr(profile, "_SPECIES_PER_TASK", 3)
    monkeypatch.setattr(batchalign, "_PAIRS_PER_PASS", 50)
    monkeypatch.setattr(batchalign, "_PROBES_PER_PASS", 4)
    several = LibraryProfile.build(index, workers=2)
    for sid in range(len(index.species_names)):
        assert one.stats(sid) == several.stats(sid)


def test_cached_profile_is_reopened_not_rebuilt(
    index: KmerIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = LibraryProfile.load_or_build(index, tmp_path)
    (cached,) = tmp_path.glob("species_profile_*")
    assert cached.is_dir() and cached.name.endswith("_v2_m3")

    def no_build(*_args: Any, **_kwargs: Any) -> LibraryProfile:
        raise AssertionError("the profile was rebuilt")

    monkeypatch.setattr(LibraryProfile, "build", no_build)
    again = LibraryProfile.load_or_build(index, tmp_path)
    for sid in range(len(index.species_names)):
        assert again.stats(sid) == built.stats(sid)


def test_profiles_cached_by_an_earlier_release_are_rebuilt_and_removed(
    index: KmerIndex, tmp_path: Path
) -> None:
    built = LibraryProfile.build(index, workers=1)
    digest = hashlib.sha256(index.content_hash.encode()).hexdigest()[:24]
    stem = f"species_profile_{digest}_k{index.k}"
    # Statistics computed by the earlier method (three probes per species), with a
    # distance that differs from what this release computes ...
    earlier = LibraryProfile(
        content_hash=built.content_hash,
        pair_a=built.pair_a,
        pair_b=built.pair_b,
        pair_dist=built.pair_dist + 1.0,
        nb_probe=built.nb_probe,
        nb_ref=built.nb_ref,
        nb_dist=built.nb_dist,
        species_ids=built.species_ids,
        species_names=built.species_names,
    )
    earlier.save(tmp_path / f"{stem}_v2")
    # ... and a single-file cache of the first format, damaged in the middle of a write.
    (tmp_path / f"{stem}_v1.npz").write_bytes(b"PK\x03\x04 cut off in the middle of a write")
    other_library = tmp_path / "species_profile_0123456789abcdef01234567_k11_v2"
    earlier.save(other_library)
    got = LibraryProfile.load_or_build(index, tmp_path)
    for sid in range(len(index.species_names)):
        assert got.stats(sid) == built.stats(sid)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"{stem}_v2_m3", other_library.name])


def test_a_cache_written_by_another_process_meanwhile_is_kept(
    index: KmerIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import species_ref.index as index_module

    built = LibraryProfile.build(index, workers=1)
    target = tmp_path / "species_profile_x_v2"
    rename = os.rename

    def lose_the_race(src: str, dst: str) -> None:
        rename(src, dst)  # the other process's directory lands first ...
        raise OSError(39, "Directory not empty")  # ... so ours cannot be renamed onto it

    monkeypatch.setattr(index_module.os, "rename", lose_the_race)
    built.save(target)
    monkeypatch.undo()
    assert LibraryProfile.load(target).stats(0) == built.stats(0)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left behind
