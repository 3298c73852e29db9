"""Versioned reference libraries on disk: import, load, verify, export, attachments."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from species_ref.errors import InputFormatError, LibraryNotFound, SpeciesRefError
from species_ref.library import LibraryStore, canonical_library_hash
from species_ref.refimport import read_reference_file
from species_ref.types import RefRecord

IO = Path(__file__).parent / "data" / "species_io"


@pytest.fixture
def store(tmp_path: Path) -> LibraryStore:
    return LibraryStore(tmp_path / "libs")


def _rec(seq_id: str, species: str = "Manis javanica", marker: str = "COI-5P") -> RefRecord:
    return RefRecord(seq_id=seq_id, species=species, marker=marker, sequence="ACGT" * 20)


# --- canonical hash ---------------------------------------------------------------


def test_hash_matches_the_documented_recipe() -> None:
    records = [_rec("B2", "Manis tricuspis"), _rec("A1")]
    lines = [
        '{"marker":"COI-5P","seq_id":"A1","sequence":"'
        + "ACGT" * 20
        + '","species":"Manis javanica"}',
        '{"marker":"COI-5P","seq_id":"B2","sequence":"'
        + "ACGT" * 20
        + '","species":"Manis tricuspis"}',
    ]
    expected = "sha256:" + hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()
    assert canonical_library_hash(records) == expected


@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6)), min_size=1, max_size=5))
def test_hash_lines_are_the_canonical_json_encoding(fields: list[tuple[str, str]]) -> None:
    # Any ID or name (quotes, control characters, non-ASCII) hashes as the JSON recipe says.
    records = [
        RefRecord(seq_id=a, species=b, marker=a + b, sequence="ACGTN"[: len(a) + 1])
        for a, b in fields
    ]
    text = "".join(
        json.dumps(
            {"marker": r.marker, "seq_id": r.seq_id, "sequence": r.sequence, "species": r.species},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        + "\n"
        for r in sorted(records, key=lambda r: (r.species, r.seq_id, r.marker, r.sequence))
    )
    expected = "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    assert canonical_library_hash(records) == expected
    ordered = sorted(records, key=lambda r: (r.species, r.seq_id, r.marker, r.sequence))
    assert canonical_library_hash(ordered, presorted=True) == expected


def test_hash_ignores_order_and_source_but_not_content() -> None:
    a = [_rec("A1"), _rec("B2", "Manis tricuspis")]
    b = [
        RefRecord("B2", "Manis tricuspis", "COI-5P", "ACGT" * 20, source="other.gb"),
        RefRecord("A1", "Manis javanica", "COI-5P", "ACGT" * 20, source="x.fasta"),
    ]
    assert canonical_library_hash(a) == canonical_library_hash(b)
    changed = [_rec("A1"), RefRecord("B2", "Manis tricuspis", "COI-5P", "ACGT" * 19 + "ACGA")]
    assert canonical_library_hash(a) != canonical_library_hash(changed)
    relabelled = [_rec("A1"), _rec("B2", "Manis javanica")]
    assert canonical_library_hash(a) != canonical_library_hash(relabelled)


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(st.lists(st.tuples(_text, _text, _text, _text), max_size=8), st.randoms())
def test_hash_is_independent_of_record_order(
    rows: list[tuple[str, str, str, str]], rnd: random.Random
) -> None:
    records = [RefRecord(*row) for row in rows]
    shuffled = list(records)
    rnd.shuffle(shuffled)
    assert canonical_library_hash(records) == canonical_library_hash(shuffled)
    assert canonical_library_hash(records).startswith("sha256:")


def test_same_records_from_different_formats_hash_the_same() -> None:
    gb = read_reference_file(IO / "ref_small.gb", marker="COI-5P").records
    tsv = read_reference_file(IO / "ref_bold.tsv").records
    # same species, sequences and marker; rename IDs to the same scheme
    by_species = {r.species: r.sequence for r in tsv}
    assert canonical_library_hash(
        RefRecord(r.species, r.species, r.marker, r.sequence, r.source) for r in gb
    ) == canonical_library_hash(
        RefRecord(s, s, "COI-5P", seq, "x") for s, seq in by_species.items()
    )


# --- import / load ------------------------------------------------------------------


def test_import_creates_version_one_and_loads_it_back(store: LibraryStore) -> None:
    calls: list[tuple[int, int]] = []
    lib, result = store.import_version(
        "pangolin",
        [IO / "ref_pipe.fasta", IO / "ref_bold.fasta"],
        note="first import",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert lib.version == 1 and lib.name == "pangolin"
    assert len(lib.records) == 5
    assert len(result.rejected) == 6  # 5 in ref_pipe, 1 in ref_bold
    assert calls == [(1, 3), (2, 3), (3, 3)]
    loaded = store.load("pangolin")
    assert loaded.content_hash == lib.content_hash == canonical_library_hash(lib.records)
    assert set(loaded.records) == set(lib.records)
    assert loaded.note == "first import"
    assert loaded.species == {
        "Manis temminckii",
        "Manis pentadactyla",
        "Canis lupus",
        "Manis tricuspis",
        "Manis tetradactyla",
    }
    assert {r.reason.split(":")[0] for r in store.rejected("pangolin")} >= {"too short"}


def test_manifest_records_sources_counts_and_rejections(store: LibraryStore) -> None:
    store.import_version("pangolin", [IO / "ref_pipe.fasta"], note="n")
    m = store.manifest("pangolin")
    assert m["record_count"] == 3 and m["species_count"] == 3
    assert m["markers"] == {"COI-5P": 2, "cytb": 1}
    src = m["sources"][0]
    assert src["file"] == "ref_pipe.fasta"
    assert (
        src["sha256"]
        == "sha256:" + hashlib.sha256((IO / "ref_pipe.fasta").read_bytes()).hexdigest()
    )
    assert m["rejected"] == {
        "no species-level name": 2,
        "non-DNA characters": 1,
        "too many ambiguous bases": 1,
        "too short": 1,
    }
    assert m["created_at"].endswith("Z")


def test_each_version_is_exactly_the_files_of_its_import(store: LibraryStore) -> None:
    v1, _ = store.import_version("lib", [IO / "ref_pipe.fasta"])
    v2, _ = store.import_version("lib", [IO / "ref_bold.fasta"])
    assert (v1.version, v2.version) == (1, 2)
    assert {r.seq_id for r in store.load("lib", 2).records} == {"GBMIN1234-13", "GBMIN1235-13"}
    # version 1 is untouched
    assert store.load("lib", 1).content_hash == v1.content_hash
    assert [s.version for s in store.versions("lib")] == [1, 2]


def test_reimporting_identical_content_returns_the_latest_version(store: LibraryStore) -> None:
    v1, _ = store.import_version("lib", [IO / "ref_pipe.fasta"])
    again, _ = store.import_version("lib", [IO / "ref_pipe.fasta"], note="again")
    assert again.version == 1 and again.content_hash == v1.content_hash
    assert [s.version for s in store.versions("lib")] == [1]


def test_duplicates_across_files_are_rejected(store: LibraryStore) -> None:
    lib, result = store.import_version("lib", [IO / "ref_pipe.fasta", IO / "ref_pipe.fasta"])
    assert len(lib.records) == 3
    dup = [r for r in result.rejected if r.reason.startswith("duplicate ID")]
    assert len(dup) == 3 and "also in ref_pipe.fasta" in dup[0].reason


def test_failed_import_leaves_nothing(store: LibraryStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.fasta"
    bad.write_text(">A|Manis sp.|COI-5P\n" + "ACGT" * 20 + "\n")
    with pytest.raises(InputFormatError, match="bad.fasta"):
        store.import_version("lib", [IO / "ref_pipe.fasta", bad])
    assert store.list_libraries() == []
    assert not list(store.root.glob("lib/v*"))
    assert not list(store.root.glob("lib/.import-*"))
    with pytest.raises(InputFormatError, match="No reference files"):
        store.import_version("lib", [])


def test_list_libraries_summarises_latest_versions(store: LibraryStore) -> None:
    store.import_version("b-lib", [IO / "ref_pipe.fasta"])
    store.import_version("a.lib", [IO / "ref_bold.fasta"])
    store.import_version("a.lib", [IO / "ref_bold.fasta", IO / "ref_pipe.fasta"], note="v2")
    summaries = store.list_libraries()
    assert [(s.name, s.version) for s in summaries] == [("a.lib", 2), ("b-lib", 1)]
    a = summaries[0]
    assert a.record_count == 5 and a.species_count == 5
    assert a.markers == ("COI-5P", "cytb")
    assert a.note == "v2" and a.content_hash.startswith("sha256:")


@pytest.mark.parametrize("name", ["bad name", "../up", "", ".hidden", "a/b", "é"])
def test_bad_library_names_are_refused(store: LibraryStore, name: str) -> None:
    with pytest.raises(SpeciesRefError, match="is not allowed"):
        store.import_version(name, [IO / "ref_pipe.fasta"])


def test_missing_library_or_version_lists_what_exists(store: LibraryStore) -> None:
    with pytest.raises(LibraryNotFound, match=r"'nope' does not exist \(available: none yet\)"):
        store.load("nope")
    store.import_version("demo", [IO / "ref_pipe.fasta"])
    with pytest.raises(LibraryNotFound, match=r"available: demo"):
        store.load("nope")
    with pytest.raises(LibraryNotFound, match=r"no version 7 \(versions: 1\)"):
        store.load("demo", 7)


# --- tampering ------------------------------------------------------------------------


def test_altered_records_file_is_detected(store: LibraryStore) -> None:
    store.import_version("lib", [IO / "ref_pipe.fasta"])
    path = store.version_dir("lib", 1) / "records.jsonl.gz"
    rows = [json.loads(x) for x in gzip.decompress(path.read_bytes()).decode().splitlines()]
    rows[0][1] = "Manis javanica"  # relabel one reference
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    with pytest.raises(SpeciesRefError, match="was altered on disk"):
        store.load("lib")


def test_altered_records_with_forged_file_hash_is_detected(store: LibraryStore) -> None:
    store.import_version("lib", [IO / "ref_pipe.fasta"])
    vdir = store.version_dir("lib", 1)
    path = vdir / "records.jsonl.gz"
    rows = [json.loads(x) for x in gzip.decompress(path.read_bytes()).decode().splitlines()]
    rows[0][3] = rows[0][3][:-1] + ("A" if rows[0][3][-1] != "A" else "C")
    blob = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    path.write_bytes(blob)
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["records_sha256"] = "sha256:" + hashlib.sha256(blob).hexdigest()
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SpeciesRefError, match="its records hash to"):
        store.load("lib")


def test_open_checks_file_hashes_at_once_and_records_when_read(store: LibraryStore) -> None:
    lib, _ = store.import_version("lib", [IO / "ref_pipe.fasta"])
    opened = store.open("lib")
    assert (opened.name, opened.version, opened.content_hash) == ("lib", 1, lib.content_hash)
    assert opened.records == lib.records
    vdir = store.version_dir("lib", 1)
    path = vdir / "records.jsonl.gz"
    rows = [json.loads(x) for x in gzip.decompress(path.read_bytes()).decode().splitlines()]
    rows[0][1] = "Manis javanica"
    blob = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    path.write_bytes(blob)
    with pytest.raises(SpeciesRefError, match="records.jsonl.gz has hash"):
        store.open("lib")  # altered file: refused before anything is searched
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["records_sha256"] = "sha256:" + hashlib.sha256(blob).hexdigest()
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    forged = store.open("lib")  # the file hash was forged too: found when records are read
    with pytest.raises(SpeciesRefError, match="its records hash to"):
        _ = forged.records


# --- export / attachments / cache ------------------------------------------------------


def test_export_reimports_to_the_same_hash(store: LibraryStore, tmp_path: Path) -> None:
    lib, _ = store.import_version("src", [IO / "ref_small.gb", IO / "ref_bold.tsv"])
    out = store.export_fasta("src", tmp_path / "export.fasta")
    first = out.read_text().splitlines()[0]
    assert first.startswith(">") and first.count("|") == 2
    copy, _ = store.import_version("copy", [out])
    assert copy.content_hash == lib.content_hash


def test_attachments_round_trip_and_survive_verification(store: LibraryStore) -> None:
    store.import_version("lib", [IO / "ref_pipe.fasta"])
    assert store.attachment("lib", 1, "loo") is None
    store.attach("lib", 1, "loo", {"correct": 0.98, "n": 3})
    assert store.attachment("lib", 1, "loo") == {"correct": 0.98, "n": 3}
    store.attach("lib", 1, "loo", {"correct": 0.5})
    assert store.attachment("lib", 1, "loo") == {"correct": 0.5}
    store.load("lib")  # attachments are not part of the frozen snapshot
    with pytest.raises(SpeciesRefError, match="not allowed"):
        store.attach("lib", 1, "../escape", {})
    with pytest.raises(LibraryNotFound):
        store.attach("lib", 2, "loo", {})


def test_cache_dir_is_per_version_and_outside_the_snapshot(store: LibraryStore) -> None:
    store.import_version("lib", [IO / "ref_pipe.fasta"])
    cache = store.cache_dir("lib", 1)
    assert cache.is_dir()
    assert store.version_dir("lib", 1) not in cache.parents
    (cache / "index.bin").write_bytes(b"x")
    shutil.rmtree(cache)
    store.load("lib")
    assert [s.version for s in store.versions("lib")] == [1]


# --- bundled demo data -------------------------------------------------------------------

DATA = Path(__file__).parent.parent / "species_ref" / "data"


def test_bundled_demo_library_imports_cleanly_with_provenance(store: LibraryStore) -> None:
    lib, result = store.import_version("demo", [DATA / "demo_library.fasta"])
    assert 200 <= len(lib.records) <= 500
    assert result.rejected == ()
    genera = {r.genus for r in lib.records}
    for group in ("Manis", "Loxodonta", "Diceros", "Panthera", "Sphyrna", "Psittacus", "Chelonia"):
        assert group in genera
    for domestic in ("Sus scrofa", "Bos taurus", "Capra hircus", "Canis lupus"):
        assert domestic in lib.species
    with (DATA / "demo_library_SOURCES.tsv").open(encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    assert {(r[1], r[3]) for r in rows} == {(r.seq_id, r.marker) for r in lib.records}


def test_demo_queries_are_held_out_but_their_species_are_in_the_library() -> None:
    from species_ref.reading import read_queries

    library = read_reference_file(DATA / "demo_library.fasta").records
    queries = read_queries(DATA / "demo_queries.fasta")
    assert 2 <= len(queries) <= 6
    species = {r.species for r in library}
    ids = {r.seq_id for r in library}
    sequences = {r.sequence for r in library}
    for q in queries:
        # header: "<name> <copy of|reverse complement of> refdata record ID|Genus species|marker"
        record = q.extra["description"].split("refdata record ")[1].split()[0:2]
        seq_id, genus_species = record[0].split("|")[0], " ".join(q.name.split("_")[1:3])
        assert seq_id not in ids
        assert genus_species in species
        assert q.sequence not in sequences
    assert any("reverse complement" in q.extra["description"] for q in queries)


def test_verify_reports_findings_per_version(store: LibraryStore) -> None:
    store.import_version("lib", [IO / "ref_pipe.fasta"])
    store.import_version("lib", [IO / "ref_bold.fasta"])
    assert store.verify("lib") == []
    rejected = store.version_dir("lib", 1) / "rejected.jsonl.gz"
    rejected.write_bytes(gzip.compress(b'["X0001","accepted after all",""]\n'))
    records = store.version_dir("lib", 2) / "records.jsonl.gz"
    records.write_bytes(records.read_bytes()[:-4])
    findings = store.verify("lib")
    assert len(findings) >= 2
    assert any("version 1" in f and "rejected.jsonl.gz" in f for f in findings)
    assert any("version 2" in f and "records.jsonl.gz" in f for f in findings)
    assert all(f.endswith(".") for f in findings)
    assert store.verify("lib", 1) and all("version 1" in f for f in store.verify("lib", 1))
    with pytest.raises(LibraryNotFound):
        store.verify("other")


def test_import_returns_records_in_the_order_load_gives(store: LibraryStore) -> None:
    lib, _ = store.import_version("lib", [IO / "ref_pipe.fasta", IO / "ref_bold.tsv"])
    assert lib.records == store.load("lib").records
    assert [r.species for r in lib.records] == sorted(r.species for r in lib.records)


def test_unwritable_root_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    store = LibraryStore(blocker)
    with pytest.raises(SpeciesRefError, match="could not be written.*Nothing was imported"):
        store.import_version("lib", [IO / "ref_pipe.fasta"])
