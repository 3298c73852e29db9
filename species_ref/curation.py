"""Curation of reference libraries: reviewed decisions that make a new library version.

Owns the decisions file (TOML), its checking, and `curate_records`, which
applies the decisions to the records of one library version. Writing the new
version is `LibraryStore.curate_version`'s job; this module never touches disk.

A decisions file holds three kinds of decision, each with `reviewer`,
`reason` and `source` (where the evidence comes from: a conflict report, a
re-identification, a taxonomic authority), and an optional `note`::

    [[exclude]]                      # a record that must not serve as a reference
    record = "KC690307"
    marker = "COI-5P"                # optional: only the record of this marker
    species = "Bos taurus"           # optional: only while it carries this label
    why = "misidentified"            # or "low quality", "label in doubt"
    reviewer = "..." ; reason = "..." ; source = "..."

    [[synonym]]                      # several names for one species
    accepted = "Mobula mobular"
    names = ["Mobula japanica"]
    reviewer = "..." ; reason = "..." ; source = "..."

    [[split]]                        # records of one name that belong to another
    name = "Hypostomus plecostomus"
    new_name = "Pterygoplichthys disjunctivus"
    records = ["NC_025583.1:5468-7024"]
    reviewer = "..." ; reason = "..." ; source = "..."

Invariants:
- A file that is not valid TOML, holds an unknown table or key, or a decision
  without reviewer, reason or source, is refused as a whole with one sentence
  (`CurationError`); nothing is applied.
- Decisions about records or names not in the library are skipped and counted,
  never an error: one file serves libraries of several markers.
- Order: exclusions, then splits, then synonyms; a record both excluded and
  split is refused. Records keep their sequence and ID; a relabelled record's
  `source` says from which name.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from species_ref.errors import InputFormatError, SpeciesRefError
from species_ref.files import read_regular
from species_ref.types import RefRecord
from species_ref.vocab import ConflictKind


class CurationError(SpeciesRefError):
    """A decisions file cannot be applied (nothing was changed)."""


#: why a record is excluded: misidentified, of low quality, or its label in doubt (it
#: shares its sequence with the only record of another name and the library cannot
#: tell which of the two labels is right).
EXCLUDE_WHY = ("misidentified", "low quality", "label in doubt")
_BINOMIAL = re.compile(r"^[A-Z][a-z-]+ [a-z][a-z.-]*$")
_COMMON = ("reviewer", "reason", "source", "note")
_KEYS = {
    "exclude": {"record", "marker", "species", "why", *_COMMON},
    "synonym": {"accepted", "names", *_COMMON},
    "split": {"name", "new_name", "records", *_COMMON},
}
_TOP = {"curation", *_KEYS}
_HEADER_KEYS = {"title", "library", "reviewed", "method", "note"}


@dataclass(frozen=True)
class Decision:
    """One reviewed decision: kind ("exclude" | "synonym" | "split") and its fields."""

    kind: str
    reviewer: str
    reason: str
    source: str
    note: str = ""
    # exclude
    record: str = ""
    marker: str = ""
    species: str = ""
    why: str = ""
    # synonym
    accepted: str = ""
    names: tuple[str, ...] = ()
    # split
    name: str = ""
    new_name: str = ""
    records: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The decision as listed in a curated version's manifest (empty fields left out)."""
        out: dict[str, Any] = {"kind": self.kind}
        for key in (
            "record", "marker", "species", "why", "accepted", "names", "name", "new_name",
            "records", "reviewer", "reason", "source", "note",
        ):  # fmt: skip
            value = getattr(self, key)
            if value:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def label(self) -> str:
        """A few words naming the decision, for messages."""
        if self.kind == "exclude":
            return f"exclude {self.record}"
        if self.kind == "synonym":
            return f"synonyms of {self.accepted}"
        return f"split of {self.name} into {self.new_name}"


@dataclass(frozen=True)
class Decisions:
    """A checked decisions file."""

    decisions: tuple[Decision, ...]
    sha256: str  # "sha256:<hex>" of the file's bytes
    file: str  # its name
    header: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CurationResult:
    """The records after curation, and which decisions applied or were skipped."""

    records: tuple[RefRecord, ...]
    applied: tuple[dict[str, Any], ...]  # decision dicts with what each changed
    skipped: tuple[dict[str, Any], ...]  # decisions about records or names not in the library
    synonyms: dict[str, list[str]]  # accepted name -> other names, for this library


