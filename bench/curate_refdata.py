"""Propose the curation decisions for the real refdata markers from the libraries' own evidence.

Usage: python bench/curate_refdata.py REFDATA_DIR [--out species_ref/data/curation/refdata.toml]
       [--markers coi,cytb,...] [--rule default]

For each marker file a library version is built (as `bench/validate_refdata.py`
does), then its name conflicts within 0.5 % (`find_conflicts`) and the
leave-one-out re-identification of every record (`reidentify_records`) are
turned into decisions by `propose_decisions`. No list of answers is read:
only the reference files themselves. Prints a count per marker and kind.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from species_ref.conflicts import find_conflicts, reidentify_records  # noqa: E402
from species_ref.curation import Evidence, decisions_toml, propose_decisions  # noqa: E402
from species_ref.identify import Engine  # noqa: E402

from validate_refdata import MARKERS, load_version  # noqa: E402

REVIEWER = "custody species_ref curation review (issue 16), 2026-12-02"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("refdata", type=Path)
    ap.add_argument(
        "--out", type=Path, default=ROOT / "species_ref" / "data" / "curation" / "refdata.toml"
    )
    ap.add_argument("--markers", default=",".join(MARKERS))
    ap.add_argument("--rule", default="default")
    ap.add_argument("--cache", type=Path, default=ROOT / "bench" / "out" / "cache")
    args = ap.parse_args(argv)
    evidence = []
    for marker in [m for m in args.markers.split(",") if m]:
        path = args.refdata / f"{marker}.fasta"
        if not path.exists():
            continue
        t0 = time.time()
        version = load_version(path)
        engine = Engine(version, cache_dir=args.cache)
        conflicts = find_conflicts(engine.index, engine.profile)
        problems = reidentify_records(engine, rule=args.rule)
        counts = Counter(r.species for r in version.records)
        evidence.append(Evidence(path.name, tuple(conflicts), tuple(problems), dict(counts)))
        kinds = Counter(str(c.kind) for c in conflicts)
        print(
            f"{marker:6} {len(version.records):6d} refs  {len(conflicts):4d} conflicts "
            f"{dict(kinds)}  {len(problems):4d} problem records  {time.time() - t0:6.1f}s",
            flush=True,
        )
    decisions = propose_decisions(evidence, reviewer=REVIEWER)
    header = {
        "title": "Reviewed curation decisions for the public refdata reference files",
        "library": "refdata: " + ", ".join(ev.library for ev in evidence),
        "reviewed": "2026-12-02",
        "method": (
            "proposed by bench/curate_refdata.py from each library's own evidence (name conflicts "
            "within 0.5 % and leave-one-out re-identification under the default rule), then "
            "reviewed; no list of answers was used"
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(decisions_toml(decisions, header=header), encoding="utf-8")
    print(f"{len(decisions)} decisions: {dict(Counter(d.kind for d in decisions))} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
