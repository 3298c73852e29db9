"""Propose the curation decisions for the real refdata markers from the libraries' own evidence.

Usage: python bench/curate_refdata.py REFDATA_DIR [--out species_ref/data/curation/refdata.toml]
       [--markers coi,cytb,...] [--rule default]

The evidence is cached per marker, rule, species statistics method and library
content under --cache, so a re-run after a change of the proposal logic takes seconds. Re-identification
runs under `EVIDENCE_RULE` ("default-r1", revision 1 of the default rule, the
one the shipped file was made with) unless --rule names a registered rule, so a
later change of the default rule does not silently change the evidence.

For each marker file a library version is built (as `bench/validate_refdata.py`
does), then its name conflicts within 0.5 % (`find_conflicts`) and the
leave-one-out re-identification of every record (`reidentify_records`) are
turned into decisions by `propose_decisions`. No list of answers is read:
only the reference files themselves. Prints a count per marker and kind.
"""

from __future__ import annotations

import argparse
import csv
import pickle
import sys
import time
from collections import Counter
from dataclasses import replace
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
from species_ref.profile import PROFILE_METHOD  # noqa: E402
from species_ref.rules import RULES, Rule, get_rule  # noqa: E402

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

#: The mammal authority CITES adopts as its standard nomenclature (Res. Conf. 12.11).
_MSW3 = (
    "Wilson & Reeder (eds.) 2005, Mammal Species of the World, 3rd ed. (the CITES standard "
    "reference for mammals, Res. Conf. 12.11)"
)
_DOMESTIC = (
    "a domestic form and its wild ancestor, one species in the authority; the barcode does not "
    "tell them apart, so CITES listings that exclude the domesticated form cannot be settled "
    "by DNA alone"
)


def _msw3(accepted: str, names: tuple[str, ...], *, reason: str, note: str = _DOMESTIC) -> Decision:
    return Decision(
        "synonym",
        reviewer=REVIEWER,
        reason=reason,
        source=f"{_MSW3}; ref conflicts (coi)",
        note=note,
        accepted=accepted,
        names=names,
    )


#: Synonyms of mammal names the authority treats as one species, whose
#: references in the libraries agree (each pair within the 1 % gap on COI).
#: Not added: Bos frontalis / gaurus (most gayal references carry cattle
#: mitochondria, 7 % from gaur), Felis catus / silvestris / lybica (CITES keeps the
#: domestic cat apart), Equus caballus / ferus / przewalskii (the CITES data file
#: lists Equus caballus under Equus przewalskii, Appendix I, without saying that
#: the domestic horse is left out, so a merged call would read as an Appendix I
#: finding for any horse), Camelus bactrianus / ferus and Lama glama / guanicoe
#: (separate species in current lists).
MSW3_SYNONYMS = [
    _msw3(
        "Canis lupus",
        ("Canis familiaris", "Canis lycaon"),
        reason="the dog and the eastern wolf are subspecies of Canis lupus (C. l. familiaris, "
        "C. l. lycaon); Species+ lists Canis familiaris as a synonym",
    ),
    _msw3(
        "Bos taurus",
        ("Bos indicus", "Bos primigenius"),
        reason="zebu cattle and the aurochs are included in Bos taurus",
    ),
    _msw3(
        "Bos grunniens",
        ("Bos mutus",),
        reason="the wild yak is included in Bos grunniens (CITES lists the wild form as Bos "
        "mutus, and Species+ gives Bos grunniens as its synonym)",
    ),
    _msw3(
        "Ovis aries",
        ("Ovis orientalis", "Ovis musimon", "Ovis vignei"),
        reason="mouflon and urial are included in Ovis aries; Species+ lists Ovis orientalis "
        "and Ovis vignei as synonyms",
    ),
    _msw3(
        "Capra hircus",
        ("Capra aegagrus",),
        reason="the wild goat is included in Capra hircus (CITES lists Capra hircus aegagrus)",
    ),
    _msw3(
        "Bubalus bubalis",
        ("Bubalus arnee",),
        reason="the wild water buffalo is included in Bubalus bubalis (CITES lists the wild "
        "form as Bubalus arnee, excluding the domestic form)",
    ),
    _msw3(
        "Acinonyx jubatus",
        ("Acinonyx jubensis",),
        reason="the authority recognises one living Acinonyx species; no species Acinonyx "
        "jubensis is described, and its records are identical to Acinonyx jubatus references",
        note="a mislabelled name, not a domestic form",
    ),
]