def read_decisions(path: str | Path) -> Decisions:
    """Read and check a decisions file; `CurationError` (one sentence) when it is unusable."""
    p = Path(path)
    try:
        blob = read_regular(p, what="The decisions file", hint="give the path of a TOML file")
    except InputFormatError as e:
        raise CurationError(str(e)) from None
    try:
        data = tomllib.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        first = str(e).split("\n", 1)[0].rstrip(".")
        raise CurationError(
            f"The decisions file {p.name} is not valid TOML ({first}); fix it and curate again."
        ) from None
    decisions = parse_decisions(data, file=p.name)
    header = data.get("curation", {})
    return Decisions(
        decisions=decisions,
        sha256="sha256:" + hashlib.sha256(blob).hexdigest(),
        file=p.name,
        header={k: str(v) for k, v in header.items()},
    )


def parse_decisions(
    data: Mapping[str, Any], *, file: str = "decisions file"
) -> tuple[Decision, ...]:
    """Check the parsed TOML of a decisions file and return its decisions, in file order by kind."""
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise CurationError(
            f"The {file} has an unknown table or key '{unknown[0]}'; use [curation], "
            "[[exclude]], [[synonym]] and [[split]] only."
        )
    header = data.get("curation", {})
    if not isinstance(header, dict) or set(header) - _HEADER_KEYS:
        raise CurationError(
            f"The [curation] table of the {file} may hold only "
            f"{', '.join(sorted(_HEADER_KEYS))} (as text)."
        )
    out: list[Decision] = []
    for kind in ("exclude", "split", "synonym"):
        entries = data.get(kind, [])
        if not isinstance(entries, list):
            raise CurationError(
                f"'{kind}' in the {file} must be a list of tables, written [[{kind}]]."
            )
        for i, entry in enumerate(entries, 1):
            where = f"[[{kind}]] number {i} of the {file}"
            if not isinstance(entry, dict):
                raise CurationError(f"{where} is not a table; write it as [[{kind}]].")
            out.append(_decision(kind, entry, where))
    _check_consistent(out, file)
    return tuple(out)


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise CurationError(f"{where} has a '{key}' that is not text; quote it.")
    value = value.strip()
    if required and not value:
        if key == "why":
            allowed = " or ".join(repr(w) for w in EXCLUDE_WHY)
            raise CurationError(f"{where} has no 'why'; give why = {allowed}.")
        raise CurationError(f"{where} has no '{key}'; every decision needs one.")
    return value


