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
import pickle
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from species_ref.conflicts import find_conflicts, reidentify_records  # noqa: E402
from species_ref.curation import (  # noqa: E402
    Decision,
    Evidence,
    decisions_toml,
    propose_decisions,
)
from species_ref.identify import Engine  # noqa: E402

from validate_refdata import MARKERS, load_version  # noqa: E402

REVIEWER = "custody species_ref curation review (issue 16), 2026-12-02"

#: The reviewer's verdicts on proposals: synonym pairs proposed from the library
#: evidence that are not synonyms (the two names are distinct taxa; the shared
#: sequence means one record is wrong, which re-identification may catch).
REJECTED_SYNONYMS = {
    frozenset({"Citrus limon", "Citrus limonia"}): "lemon and Rangpur lime are distinct taxa",
    frozenset({"Cormus domestica", "Malus domestica"}): "service tree and apple: two genera",
    frozenset({"Fragaria chiloensis", "Fragaria chinensis"}): "two described strawberries",
    frozenset({"Icelus toyamensis", "Lycodes toyamensis"}): "a sculpin and an eelpout",
    frozenset({"Phaseolus vulgaris", "Syringa vulgaris"}): "bean and lilac: two families",
}

#: Decisions the reviewer adds from a taxonomic authority or from evidence spanning
#: several marker files (one mitogenome under two names on every marker).
_MITO = "NC_025584.1"
ADDED = [
    Decision(
        "synonym",
        reviewer=REVIEWER,
        reason="Mobula japanica is a junior synonym of Mobula mobular; their references agree",
        source="White et al. 2017, Zool. J. Linn. Soc. 182: 50-75; ref conflicts (coi, 12s)",
        note="accepted name as revised by the authority",
        accepted="Mobula mobular",
        names=("Mobula japanica",),
    ),
    *(
        Decision(
            "exclude",
            reviewer=REVIEWER,
            reason=(
                f"The mitogenome {_MITO} filed as Hypostomus plecostomus is identical on 12S, "
                "16S, COI and cytb to NC_015747.1 filed as Pterygoplichthys disjunctivus"
            ),
            source="ref conflicts (two genera) on coi, cytb, 12s and 16s",
            note="one genome under two genera; the Pterygoplichthys record has company",
            record=f"{_MITO}:{coords}",
            species="Hypostomus plecostomus",
            why="misidentified",
        )
        for coords in ("69-1023", "1096-2771", "5469-7019", "14362-15499")
    ),
]


def _kept(d: Decision) -> bool:
    if d.kind != "synonym":
        return True
    return not any(frozenset({d.accepted, n}) in REJECTED_SYNONYMS for n in d.names)


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
        saved = args.cache / f"evidence-{marker}-{args.rule}-{version.content_hash[7:23]}.pkl"
        if saved.exists():
            ev = pickle.loads(saved.read_bytes())
        else:
            engine = Engine(version, cache_dir=args.cache)
            conflicts = find_conflicts(engine.index, engine.profile)
            problems = reidentify_records(engine, rule=args.rule)
            counts = Counter(r.species for r in version.records)
            ev = Evidence(path.name, tuple(conflicts), tuple(problems), dict(counts))
            saved.write_bytes(pickle.dumps(ev))
        conflicts, problems = list(ev.conflicts), list(ev.problems)
        evidence.append(ev)
        kinds = Counter(str(c.kind) for c in conflicts)
        print(
            f"{marker:6} {len(version.records):6d} refs  {len(conflicts):4d} conflicts "
            f"{dict(kinds)}  {len(problems):4d} problem records  {time.time() - t0:6.1f}s",
            flush=True,
        )
    proposed = propose_decisions(evidence, reviewer=REVIEWER)
    added = {d.record for d in ADDED if d.kind == "exclude"}
    decisions = [d for d in proposed if _kept(d) and d.record not in added] + ADDED
    for d in proposed:
        if not _kept(d):
            print(f"rejected in review: {d.label()} ({', '.join(d.names)})")
    header = {
        "title": "Reviewed curation decisions for the public refdata reference files",
        "library": "refdata: " + ", ".join(ev.library for ev in evidence),
        "reviewed": "2026-12-02",
        "method": (
            "proposed by bench/curate_refdata.py from each library's own evidence (name conflicts "
            "within 0.5 % and leave-one-out re-identification under the default rule), then "
            "reviewed: five proposed synonym pairs of distinct taxa rejected, one synonym from "
            "the taxonomic literature and one mitogenome filed under two genera added (see "
            "REJECTED_SYNONYMS and ADDED in that script); no list of answers was used"
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(decisions_toml(decisions, header=header), encoding="utf-8")
    print(f"{len(decisions)} decisions: {dict(Counter(d.kind for d in decisions))} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
