"""Versioned reference libraries on disk, and the canonical library hash.

This module owns the on-disk layout of reference libraries and the one
definition of a library's content hash (`canonical_library_hash`).

Layout under the store root::

    <root>/<name>/v0001/manifest.json        hash, counts, note, sources, rejections
    <root>/<name>/v0001/records.jsonl.gz     one JSON array per record
    <root>/<name>/v0001/rejected.jsonl.gz    the records the import refused, with reasons
    <root>/<name>/v0001/attachments/<key>.json   derived results (e.g. validation rates)
    <root>/<name>/.cache/v0001/              matcher caches (k-mer index); safe to delete

Invariants:

- A version holds exactly the records of the files given to the one
  `import_version` call that made it (not the previous version plus the new
  files): a version is reproducible from its listed source files alone. A
  curated version (`curate_version`) holds the records of the version it was
  made from after the decisions its manifest lists under "curation": it is
  reproducible from that version and the decisions.
- Versions are numbered 1, 2, 3 ... and frozen: `manifest.json`,
  `records.jsonl.gz` and `rejected.jsonl.gz` are written once, into a temporary
  directory that is renamed into place, so a failed import leaves nothing.
  Only `attachments/` may change later, and the hash does not cover it.
- Importing content whose hash equals the latest version's creates nothing and
  returns that latest version (imports are idempotent).
- `load` re-verifies the SHA-256 of `records.jsonl.gz` and `rejected.jsonl.gz`
  recorded in the manifest and the canonical content hash, and raises
  `SpeciesRefError` if the snapshot on disk was altered; `verify` returns the
  same checks as a list of findings (empty when intact).
- Records are stored, loaded and returned in canonical order (see
  `canonical_library_hash`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from species_ref.curation import CurationError, CurationResult, Decisions, curate_records
from species_ref.errors import InputFormatError, LibraryNotFound, SpeciesRefError
from species_ref.refimport import read_reference_file, rejection_counts
from species_ref.types import ImportResult, LibraryVersion, RefRecord, Rejection

MANIFEST = "manifest.json"
RECORDS = "records.jsonl.gz"
REJECTED = "rejected.jsonl.gz"
ATTACHMENTS = "attachments"
FORMAT_TAG = "species-ref-library/1"

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_VERSION_DIR = re.compile(r"^v(\d+)$")

Progress = Callable[[int, int], None]

# The one encoder behind the canonical hash: sorted keys, compact, UTF-8 as-is.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical_key(r: RefRecord) -> tuple[str, str, str, str]:
    return (r.species, r.seq_id, r.marker, r.sequence)


def canonical_library_hash(records: Iterable[RefRecord], *, presorted: bool = False) -> str:
    """Return "sha256:<hex>" over the canonical form of a set of reference records.

    The canonical form, which anyone can recompute from an exported FASTA:

    1. Take each record's four content fields: seq_id, species ("Genus
       species"), marker and sequence (upper-case IUPAC DNA, no gaps). The
       `source` field (file name, original label) is NOT part of it, so the
       hash does not depend on the file format or the file the record came from.
    2. Sort the records by (species, seq_id, marker, sequence), comparing
       strings by Unicode code point.
    3. Encode each as one line of JSON: an object with exactly those four keys,
       keys sorted, separators "," and ":" with no spaces, non-ASCII characters
       written as-is, followed by "\\n". Example::

           {"marker":"COI-5P","seq_id":"KC690307","sequence":"GTGG...","species":"Manis pentadactyla"}

    4. SHA-256 over the UTF-8 bytes of all lines concatenated; write as
       "sha256:" + lowercase hex.

    Equivalent Python: ``hashlib.sha256("".join(json.dumps({...}, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False) + "\\n" for r in sorted(...)).encode())``.

    `presorted`: the caller passes a list already in canonical order (sorted with
    `_canonical_key`), which is then not sorted again.
    """
    enc = encode_basestring  # the string encoding of _CANONICAL_ENCODER (ensure_ascii off)
    h = hashlib.sha256()
    # Hashed in slices: the same bytes as one joined text, without holding it all.
    # Each line is what _CANONICAL_ENCODER.encode gives for the four keys in sorted
    # order, written out: tests/test_species_library.py checks the two agree.
    ordered = (
        records if presorted and isinstance(records, list) else sorted(records, key=_canonical_key)
    )
    step = 20_000
    for start in range(0, len(ordered), step):
        text = "".join(
            f'{{"marker":{enc(r.marker)},"seq_id":{enc(r.seq_id)},'
            f'"sequence":{enc(r.sequence)},"species":{enc(r.species)}}}\n'
            for r in ordered[start : start + step]
        )
        h.update(text.encode("utf-8"))
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class LibrarySummary:
    """One version of a library as described by its manifest (records not loaded)."""

    name: str
    version: int
    record_count: int
    species_count: int
    markers: tuple[str, ...]
    content_hash: str
    created_at: str
    note: str = ""
    rejected_count: int = 0


def check_library_name(name: str) -> str:
    """Return `name` if it is a valid library name, else raise `SpeciesRefError`."""
    if not _NAME.match(name) or name.startswith("."):
        raise SpeciesRefError(
            f"Library name '{name}' is not allowed; use letters, digits, '_', '.' and '-' only, "
            "not starting with '.'."
        )
    return name


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _write_jsonl_gz(path: Path, rows: Iterable[list[str]]) -> None:
    # mtime=0 keeps the bytes a pure function of the content; rows are written in
    # slices so a national-scale library is never held twice as one text.
    with (
        path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) as gz,
    ):
        batch: list[str] = []
        enc = encode_basestring  # json.dumps(row, ensure_ascii=False, compact), written out
        for row in rows:
            batch.append("[" + ",".join(enc(x) for x in row) + "]\n")
            if len(batch) >= 20_000:
                gz.write("".join(batch).encode("utf-8"))
                batch = []
        if batch:
            gz.write("".join(batch).encode("utf-8"))


class LibraryStore:
    """Named, versioned reference libraries kept under one root directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------

    def version_dir(self, name: str, version: int) -> Path:
        """Return the directory of one version (it may not exist)."""
        return self.root / check_library_name(name) / f"v{version:04d}"

    def cache_dir(self, name: str, version: int) -> Path:
        """Return (creating it) the cache directory for derived data of one version."""
        self._require(name, version)
        path = self.root / name / ".cache" / f"v{version:04d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- reading ------------------------------------------------------------

    def _version_numbers(self, name: str) -> list[int]:
        base = self.root / check_library_name(name)
        if not base.is_dir():
            return []
        numbers = []
        for child in base.iterdir():
            m = _VERSION_DIR.match(child.name)
            if m and (child / MANIFEST).is_file():
                numbers.append(int(m.group(1)))
        return sorted(numbers)

    def library_names(self) -> list[str]:
        """Return the names of every library with at least one version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            child.name
            for child in self.root.iterdir()
            # Names starting with '.' are not libraries (the store keeps signatures there).
            if child.is_dir()
            and _NAME.match(child.name)
            and not child.name.startswith(".")
            and self._version_numbers(child.name)
        )

    def _require(self, name: str, version: int | None) -> int:
        numbers = self._version_numbers(name)
        if not numbers:
            names = self.library_names()
            available = ", ".join(names) if names else "none yet"
            raise LibraryNotFound(
                f"Reference library '{name}' does not exist (available: {available}); "
                "import one first."
            )
        if version is None:
            return numbers[-1]
        if version not in numbers:
            listed = ", ".join(str(n) for n in numbers)
            raise LibraryNotFound(
                f"Reference library '{name}' has no version {version} (versions: {listed}); "
                "pick one of those."
            )
        return version

    def _manifest(self, name: str, version: int) -> dict[str, Any]:
        path = self.version_dir(name, version) / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise SpeciesRefError(
                f"The manifest of library '{name}' version {version} ({path}) is unreadable "
                f"({e}); restore the version directory from a backup."
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_TAG:
            raise SpeciesRefError(
                f"The manifest of library '{name}' version {version} ({path}) is not a "
                f"{FORMAT_TAG} manifest; restore the version directory from a backup."
            )
        return data

    @staticmethod
    def _summary(m: dict[str, Any]) -> LibrarySummary:
        return LibrarySummary(
            name=m["name"],
            version=int(m["version"]),
            record_count=int(m["record_count"]),
            species_count=int(m["species_count"]),
            markers=tuple(sorted(m.get("markers", {}))),
            content_hash=m["content_hash"],
            created_at=m["created_at"],
            note=m.get("note", ""),
            rejected_count=sum(m.get("rejected", {}).values()),
        )

    def list_libraries(self) -> list[LibrarySummary]:
        """Return the latest version of every library, sorted by name."""
        return [
            self._summary(self._manifest(name, self._version_numbers(name)[-1]))
            for name in self.library_names()
        ]

    def versions(self, name: str) -> list[LibrarySummary]:
        """Return every version of a library, oldest first; `LibraryNotFound` if none."""
        self._require(name, None)
        return [self._summary(self._manifest(name, v)) for v in self._version_numbers(name)]

    def manifest(self, name: str, version: int | None = None) -> dict[str, Any]:
        """Return the manifest of a version (latest when `version` is None) as a dict."""
        return self._manifest(name, self._require(name, version))

    def load(self, name: str, version: int | None = None) -> LibraryVersion:
        """Load a version (latest when None), re-verifying its file hashes and content hash.

        Raises `SpeciesRefError` naming the first problem when the snapshot on
        disk does not match its manifest.
        """
        v = self._require(name, version)
        lib, findings = self._read_checked(name, v)
        if findings or lib is None:
            raise SpeciesRefError(findings[0])
        return lib

    def open(self, name: str, version: int | None = None) -> LibraryVersion:
        """Open a version (latest when None) for searching, without reading its records yet.

        The manifest is read and the SHA-256 of `records.jsonl.gz` and
        `rejected.jsonl.gz` checked against it now (raising `SpeciesRefError`
        naming the first problem); the records are parsed, and their canonical
        content hash re-checked as `load` does, only when `records` is first
        read. A search whose k-mer index is cached never reads them.
        """
        v = self._require(name, version)
        m = self._manifest(name, v)
        findings = self._file_findings(name, v, m)
        if findings:
            raise SpeciesRefError(findings[0])
        return LibraryVersion(
            name=name,
            version=v,
            content_hash=m["content_hash"],
            created_at=m["created_at"],
            note=m.get("note", ""),
            synonyms=_manifest_synonyms(m),
            load_records=lambda: self.load(name, v).records,
        )

    def _file_findings(self, name: str, v: int, m: dict[str, Any]) -> list[str]:
        """Findings about the version's files against the hashes in its manifest `m`."""
        vdir = self.version_dir(name, v)
        fix = "restore the version directory from a backup or re-import it"
        findings: list[str] = []
        for file, key in ((RECORDS, "records_sha256"), (REJECTED, "rejected_sha256")):
            path = vdir / file
            if key not in m and file == REJECTED:
                continue
            if not path.is_file():
                findings.append(f"Library '{name}' version {v} has lost {file}; {fix}.")
                continue
            found = _sha256_file(path)
            if found != m.get(key):
                findings.append(
                    f"Library '{name}' version {v} was altered on disk: {file} has hash "
                    f"{found}, the manifest records {m.get(key)}; {fix}."
                )
        return findings

    def verify(self, name: str, version: int | None = None) -> list[str]:
        """Check every version of `name` (or just `version`); return findings, [] if intact.

        Each finding is one sentence naming the version and file that do not
        match the manifest.
        """
        numbers = (
            [self._require(name, version)] if version is not None else self._version_numbers(name)
        )
        if not numbers:
            self._require(name, None)
        findings: list[str] = []
        for v in numbers:
            findings.extend(self._read_checked(name, v)[1])
        return findings

    def _read_checked(self, name: str, v: int) -> tuple[LibraryVersion | None, list[str]]:
        try:
            m = self._manifest(name, v)
        except SpeciesRefError as e:
            return None, [str(e)]
        vdir = self.version_dir(name, v)
        fix = "restore the version directory from a backup or re-import it"
        findings: list[str] = []
        rejected_path = vdir / REJECTED
        if "rejected_sha256" in m:
            if not rejected_path.is_file():
                findings.append(f"Library '{name}' version {v} has lost {REJECTED}; {fix}.")
            elif _sha256_file(rejected_path) != m["rejected_sha256"]:
                findings.append(
                    f"Library '{name}' version {v} was altered on disk: {REJECTED} does not "
                    f"match the hash in the manifest; {fix}."
                )
        try:
            blob = (vdir / RECORDS).read_bytes()
        except OSError:
            findings.append(f"Library '{name}' version {v} has lost its records file; {fix}.")
            return None, findings
        file_hash = "sha256:" + hashlib.sha256(blob).hexdigest()
        if file_hash != m.get("records_sha256"):
            findings.insert(
                0,
                f"Library '{name}' version {v} was altered on disk: {RECORDS} has hash "
                f"{file_hash}, the manifest records {m.get('records_sha256')}; {fix}.",
            )
        try:
            lines = gzip.decompress(blob).decode("utf-8").splitlines()
            del blob
            # One JSON parse per slice of lines is several times faster than one per
            # line, and holds one slice, not the whole file, as parsed rows at a time.
            parsed: list[RefRecord] = []
            step = 50_000
            for start in range(0, len(lines), step):
                rows = json.loads("[" + ",".join(lines[start : start + step]) + "]")
                parsed.extend(RefRecord(*row) for row in rows)
            del lines
            records = tuple(parsed)
        except (OSError, ValueError, TypeError, EOFError) as e:
            findings.append(
                f"Library '{name}' version {v} has an unreadable records file ({e}); {fix}."
            )
            return None, findings
        content_hash = canonical_library_hash(records)
        if content_hash != m["content_hash"]:
            findings.insert(
                0,
                f"Library '{name}' version {v} was altered on disk: its records hash to "
                f"{content_hash}, the manifest records {m['content_hash']}; {fix}.",
            )
        if findings:
            return None, findings
        lib = LibraryVersion(
            name=name,
            version=v,
            content_hash=content_hash,
            created_at=m["created_at"],
            records=records,
            note=m.get("note", ""),
            synonyms=_manifest_synonyms(m),
        )
        return lib, []

    def rejected(self, name: str, version: int | None = None) -> list[Rejection]:
        """Return the records refused when a version was imported, with their reasons."""
        v = self._require(name, version)
        path = self.version_dir(name, v) / REJECTED
        if not path.is_file():
            return []
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
        return [Rejection(*json.loads(line)) for line in lines]

    # -- writing -----------------------------------------------------------

    def import_version(
        self,
        name: str,
        paths: Iterable[str | Path],
        *,
        fmt: str = "auto",
        marker: str | None = None,
        note: str = "",
        progress: Progress | None = None,
        max_ambiguous: float = 0.01,
    ) -> tuple[LibraryVersion, ImportResult]:
        """Create the next version of `name` from exactly the records of `paths`.

        Every file is parsed first; if any fails (or a file yields no usable
        record) nothing is written. A record whose (seq_id, marker) already came
        from an earlier file is rejected as a duplicate. When the combined
        content hash equals the latest version's, no version is created and the
        latest one is returned. `progress(done, total)` is called once per file
        parsed and once when the version is written. Records with a larger share
        of non-ACGT bases than `max_ambiguous` are rejected; the limit is kept in
        the manifest's import options.
        """
        check_library_name(name)
        files = [Path(p) for p in paths]
        if not files:
            raise InputFormatError(
                f"No reference files were given for library '{name}'; name at least one file."
            )
        total = len(files) + 1
        read = _read_sources(
            files,
            fmt=fmt,
            marker=marker,
            max_ambiguous=max_ambiguous,
            progress=None if progress is None else (lambda done: progress(done, total)),
        )
        records, rejected = read.records, read.rejected
        records.sort(key=_canonical_key)
        content_hash = canonical_library_hash(records, presorted=True)
        combined = ImportResult(records=tuple(records), rejected=tuple(rejected))
        numbers = self._version_numbers(name)
        if numbers:
            latest = self._manifest(name, numbers[-1])
            if latest["content_hash"] == content_hash:
                if progress is not None:
                    progress(total, total)
                return self.load(name, numbers[-1]), combined

        version = (numbers[-1] + 1) if numbers else 1
        created_at = _now()
        manifest = _manifest(
            name=name,
            version=version,
            content_hash=content_hash,
            created_at=created_at,
            note=note,
            read=read,
            import_options={"format": fmt, "marker": marker, "max_ambiguous": max_ambiguous},
        )
        self._write_version(
            name=name, version=version, records=records, rejected=rejected, manifest=manifest
        )
        if progress is not None:
            progress(total, total)
        lib = LibraryVersion(
            name=name,
            version=version,
            content_hash=content_hash,
            created_at=created_at,
            records=tuple(records),
            note=note,
        )
        return lib, combined

    def _write_version(
        self,
        *,
        name: str,
        version: int,
        records: list[RefRecord],
        rejected: list[Rejection],
        manifest: dict[str, Any],
    ) -> None:
        """Write a version into a temporary directory, then rename it into place.

        Raises `SpeciesRefError` when it cannot be written; nothing is left behind.
        """
        try:
            self._write_version_files(
                name=name, version=version, records=records, rejected=rejected, manifest=manifest
            )
        except OSError as e:
            raise SpeciesRefError(
                f"Library '{name}' version {version} could not be written under {self.root} "
                f"({e.strerror or e}); check that the directory is writable. Nothing was imported."
            ) from None

    def _write_version_files(
        self,
        *,
        name: str,
        version: int,
        records: list[RefRecord],
        rejected: list[Rejection],
        manifest: dict[str, Any],
    ) -> None:
        base = self.root / name
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=base))
        try:
            # Records are in canonical order, which makes the re-sort on every load nearly free.
            _write_jsonl_gz(
                tmp / RECORDS,
                ([r.seq_id, r.species, r.marker, r.sequence, r.source] for r in records),
            )
            _write_jsonl_gz(tmp / REJECTED, ([r.seq_id, r.reason, r.source] for r in rejected))
            manifest = {
                **manifest,
                "records_file": RECORDS,
                "records_sha256": _sha256_file(tmp / RECORDS),
                "rejected_file": REJECTED,
                "rejected_sha256": _sha256_file(tmp / REJECTED),
            }
            (tmp / MANIFEST).write_text(
                json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            target = self.version_dir(name, version)
            try:
                os.rename(tmp, target)
            except OSError:
                raise SpeciesRefError(
                    f"Library '{name}' version {version} was created by another import at the "
                    "same time; run the import again."
                ) from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def curate_version(
        self,
        name: str,
        decisions: Decisions,
        *,
        version: int | None = None,
        note: str = "",
    ) -> tuple[LibraryVersion, CurationResult, bool]:
        """Apply reviewed `decisions` to a version (latest when None) as the next version.

        Returns the new version, what was applied and skipped, and whether a
        version was created: when the latest version already is the result of
        these very decisions on this content, nothing is written. A bad
        decisions file never reaches here (`read_decisions` refuses it).
        """
        base = self.load(name, version)
        base_manifest = self._manifest(name, base.version)
        result = curate_records(base.records, decisions.decisions, synonyms=dict(base.synonyms))
        records = sorted(result.records, key=_canonical_key)
        if not records:
            raise CurationError(
                f"The decisions in {decisions.file} would remove every record of library "
                f"'{name}'; nothing was changed."
            )
        content_hash = canonical_library_hash(records, presorted=True)
        numbers = self._version_numbers(name)
        latest = self._manifest(name, numbers[-1])
        cur = latest.get("curation") or {}
        if latest["content_hash"] == content_hash and (
            cur.get("decisions_sha256") == decisions.sha256
            or (
                not result.applied and _manifest_synonyms(latest) == _synonym_pairs(result.synonyms)
            )
        ):
            return self.load(name, numbers[-1]), result, False
        number = numbers[-1] + 1
        created_at = _now()
        manifest = {
            "format": FORMAT_TAG,
            "name": name,
            "version": number,
            "content_hash": content_hash,
            "hash_definition": "species_ref.library.canonical_library_hash",
            "created_at": created_at,
            "note": note or base.note,
            "record_count": len(records),
            "species_count": len({r.species for r in records}),
            "markers": dict(sorted(Counter(r.marker for r in records).items())),
            "sources": base_manifest.get("sources", []),
            "import_options": base_manifest.get("import_options", {}),
            "rejected": base_manifest.get("rejected", {}),
            "curation": {
                "curated_from": {"version": base.version, "content_hash": base.content_hash},
                "decisions_file": decisions.file,
                "decisions_sha256": decisions.sha256,
                "decisions_header": dict(decisions.header),
                "applied": list(result.applied),
                "skipped_count": len(result.skipped),
                "records_removed": len(base.records) - len(records),
                "synonyms": result.synonyms,
                "earlier": _earlier_curation(base_manifest),
            },
        }
        self._write_version(
            name=name,
            version=number,
            records=records,
            rejected=self.rejected(name, base.version),
            manifest=manifest,
        )
        lib = LibraryVersion(
            name=name,
            version=number,
            content_hash=content_hash,
            created_at=created_at,
            records=tuple(records),
            note=manifest["note"],
            synonyms=_synonym_pairs(result.synonyms),
        )
        return lib, result, True

    def export_fasta(
        self, name: str, out_path: str | Path, *, version: int | None = None, force: bool = False
    ) -> Path:
        """Write a version as FASTA with `>ID|Genus species|marker` headers; return the path.

        Records come out in canonical order, so the export re-imports to the
        same content hash. A record whose ID or marker would break its header is
        refused rather than written as a FASTA that re-imports differently.
        """
        from species_ref.files import write_text_exclusive
        from species_ref.refimport import header_unsafe

        lib = self.load(name, version)
        out = Path(out_path)
        ordered = sorted(lib.records, key=_canonical_key)
        for r in ordered:
            if header_unsafe(r.seq_id) or header_unsafe(r.marker):
                raise SpeciesRefError(
                    f"Record {r.seq_id!r} of library '{name}' has an ID or marker holding '|', "
                    "'>' or a control character, which a FASTA export cannot carry; re-import "
                    "the library from its source files with this version of custody."
                )
        text = "".join(f">{r.seq_id}|{r.species}|{r.marker}\n{r.sequence}\n" for r in ordered)
        return write_text_exclusive(out, text, what="FASTA export", force=force)

    # -- attachments -----------------------------------------------------------

    def attach(self, name: str, version: int, key: str, data: dict[str, Any]) -> Path:
        """Store a JSON document under `key` next to a version (replacing an older one)."""
        v = self._require(name, version)
        check_attachment_key(key)
        folder = self.version_dir(name, v) / ATTACHMENTS
        folder.mkdir(exist_ok=True)
        target = folder / f"{key}.json"
        tmp = folder / f".{key}.json.tmp"
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        return target

    def attachment_keys(self, name: str, version: int) -> list[str]:
        """The keys of every JSON document stored next to a version, sorted."""
        v = self._require(name, version)
        folder = self.version_dir(name, v) / ATTACHMENTS
        if not folder.is_dir():
            return []
        return sorted(
            p.stem
            for p in folder.glob("*.json")
            if not p.name.startswith(".") and _NAME.match(p.stem)
        )

    def attachment(self, name: str, version: int, key: str) -> dict[str, Any] | None:
        """Return the JSON document stored under `key` for a version, or None."""
        v = self._require(name, version)
        check_attachment_key(key)
        path = self.version_dir(name, v) / ATTACHMENTS / f"{key}.json"
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise SpeciesRefError(
                f"Attachment '{key}' of library '{name}' version {v} is not valid JSON; "
                "delete it and compute it again."
            ) from None
        return data if isinstance(data, dict) else None


@dataclass
class _Sources:
    """What the files of one import yielded, before a version is written."""

    records: list[RefRecord]
    rejected: list[Rejection]
    sources: list[dict[str, str | int]]  # manifest "sources" entries, one per file


def _read_sources(
    files: list[Path],
    *,
    fmt: str,
    marker: str | None,
    max_ambiguous: float,
    progress: Callable[[int], None] | None,
) -> _Sources:
    """Parse every file; a record whose (seq_id, marker) came from an earlier file is a duplicate."""
    out = _Sources([], [], [])
    seen: dict[tuple[str, str], str] = {}
    for i, path in enumerate(files):
        result = read_reference_file(path, fmt=fmt, marker=marker, max_ambiguous=max_ambiguous)
        kept = 0
        for rec in result.records:
            key = (rec.seq_id, rec.marker)
            if key in seen:
                out.rejected.append(
                    Rejection(
                        seq_id=rec.seq_id,
                        reason=f"duplicate ID: {rec.seq_id} ({rec.marker}) also in {seen[key]}",
                        source=path.name,
                    )
                )
                continue
            seen[key] = path.name
            out.records.append(rec)
            kept += 1
        out.rejected.extend(result.rejected)
        out.sources.append(
            {
                "file": path.name,
                "sha256": _sha256_file(path),
                "records": kept,
                "rejected": len(result.records) - kept + len(result.rejected),
            }
        )
        if progress is not None:
            progress(i + 1)
    return out


def _manifest(
    *,
    name: str,
    version: int,
    content_hash: str,
    created_at: str,
    note: str,
    read: _Sources,
    import_options: dict[str, str | float | None],
) -> dict[str, Any]:
    """The manifest of a new version (file hashes are added when the files are written)."""
    records = read.records
    return {
        "format": FORMAT_TAG,
        "name": name,
        "version": version,
        "content_hash": content_hash,
        "hash_definition": "species_ref.library.canonical_library_hash",
        "created_at": created_at,
        "note": note,
        "record_count": len(records),
        "species_count": len({r.species for r in records}),
        "markers": dict(sorted(Counter(r.marker for r in records).items())),
        "sources": read.sources,
        "import_options": import_options,
        "rejected": dict(sorted(rejection_counts(read.rejected).items())),
    }


def _synonym_pairs(synonyms: dict[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((k, tuple(v)) for k, v in sorted(synonyms.items()))


def _manifest_synonyms(m: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The synonyms a version carries, from its manifest's curation (none when not curated)."""
    cur = m.get("curation")
    if not isinstance(cur, dict) or not isinstance(cur.get("synonyms"), dict):
        return ()
    return _synonym_pairs({str(k): [str(x) for x in v] for k, v in cur["synonyms"].items()})


def _earlier_curation(m: dict[str, Any]) -> list[dict[str, Any]]:
    """The curation history of a version, so a curated version lists every act behind it."""
    cur = m.get("curation")
    if not isinstance(cur, dict):
        return []
    earlier = list(cur.get("earlier", []))
    earlier.append(
        {
            "version": m.get("version"),
            "decisions_file": cur.get("decisions_file"),
            "decisions_sha256": cur.get("decisions_sha256"),
            "applied_count": len(cur.get("applied", [])),
        }
    )
    return earlier


def check_attachment_key(key: str) -> str:
    """Return `key` if usable as an attachment name, else raise `SpeciesRefError`."""
    if not _NAME.match(key) or key.startswith("."):
        raise SpeciesRefError(
            f"Attachment key '{key}' is not allowed; use letters, digits, '_', '.' and '-' only."
        )
    return key
