"""Parsers for reference sequence files: FASTA (four header conventions), GenBank, BOLD TSV.

This module owns turning a reference file into `RefRecord`s plus `Rejection`s.
Invariants:

- Every record of the file ends up either in `ImportResult.records` or in
  `ImportResult.rejected` with a reason; nothing is dropped silently.
- A rejection reason reads "<category>: <detail>"; the category (text before
  the first colon) is one of `REJECTION_CATEGORIES`, so counts per reason can
  be reported.
- An accepted record has a binomial "Genus species" name (subspecies dropped),
  a non-empty marker, and an upper-case IUPAC DNA sequence without gaps or
  whitespace, at least `min_length` long with at most `max_ambiguous` share of
  non-ACGT bases.
- A file that yields no usable record raises `InputFormatError` naming the file
  and the number rejected per reason; malformed files never raise anything but
  `SpeciesRefError` subclasses.

FASTA header conventions, detected per record:

- refdata / BOLD: ``>ID|Genus species|marker[|accession...]``
- UNITE / SINTAX: ``>ID;tax=k:Animalia,...,g:Manis,s:Manis_javanica;`` (also ``d:``),
  and QIIME-style ``...;g__Manis;s__Manis_javanica``
- GenBank: ``>MH123456.1 Manis javanica voucher X cytochrome oxidase subunit I (COI) gene ...``
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import sys
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from species_ref.errors import InputFormatError
from species_ref.files import first_line, read_regular
from species_ref.types import ImportResult, RefRecord, Rejection

FORMATS = ("auto", "fasta", "genbank", "bold-tsv")
IUPAC_DNA = frozenset("ACGTRYSWKMBDHVN")
_IUPAC_BYTES = "".join(sorted(IUPAC_DNA)).encode("ascii")

REJECTION_CATEGORIES = (
    "no species-level name",
    "no marker",
    "non-DNA characters",
    "too short",
    "too many ambiguous bases",
    "duplicate ID",
    "unverified",
    "no sequence",
    "unusable ID",
)

# A marker or ID is written into FASTA headers (`>ID|species|marker`): it must not
# hold the field separator, a header start or any control character.
_HEADER_UNSAFE = re.compile(r"[|>\x00-\x1f\x7f-\x9f]")


def header_unsafe(text: str) -> bool:
    """True when `text` cannot be written as a field of a `>ID|species|marker` header."""
    return bool(_HEADER_UNSAFE.search(text))


def check_marker(marker: str | None) -> str | None:
    """Return `marker` when it can be written into a FASTA header; else `InputFormatError`."""
    if marker is None:
        return None
    if not marker.strip() or _HEADER_UNSAFE.search(marker) or len(marker) > 40:
        raise InputFormatError(
            f"The marker {marker!r} is not a plain marker name (it is empty, too long, or holds "
            "'|', '>', a line break or a control character); give a name like COI-5P or cytb."
        )
    return marker


_GENUS = re.compile(r"^[A-Z][a-z]+$")
_EPITHET = re.compile(r"^[a-z][a-z-]+$")
_NOT_EPITHET = frozenset(
    {"sp", "spp", "cf", "aff", "nr", "nov", "indet", "x", "complex", "group", "gen", "sample"}
)
_NOT_SPECIES_WORDS = ("environmental", "uncultured", "unidentified", "unclassified", "metagenome")
_STRIP = re.compile(r"[\s\-.~]+")
_UNVERIFIED = re.compile(r"(^|\s)UNVERIFIED:")

# Gene names as they appear in GenBank descriptions and features -> marker names.
_MARKER_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), m)
    for p, m in (
        (r"cytochrome c? ?oxidase subunit (?:I|1)\b(?! ?I)|\bCOX ?1\b|\bCO1\b|\bCOI\b", "COI"),
        (r"cytochrome b\b|\bcyt ?b\b|\bcob\b", "cytb"),
        (r"\b12S\b|small subunit ribosomal RNA.*mitochondri|\brrnS\b", "12S"),
        (r"\b16S\b|\brrnL\b", "16S"),
        (r"\brbcL\b|ribulose-1,5-bisphosphate carboxylase", "rbcL"),
        (r"\bmatK\b|maturase K", "matK"),
        (r"\bITS2\b|internal transcribed spacer 2", "ITS2"),
        (r"\bITS1\b|internal transcribed spacer 1", "ITS1"),
        (r"\bITS\b|internal transcribed spacer", "ITS"),
        (r"\btrnL\b", "trnL"),
        (r"\bpsbA-trnH\b|\btrnH-psbA\b", "trnH-psbA"),
    )
)


def read_reference_file(
    path: str | Path,
    *,
    fmt: str = "auto",
    marker: str | None = None,
    max_ambiguous: float = 0.01,
    min_length: int = 50,
) -> ImportResult:
    """Parse a reference file into accepted records and rejections.

    `fmt` is "auto", "fasta", "genbank" or "bold-tsv"; `marker`, when given,
    overrides the marker of every record (and fills it where the file has none).
    Raises `InputFormatError` when the file cannot be read or yields no usable
    record.
    """
    p = Path(path)
    if fmt not in FORMATS:
        raise InputFormatError(
            f"Reference format '{fmt}' is unknown; use one of {', '.join(FORMATS)}."
        )
    check_marker(marker)
    text = _decode(_reference_bytes(p))  # the bytes are not kept beside the text
    if fmt == "auto":
        fmt = detect_reference_format(text, name=p.name)

    cleaner = _Cleaner(
        file_name=p.name, marker=marker, max_ambiguous=max_ambiguous, min_length=min_length
    )
    try:
        if fmt == "fasta":
            raw = _fasta_records(text, p.name)
        elif fmt == "genbank":
            raw = _genbank_records(text, p.name)
        else:
            raw = _bold_tsv_records(text, p.name)
        for seq_id, name, rec_marker, seq, label in raw:
            cleaner.add(seq_id=seq_id, name=name, marker=rec_marker, sequence=seq, label=label)
    except InputFormatError:
        raise
    except Exception as e:  # noqa: BLE001 - any parser failure on bad input is a format error
        raise InputFormatError(
            f"Reference file {p.name} is not valid {fmt} ({first_line(e)}); "
            "check the file or give the right --format."
        ) from None

    result = ImportResult(records=tuple(cleaner.records), rejected=tuple(cleaner.rejected))
    if not result.records:
        counts = rejection_counts(result.rejected)
        if counts:
            detail = ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
            raise InputFormatError(
                f"Reference file {p.name} has no usable records ({detail} rejected); "
                "fix the names, markers or sequences, or pass the marker explicitly."
            )
        raise InputFormatError(
            f"Reference file {p.name} contains no {fmt} records; check the file or its format."
        )
    return result


def _reference_bytes(p: Path) -> bytes:
    """The bytes of a reference file (gunzipped), refusing missing, empty and binary files."""
    data = read_regular(
        p, what="Reference file", hint="give the path of a FASTA, GenBank or BOLD TSV file"
    )
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise InputFormatError(
                f"Reference file {p.name} is a damaged gzip file; download or compress it again."
            ) from None
    if not data.strip():
        raise InputFormatError(
            f"Reference file {p.name} is empty; check that it is the right file."
        )
    if b"\x00" in data:
        raise InputFormatError(
            f"Reference file {p.name} is binary, not FASTA, GenBank or BOLD TSV text "
            "(plain or gzipped); check that it is the right file."
        )
    return data


def rejection_counts(rejected: tuple[Rejection, ...] | list[Rejection]) -> Counter[str]:
    """Count rejections per reason category (the text before the first colon)."""
    return Counter(r.reason.split(":", 1)[0] for r in rejected)


def detect_reference_format(text: str, *, name: str) -> str:
    """Return "fasta", "genbank" or "bold-tsv" from the start of a reference file."""
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith(">"):
        return "fasta"
    if head.startswith("LOCUS"):
        return "genbank"
    first_line = head.split("\n", 1)[0].lower()
    if "\t" in first_line and "processid" in first_line.replace("_", "").split("\t"):
        return "bold-tsv"
    raise InputFormatError(
        f"Reference file {name} is not FASTA ('>'), GenBank ('LOCUS') or a BOLD TSV export "
        "(header with processid); give one of those or pass the format."
    )


@lru_cache(maxsize=1 << 16)
def normalize_species(name: str) -> str | None:
    """Return "Genus species" for a species-level name, or None when it is not one.

    Underscores become spaces, subspecies and authors are dropped; genus-only
    names, open nomenclature ("sp.", "cf.", "aff."), hybrids, names with digits
    and environmental samples give None.
    """
    words = name.replace("_", " ").replace('"', "").replace("'", "").split()
    if len(words) < 2:
        return None
    if any(w.lower().strip(".:") in _NOT_SPECIES_WORDS for w in words):
        return None
    genus, epithet = words[0], words[1]
    if epithet.lower().rstrip(".") in _NOT_EPITHET or epithet.endswith("."):
        return None
    if not _GENUS.match(genus) or not _EPITHET.match(epithet):
        return None
    if len(words) > 2 and words[2].lower() in {"x", "×"}:
        return None
    return f"{genus} {epithet}"


def marker_from_text(text: str) -> str | None:
    """Return the marker a gene description names (COI, cytb, 12S ...), or None."""
    for pattern, marker in _MARKER_PATTERNS:
        if pattern.search(text):
            return marker
    return None


# ---------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # BOLD exports are often Latin-1.
        return data.decode("latin-1")


_RawRecord = tuple[str, str, str | None, str, str]  # seq_id, name, marker, sequence, label


class _Cleaner:
    """Validates raw records into RefRecords or Rejections."""

    def __init__(
        self, *, file_name: str, marker: str | None, max_ambiguous: float, min_length: int
    ) -> None:
        self.file_name = file_name
        self.marker = marker.strip() if marker else None
        self.max_ambiguous = max_ambiguous
        self.min_length = min_length
        self.records: list[RefRecord] = []
        self.rejected: list[Rejection] = []
        self._seen: set[tuple[str, str]] = set()
        self._species: dict[str, str | None] = {}  # raw name -> normalize_species(name)

    def _reject(self, seq_id: str, reason: str) -> None:
        self.rejected.append(Rejection(seq_id=seq_id, reason=reason, source=self.file_name))

    def add(self, *, seq_id: str, name: str, marker: str | None, sequence: str, label: str) -> None:
        seq_id = seq_id.strip() or "(no ID)"
        if _HEADER_UNSAFE.search(seq_id):
            shown = seq_id.encode("unicode_escape").decode("ascii")
            self._reject(
                shown,
                "unusable ID: it holds '|', '>' or a control character, which FASTA "
                "exports cannot carry",
            )
            return
        if "UNVERIFIED:" in label and _UNVERIFIED.search(label):
            self._reject(seq_id, "unverified: GenBank marks the record UNVERIFIED")
            return
        if name in self._species:
            species = self._species[name]
        else:
            species = self._species[name] = normalize_species(name)
        if species is None:
            self._reject(seq_id, f"no species-level name: '{_short(name)}'")
            return
        # Interned: a national library repeats a handful of marker names a million times.
        rec_marker = sys.intern(self.marker or (marker.strip() if marker else ""))
        if not rec_marker:
            self._reject(seq_id, "no marker: the file does not name one; pass the marker")
            return
        if _HEADER_UNSAFE.search(rec_marker):
            self._reject(seq_id, "no marker: the file's marker holds '|' or a control character")
            return
        seq = sequence.replace("\n", "").upper()
        # bytes operations are much faster here (an ASCII str is alphabetic as its bytes are)
        ascii_seq = seq.encode("ascii") if seq.isascii() else b""
        if not (ascii_seq.isalpha() or seq.isalpha()):  # spaces, carriage returns, gaps ...
            seq = _STRIP.sub("", seq)
            ascii_seq = b""
        if not seq:
            self._reject(seq_id, "no sequence: the record is empty")
            return
        if "U" in seq and "T" not in seq:
            seq = seq.replace("U", "T")  # RNA-style reference (rRNA databases)
            ascii_seq = b""
        if not ascii_seq:
            ascii_seq = seq.encode("ascii", "replace")
        bad = set(seq) - IUPAC_DNA if ascii_seq.translate(None, _IUPAC_BYTES) else None
        if bad:
            shown = "".join(sorted(c if c.isprintable() else "?" for c in bad)[:8])
            self._reject(seq_id, f"non-DNA characters: {shown}")
            return
        if len(seq) < self.min_length:
            self._reject(seq_id, f"too short: {len(seq)} bp (minimum {self.min_length})")
            return
        ambiguous = len(ascii_seq.translate(None, b"ACGT")) / len(seq)
        if ambiguous > self.max_ambiguous:
            self._reject(
                seq_id,
                f"too many ambiguous bases: {ambiguous * 100:.2f} % "
                f"(limit {self.max_ambiguous * 100:.2f} %)",
            )
            return
        key = (seq_id, rec_marker)
        if key in self._seen:
            self._reject(
                seq_id, f"duplicate ID: {seq_id} ({rec_marker}) appears earlier in the file"
            )
            return
        self._seen.add(key)
        source = f"{self.file_name}: {label}".replace("\t", " ").replace("\n", " ").strip()
        self.records.append(
            RefRecord(
                seq_id=seq_id, species=species, marker=rec_marker, sequence=seq, source=source
            )
        )


def _fasta_records(text: str, name: str) -> Iterator[_RawRecord]:
    if text.startswith(">"):
        # The common case, split directly (as Biopython's FASTA parser does, at a
        # fraction of the cost): the title line, then the sequence lines, whose
        # whitespace the cleaner removes. Anything else goes to Biopython, which
        # refuses text before the first record.
        # Walked with find, not split: a national library's text is never held twice.
        start, end = 1, len(text)
        while start <= end:
            stop = text.find("\n>", start)
            stop = end if stop < 0 else stop
            eol = text.find("\n", start, stop)
            eol = stop if eol < 0 else eol
            title = text[start:eol].rstrip()
            yield (*parse_fasta_header(title), text[eol + 1 : stop], title)
            start = stop + 2
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from Bio import SeqIO  # only for FASTA that does not start with '>'

        for rec in SeqIO.parse(io.StringIO(text), "fasta"):
            yield (*parse_fasta_header(rec.description), str(rec.seq), rec.description)


def parse_fasta_header(header: str) -> tuple[str, str, str | None]:
    """Split a FASTA header (without '>') into (seq_id, name, marker or None)."""
    header = header.strip()
    if ";tax=" in header:
        seq_id, tax = header.split(";tax=", 1)
        ranks = dict(part.split(":", 1) for part in tax.strip(";").split(",") if ":" in part)
        species = ranks.get("s", "")
        genus = ranks.get("g", "")
        if species and " " not in species.replace("_", " ").strip() and genus:
            species = f"{genus} {species}"
        return seq_id.strip(), species or genus, None
    if "s__" in header:
        seq_id = re.split(r"[\s|;]", header, maxsplit=1)[0]
        m = re.search(r"s__([^;|]*)", header)
        species = m.group(1) if m else ""
        g = re.search(r"g__([^;|]*)", header)
        if species and "_" not in species and " " not in species and g:
            species = f"{g.group(1)} {species}"
        return seq_id, species, None
    if "|" in header:
        fields = [f.strip() for f in header.split("|", 3)[:3]]  # the rest is not used
        seq_id = fields[0]
        species = fields[1] if len(fields) > 1 else ""
        rec_marker = fields[2] if len(fields) > 2 and fields[2] else None
        return seq_id, species, rec_marker
    # GenBank-style: accession, then the organism name, then free text.
    parts = header.split(None, 1)
    seq_id = parts[0] if parts else ""
    desc = parts[1] if len(parts) > 1 else ""
    desc = re.sub(r"^(PREDICTED|UNVERIFIED):\s*", "", desc)
    return seq_id, desc, marker_from_text(desc)


_LOCUS = re.compile(r"^LOCUS\s+(\S+)\s+(\d+)\s+(?:bp|aa)\b", re.MULTILINE)
_RECORD_END = re.compile(r"^//\s*$", re.MULTILINE)


def _locus_lengths(text: str, name: str) -> list[tuple[str, int]]:
    """(locus, declared length) of every record; refuse a file cut inside a record."""
    loci = [(m.group(1), int(m.group(2))) for m in _LOCUS.finditer(text)]
    ends = len(_RECORD_END.findall(text))
    if loci and ends < len(loci):
        raise InputFormatError(
            f"Reference file {name} ends inside GenBank record {loci[-1][0]} (no closing '//'); "
            "the download was cut short, so download the file again."
        )
    return loci


def _genbank_records(text: str, name: str) -> Iterator[_RawRecord]:
    from Bio import SeqIO

    loci = _locus_lengths(text, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for number, rec in enumerate(SeqIO.parse(io.StringIO(text), "genbank")):
            if number < len(loci):
                locus, declared = loci[number]
                try:
                    actual = len(rec.seq)
                except Exception:  # noqa: BLE001 - records without sequence data
                    actual = 0
                if actual and actual != declared:
                    raise InputFormatError(
                        f"Reference file {name}: GenBank record {locus} declares {declared} bp "
                        f"in its LOCUS line but holds {actual}; the file is damaged, so "
                        "download it again."
                    )
            organism = str(rec.annotations.get("organism", ""))
            for feat in rec.features:
                if feat.type == "source" and "organism" in feat.qualifiers:
                    organism = organism or feat.qualifiers["organism"][0]
            genes: set[str] = set()
            for feat in rec.features:
                if feat.type in {"gene", "CDS", "rRNA", "misc_RNA"}:
                    for key in ("gene", "product", "note"):
                        for value in feat.qualifiers.get(key, []):
                            found = marker_from_text(value)
                            if found:
                                genes.add(found)
            if not genes:
                found = marker_from_text(rec.description)
                if found:
                    genes.add(found)
            rec_marker = genes.pop() if len(genes) == 1 else None
            try:
                seq = str(rec.seq)
            except Exception:  # noqa: BLE001 - records without sequence data
                seq = ""
            yield rec.id, organism, rec_marker, seq, f"{rec.id} {rec.description}"


_BOLD_COLUMNS = {
    "seq_id": ("processid", "process_id"),
    "species": ("species_name", "species"),
    "marker": ("markercode", "marker_code"),
    "sequence": ("nucleotides", "nuc"),
    "accession": ("genbank_accession", "insdc_acs"),
}


def _bold_tsv_records(text: str, name: str) -> Iterator[_RawRecord]:
    reader = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    cols: dict[str, str] = {}
    for key, options in _BOLD_COLUMNS.items():
        for opt in options:
            if opt in header:
                cols[key] = (reader.fieldnames or [])[header.index(opt)]
                break
    missing = [k for k in ("seq_id", "species", "sequence") if k not in cols]
    if missing:
        wanted = ", ".join(_BOLD_COLUMNS[k][0] for k in missing)
        raise InputFormatError(
            f"BOLD TSV file {name} lacks the column(s) {wanted}; "
            "export it from the BOLD data portal with sequences included."
        )
    for row in reader:
        seq_id = (row.get(cols["seq_id"]) or "").strip()
        species = (row.get(cols["species"]) or "").strip()
        seq = (row.get(cols["sequence"]) or "").strip()
        rec_marker = (row.get(cols["marker"]) or "").strip() if "marker" in cols else ""
        acc = (row.get(cols["accession"]) or "").strip() if "accession" in cols else ""
        label = f"{seq_id}|{species}|{rec_marker}" + (f"|{acc}" if acc else "")
        yield seq_id, species, rec_marker or None, seq, label


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
