"""Validate species decisions on the real refdata markers and print a table per marker.

Usage: python bench/validate_refdata.py REFDATA_DIR [--rule default] [--max-queries 400]
       [--markers coi,cytb,...] [--perturbations none,cut,revcomp,noise,mixed]
       [--json bench/out/validation.json] [--decisions species_ref/data/curation/refdata.toml]

With --decisions, each marker's records are curated with that decisions file
(as `custody ref curate` does) before the library version is built.

For each marker file (coi.fasta, cytb.fasta, 12s.fasta, ...) a library version
is built, its k-mer index and species statistics are cached under
bench/out/cache, and `validate_library` runs leave-one-out (present species)
and hold-whole-species-out (absent species), sampled to --max-queries queries
each, once per perturbation of the queries:

  none     queries as they are
  cut      a random 100-250 bp window (mini-barcode)
  revcomp  reverse complement
  noise    1-2 % random substitutions
  mixed    each query gets a random combination of the three
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from species_ref.identify import Engine  # noqa: E402
from species_ref.rules import get_rule  # noqa: E402
from species_ref.types import LibraryVersion, RefRecord  # noqa: E402
from species_ref.validate import validate_library  # noqa: E402

MARKERS = ["coi", "cytb", "12s", "16s", "rbcl", "matk", "its", "trnl"]
_COMP = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")


def revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def cut(seq: str, rng: random.Random) -> str:
    if len(seq) <= 100:
        return seq
    n = rng.randint(100, min(250, len(seq)))
    start = rng.randint(0, len(seq) - n)
    return seq[start : start + n]


def noise(seq: str, rng: random.Random) -> str:
    rate = rng.uniform(0.01, 0.02)
    out = list(seq)
    n = max(1, round(rate * len(seq)))
    for i in rng.sample(range(len(seq)), min(n, len(seq))):
        out[i] = rng.choice([b for b in "ACGT" if b != out[i]])
    return "".join(out)


def mixed(seq: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        seq = cut(seq, rng)
    if rng.random() < 0.5:
        seq = revcomp(seq)
    if rng.random() < 0.5:
        seq = noise(seq, rng)
    return seq


PERTURB = {
    "none": None,
    "cut": cut,
    "revcomp": lambda s, r: revcomp(s),
    "noise": noise,
    "mixed": mixed,
}


#: decisions applied by `load_version` (set from --decisions); None: the files as published.
CURATION = None


def load_version(path: Path) -> LibraryVersion:
    """A library version from a refdata FASTA (`>ID|Genus species|marker`), curated when asked."""
    version = load_raw_version(path)
    if CURATION is None:
        return version
    from species_ref.curation import curate_records
    from species_ref.library import canonical_library_hash

    result = curate_records(version.records, CURATION.decisions)
    records = tuple(
        sorted(result.records, key=lambda r: (r.species, r.seq_id, r.marker, r.sequence))
    )
    return LibraryVersion(
        name=version.name,
        version=2,
        content_hash=canonical_library_hash(records),
        created_at=version.created_at,
        records=records,
        synonyms=tuple((k, tuple(v)) for k, v in result.synonyms.items()),
    )


def set_curation(path: Path | None) -> None:
    """Curate every library `load_version` builds with the decisions file at `path`."""
    global CURATION
    from species_ref.curation import read_decisions

    CURATION = None if path is None else read_decisions(path)


def load_raw_version(path: Path) -> LibraryVersion:
    try:
        from species_ref.library import canonical_library_hash
        from species_ref.refimport import read_reference_file

        records = tuple(read_reference_file(path).records)
        content_hash = canonical_library_hash(records)
    except ImportError:  # pragma: no cover - older tree
        import hashlib

        from Bio import SeqIO

        recs = []
        for rec in SeqIO.parse(str(path), "fasta"):
            seq_id, species, marker = rec.description.split("|")[:3]
            recs.append(RefRecord(seq_id, species, marker, str(rec.seq).upper()))
        records = tuple(recs)
        digest = hashlib.sha256("\n".join(f"{r.seq_id}|{r.sequence}" for r in recs).encode())
        content_hash = "sha256:" + digest.hexdigest()
    return LibraryVersion(
        name=path.stem,
        version=1,
        content_hash=content_hash,
        created_at="1970-01-01T00:00:00Z",
        records=records,
    )


def pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("refdata", type=Path)
    ap.add_argument("--rule", default="default")
    ap.add_argument("--max-queries", type=int, default=400)
    ap.add_argument("--markers", default=",".join(MARKERS))
    ap.add_argument("--perturbations", default="none,cut,revcomp,noise,mixed")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "validation.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=ROOT / "bench" / "out" / "cache")
    ap.add_argument("--decisions", type=Path, default=None, help="curate with this file first")
    args = ap.parse_args(argv)
    set_curation(args.decisions)
    rule = get_rule(args.rule)
    perts = [p for p in args.perturbations.split(",") if p]
    header = (
        f"{'marker':8} {'perturb':8} {'refs':>6} {'n_pres':>6} {'correct':>7} {'wrong':>6} "
        f"{'ambig':>6} {'genus':>6} {'none':>6} | {'n_abs':>5} {'false':>6} {'genus':>6} "
        f"{'time':>6}"
    )
    print(f"rule: {rule.name} {rule.to_dict()}")
    if args.decisions:
        print(f"curated with {args.decisions}")
    print(header)
    print("-" * len(header))
    reports = []
    totals: dict[str, dict[str, int]] = {}
    for marker in [m for m in args.markers.split(",") if m]:
        path = args.refdata / f"{marker}.fasta"
        if not path.exists():
            continue
        version = load_version(path)
        if len(version.records) < 20:
            continue
        t0 = time.time()
        engine = Engine(version, cache_dir=args.cache)
        build_s = time.time() - t0
        for pert in perts:
            t0 = time.time()
            rep = validate_library(
                version,
                rule=rule,
                max_queries=args.max_queries,
                seed=args.seed,
                engine=engine,
                perturb=PERTURB[pert],
                perturbation_name=pert,
            )
            d = rep.to_dict()
            d["build_seconds"] = round(build_s, 1)
            reports.append(d)
            p, a = d["present"]["overall"], d["absent"]["overall"]
            tot = totals.setdefault(pert, {})
            for key in ("n", "correct_species", "wrong_species", "ambiguous", "genus", "none"):
                tot["p_" + key] = tot.get("p_" + key, 0) + p[key]
            for key in ("n", "false_species", "genus"):
                tot["a_" + key] = tot.get("a_" + key, 0) + a[key]
            print(
                f"{marker:8} {pert:8} {len(version.records):6d} {p['n']:6d} "
                f"{pct(p['correct_species_rate'])} {pct(p['wrong_species_rate'])} "
                f"{pct(p['ambiguous_rate'])} {pct(p['genus_rate'])} {pct(p['none_rate'])} | "
                f"{a['n']:5d} {pct(a['false_species_rate'])} {pct(a['genus_rate'])} "
                f"{time.time() - t0:5.1f}s",
                flush=True,
            )
    print("-" * len(header))
    for pert, t in totals.items():
        n, na = t["p_n"] or 1, t["a_n"] or 1
        print(
            f"{'ALL':8} {pert:8} {'':6} {t['p_n']:6d} {pct(t['p_correct_species'] / n)} "
            f"{pct(t['p_wrong_species'] / n)} {pct(t['p_ambiguous'] / n)} "
            f"{pct(t['p_genus'] / n)} {pct(t['p_none'] / n)} | {t['a_n']:5d} "
            f"{pct(t['a_false_species'] / na)} {pct(t['a_genus'] / na)}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rule": rule.to_dict(), "reports": reports}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
