"""The national-scale bench (bench/scale_bench.py): its generator and one small run of its CLI."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from species_ref.refimport import read_reference_file

BENCH = Path(__file__).resolve().parent.parent / "bench" / "scale_bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scale_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scale_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_generator_writes_a_genus_structured_library_and_queries(
    bench: ModuleType, tmp_path: Path
) -> None:
    refs, queries = bench.generate(2000, 40, tmp_path)
    imported = read_reference_file(refs)
    assert len(imported.records) == 2000 and not imported.rejected
    species = {r.species for r in imported.records}
    genera = {s.split()[0] for s in species}
    assert (len(species), len(genera)) == (200, 20)  # ten per species, ten species per genus
    names = [line[1:].strip() for line in queries.read_text().splitlines() if line[0] == ">"]
    assert len(names) == 40 and len(set(names)) == 40
    # Generating again reuses the files (a 1,000,000-reference FASTA takes minutes).
    stamp = refs.stat().st_mtime_ns
    assert bench.generate(2000, 40, tmp_path) == (refs, queries)
    assert refs.stat().st_mtime_ns == stamp


def test_bench_cli_imports_identifies_and_reports(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scale"
    code = bench.main(
        ["--refs", "300", "--queries", "12", "--out", str(out), "--no-blast", "--limit-gib", "0"]
        + ["--repeat", "2", "--import-repeat", "2"]
    )
    assert code == 0
    (row,) = json.loads((out / "results.json").read_text())
    assert row["references"] == 300
    assert row["ref_import"]["outcome"] == "ok", row["ref_import"]
    assert row["identify"]["outcome"] == "ok", row["identify"]
    # The search ran twice; the row reports the run of median time.
    runs = row["identify_runs"]
    assert len(runs) == 2 and row["identify"]["seconds"] == min(r["seconds"] for r in runs)
    # Each import went into a new store: the library searched is version 1 of the last one.
    assert len(row["ref_import_runs"]) == 2 and all(
        r["outcome"] == "ok" for r in row["ref_import_runs"]
    )
    assert (out / "refs300" / "store" / "references" / "synth" / "v0001").is_dir()
    assert not (out / "refs300" / "store" / "references" / "synth" / "v0002").exists()
    assert row["store_mib"] > 0 and row["ref_import"]["peak_mib"] > 0
    lines = (out / "refs300" / "identify.jsonl").read_text().splitlines()
    assert len(lines) == 12 and all(json.loads(x)["library_name"] == "synth" for x in lines)
    table = capsys.readouterr().out
    assert "store/fasta" in table and "      300 " in table


def test_imports_are_repeated_by_default_where_makeblastdb_takes_a_second(
    bench: ModuleType,
) -> None:
    assert bench.import_runs(100_000, 0) == 5  # median of five: one run is too noisy
    assert bench.import_runs(1_000_000, 0) == 1  # minutes each
    assert bench.import_runs(100_000, 2) == 2 and bench.import_runs(1_000_000, 3) == 3


def test_a_negative_repeat_count_is_refused_before_anything_runs(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        bench.main(["--refs", "300", "--out", str(tmp_path / "scale"), "--import-repeat", "-1"])
    assert stop.value.code == 2
    assert "--import-repeat at least 0" in capsys.readouterr().err
    assert not (tmp_path / "scale").exists()  # nothing generated
