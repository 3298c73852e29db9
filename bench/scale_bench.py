"""National-scale bench: whole `custody ref import` and `custody identify` processes against makeblastdb and blastn.

Usage: python bench/scale_bench.py [--refs 100000,1000000] [--queries 1000]
       [--limit-gib 8] [--timeout 1800] [--out bench/out/scale] [--no-blast] [--repeat 3]
       [--import-repeat N]

For each size, synthetic references with genus/species structure (650 bp COI-like
sequences: family ancestors mutated per genus 12 %, per species 3-8 %, per
individual 0-0.8 %, rare 3 bp deletions; ten references per species, ten species
per genus) are written to one FASTA, streamed so the generator holds no more than
one genus at a time, with 1,000 queries (four in five new individuals of library
species, one in five of species left out). Then, each as its own process, timed
by a wrapper that reports wall time and peak RSS:

  custody init; custody ref import NAME refs.fasta   vs  makeblastdb -dbtype nucl
  custody identify queries.fasta --library NAME --json  vs  blastn -task megablast -num_threads 2

and the size of the store's reference directory against the FASTA. The two
searches run --repeat times, alternating, so that both meet the same machine
(the page cache just after an import, other load on a noisy machine), and the
import and makeblastdb --import-repeat times (each import into a new store; by
default 5 below 500,000 references, where makeblastdb takes a second or so and
one run of it is too noisy for a ratio, and 1 from 500,000 up); the table reports each one's run of median time and its largest peak
memory. Each
process runs under an address-space (virtual memory) limit, --limit-gib, a
guard for a shared machine: the issue's target is 4 GiB of peak RSS per
process, which the table reports; an address-space limit of 4 GiB is stricter
than that (a 4 GiB limit stops `ref import` of 1,000,000 references while
reading its 650 MiB FASTA). A process that hits the limit or the timeout is
reported as such, with its last error line, not retried. BLAST+ comes from apt-get (ncbi-blast+) when
missing: a bench tool, never a runtime dependency.

The project's bytecode is compiled before anything is timed, as an installed
package has it: an editable install run with bytecode writing turned off
(PYTHONDONTWRITEBYTECODE) would otherwise compile every module at every start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CUSTODY = ROOT / ".venv" / "bin" / "custody"
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)

_WRAP = (
    "import resource, subprocess, sys, time\n"
    "limit, timeout, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]\n"
    "def cap():\n"
    "    if limit:\n"
    "        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "t = time.time()\n"
    "sink = open(out, 'wb') if out != '-' else subprocess.DEVNULL\n"
    "try:\n"
    "    done = subprocess.run(sys.argv[4:], stdout=sink, stderr=subprocess.PIPE, preexec_fn=cap,\n"
    "                          timeout=timeout)\n"
    "    rc, err = done.returncode, done.stderr.decode(errors='replace').strip()[-300:]\n"
    "except subprocess.TimeoutExpired:\n"
    "    rc, err = -999, 'timeout'\n"
    "dt = time.time() - t\n"
    "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)\n"
    "print(err.replace('\\n', ' ') if rc else '')\n"
)


def ensure_blast() -> bool:
    if shutil.which("blastn") and shutil.which("makeblastdb"):
        return True
    if shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "ncbi-blast+"], capture_output=True, check=False
        )
    return bool(shutil.which("blastn") and shutil.which("makeblastdb"))


def timed(
    cmd: list[str], *, limit_gib: float, timeout: float, stdout: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, object]:  # fmt: skip
    """Run `cmd` as its own process under the wrapper: seconds, peak MiB, outcome."""
    limit = int(limit_gib * (1 << 30)) if limit_gib else 0
    res = subprocess.run(
        [sys.executable, "-c", _WRAP, str(limit), str(timeout), str(stdout or "-"), *cmd],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    first, _, why = res.stdout.partition("\n")
    parts = first.split()
    secs, peak, rc = float(parts[0]), int(parts[1]) // 1024, int(parts[2])
    outcome = "ok" if rc == 0 else ("timeout" if rc == -999 else f"exit {rc}")
    return {"seconds": round(secs, 1), "peak_mib": peak, "outcome": outcome, "error": why.strip()}


def _mutate(rng: np.random.Generator, seq: np.ndarray, rate: float) -> np.ndarray:
    out = seq.copy()
    hit = rng.random(out.shape[0]) < rate
    out[hit] = (out[hit] + rng.integers(1, 4, int(np.count_nonzero(hit)))) % 4
    return out


def _word(n: int) -> str:
    """A number as lower-case letters (names must look like 'Genus species')."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = chr(97 + r) + out
        if n == 0:
            return out


