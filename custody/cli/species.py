"""`custody ref ...` (reference libraries) and `custody identify` (DNA barcodes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from custody.cli.common import (
    AS,
    MAX_INT,
    done,
    err,
    finite,
    open_store,
    out,
    print_json,
    print_json_line,
    reference_home,
    signer,
    styled,
)

if TYPE_CHECKING:
    from custody.species import LibraryCurationRecord, SpeciesAnalysis

app = typer.Typer(
    help="Reference libraries of DNA barcodes: import, list, show, conflicts, curate, export, validate.",
    no_args_is_help=True,
)


class _NoProgress:
    """Stand-in when stderr is not a terminal: scripts get clean output."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: object, **kwargs: object) -> int:
        return 0

    def update(self, *args: object, **kwargs: object) -> None:
        return None


def _progress_bar(description: str) -> Any:
    import sys

    if not sys.stderr.isatty():  # no bar to draw: spare the import of rich
        return _NoProgress()
    console = err._get()
    if not console.is_terminal:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=console,
    )


@app.command("import")
def ref_import(
    name: str = typer.Argument(..., help="Library name, e.g. 'coi-mammals'."),
    files: list[Path] = typer.Argument(
        ..., help="Reference files (FASTA, GenBank, BOLD TSV; .gz allowed)."
    ),
    marker: str | None = typer.Option(
        None, help="Marker for records whose header does not name one (COI-5P, cytb, 12S ...)."
    ),
    fmt: str = typer.Option("auto", "--format", help="auto, fasta, genbank or bold-tsv."),
    note: str = typer.Option(
        "", help="A note stored with the version (source, date of download ...)."
    ),
    max_ambiguous: float = typer.Option(
        1.0,
        min=0.0,
        max=20.0,
        callback=finite,
        help="Largest share of ambiguous bases (IUPAC codes, N) a reference may have, in %.",
    ),
    actor: str | None = typer.Option(
        None, "--as", help="The importing actor, who signs the version's manifest."
    ),
) -> None:
    """Import reference files as the next frozen version of a library and prepare its search index.

    Prints the new version, its content hash and what was rejected. The k-mer index and
    species statistics are built here, once per version, so identifications start at once.
    """
    from custody.species import import_reference, prepare_reference, reference_conflicts

    # Only signing needs the database; libraries are files beside it (a fast start).
    store = open_store() if actor else reference_home()
    importer = signer(store, actor) if actor else None
    with _progress_bar(f"importing {name}") as bar:
        task = bar.add_task("import", total=len(files) + 1)
        imported = import_reference(
            store, name=name, files=files, fmt=fmt, marker=marker, note=note,
            max_ambiguous=max_ambiguous / 100.0,
            progress=lambda d, t: bar.update(task, completed=d, total=t), signer=importer,
        )  # fmt: skip
    version = imported.version
    with _progress_bar("preparing the search index") as bar:
        task = bar.add_task("prepare", total=None)
        engine = prepare_reference(
            store,
            library=version.name,
            version=version.version,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
            loaded=version,
        )
    out.print(
        f"{version.name} version {version.version}  {len(version.records)} sequences, {len(version.species)} species"
    )
    out.print(f"content hash {version.content_hash}")
    if imported.rejected:
        out.print("rejected: " + "; ".join(f"{n} {why}" for why, n in imported.rejected))
    conflicts = reference_conflicts(
        store, library=version.name, version=version.version, engine=engine
    )
    if conflicts:
        out.print(
            f"{len(conflicts)} species pairs have references within 0.5 % of each other "
            f"(synonyms, misidentified records, species the marker does not separate); "
            f"review them with `custody ref conflicts {version.name}`."
        )


def _markers_cell(markers: Sequence[str], shown: int = 4) -> str:
    """Markers for a table cell: the first few, then how many more (`ref show` lists all)."""
    if len(markers) <= shown:
        return ", ".join(markers)
    return ", ".join(markers[:shown]) + f" (+{len(markers) - shown} more)"


