"""Speed and agreement of our identification engine against blastn and vsearch.

Usage: python bench/identify_bench.py [--refdata DIR] [--synthetic-refs 100000]
       [--synthetic-queries 1000] [--scenarios coi,synthetic]

Scenarios:
  coi        refdata coi.fasta; one sequence per species (species with >= 2
             sequences) is held out as a query, the rest is the library.
  synthetic  references generated with genus/species/individual structure
             (family ancestors mutated per genus, per species, per individual;
             650 bp, substitutions and rare indels) plus queries: new
             individuals of library species and of species absent from it.

For each tool: wall time of the search (library preparation reported
separately: our index + species statistics built from scratch unless
--keep-cache, makeblastdb, none for vsearch),
queries per second, agreement of its top-hit species with ours, top-hit
accuracy against the truth, and peak memory (resource.getrusage; the tools run
under a small wrapper process so each figure is the tool's own). blastn and
vsearch are installed with apt-get if missing, else skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from species_ref.identify import Engine, identify  # noqa: E402
from species_ref.types import LibraryVersion, Query, QueryQC, RefRecord  # noqa: E402

from validate_refdata import load_version  # noqa: E402

OUT = ROOT / "bench" / "out" / "identify_bench"
_WRAP = (
    "import resource, subprocess, sys, time\n"
    "t = time.time()\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "dt = time.time() - t\n"
    "if rc.returncode:\n"
    "    sys.stderr.write(rc.stderr.decode()[-2000:])\n"
    "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc.returncode)\n"
)


def ensure_tools() -> dict[str, str | None]:
    found = {t: shutil.which(t) for t in ("blastn", "makeblastdb", "vsearch")}
    if all(found.values()):
        return found
    if shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "ncbi-blast+", "vsearch"], capture_output=True
        )
    return {t: shutil.which(t) for t in ("blastn", "makeblastdb", "vsearch")}


def run_tool(cmd: Sequence[str]) -> tuple[float, int]:
    """Run a command under a wrapper; return (seconds, peak RSS in MiB)."""
    res = subprocess.run(
        [sys.executable, "-c", _WRAP, *cmd], capture_output=True, text=True, check=False
    )
    parts = res.stdout.split()
    if len(parts) < 3 or parts[2] != "0":
        raise RuntimeError(f"{cmd[0]} failed: {res.stderr[-500:]}")
    return float(parts[0]), int(parts[1]) // 1024


def write_fasta(path: Path, items: Sequence[tuple[str, str]]) -> None:
    with open(path, "w") as fh:
        for name, seq in items:
            fh.write(f">{name}\n{seq}\n")


def top_species_from_tsv(path: Path, ref_species: dict[str, str]) -> dict[str, str]:
    """First (best) hit per query in a BLAST-6 table -> species."""
    best: dict[str, tuple[float, str]] = {}
    for line in path.read_text().splitlines():
        f = line.split("\t")
        if len(f) < 12:
            continue
        q, s, bits = f[0], f[1], float(f[11])
        if q not in best or bits > best[q][0]:
            best[q] = (bits, ref_species.get(s, "?"))
    return {q: sp for q, (_b, sp) in best.items()}


def make_query(name: str, seq: str) -> Query:
    qc = QueryQC(len(seq), len(seq), None, 0.0, False, ())
    return Query(name, seq, "fasta", "sha256:bench", "bench", qc)


# --------------------------------------------------------------------------- scenarios
def coi_scenario(refdata: Path) -> tuple[LibraryVersion, list[tuple[str, str, str]]]:
    full = load_version(refdata / "coi.fasta")
    seen: dict[str, int] = {}
    counts: dict[str, int] = {}
    for r in full.records:
        counts[r.species] = counts.get(r.species, 0) + 1
    library: list[RefRecord] = []
    queries: list[tuple[str, str, str]] = []
    for r in full.records:
        if counts[r.species] >= 2 and r.species not in seen:
            seen[r.species] = 1
            queries.append((r.seq_id, r.sequence, r.species))
        else:
            library.append(r)
    version = LibraryVersion(
        "coi-bench", 1, full.content_hash + ":holdout", full.created_at, tuple(library)
    )
    return version, queries


_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def _mutate(rng: np.random.Generator, seq: np.ndarray, *, rate: float) -> np.ndarray:
    out = seq.copy()
    hit = np.asarray(rng.random(out.shape[0]) < rate)
    out[hit] = (out[hit] + rng.integers(1, 4, int(np.count_nonzero(hit)))) % 4
    return out


def synthetic_scenario(
    n_refs: int, *, n_queries: int, seed: int = 7
) -> tuple[LibraryVersion, list[tuple[str, str, str]]]:
    rng = np.random.default_rng(seed)
    length = 650
    per_species, species_per_genus, genera_per_family = 10, 10, 10
    n_species = max(1, n_refs // per_species)
    n_genera = max(1, n_species // species_per_genus)
    n_families = max(1, n_genera // genera_per_family)
    families = [rng.integers(0, 4, length).astype(np.uint8) for _ in range(n_families)]
    genera = [_mutate(rng, families[g % n_families], rate=0.12) for g in range(n_genera)]
    species_anc: list[np.ndarray] = []
    records: list[RefRecord] = []
    queries: list[tuple[str, str, str]] = []
    absent_every = 5  # one species in five per genus is kept out of the library
    for s in range(n_species + n_species // absent_every):
        g = s % n_genera
        anc = _mutate(rng, genera[g], rate=rng.uniform(0.03, 0.08))
        species_anc.append(anc)
    kept = list(range(n_species))
    absent = list(range(n_species, len(species_anc)))
    for s in kept:
        name = f"Genus{s % n_genera:05d} species{s:06d}"
        for i in range(per_species):
            ind = _mutate(rng, species_anc[s], rate=rng.uniform(0.0, 0.008))
            if rng.random() < 0.05:  # an indel now and then
                cut = int(rng.integers(50, length - 50))
                ind = np.concatenate((ind[:cut], ind[cut + 3 :]))
            seq = _BASES[ind].tobytes().decode()
            records.append(RefRecord(f"S{s:06d}_{i}", name, "COI-5P", seq))
    for qn in range(n_queries):
        if qn % 5 == 4 and absent:
            s = absent[int(rng.integers(0, len(absent)))]
        else:
            s = kept[int(rng.integers(0, len(kept)))]
        name = f"Genus{s % n_genera:05d} species{s:06d}"
        ind = _mutate(rng, species_anc[s], rate=rng.uniform(0.0, 0.008))
        queries.append((f"Q{qn:06d}", _BASES[ind].tobytes().decode(), name))
    version = LibraryVersion(
        "synthetic", 1, f"sha256:synthetic-{n_refs}-{seed}", "", tuple(records)
    )
    return version, queries


# --------------------------------------------------------------------------- runs
def run_scenario(
    name: str,
    *,
    version: LibraryVersion,
    queries: list[tuple[str, str, str]],
    tools: dict[str, str | None],
    keep_cache: bool = False,
) -> list[dict[str, object]]:
    work = OUT / name
    work.mkdir(parents=True, exist_ok=True)
    ref_species = {r.seq_id: r.species for r in version.records}
    truth = {q: sp for q, _s, sp in queries}
    lib_species = {r.species for r in version.records}
    rows: list[dict[str, object]] = []

    # Our engine: build once per library version (index + species statistics), then search.
    if not keep_cache:
        shutil.rmtree(work / "cache", ignore_errors=True)
    t0 = time.time()
    engine = Engine(version, cache_dir=work / "cache")
    build = time.time() - t0
    qobjs = [make_query(q, s) for q, s, _sp in queries]
    t0 = time.time()
    results = identify(qobjs, engine, workers=2)
    elapsed = time.time() - t0
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    ours_top = {r.query: (r.hits[0].species if r.hits else "") for r in results}
    present = [q for q, _s, sp in queries if sp in lib_species]
    absent = [q for q, _s, sp in queries if sp not in lib_species]
    calls = {r.query: r for r in results}
    correct = sum(1 for q in present if calls[q].level == "species" and calls[q].taxon == truth[q])
    wrong = sum(1 for q in present if calls[q].level == "species" and calls[q].taxon != truth[q])
    false = sum(1 for q in absent if calls[q].level == "species")
    rows.append(
        {
            "scenario": name,
            "tool": "species_ref (2 workers)",
            "prepare_s": round(build, 1),
            "search_s": round(elapsed, 2),
            "queries_per_s": round(len(queries) / elapsed, 1),
            "agreement": 1.0,
            "top_hit_correct": _rate(ours_top, truth, keys=present),
            "peak_mib": max(self_rss, child_rss),
            "note": (
                f"species calls: {correct}/{len(present)} correct, {wrong} wrong; "
                f"{false}/{len(absent)} absent-species queries called"
            ),
        }
    )
    qfa, dbfa = work / "queries.fasta", work / "library.fasta"
    write_fasta(qfa, [(q, s) for q, s, _sp in queries])
    write_fasta(dbfa, [(r.seq_id, r.sequence) for r in version.records])

    if tools.get("vsearch"):
        out = work / "vsearch.tsv"
        cmd = [
            str(tools["vsearch"]), "--usearch_global", str(qfa), "--db", str(dbfa),
            "--id", "0.80", "--threads", "2", "--strand", "both", "--blast6out", str(out),
            "--maxaccepts", "1", "--maxrejects", "32", "--quiet",
        ]  # fmt: skip
        secs, rss = run_tool(cmd)
        top = top_species_from_tsv(out, ref_species)
        rows.append(
            _tool_row(
                scenario=name,
                tool="vsearch --usearch_global (2 threads)",
                prep=0.0,
                secs=secs,
                rss=rss,
                top=top,
                ours=ours_top,
                truth=truth,
                present=present,
                n=len(queries),
            )
        )
    else:
        rows.append({"scenario": name, "tool": "vsearch", "note": "not installed: skipped"})

    if tools.get("blastn") and tools.get("makeblastdb"):
        db = work / "blastdb"
        prep, _rss = run_tool(
            [str(tools["makeblastdb"]), "-in", str(dbfa), "-dbtype", "nucl", "-out", str(db)]
        )
        out = work / "blastn.tsv"
        cmd = [
            str(tools["blastn"]), "-query", str(qfa), "-db", str(db), "-outfmt", "6",
            "-max_target_seqs", "10", "-num_threads", "2", "-evalue", "1e-20",
            "-out", str(out),
        ]  # fmt: skip
        secs, rss = run_tool(cmd)
        top = top_species_from_tsv(out, ref_species)
        rows.append(
            _tool_row(
                scenario=name,
                tool="blastn megablast (2 threads)",
                prep=prep,
                secs=secs,
                rss=rss,
                top=top,
                ours=ours_top,
                truth=truth,
                present=present,
                n=len(queries),
            )
        )
    else:
        rows.append({"scenario": name, "tool": "blastn", "note": "not installed: skipped"})
    return rows


def _rate(top: dict[str, str], truth: dict[str, str], *, keys: list[str]) -> float | None:
    if not keys:
        return None
    return round(sum(1 for q in keys if top.get(q) == truth[q]) / len(keys), 4)


def _tool_row(
    *,
    scenario: str,
    tool: str,
    prep: float,
    secs: float,
    rss: int,
    top: dict[str, str],
    ours: dict[str, str],
    truth: dict[str, str],
    present: list[str],
    n: int,
) -> dict[str, object]:
    agree = sum(1 for q, sp in ours.items() if top.get(q, "") == sp) / max(len(ours), 1)
    return {
        "scenario": scenario,
        "tool": tool,
        "prepare_s": round(prep, 1),
        "search_s": round(secs, 2),
        "queries_per_s": round(n / secs, 1) if secs else None,
        "agreement": round(agree, 4),
        "top_hit_correct": _rate(top, truth, keys=present),
        "peak_mib": rss,
        "note": "",
    }


def print_table(rows: list[dict[str, object]]) -> None:
    cols = [
        "scenario", "tool", "prepare_s", "search_s", "queries_per_s", "agreement",
        "top_hit_correct", "peak_mib", "note",
    ]  # fmt: skip
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "")) for c in cols))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refdata", type=Path, default=Path("/work/shared/refdata"))
    ap.add_argument("--scenarios", default="coi,synthetic")
    ap.add_argument("--synthetic-refs", type=int, default=100_000)
    ap.add_argument("--synthetic-queries", type=int, default=1000)
    ap.add_argument(
        "--keep-cache", action="store_true", help="reuse the index/statistics of an earlier run"
    )
    args = ap.parse_args(argv)
    tools = ensure_tools()
    rows: list[dict[str, object]] = []
    scenarios = args.scenarios.split(",")
    if "coi" in scenarios:
        version, queries = coi_scenario(args.refdata)
        print(f"coi: {len(version.records)} references, {len(queries)} queries", flush=True)
        rows += run_scenario(
            "coi", version=version, queries=queries, tools=tools, keep_cache=args.keep_cache
        )
        print_table(rows)
    if "synthetic" in scenarios:
        random.seed(0)
        version, queries = synthetic_scenario(args.synthetic_refs, n_queries=args.synthetic_queries)
        print(f"synthetic: {len(version.records)} references, {len(queries)} queries", flush=True)
        rows += run_scenario(
            "synthetic",
            version=version,
            queries=queries,
            tools=tools,
            keep_cache=args.keep_cache,
        )
    print_table(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