def generate(n_refs: int, n_queries: int, folder: Path, *, seed: int = 11) -> tuple[Path, Path]:
    """Write refs.fasta and queries.fasta (one genus at a time); return their paths."""
    refs, queries = folder / "refs.fasta", folder / "queries.fasta"
    if refs.exists() and queries.exists():
        return refs, queries
    rng = np.random.default_rng(seed)
    length, per_species, per_genus = 650, 10, 10
    n_species = max(1, n_refs // per_species)
    n_genera = max(1, n_species // per_genus)
    families = [rng.integers(0, 4, length).astype(np.uint8) for _ in range(max(1, n_genera // 10))]
    query_genera = set(rng.choice(n_genera, size=min(n_queries, n_genera), replace=False).tolist())
    picks: list[tuple[str, str]] = []
    with refs.open("w") as fh:
        for g in range(n_genera):
            genus = _mutate(rng, families[g % len(families)], 0.12)
            for s in range(per_genus + 2):  # two species per genus stay out of the library
                anc = _mutate(rng, genus, float(rng.uniform(0.03, 0.08)))
                name = f"Gen{_word(g)} sp{_word(g * 100 + s)}"
                if s < per_genus:
                    for i in range(per_species):
                        ind = _mutate(rng, anc, float(rng.uniform(0.0, 0.008)))
                        if rng.random() < 0.05:
                            cut = int(rng.integers(50, length - 50))
                            ind = np.concatenate((ind[:cut], ind[cut + 3 :]))
                        seq = _BASES[ind].tobytes().decode()
                        fh.write(f">S{g:06d}{s:02d}_{i}|{name}|COI-5P\n{seq}\n")
                if g in query_genera and (s < 4 or s == per_genus):
                    q = _BASES[_mutate(rng, anc, float(rng.uniform(0.0, 0.008)))].tobytes().decode()
                    picks.append((f"Q{len(picks):06d}", q))
    with queries.open("w") as fh:
        for name, seq in picks[:n_queries]:
            fh.write(f">{name}\n{seq}\n")
    return refs, queries


def du_mib(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return round(total / (1 << 20), 1)


def import_runs(n_refs: int, asked: int) -> int:
    """Imports (and makeblastdb runs) for a size: `asked`, or with 0 the default: 5 below
    500,000 references, where makeblastdb takes about a second, 1 from there up."""
    if asked:
        return asked
    return 5 if n_refs < 500_000 else 1


def run_size(n_refs: int, args: argparse.Namespace) -> dict[str, object]:
    folder = args.out / f"refs{n_refs}"
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    refs, queries = generate(n_refs, args.queries, folder)
    print(f"{n_refs} references generated in {time.time() - t0:.0f}s", flush=True)
    store = folder / "store"
    env = {
        **os.environ,
        "CUSTODY_DB": str(store / "custody.db"),
        "CUSTODY_HOME": str(store / "home"),
    }
    row: dict[str, object] = {
        "references": n_refs,
        "fasta_mib": round(refs.stat().st_size / (1 << 20), 1),
    }
    limit, timeout = args.limit_gib, args.timeout
    mkdb: list[str] = []
    db = folder / "blastdb"
    if not args.no_blast and ensure_blast():
        plain = folder / "refs.plain.fasta"
        if not plain.exists():
            with refs.open() as src, plain.open("w") as dst:
                for line in src:
                    dst.write(line.split("|", 1)[0] + "\n" if line.startswith(">") else line)
        mkdb = ["makeblastdb", "-in", str(plain), "-dbtype", "nucl", "-out", str(db)]
    # Imports alternate with makeblastdb too (each import into a new store), and each
    # side is reported by its run of median time: one run of a second or so is noisy.
    builds: dict[str, list[dict[str, object]]] = {"ref_import": [], "makeblastdb": []}
    for _ in range(import_runs(n_refs, args.import_repeat)):
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir()
        subprocess.run(
            [str(CUSTODY), "init", "--agency-code", "BENCH", "--agency-name", "Bench",
             "--country", "KE"],
            env=env, capture_output=True, check=True,
        )  # fmt: skip
        builds["ref_import"].append(
            timed(
                [str(CUSTODY), "ref", "import", "synth", str(refs)],
                limit_gib=limit,
                timeout=timeout,
                env=env,
            )
        )
        print(f"  ref import {builds['ref_import'][-1]}", flush=True)
        if mkdb:
            builds["makeblastdb"].append(timed(mkdb, limit_gib=0, timeout=timeout))
            print(f"  makeblastdb {builds['makeblastdb'][-1]}", flush=True)
    _report_medians(row, builds)
    refdir = store / "references"
    row["store_mib"] = du_mib(refdir) if refdir.exists() else None
    identify = [str(CUSTODY), "identify", str(queries), "--library", "synth", "--json"]
    blastn: list[str] = []
    if mkdb:
        if row["makeblastdb"]["outcome"] == "ok":  # type: ignore[index]
            blastn = [
                "blastn", "-task", "megablast", "-query", str(queries), "-db", str(db),
                "-outfmt", "6", "-max_target_seqs", "10", "-num_threads", "2",
                "-out", str(folder / "blastn.tsv"),
            ]  # fmt: skip
    # Searches alternate, so that both meet the same machine (page cache, other load),
    # and each is reported by the run of median time.
    runs: dict[str, list[dict[str, object]]] = {"identify": [], "blastn": []}
    imported = builds["ref_import"][-1]["outcome"] == "ok"  # the store searched
    for _ in range(args.repeat):
        if imported:
            runs["identify"].append(
                timed(identify, limit_gib=limit, timeout=timeout, env=env,
                      stdout=folder / "identify.jsonl")
            )  # fmt: skip
            print(f"  identify {runs['identify'][-1]}", flush=True)
        if blastn:
            runs["blastn"].append(timed(blastn, limit_gib=0, timeout=timeout))
            print(f"  blastn {runs['blastn'][-1]}", flush=True)
    _report_medians(row, runs)
    return row


def _report_medians(row: dict[str, object], runs: dict[str, list[dict[str, object]]]) -> None:
    """Each tool's run of median time in `row[name]`, its runs in `row[name + "_runs"]`."""
    for name, done in runs.items():
        if done:
            row[name] = _median_run(done)
            row[f"{name}_runs"] = done


def _median_run(done: list[dict[str, object]]) -> dict[str, object]:
    """The run of median time, with the largest peak memory; the first failed run if any
    failed (a failure is never hidden behind a median)."""
    failed = [r for r in done if r.get("outcome") != "ok"]
    if failed:
        return dict(failed[0])
    ordered = sorted(
        done,
        key=lambda r: (r.get("outcome") != "ok", float(r.get("seconds", 0.0))),  # type: ignore[arg-type]
    )
    median = dict(ordered[(len(ordered) - 1) // 2])
    peaks = [int(r["peak_mib"]) for r in done if isinstance(r.get("peak_mib"), int)]  # type: ignore[call-overload]
    if peaks:
        median["peak_mib"] = max(peaks)
    return median


def _ratio(a: object, b: object, key: str) -> str:
    if not isinstance(a, dict) or not isinstance(b, dict) or a.get("outcome") != "ok":
        return "-" if not isinstance(a, dict) else str(a.get("outcome", "-"))
    if b.get("outcome") != "ok":
        return "-"
    x, y = float(a[key]), float(b[key])
    return f"{x / y:.2f}x" if y else "-"


def print_table(rows: list[dict[str, object]]) -> None:
    head = (
        f"{'refs':>9} {'import s':>9} {'MiB':>6} {'mkdb s':>7} {'ratio':>8} | "
        f"{'identify s':>10} {'MiB':>6} {'blastn s':>8} {'MiB':>5} {'time':>7} {'mem':>6} | "
        f"{'store/fasta':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        imp, mk = r.get("ref_import", {}), r.get("makeblastdb", {})
        ide, bl = r.get("identify", {}), r.get("blastn", {})
        assert isinstance(imp, dict) and isinstance(mk, dict)
        assert isinstance(ide, dict) and isinstance(bl, dict)
        store = r.get("store_mib")
        fasta = r.get("fasta_mib")
        disk = f"{float(store) / float(fasta):.2f}x" if store and fasta else "-"  # type: ignore[arg-type]
        print(
            f"{r['references']:>9} {imp.get('seconds', '-'):>9} {imp.get('peak_mib', '-'):>6} "
            f"{mk.get('seconds', '-'):>7} {_ratio(imp, mk, 'seconds'):>8} | "
            f"{ide.get('seconds', '-'):>10} {ide.get('peak_mib', '-'):>6} "
            f"{bl.get('seconds', '-'):>8} {bl.get('peak_mib', '-'):>5} "
            f"{_ratio(ide, bl, 'seconds'):>7} {_ratio(ide, bl, 'peak_mib'):>6} | {disk:>11}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refs", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--limit-gib", type=float, default=8.0)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "scale")
    ap.add_argument("--no-blast", action="store_true", help="skip makeblastdb and blastn")
    ap.add_argument(
        "--repeat", type=int, default=3, help="identify / blastn runs, alternating (median)"
    )
    ap.add_argument(
        "--import-repeat",
        type=int,
        default=0,
        help="ref import / makeblastdb runs, alternating (median; each import into a new store); "
        "default 5 below 500,000 references, 1 from there up",
    )
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.import_repeat < 0:
        ap.error("--repeat must be at least 1 and --import-repeat at least 0 (0: the default)")
    subprocess.run(
        [str(CUSTODY.parent / "python"), "-m", "compileall", "-q", "custody", "species_ref", "labels"],
        cwd=ROOT, check=True,
    )  # fmt: skip
    rows = []
    for n in [int(x) for x in args.refs.split(",") if x]:
        rows.append(run_size(n, args))
        print_table(rows)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