@app.command("list")
def ref_list(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List reference libraries with their latest version."""
    from dataclasses import asdict

    from rich.table import Table

    from custody.species import reference_store

    libs = reference_store(open_store()).list_libraries()
    if as_json:
        print_json([asdict(s) for s in libs])
        return
    table = Table(
        "library", "version", "sequences", "species", "markers", "content hash", "created"
    )
    for s in libs:
        table.add_row(
            s.name,
            str(s.version),
            str(s.record_count),
            str(s.species_count),
            _markers_cell(s.markers),
            s.content_hash[:23] + "…",
            s.created_at[:19],
        )
    out.print(table)


@app.command("show")
def ref_show(
    name: str = typer.Argument(..., help="Library name."),
    version: int | None = typer.Option(
        None, min=1, max=MAX_INT, help="Version number (default: latest)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one library version: hash, sources, markers, rejected records and measured error rates."""
    from custody.species import (
        LibraryCurationRecord,
        reference_store,
        reference_validations,
        validation_sentence,
    )

    store = open_store()
    refs = reference_store(store)
    manifest = refs.manifest(name, version)
    number = manifest["version"]
    validations = reference_validations(store, library=name, version=number)
    problems = refs.verify(name, number)
    from custody.libsign import check_version, read_signature

    signed = read_signature(store, name, number)
    if signed is not None:  # a signed version is checked against its signed manifest too
        problems = check_version(store, name=name, version=number)
    if as_json:
        print_json({**manifest, "integrity": problems or "intact", "validation": validations})
        return
    out.print(styled((name, "bold"), f" version {number}  created {manifest.get('created_at')}"))
    out.print(
        f"content hash {manifest.get('content_hash')}  ({'intact' if not problems else '; '.join(problems)})"
    )
    out.print(
        f"{_count(manifest.get('record_count'))} sequences, {_count(manifest.get('species_count'))} species"
    )
    out.print(f"markers: {_counted(manifest.get('markers'))}")
    out.print(
        f"manifest signed by {signed.get('signer')} (key {str(signed.get('key'))[:16]}…)"
        if signed
        else "manifest not signed (import with --as to sign it)"
    )
    cur = LibraryCurationRecord.of_manifest(manifest)
    origin = number
    if cur is not None:
        for line in _curation_lines(cur):
            out.print(line)
        origin = _imported_version(refs, name, manifest)
        which = f"version {origin}" if origin is not None else "the version it derives from"
        if manifest.get("sources"):
            out.print(
                f"not imported from files: its records come from {which}, "
                "imported from these sources:"
            )
    for src in manifest.get("sources", []):
        out.print(
            f"  source {src.get('file')}  {src.get('sha256', '')[:23]}…  "
            f"{_count(src.get('records'))} kept, {_count(src.get('rejected'))} rejected"
        )
    if manifest.get("rejected"):
        at = "" if origin == number else f" at the import of version {origin}"
        reasons = manifest["rejected"]
        total = (
            sum(n for n in reasons.values() if isinstance(n, int))
            if isinstance(reasons, dict)
            else 0
        )
        out.print(
            f"{_plural(total, 'record', 'records')} rejected{at}: "
            f"{_counted(reasons, count_first=True)}"
        )
    if manifest.get("note"):
        out.print(f"note: {manifest['note']}")
    for rule, data in validations.items():
        out.print(validation_sentence(rule, data))


def _count(value: object) -> str:
    """A count with thousands separators; anything else as stored."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _counted(counts: object, *, count_first: bool = False) -> str:
    """{'12S': 2604, ...} as "12S 2,604, ..." (or "2 duplicate ID, ..." with count_first)."""
    if not isinstance(counts, dict) or not counts:
        return "none" if isinstance(counts, dict) else str(counts)
    if count_first:
        return ", ".join(f"{_count(n)} {what}" for what, n in counts.items())
    return ", ".join(f"{what} {_count(n)}" for what, n in counts.items())


def _known(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _plural(n: int | None, one: str, many: str) -> str:
    return f"{_known(n)} {one if n == 1 else many}"


def _curation_lines(cur: LibraryCurationRecord) -> list[str]:
    """A curated version's curation in words: from which version, with which decisions."""
    lines = [
        f"curated from version {_known(cur.curated_from)} with {cur.decisions_file} "
        f"({cur.decisions_sha256[:23]}…): "
        f"{_plural(cur.applied, 'decision', 'decisions')} applied, "
        f"{_known(cur.skipped)} skipped, "
        f"{_plural(cur.records_excluded, 'record', 'records')} excluded, "
        f"{_plural(cur.names_merged, 'name', 'names')} merged as "
        f"{'a synonym' if cur.names_merged == 1 else 'synonyms'} under "
        f"{_plural(cur.accepted_names, 'accepted name', 'accepted names')}"
    ]
    lines += [
        f"  earlier curation: version {_known(e.version)} with {e.decisions_file} "
        f"({e.decisions_sha256[:23]}…), {_plural(e.applied, 'decision', 'decisions')} applied"
        for e in cur.earlier
    ]
    return lines


def _imported_version(refs: Any, name: str, manifest: dict[str, Any]) -> int | None:
    """The version a curated version's records were imported as, following its curation
    back (None when a version on the way cannot be read)."""
    from species_ref.errors import SpeciesRefError

    seen: set[object] = set()
    while isinstance(cur := manifest.get("curation"), dict):
        base = cur.get("curated_from")
        number = base.get("version") if isinstance(base, dict) else None
        if not isinstance(number, int) or number in seen:
            return None
        seen.add(number)
        try:
            manifest = refs.manifest(name, number)
        except SpeciesRefError:
            return None
    number = manifest.get("version")
    return number if isinstance(number, int) else None


@app.command("conflicts")
def ref_conflicts(
    name: str = typer.Argument(..., help="Library name."),
    version: int | None = typer.Option(
        None, min=1, max=MAX_INT, help="Version number (default: latest)."
    ),
    within: float = typer.Option(
        0.5,
        min=0.0,
        max=5.0,
        callback=finite,
        help="Report species with references at most this far apart, in %.",
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per pair, one per line."),
    reidentify: bool = typer.Option(
        False,
        "--reidentify",
        help="Also identify every record against the rest of the library and list those that classify to another species or genus than their label.",
    ),
    propose: Path | None = typer.Option(
        None,
        "--propose",
        help="Write proposed curation decisions (TOML, for review and `ref curate`) to this new file.",
    ),
    reviewer: str = typer.Option("", help="Reviewer named in the proposed decisions."),
) -> None:
    """List species whose references (almost) agree: synonyms, misidentified records, unseparated species.

    Review these before using a library in court: a query matching either name of a
    pair is at best ambiguous, and if one of the two species is absent from the
    library the other is called with nothing in the data to warn against it.
    With --reidentify or --propose, every record is also identified against the rest of
    the library (leave-one-out); records that classify elsewhere are listed, and
    --propose writes the decisions this evidence suggests, for review.
    """
    if reidentify or propose is not None:
        _reidentify(name, version=version, propose=propose, reviewer=reviewer, as_json=as_json)
        return
    from collections import Counter

    from rich.table import Table

    from custody.species import reference_conflicts

    store = open_store()
    with _progress_bar("loading the library statistics") as bar:
        bar.add_task("load", total=None)
        found = reference_conflicts(store, library=name, version=version, within=within)
    if as_json:
        for c in found:
            print_json_line(c.to_dict())
        return
    if not found:
        done(f"No two species of {name} have references within {within} % of each other.")
        return
    table = Table("distance %", "species", "and", "reading", "references", box=None)
    for c in found:
        table.add_row(
            f"{round(c.distance, 3):.2f}",  # as stored in the JSON form
            c.species_a,
            c.species_b,
            c.kind.words + (" (CITES-listed)" if c.cites else ""),
            f"suspect {c.suspect}"
            if c.suspect
            else ", ".join("/".join(p) for p in c.accessions[:2]),
        )
    out.print(table)
    kinds = Counter(c.kind.words for c in found)
    out.print(
        f"{len(found)} species pairs within {within} %: "
        + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        + ". `--json` gives each pair's explanation."
    )


def _reidentify(
    name: str, *, version: int | None, propose: Path | None, reviewer: str, as_json: bool
) -> None:

    from rich.table import Table

    from custody.species import propose_curation
    from species_ref.files import write_text_exclusive

    if propose is not None and propose.exists():
        raise typer.BadParameter(f"{propose} already exists; name a new file.")
    store = open_store()
    with _progress_bar("re-identifying every record") as bar:
        task = bar.add_task("reidentify", total=None)
        found = propose_curation(
            store, library=name, version=version, reviewer=reviewer,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )  # fmt: skip
    if propose is not None:
        write_text_exclusive(propose, found.toml, what="decisions file", force=False)
    if as_json:
        for p in found.problems:
            print_json_line(p.to_dict())
    elif found.problems:
        table = Table("record", "labelled", "classifies as", "identity %", "other refs", box=None)
        for p in found.problems:
            table.add_row(
                p.seq_id,
                p.label,
                p.classified_as + (" (other genus)" if p.other_genus else ""),
                "" if p.identity is None else f"{p.identity:.1f}",
                str(p.own_refs),
            )
        out.print(table)
        out.print(
            f"{len(found.problems)} records classify to another species or genus than their label."
        )
    else:
        out.print("Every record classifies to its own label (or to no decisive call).")
    if propose is not None:
        done(
            f"Wrote {len(found.decisions)} proposed decisions to {propose}; review them before `ref curate`."
        )


@app.command("curate")
def ref_curate(
    name: str = typer.Argument(..., help="Library name."),
    decisions: Path = typer.Option(
        ..., "--decisions", help="Reviewed decisions (TOML): exclude, synonym and split entries."
    ),
    version: int | None = typer.Option(
        None, min=1, max=MAX_INT, help="Version to curate (default: latest)."
    ),
    note: str = typer.Option("", help="A note stored with the new version."),
    actor: str | None = typer.Option(
        None,
        "--as",
        envvar="CUSTODY_ACTOR",
        help="Curating actor: signs the new version's manifest, which lists the decisions.",
    ),
) -> None:
    """Apply reviewed curation decisions to a library as its next version.

    Each decision (exclude a misidentified or low-quality record, or one whose
    label is in doubt; file names as synonyms under an accepted name; split
    records off a name) carries its
    reviewer, reason and source; the new version's manifest lists them.
    Decisions about records or names not in this library are skipped and counted.
    """
    from custody.species import curate_reference

    store = open_store()
    who = signer(store, actor) if actor else None
    with _progress_bar(f"curating {name}") as bar:
        task = bar.add_task("curate", total=None)
        cur = curate_reference(
            store, name=name, decisions=decisions, version=version, note=note, signer=who,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )  # fmt: skip
    lib = cur.version
    if not cur.created and cur.applied == 0:
        which = (
            "The decision is not" if cur.skipped == 1 else f"None of the {cur.skipped} decisions is"
        )
        done(
            f"{which} about a record or name in {name} version {lib.version}, so "
            f"{'it was' if cur.skipped == 1 else 'all were'} skipped and no version was made."
        )
        return
    if not cur.created:
        done(
            f"{name} version {lib.version} already holds these decisions; no version was made "
            f"({cur.applied} applied, {cur.skipped} about records or names not in this library)."
        )
        return
    out.print(
        f"{name} version {lib.version}  {len(lib.records)} sequences, {len(lib.species)} species"
    )
    out.print(f"content hash {lib.content_hash}")
    out.print(
        f"{cur.applied} decisions applied ({cur.records_removed} records excluded, "
        f"{len(cur.synonyms)} accepted names with synonyms); {cur.skipped} skipped as about "
        "records or names not in this library."
    )


@app.command("export")
def ref_export(
    name: str = typer.Argument(..., help="Library name."),
    output: Path = typer.Option(..., "-o", "--output", help="FASTA file to write."),
    version: int | None = typer.Option(
        None, min=1, max=MAX_INT, help="Version number (default: latest)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
) -> None:
    """Export a library version as FASTA (>ID|Genus species|marker)."""
    from custody.species import reference_store

    path = reference_store(open_store()).export_fasta(name, output, version=version, force=force)
    done(f"Wrote {path}")


def identify(
    query_files: list[Path] = typer.Argument(
        ..., help="Query files: FASTA, FASTQ or Sanger .ab1 traces."
    ),
    library: list[str] = typer.Option(
        ...,
        help="Reference library name; repeat it with --combine for a sample's other markers.",
    ),
    version: int | None = typer.Option(
        None, min=1, max=MAX_INT, help="Library version (default: latest)."
    ),
    rule: str = typer.Option(
        "default", help="Decision rule set (default, strict, mini-barcode ...)."
    ),
    item: str | None = typer.Option(
        None,
        help="Record the result on this item (an `analyse` event); several queries only when they are one sample's markers or forward/reverse reads.",
    ),
    query_map: Path | None = typer.Option(
        None,
        "--map",
        help="CSV with columns query,item: record each query's result on its own item.",
    ),
    combine: str | None = typer.Option(
        None,
        "--combine",
        help="Treat every query as this sample's markers (or forward/reverse reads): each is searched in the library its hits fit, and one combined call is made; queries of one gene (COI, COI-5P) count as one marker. Reads whose names point to other samples are combined too, with a warning and a flag on the finding.",
    ),
    actor: str | None = AS,
    as_json: bool = typer.Option(
        False,
        "--json",
        help='One JSON object per query, one per line; with --combine, then one {"combined": ...} line with the sample\'s finding.',
    ),
) -> None:
    """Identify the species of DNA barcode queries; with --item, record the result on the item."""

    from custody.domain import EventType
    from custody.species import assign_to_items, identify_files, read_query_map

    if item and query_map:
        raise typer.BadParameter("give --item or --map, not both.")
    if combine is not None:
        _identify_sample(
            query_files, libraries=library, sample=combine, rule=rule, item=item,
            query_map=query_map, version=version, actor=actor, as_json=as_json,
        )  # fmt: skip
        return
    if len(library) > 1:
        raise typer.BadParameter("give several --library only with --combine SAMPLE.")
    mapping = read_query_map(query_map) if query_map else None
    records = bool(item or mapping)
    # Identifying without recording reads reference libraries only: no database opened.
    store = open_store() if records else reference_home()
    who = signer(store, actor) if records else None
    for target in [item] if item else sorted(set((mapping or {}).values())):
        from custody.events import check_can_record

        assert who is not None
        check_can_record(store, item_id=target, kind=EventType.ANALYSE, actor=who.actor)
    warnings: list[str] = []
    with _progress_bar("identifying") as bar:
        task = bar.add_task("identify", total=None)
        results = identify_files(
            store, files=query_files, library=library[0], version=version, rule=rule, analyst=who,
            progress=lambda d, t: bar.update(task, completed=d, total=t), notify=warnings.append,
        )  # fmt: skip
    _print_warnings(warnings)
    plan = assign_to_items(results, item=item, mapping=mapping)
    if plan and who is not None:
        from custody.species import record_identifications

        recorded = record_identifications(store, plan=plan, signer=who)
        for ev in recorded.events:
            done(f"Recorded analyse (event {ev.id}) on {ev.chain}.")
    if as_json:
        for r in results:
            print_json_line(r.to_dict())
        return
    for r in results:
        _print_identification(r)


def _identify_sample(
    query_files: list[Path],
    *,
    libraries: list[str],
    sample: str,
    rule: str,
    item: str | None,
    query_map: Path | None,
    version: int | None,
    actor: str | None,
    as_json: bool,
) -> None:

    from custody.domain import EventType
    from custody.events import check_can_record
    from custody.species import identify_sample, record_identifications

    if query_map is not None:
        raise typer.BadParameter("--combine treats every query as one sample; drop --map.")
    if version is not None:
        raise typer.BadParameter("--combine uses each library's latest version; drop --version.")
    if not sample.strip():
        raise typer.BadParameter("--combine needs a sample name.")
    store = open_store()
    who = signer(store, actor) if item else None
    if item:
        assert who is not None
        check_can_record(store, item_id=item, kind=EventType.ANALYSE, actor=who.actor)
    warnings: list[str] = []
    with _progress_bar("identifying") as bar:
        task = bar.add_task("identify", total=None)
        found = identify_sample(
            store, files=query_files, libraries=libraries, sample=sample, rule=rule, analyst=who,
            progress=lambda d, t: bar.update(task, completed=d, total=t), notify=warnings.append,
        )  # fmt: skip
    _print_warnings(warnings)
    results = found.event_results()
    if item and who is not None:
        recorded = record_identifications(store, plan={item: results}, signer=who)
        for ev in recorded.events:
            done(f"Recorded analyse (event {ev.id}) on {ev.chain}.")
    if as_json:
        for r in results:
            print_json_line(r.to_dict())
        # The sample's finding on a last line of its own, under the key the per-query
        # lines already carry it in, so the lines before it keep their shape.
        print_json_line({"combined": found.combined.to_dict()})
        return
    for r in results:
        _print_identification(r)
    c = found.combined
    out.print(
        styled(
            (f"sample {c.sample}", "bold"),
            "  ",
            (f"COMBINED {c.level.upper()}", _LEVEL_COLOUR.get(c.level, "red")),
            f"  {c.statement}",
        )
    )
    for conflict in c.conflicts:
        out.print(styled(("  conflict:", "red"), f" {conflict}"))
    for flag in c.flags:
        out.print(styled(("  flag:", "yellow"), f" {flag}"))


def _print_warnings(warnings: Sequence[str]) -> None:
    """What the reads' names promised and the reads did not keep, on stderr (JSON stays clean)."""
    for warning in warnings:
        err.print(styled(("warning:", "yellow"), f" {warning}"))


#: colour of each decision level's tag in `identify` output.
_LEVEL_COLOUR = {"species": "green", "ambiguous": "yellow", "genus": "yellow"}


def _print_identification(analysis: SpeciesAnalysis) -> None:
    """One result in readable lines; CITES only for the called species and tied candidates,
    each appendix with the date of the listing it comes from."""
    r = analysis.identification
    out.print(
        styled(
            (r.query, "bold"),
            "  ",
            (r.level.upper(), _LEVEL_COLOUR.get(r.level, "red")),
            f"  {r.statement}",
        )
    )
    if r.identity is not None:
        identity = round(r.identity, 3)
        coverage = None if r.coverage is None else round(r.coverage, 2)
        nxt = r.hits[1] if len(r.hits) > 1 else None
        gap = (
            f"  next species {nxt.species} {r.next_species_distance} % less identical"
            if nxt is not None and r.next_species_distance is not None
            else ""
        )
        out.print(f"  identity {identity} %  coverage {coverage} %{gap}")
    for flag in r.flag_texts:
        out.print(styled(("  flag:", "yellow"), f" {flag}"))
    if r.synonyms:
        out.print(f"  also filed as: {', '.join(r.synonyms)}")
    for c in analysis.cites_listings:
        appendix = "not listed" if c.appendix == "not listed" else f"Appendix {c.appendix}"
        dated = f" (listing of {c.snapshot})" if c.snapshot else ""
        out.print(f"  CITES: {c.species}: {appendix}{dated}")
    if r.error_rate is not None:
        out.print(f"  error rate: {r.error_rate.statement}")
    out.print(
        f"  library {r.library_name} v{r.library_version_number} {r.library_version[:23]}…  rule {r.rule.name}"
    )


@app.command("validate")
def ref_validate(
    name: str = typer.Argument(..., help="Library name."),
    version: int | None = typer.Option(
        None, min=1, max=MAX_INT, help="Version number (default: latest)."
    ),
    rule: str = typer.Option("default", help="Decision rule set to measure."),
    max_queries: int | None = typer.Option(
        None, min=1, max=MAX_INT, help="Sample at most this many queries (large libraries)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Measure a library's error rates (leave-one-out, hold-species-out) and store them with it."""
    from custody.species import validate_reference

    store = open_store()
    with _progress_bar(f"validating {name}") as bar:
        task = bar.add_task("validate", total=None)
        report = validate_reference(
            store, library=name, version=version, rule=rule, max_queries=max_queries,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )  # fmt: skip
    if as_json:
        print_json(report.to_dict())
        return
    present, absent = report.present.overall, report.absent.overall
    out.print(
        f"{name} v{report.library_version_number} under rule {rule}: {present.n} present-species queries, {absent.n} absent-species queries"
        + (" (sampled)" if report.sampled else "")
    )
    out.print(f"  correct species calls {_pct(present.rate(present.correct_species))} %")
    out.print(f"  wrong species calls   {_pct(present.rate(present.wrong_species))} %")
    out.print(
        f"  false species calls for absent species {_pct(absent.rate(absent.false_species))} %"
    )
    for marker, rates in sorted(report.present.by_marker.items()):
        out.print(
            f"    {marker:12} n={rates.n:5d}  correct {_pct(rates.rate(rates.correct_species), 5)} %  wrong {_pct(rates.rate(rates.wrong_species), 4)} %"
        )
    out.print(
        "Stored with the library version; every identification against it reports these rates."
    )


def _pct(rate: float | None, width: int = 0) -> str:
    """A rate in percent with one decimal (a missing rate counts as 0)."""
    return f"{100 * (rate or 0):{width}.1f}"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ref")
    root.command("identify")(identify)