def _name(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(entry, key, where)
    if not _BINOMIAL.match(value):
        raise CurationError(
            f"{where} has '{key}' = '{value}', which is not a binomial 'Genus species'."
        )
    return value


def _texts(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise CurationError(f"{where} needs '{key}' as a non-empty list of quoted texts.")
    return tuple(v.strip() for v in value)


def _decision(kind: str, entry: Mapping[str, Any], where: str) -> Decision:
    extra = sorted(set(entry) - _KEYS[kind])
    if extra:
        raise CurationError(
            f"{where} has an unknown key '{extra[0]}'; allowed: {', '.join(sorted(_KEYS[kind]))}."
        )
    common: dict[str, Any] = {
        "reviewer": _text(entry, "reviewer", where),
        "reason": _text(entry, "reason", where),
        "source": _text(entry, "source", where),
        "note": _text(entry, "note", where, required=False),
    }
    if kind == "exclude":
        why = _text(entry, "why", where)
        if why not in EXCLUDE_WHY:
            raise CurationError(
                f"{where} has why = '{why}'; use {' or '.join(repr(w) for w in EXCLUDE_WHY)}."
            )
        species = _text(entry, "species", where, required=False)
        if species and not _BINOMIAL.match(species):
            raise CurationError(f"{where} has species = '{species}', which is not a binomial.")
        return Decision(
            kind, **common, record=_text(entry, "record", where),
            marker=_text(entry, "marker", where, required=False), species=species, why=why,
        )  # fmt: skip
    if kind == "synonym":
        accepted = _name(entry, "accepted", where)
        names = _texts(entry, "names", where)
        for n in names:
            if not _BINOMIAL.match(n):
                raise CurationError(
                    f"{where} lists '{n}', which is not a binomial 'Genus species'."
                )
        if accepted in names:
            raise CurationError(f"{where} lists its accepted name {accepted} among its synonyms.")
        return Decision(kind, **common, accepted=accepted, names=names)
    name, new_name = _name(entry, "name", where), _name(entry, "new_name", where)
    if name == new_name:
        raise CurationError(f"{where} splits {name} into the same name.")
    return Decision(
        kind, **common, name=name, new_name=new_name, records=_texts(entry, "records", where)
    )


def _check_consistent(decisions: Iterable[Decision], file: str) -> None:
    """Refuse decisions that contradict each other (the order of the file must not matter)."""
    excluded: set[str] = set()
    split: set[str] = set()
    synonym_of: dict[str, str] = {}
    accepted: set[str] = set()
    for d in decisions:
        if d.kind == "exclude":
            excluded.add(d.record)
        elif d.kind == "split":
            split.update(d.records)
        else:
            accepted.add(d.accepted)
            for n in d.names:
                if n in synonym_of and synonym_of[n] != d.accepted:
                    raise CurationError(
                        f"The {file} makes {n} a synonym of both {synonym_of[n]} and "
                        f"{d.accepted}; keep one."
                    )
                synonym_of[n] = d.accepted
    both = sorted(excluded & split)
    if both:
        raise CurationError(
            f"The {file} both excludes and splits record {both[0]}; keep one decision."
        )
    chained = sorted(accepted & set(synonym_of))
    if chained:
        raise CurationError(
            f"The {file} uses {chained[0]} both as an accepted name and as a synonym; "
            "list every name under its final accepted name."
        )


def curate_records(
    records: Iterable[RefRecord],
    decisions: Iterable[Decision],
    *,
    synonyms: Mapping[str, Iterable[str]] | None = None,
) -> CurationResult:
    """Apply `decisions` to `records`; decisions about things not in them are skipped.

    `synonyms` are the synonyms the version being curated already carries;
    they are kept and extended.
    """
    recs = list(records)
    applied: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    syn: dict[str, list[str]] = {k: list(v) for k, v in (synonyms or {}).items()}
    ordered = sorted(decisions, key=lambda d: ("exclude", "split", "synonym").index(d.kind))
    for d in ordered:
        if d.kind == "exclude":
            keep = [
                r
                for r in recs
                if not (
                    r.seq_id == d.record
                    and (not d.marker or r.marker == d.marker)
                    and (not d.species or r.species == d.species)
                )
            ]
            changed = len(recs) - len(keep)
            recs = keep
        elif d.kind == "split":
            wanted = set(d.records)
            changed = 0
            for i, r in enumerate(recs):
                if r.seq_id in wanted and r.species == d.name:
                    recs[i] = _relabel(r, d.new_name, "split")
                    changed += 1
        else:
            names = set(d.names)
            changed = 0
            for i, r in enumerate(recs):
                if r.species in names:
                    recs[i] = _relabel(r, d.accepted, "synonym")
                    changed += 1
            present = changed > 0 or any(r.species == d.accepted for r in recs)
            if present:
                merged = syn.setdefault(d.accepted, [])
                for n in d.names:
                    if n not in merged:
                        merged.append(n)
                for n in d.names:  # a name now accepted elsewhere carries its synonyms over
                    merged.extend(x for x in syn.pop(n, []) if x not in merged)
                applied.append({**d.to_dict(), "records_changed": changed})
            else:
                skipped.append(d.to_dict())
            continue
        (applied if changed else skipped).append(
            {**d.to_dict(), "records_changed": changed} if changed else d.to_dict()
        )
    return CurationResult(
        records=tuple(recs),
        applied=tuple(applied),
        skipped=tuple(skipped),
        synonyms={k: sorted(v) for k, v in sorted(syn.items())},
    )


def _relabel(r: RefRecord, species: str, why: str) -> RefRecord:
    note = f"curated ({why}): was {r.species}"
    return RefRecord(
        seq_id=r.seq_id,
        species=species,
        marker=r.marker,
        sequence=r.sequence,
        source=f"{r.source}; {note}" if r.source else note,
    )


# -- proposals ------------------------------------------------------------------

#: how many references a species must keep for its neighbours to out-vote a record
OUTVOTE_REFS = 2
#: other references of its own name a record re-identified as another species must
#: have before the record (rather than the name) is read as misidentified
OWN_REFS_AGAINST = 2


def spelling_variants(a: str, b: str) -> bool:
    """Two names of one genus whose epithets differ by one or two letters (argentiventris/argenteiventris)."""
    ga, _, ea = a.partition(" ")
    gb, _, eb = b.partition(" ")
    if ga != gb or ea == eb or min(len(ea), len(eb)) < 5:
        return False
    return _edit_distance(ea, eb) <= 2


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class Evidence:
    """What one library shows: its name conflicts, its problem records, references per species."""

    library: str
    conflicts: tuple[Any, ...]  # species_ref.conflicts.NameConflict
    problems: tuple[Any, ...]  # species_ref.conflicts.ProblemRecord
    refs_per_species: Mapping[str, int]


def propose_decisions(evidence: Iterable[Evidence], *, reviewer: str) -> list[Decision]:
    """Decisions a reviewer should consider, from the libraries' own evidence only.

    - Synonym: two names within the conflict distance that share the epithet
      under two genera, or are spellings of one epithet in one genus. The
      accepted name is the one with more references over all libraries
      (alphabetical on a tie), which a reviewer checks against an authority.
    - Exclude (misidentified): a record a name conflict reads as misidentified;
      a record re-identified against the rest of its library, decisively, as
      another species while its own species keeps `OWN_REFS_AGAINST` other
      references; a single
      record of its name re-identified into another genus whose species has
      at least `OUTVOTE_REFS` references. Never more than half the records of
      one name (then the name, not a record, is in question).
    - Exclude (label in doubt): two records, each the only one of its name in
      its library, that re-identify decisively as each other's species. One
      sequence sits under two names far from every other species, and nothing
      in the library tells which label is right; kept, either name would be
      called for a query of the other whenever one of them is missing.
    """
    evidence = list(evidence)
    refs: dict[str, int] = {}
    for ev in evidence:
        for sp, n in ev.refs_per_species.items():
            refs[sp] = refs.get(sp, 0) + int(n)
    groups = _synonym_groups(evidence)
    synonym_of = {n: acc for acc, (names, _ev) in groups.items() for n in names}
    out: list[Decision] = []
    for accepted, (names, why) in sorted(groups.items()):
        out.append(
            Decision(
                "synonym",
                reviewer=reviewer,
                reason=f"{', '.join(sorted(names))} and {accepted}: {why}",
                source="ref conflicts ("
                + ", ".join(sorted({e for e in _libs_of(evidence, accepted, names)}))
                + ")",
                note=f"accepted name has the most references ({refs.get(accepted, 0)}); confirm with a taxonomic authority",
                accepted=accepted,
                names=tuple(sorted(names)),
            )  # fmt: skip
        )
    per_label: dict[tuple[str, str], list[Decision]] = {}
    seen_ids: dict[tuple[str, str], set[str]] = {}

    def exclude(
        library: str,
        record: str,
        marker: str,
        label: str,
        reason: str,
        source: str,
        note: str,
        why: str = "misidentified",
    ) -> None:
        if record in seen_ids.get((library, label), set()):
            return
        seen_ids.setdefault((library, label), set()).add(record)
        per_label.setdefault((library, label), []).append(
            Decision(
                "exclude",
                reviewer=reviewer,
                reason=reason,
                source=source,
                note=note,
                record=record,
                marker=marker,
                species=label,
                why=why,
            )  # fmt: skip
        )

    for ev in evidence:
        marker_of = {p.seq_id: p.marker for p in ev.problems}
        for c in ev.conflicts:
            if c.kind != ConflictKind.MISIDENTIFIED or not c.suspect:
                continue
            label = c.species_a if any(a == c.suspect for a, _b in c.accessions) else c.species_b
            if _same_species(
                label, c.species_a if label == c.species_b else c.species_b, synonym_of
            ):
                continue
            exclude(ev.library, c.suspect, marker_of.get(c.suspect, ""), label, c.explanation,
                    f"ref conflicts ({ev.library})",
                    "sits with another species, far from the other references of its name")  # fmt: skip
        for p in ev.problems:
            if _same_species(p.label, p.classified_as, synonym_of):
                continue
            if str(p.level) == "species" and p.own_refs >= OWN_REFS_AGAINST:
                note = (
                    f"called {p.classified_as} decisively although {p.own_refs} other "
                    f"references of {p.label} are in the library"
                )
            elif p.other_genus and p.own_refs == 0 and p.as_refs >= OUTVOTE_REFS:
                note = (
                    f"the only record of {p.label}, inside the {p.as_refs} references of "
                    f"{p.classified_as} of another genus"
                )
            else:
                continue
            exclude(ev.library, p.seq_id, p.marker, p.label, p.explanation,
                    f"leave-one-out re-identification ({ev.library})", note)  # fmt: skip
    for ev in evidence:
        for p, q in _mutual_pairs(ev, synonym_of):
            for rec, other in ((p, q), (q, p)):
                exclude(ev.library, rec.seq_id, rec.marker, rec.label, rec.explanation,
                        f"leave-one-out re-identification ({ev.library})",
                        f"the only record of {rec.label}, identified as {rec.classified_as}, "
                        f"whose only record {other.seq_id} is identified as {rec.label}: one "
                        "sequence under two names, the library cannot tell which is right",
                        why="label in doubt")  # fmt: skip
    for (library, label), decisions in sorted(per_label.items()):
        total = sum(ev.refs_per_species.get(label, 0) for ev in evidence if ev.library == library)
        if total and len(decisions) * 2 > total and total > 1:
            continue  # the name, not a record, is in question: left for review
        out.extend(decisions)
    return out


def _mutual_pairs(ev: Evidence, synonym_of: Mapping[str, str]) -> list[tuple[Any, Any]]:
    """Pairs of problem records, each the only record of its name, called as each other."""
    only = {p.label: p for p in ev.problems if str(p.level) == "species" and p.own_refs == 0}
    pairs = []
    for label, p in sorted(only.items()):
        q = only.get(p.classified_as)
        if q is None or q.classified_as != label or label > p.classified_as:
            continue
        if _same_species(label, p.classified_as, synonym_of):
            continue
        pairs.append((p, q))
    return pairs


def _same_species(a: str, b: str, synonym_of: Mapping[str, str]) -> bool:
    return synonym_of.get(a, a) == synonym_of.get(b, b)


def _libs_of(evidence: list[Evidence], accepted: str, names: set[str]) -> set[str]:
    every = {accepted, *names}
    return {
        ev.library
        for ev in evidence
        for c in ev.conflicts
        if c.species_a in every and c.species_b in every
    }


def _synonym_groups(evidence: list[Evidence]) -> dict[str, tuple[set[str], str]]:
    """accepted name -> (its other names, why), merged over all libraries."""
    parent: dict[str, str] = {}
    why: dict[frozenset[str], str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for ev in evidence:
        for c in ev.conflicts:
            a, b = c.species_a, c.species_b
            if c.kind == ConflictKind.SYNONYM:
                reading = (
                    "the same epithet under two genera with references within "
                    + f"{c.distance:.2f} %"
                )
            elif spelling_variants(a, b):
                reading = (
                    "two spellings of one epithet with references within " + f"{c.distance:.2f} %"
                )
            else:
                continue
            why.setdefault(frozenset((a, b)), reading)
            parent[find(a)] = find(b)
    members: dict[str, set[str]] = {}
    for name in list(parent):
        members.setdefault(find(name), set()).add(name)
    refs: dict[str, int] = {}
    for ev in evidence:
        for sp, n in ev.refs_per_species.items():
            refs[sp] = refs.get(sp, 0) + int(n)
    out: dict[str, tuple[set[str], str]] = {}
    for group in members.values():
        accepted = sorted(group, key=lambda n: (-refs.get(n, 0), n))[0]
        readings = sorted({w for pair, w in why.items() if pair <= group})
        out[accepted] = (group - {accepted}, "; ".join(readings))
    return out


def _toml_str(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def decisions_toml(decisions: Iterable[Decision], *, header: Mapping[str, str]) -> str:
    """A decisions file holding `decisions` (readable by `read_decisions`)."""
    lines = ["[curation]"]
    lines += [f"{k} = {_toml_str(v)}" for k, v in header.items()]
    for d in decisions:
        lines += ["", f"[[{d.kind}]]"]
        for key, value in d.to_dict().items():
            if key == "kind":
                continue
            if isinstance(value, list):
                lines.append(f"{key} = [{', '.join(_toml_str(v) for v in value)}]")
            else:
                lines.append(f"{key} = {_toml_str(value)}")
    return "\n".join(lines) + "\n"
