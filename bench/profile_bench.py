"""Library statistics and the import-time conflict scan: time, memory and agreement, old against new.

Usage: python bench/profile_bench.py [--refs 10000,100000] [--folder /tmp/prof-bench]
       [--old-rev REV] [--workers 2] [--refdata DIR --markers coi,12s,cytb] [--skip-old]

For each size, the synthetic references of `scale_bench.generate` (650 bp
COI-like, ten per species, ten species per genus) are indexed once (cached in
the folder; the index build is not timed here). Then, each in its own process,
`LibraryProfile.build` (`max_gapped=2`, as `Engine` builds it) and
`find_conflicts` on its result are timed, with the process's peak RSS (its
workers' included; "index": its RSS once the index is loaded), for the code of this tree ("new") and for
`species_ref/profile.py` and `species_ref/conflicts.py` as of `--old-rev`
("old", loaded from git). The table gives seconds, peak MiB and how many
species' statistics differ.

With --refdata, the same comparison of the per-species statistics (n_pairs,
intra_max, intra_mean, nn_distance, nn_species) on real marker files, each
built as a library version the way bench/validate_refdata.py builds it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT_OLD_REV = "a8bb76e"


def _old_modules(rev: str) -> tuple[ModuleType, ModuleType]:
    """`species_ref.profile` and `species_ref.conflicts` as of `rev`, importable beside the new."""
    out = []
    folder = Path(tempfile.mkdtemp(prefix="old-profile-"))
    for name in ("profile", "conflicts"):
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:species_ref/{name}.py"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        text = text.replace("from species_ref.profile import", "from old_profile import")
        path = folder / f"old_{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(f"old_{name}", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[f"old_{name}"] = mod
        spec.loader.exec_module(mod)
        out.append(mod)
    return out[0], out[1]


def _index_for(source: str, cache: Path) -> Any:
    """The k-mer index of a FASTA (synthetic or a refdata marker), cached as .npz."""
    from species_ref.index import KmerIndex

    if cache.exists():
        return KmerIndex.load(cache)
    from validate_refdata import load_version

    index = KmerIndex.build(load_version(Path(source)))
    index.save(cache)
    return index


def run_one(args: argparse.Namespace) -> int:
    """One timed build in this process: prints a JSON line."""
    from species_ref.matching import Matcher

    index = _index_for(args.source, args.index)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    if args.one == "old":
        profile_mod, conflicts_mod = _old_modules(args.old_rev)
    else:
        import species_ref.conflicts as conflicts_mod
        import species_ref.profile as profile_mod
    t0 = time.perf_counter()
    prof = profile_mod.LibraryProfile.build(
        index, matcher=Matcher(index, max_gapped=2), workers=args.workers
    )
    t1 = time.perf_counter()
    found = conflicts_mod.find_conflicts(index, prof)
    t2 = time.perf_counter()
    prof.save(args.save)
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(
        json.dumps(
            {
                "profile_s": round(t1 - t0, 2),
                "conflicts_s": round(t2 - t1, 2),
                "conflicts": len(found),
                "peak_mib": peak // 1024,
                "index_mib": loaded,
            }
        )
    )
    return 0


def _spawn(which: str, *, source: Path, index: Path, save: Path, args: argparse.Namespace) -> Any:
    cmd = [
        sys.executable, __file__, "--one", which, "--source", str(source), "--index", str(index),
        "--save", str(save), "--workers", str(args.workers), "--old-rev", args.old_rev,
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if which == "index":
        return {}
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def agreement(old_path: Path, new_path: Path) -> dict[str, Any]:
    """How many species' statistics differ between two saved profiles, and by how much."""
    from species_ref.profile import LibraryProfile

    a, b = LibraryProfile.load(old_path), LibraryProfile.load(new_path)
    fields = ("n_pairs", "intra_max", "intra_mean", "nn_distance", "nn_species")
    differ = 0
    per_field = dict.fromkeys(fields, 0)
    worst = 0.0
    within = 0
    for sid in range(len(a.species_names)):
        x, y = a.stats(sid), b.stats(sid)
        if x == y:
            continue
        differ += 1
        close = True
        for f in fields:
            u, v = getattr(x, f), getattr(y, f)
            if u == v:
                continue
            per_field[f] += 1
            if isinstance(u, float) and isinstance(v, float):
                worst = max(worst, abs(u - v))
                close &= abs(u - v) <= 0.05
            else:
                close = False
        within += close
    return {
        "species": len(a.species_names),
        "differ": differ,
        "differ_within_0.05": within,
        "max_abs_diff": round(worst, 4),
        "per_field": {k: v for k, v in per_field.items() if v},
    }