#: Decisions the reviewer adds from a taxonomic authority or from evidence spanning
#: several marker files (one mitogenome under two names on every marker).
_MITO = "NC_025584.1"
ADDED = [
    *MSW3_SYNONYMS,
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


#: The rule re-identification ran under for the shipped decisions: revision 1 of
#: the default rule (five dominant references, no relief for resolved genera nor
#: for identical queries, no two-reference dominance on short queries), with the
#: short-query base count of revision 3.
EVIDENCE_RULE = replace(
    RULES["default"],
    name="default-r1",
    revision=1,
    dominant_refs=5,
    dominant_refs_short=0,
    dominant_short_gap_bases=0,
    few_refs_exact_min_nn=0.0,
    resolved_genus_max=0.0,
    resolved_min_nn=0.0,
    resolved_min_gap=0.0,
    resolved_gap_ratio=0.0,
)


def evidence_rule(name: str) -> Rule:
    """The rule re-identification runs under: `EVIDENCE_RULE` or a registered one."""
    return EVIDENCE_RULE if name == EVIDENCE_RULE.name else get_rule(name)


def collapsed_copies(refdata: Path) -> dict[tuple[str, str], list[str]]:
    """(marker file, record) -> IDs of identical same-species records collapsed into it.

    The published files keep one record per identical sequence and name
    (`SOURCES.tsv` lists the others); a library imported from the uncollapsed
    records holds the copies under their own IDs, so an exclusion must name them too.
    """
    out: dict[tuple[str, str], list[str]] = {}
    sources = refdata / "SOURCES.tsv"
    if not sources.exists():
        return out
    with sources.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            collapsed = (row.get("identical_seq_same_species_ids_collapsed") or "").strip()
            ids = [x.strip() for x in collapsed.replace(";", ",").split(",") if x.strip()]
            if ids:
                out[(row.get("file", "").replace("reference_", ""), row["seq_id"])] = ids
    return out


def with_copies(
    decisions: list[Decision], copies: dict[tuple[str, str], list[str]], library_of: dict[str, str]
) -> list[Decision]:
    """Each exclusion followed by the same exclusion of the record's collapsed copies."""
    out: list[Decision] = []
    for d in decisions:
        out.append(d)
        if d.kind != "exclude":
            continue
        for copy in copies.get((library_of.get(d.record, ""), d.record), []):
            out.append(
                replace(
                    d,
                    record=copy,
                    source=f"{d.source}; SOURCES.tsv",
                    note=f"identical copy of {d.record} under the same name "
                    "(collapsed into it in the published file)",
                )
            )
    return out


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
    ap.add_argument("--rule", default=EVIDENCE_RULE.name)
    ap.add_argument("--cache", type=Path, default=ROOT / "bench" / "out" / "cache")
    args = ap.parse_args(argv)
    evidence = []
    library_of: dict[str, str] = {}
    for marker in [m for m in args.markers.split(",") if m]:
        path = args.refdata / f"{marker}.fasta"
        if not path.exists():
            continue
        t0 = time.time()
        version = load_version(path)
        # The conflicts come from the species statistics: their method is part of the key.
        saved = (
            args.cache
            / f"evidence-{marker}-{args.rule}-m{PROFILE_METHOD}-{version.content_hash[7:23]}.pkl"
        )
        if saved.exists():
            ev = pickle.loads(saved.read_bytes())
        else:
            engine = Engine(version, cache_dir=args.cache)
            conflicts = find_conflicts(engine.index, engine.profile)
            problems = reidentify_records(engine, rule=evidence_rule(args.rule))
            counts = Counter(r.species for r in version.records)
            ev = Evidence(path.name, tuple(conflicts), tuple(problems), dict(counts))
            saved.write_bytes(pickle.dumps(ev))
        conflicts, problems = list(ev.conflicts), list(ev.problems)
        for p in problems:
            library_of.setdefault(p.seq_id, path.name)
        for c in conflicts:
            if c.suspect:
                library_of.setdefault(c.suspect, path.name)
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
    decisions = with_copies(decisions, collapsed_copies(args.refdata), library_of)
    for d in proposed:
        if not _kept(d):
            print(f"rejected in review: {d.label()} ({', '.join(d.names)})")
    header = {
        "title": "Reviewed curation decisions for the public refdata reference files",
        "library": "refdata: " + ", ".join(ev.library for ev in evidence),
        "reviewed": "2026-12-02",
        "method": (
            "proposed by bench/curate_refdata.py from each library's own evidence (name conflicts "
            "within 0.5 % and leave-one-out re-identification under revision 1 of the default "
            "rule), then "
            "reviewed: five proposed synonym pairs of distinct taxa rejected, one synonym from "
            "the taxonomic literature, the synonyms of seven mammals the CITES standard "
            "reference for mammals treats as one species (domestic forms and their wild "
            "ancestors) and one mitogenome filed under two genera added (see "
            "REJECTED_SYNONYMS, MSW3_SYNONYMS and ADDED in that script); two records that are each the only "
            "one of their name and re-identify as each other are both excluded as 'label in "
            "doubt'; every exclusion also names the identical same-name records collapsed into "
            "the excluded one (SOURCES.tsv); no list of answers was used"
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(decisions_toml(decisions, header=header), encoding="utf-8")
    print(f"{len(decisions)} decisions: {dict(Counter(d.kind for d in decisions))} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