def _row(label: str, old: Any, new: Any, agree: Any) -> str:
    def cell(d: Any, key: str) -> str:
        return f"{d[key]:>8}" if isinstance(d, dict) and key in d else f"{'-':>8}"

    return (
        f"{label:>10} | {cell(old, 'profile_s')} {cell(new, 'profile_s')} | "
        f"{cell(old, 'conflicts_s')} {cell(new, 'conflicts_s')} | "
        f"{cell(new, 'index_mib')} {cell(old, 'peak_mib')} {cell(new, 'peak_mib')} | "
        f"{agree.get('species', '-'):>7} {agree.get('differ', '-'):>6} "
        f"{agree.get('max_abs_diff', '-'):>8}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refs", default="10000,100000")
    ap.add_argument("--folder", type=Path, default=Path("/tmp/prof-bench"))
    ap.add_argument("--old-rev", default=DEFAULT_OLD_REV)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--refdata", type=Path, default=None)
    ap.add_argument("--markers", default="coi,12s,cytb")
    ap.add_argument("--skip-old", action="store_true", help="time the new code only")
    ap.add_argument("--one", choices=("old", "new", "index"), help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one == "index":
        _index_for(args.source, args.index)
        return 0
    if args.one:
        return run_one(args)
    from scale_bench import generate

    jobs: list[tuple[str, Path, Path]] = []
    for n in [int(x) for x in args.refs.split(",") if x]:
        folder = args.folder / f"refs{n}"
        folder.mkdir(parents=True, exist_ok=True)
        refs, _queries = generate(n, 1000, folder)
        jobs.append((f"{n // 1000}k refs", refs, folder))
    if args.refdata is not None:
        for marker in [m for m in args.markers.split(",") if m]:
            path = args.refdata / f"{marker}.fasta"
            if path.exists():
                folder = args.folder / f"marker-{marker}"
                folder.mkdir(parents=True, exist_ok=True)
                jobs.append((marker, path, folder))
    print(f"workers {args.workers}; old = {args.old_rev}; seconds, peak MiB per process")
    head = (
        f"{'':>10} | {'old prof':>8} {'new prof':>8} | {'old conf':>8} {'new conf':>8} | "
        f"{'index':>8} {'old peak':>8} {'new peak':>8} | {'species':>7} {'differ':>6} "
        f"{'max diff':>8}"
    )
    print(head)
    print("-" * len(head))
    for label, source, folder in jobs:
        index = folder / "index.npz"
        if not index.exists():
            # Built in a process of its own: a child's peak RSS starts from its parent's.
            _spawn("index", source=source, index=index, save=index, args=args)
        new = _spawn("new", source=source, index=index, save=folder / "new.npz", args=args)
        old: Any = {}
        agree: dict[str, Any] = {}
        if not args.skip_old:
            old = _spawn("old", source=source, index=index, save=folder / "old.npz", args=args)
            if "error" not in old and "error" not in new:
                agree = agreement(folder / "old.npz", folder / "new.npz")
        print(_row(label, old, new, agree), flush=True)
        if agree.get("differ"):
            print(f"{'':>10}   differing fields: {agree['per_field']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
