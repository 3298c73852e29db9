"""Reading query sequences (FASTA, FASTQ, Sanger ABIF traces) and their quality control.

This module owns the path from a file a lab hands over to `Query` objects ready
for matching. Invariants:

- The format is detected from the file's bytes (ABIF magic "ABIF", SCF ".scf",
  ZTR "\\xaeZTR", FASTA ">", FASTQ "@", or a bare IUPAC sequence as sent in
  .seq files, read as FASTA named after the file), never from the extension alone.
- Either every record of a file is returned, or an `InputFormatError` /
  `QueryRejected` is raised naming the file (and record) and the fix; nothing
  partial is returned.
- A returned `Query.sequence` is upper-case IUPAC DNA (ACGTRYSWKMBDHVN) without
  gaps or whitespace, and is never empty.
- Reads that carry phred qualities (ABIF, FASTQ) are quality-trimmed with the
  Mott algorithm (see `mott_trim`) unless `trim=False`; the QC figures report
  the raw length, the kept length and the mean phred of the kept bases.
- Any exception a parser raises on malformed input is turned into a
  `SpeciesRefError` subclass: callers never see `ValueError` or `struct.error`.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from species_ref.errors import InputFormatError, QueryRejected
from species_ref.files import first_line, read_regular
from species_ref.types import Query, QueryQC
from species_ref.vocab import QcCode, QcFlag

IUPAC_DNA = frozenset("ACGTRYSWKMBDHVN")
UNAMBIGUOUS = frozenset("ACGT")

# Mott trimming: bases whose error probability exceeds this cutoff count against
# the segment. 0.05 is Biopython's "abi-trim" default (roughly phred 13).
DEFAULT_TRIM_CUTOFF = 0.05

# QC thresholds behind the plain-word warnings (figures from barcoding practice:
# a full COI barcode is ~650 bp, >= 300-500 bp counts as a full read, 100-250 bp
# mini-barcodes are legitimate but must be reported, < 1 % ambiguous bases).
FULL_BARCODE_MIN = 300
MINI_BARCODE_MIN = 100
MAX_AMBIGUOUS_SHARE = 0.01

_GAP_OR_SPACE = re.compile(r"[\s\-.]+")
_ABIF_MAGIC = b"ABIF"
_SCF_MAGIC = b".scf"
_ZTR_MAGIC = b"\xaeZTR"
_UTF8_BOM = b"\xef\xbb\xbf"
_PLAIN_SEQUENCE = re.compile(rb"[\sACGTRYSWKMBDHVNacgtryswkmbdhvn\-.]+")


@dataclass(frozen=True, slots=True)
class _Read:
    """A raw read as parsed, before trimming and QC."""

    name: str
    sequence: str
    qualities: list[int] | None
    extra: dict[str, str]


def mott_trim(qualities: Sequence[int], *, cutoff: float = DEFAULT_TRIM_CUTOFF) -> tuple[int, int]:
    """Return the half-open range [start, end) that the Mott algorithm keeps.

    Each base scores `cutoff - p_error`, where `p_error = 10 ** (-phred / 10)`;
    good bases score positive, poor ones negative. The kept region is the
    contiguous run of bases with the largest total score (a maximum-sum
    segment, found in one pass). When no base scores above zero the range is
    empty, `(0, 0)`. Unlike Biopython's "abi-trim" this applies to reads of any
    length and never keeps a leading or trailing negative-scoring base.
    """
    best_sum = 0.0
    best = (0, 0)
    run_sum = 0.0
    run_start = 0
    for i, q in enumerate(qualities):
        score = cutoff - 10 ** (-max(q, 0) / 10.0)
        if run_sum <= 0.0:
            run_sum = score
            run_start = i
        else:
            run_sum += score
        if run_sum > best_sum:
            best_sum = run_sum
            best = (run_start, i + 1)
    return best


def file_digest(data: bytes) -> str:
    """Return "sha256:<hex>" of the given file bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_queries(
    path: str | Path,
    *,
    min_quality: int = 20,
    trim: bool = True,
    trim_cutoff: float = DEFAULT_TRIM_CUTOFF,
) -> list[Query]:
    """Read every query sequence in a FASTA, FASTQ or ABIF (.ab1) file, trimmed and QC'd.

    `min_quality` is the mean phred below which a "low mean quality" warning is
    given; `trim` switches Mott quality trimming (cutoff error probability
    `trim_cutoff`) on reads that carry qualities. Raises `InputFormatError` for
    unreadable, empty, unsupported or corrupt files and `QueryRejected` for a
    read with nothing usable left; in either case nothing is returned.
    """
    p = Path(path)
    data = read_regular(p, what="Query file", hint="give the path of a FASTA, FASTQ or .ab1 file")

    fmt = detect_query_format(data, name=p.name)
    if fmt == "abi":
        reads = [_parse_abif(data, p)]
    elif fmt == "plain":
        fmt = "fasta"
        text = data.removeprefix(_UTF8_BOM).decode("ascii")
        reads = [_Read(p.stem, text, None, {"note": "plain sequence file without a header"})]
    else:
        reads = _parse_text(data.removeprefix(_UTF8_BOM), p, fmt)
    if not reads:
        raise InputFormatError(
            f"Query file {p} contains no sequence records; check that it is the right file."
        )

    digest = file_digest(data)
    return [
        _finish(
            read,
            path=p,
            fmt=fmt,
            digest=digest,
            min_quality=min_quality,
            trim=trim,
            trim_cutoff=trim_cutoff,
        )
        for read in reads
    ]


def detect_query_format(data: bytes, *, name: str) -> str:
    """Return "abi", "fasta", "fastq" or "plain" from a file's bytes, or raise `InputFormatError`.

    "plain" is a bare sequence without a header (the .seq files Sanger services
    send): only IUPAC letters, gaps and whitespace.
    """
    if not data.strip():
        raise InputFormatError(
            f"Query file {name} is empty; export the read again from the sequencer software."
        )
    if data.startswith(_ABIF_MAGIC):
        return "abi"
    if data.startswith(_SCF_MAGIC):
        raise InputFormatError(
            f"{name} is an SCF trace and SCF traces are not supported; "
            "export the read as .ab1 or FASTA."
        )
    if data.startswith(_ZTR_MAGIC):
        raise InputFormatError(
            f"{name} is a ZTR trace and ZTR traces are not supported; "
            "export the read as .ab1 or FASTA."
        )
    suffix = Path(name).suffix.lower()
    if suffix in {".ab1", ".abi", ".ab", ".fsa"}:
        raise InputFormatError(
            f"{name} has a trace file extension but does not start with the ABIF signature, "
            "so it is not a readable .ab1 trace; export the read from the sequencer again."
        )
    if b"\x00" in data:
        raise InputFormatError(
            f"{name} is a binary file, not FASTA, FASTQ or an .ab1 trace; "
            "check that it is the right file."
        )
    first = data.removeprefix(_UTF8_BOM).lstrip()[:1]
    if first == b">":
        return "fasta"
    if first == b"@":
        return "fastq"
    if _PLAIN_SEQUENCE.fullmatch(data.removeprefix(_UTF8_BOM)):
        return "plain"
    raise InputFormatError(
        f"{name} is not FASTA (starts with '>'), FASTQ (starts with '@') or an .ab1 trace; "
        "give the read in one of those formats."
    )


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        text = ""
    if any(ord(c) < 9 or (13 < ord(c) < 32) for c in text):
        raise InputFormatError(
            f"{path.name} contains binary data, not FASTA or FASTQ text; "
            "check that it is the right file."
        )
    return text


def _parse_text(data: bytes, path: Path, fmt: str) -> list[_Read]:
    text = _decode(data, path)
    if fmt == "fasta" and text.startswith(">") and text.isascii():
        return _split_fasta(text)
    from Bio import SeqIO  # imported here: reading plain FASTA does not pay for it

    reads: list[_Read] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for rec in SeqIO.parse(io.StringIO(text), fmt):
                quals = rec.letter_annotations.get("phred_quality") if fmt == "fastq" else None
                reads.append(
                    _Read(
                        name=rec.id or f"record {len(reads) + 1}",
                        sequence=str(rec.seq),
                        qualities=list(quals) if quals is not None else None,
                        extra={"description": rec.description} if rec.description else {},
                    )
                )
    except Exception as e:  # noqa: BLE001 - any parser failure on bad input is a format error
        kind = "FASTQ" if fmt == "fastq" else "FASTA"
        detail = first_line(e)
        if fmt == "fastq":
            fix = "check that every quality line matches its sequence length and uses phred+33"
        else:
            fix = "check the file is plain nucleotide FASTA"
        raise InputFormatError(f"{path.name} is not valid {kind} ({detail}); {fix}.") from None
    return reads


_SEQUENCE_SPACE = {ord(c): None for c in " \t\r\n"}


def _split_fasta(text: str) -> list[_Read]:
    """Records of FASTA text that starts with '>', split as Biopython's FASTA parser does.

    The common case (ASCII text), at a fraction of the cost of importing and
    running Bio.SeqIO: a line starting with '>' opens a record; the title is
    that line without '>' and trailing whitespace, the name its first word,
    the sequence the following lines with spaces, tabs and line ends removed.
    Any other text goes to Bio.SeqIO.
    """
    reads: list[_Read] = []
    for chunk in text[1:].split("\n>"):
        head, _, body = chunk.partition("\n")
        title = head.rstrip()
        words = title.split(None, 1)
        reads.append(
            _Read(
                name=words[0] if words else f"record {len(reads) + 1}",
                sequence=body.translate(_SEQUENCE_SPACE),
                qualities=None,
                extra={"description": title} if title else {},
            )
        )
    return reads


def _parse_abif(data: bytes, path: Path) -> _Read:
    name = path.name
    if len(data) < 128:
        raise InputFormatError(
            f"{name} is too small ({len(data)} bytes) to be an ABIF trace; "
            "export the read from the sequencer again."
        )
    (version,) = struct.unpack(">H", data[4:6])
    if not 100 <= version < 200:
        raise InputFormatError(
            f"{name} is an ABIF file of unsupported version {version / 100:.2f} "
            "(expected 1.xx); export the read as .ab1 version 1 or as FASTA."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from Bio import SeqIO

            rec = SeqIO.read(io.BytesIO(data), "abi")
    except Exception as e:  # noqa: BLE001 - corrupt traces raise struct.error, ValueError ...
        raise InputFormatError(
            f"{name} is a corrupt or truncated ABIF trace ({first_line(e)}); "
            "export the read from the sequencer again."
        ) from None
    raw = rec.annotations.get("abif_raw", {})
    extra: dict[str, str] = {}
    pbas1 = raw.get("PBAS1")
    pbas2 = raw.get("PBAS2")
    if pbas1:
        bases = _ascii(pbas1)
        qual_raw = raw.get("PCON1")
        if qual_raw is None or len(qual_raw) != len(pbas1):
            qual_raw = raw.get("PCON2") if pbas2 and len(pbas2) == len(pbas1) else None
        if pbas2 and bytes(pbas2) != bytes(pbas1):
            n_diff = sum(a != b for a, b in zip(pbas1, pbas2, strict=False)) + abs(
                len(pbas1) - len(pbas2)
            )
            extra["base_calls"] = (
                f"PBAS1 (user-edited calls; differ from the basecaller's PBAS2 at {n_diff} "
                "positions)"
            )
        else:
            extra["base_calls"] = "PBAS1 (edited calls, same as the basecaller's PBAS2)"
    elif pbas2:
        bases = _ascii(pbas2)
        qual_raw = raw.get("PCON2")
        extra["base_calls"] = "PBAS2 (basecaller calls; no edited calls in the file)"
    else:
        raise InputFormatError(
            f"{name} is an ABIF file without base calls (a fragment-analysis .fsa run?); "
            "base-call the trace and export it as .ab1 or FASTA."
        )
    quals: list[int] | None
    if qual_raw is not None and len(qual_raw) == len(bases):
        quals = list(bytes(qual_raw)) if isinstance(qual_raw, bytes) else list(qual_raw)
    else:
        quals = None
        extra["qualities"] = "none in file (not quality-trimmed)"
    for tag, key in (("SMPL1", "sample"), ("MODL1", "instrument"), ("RUND1", "run_date")):
        value = raw.get(tag)
        if value:
            extra[key] = _ascii(value) if isinstance(value, bytes) else str(value)
    sample = extra.get("sample", "").strip()
    return _Read(name=sample or path.stem, sequence=bases, qualities=quals, extra=extra)


def _ascii(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    return str(value)


def _finish(
    read: _Read,
    *,
    path: Path,
    fmt: str,
    digest: str,
    min_quality: int,
    trim: bool,
    trim_cutoff: float,
) -> Query:
    where = f"Read '{read.name}' in {path.name}"
    seq = read.sequence.upper()
    quals = read.qualities
    if quals is not None and len(quals) != len(seq):
        raise InputFormatError(
            f"{where} has {len(seq)} bases but {len(quals)} quality values; export the read again."
        )
    # Drop gaps and whitespace, keeping qualities aligned with the bases.
    if _GAP_OR_SPACE.search(seq):
        keep = [i for i, c in enumerate(seq) if not (c.isspace() or c in "-.")]
        seq = "".join(seq[i] for i in keep)
        if quals is not None:
            quals = [quals[i] for i in keep]
    bad = sorted(set(seq) - IUPAC_DNA)
    if bad:
        shown = "".join(c if c.isprintable() else "?" for c in bad[:8])
        if set(bad) <= {"U"}:
            raise InputFormatError(
                f"{where} is RNA (it has U where DNA has T); give the DNA sequence, with T "
                "for U (the barcode libraries hold DNA)."
            )
        raise InputFormatError(
            f"{where} contains characters that are not DNA ({shown}); "
            "give a nucleotide sequence (IUPAC codes ACGTRYSWKMBDHVN), not protein."
        )
    raw_length = len(seq)
    if raw_length == 0:
        raise QueryRejected(f"{where} has no bases; check the export or sequence the sample again.")

    trimmed = False
    extra = dict(read.extra)
    if quals is not None and trim:
        start, end = mott_trim(quals, cutoff=trim_cutoff)
        trimmed = True
        if end <= start:
            raise QueryRejected(
                f"{where} has no bases left after quality trimming (all {raw_length} bases "
                "are below the quality cutoff); sequence the sample again."
            )
        seq = seq[start:end]
        quals = quals[start:end]
        extra["trimmed_region"] = f"{start + 1}-{end} of {raw_length}"

    if not any(c in UNAMBIGUOUS for c in seq):
        raise QueryRejected(
            f"{where} contains only ambiguous bases (N and other IUPAC codes); "
            "sequence the sample again."
        )
    length = len(seq)
    ambiguous = (length - sum(seq.count(b) for b in "ACGT")) / length
    mean_q = round(sum(quals) / len(quals), 1) if quals else None

    qc = QueryQC(
        raw_length=raw_length,
        length=length,
        mean_quality=mean_q,
        ambiguous_fraction=ambiguous,
        trimmed=trimmed,
        flags=_qc_flags(
            length=length,
            ambiguous=ambiguous,
            mean_q=mean_q,
            min_quality=min_quality,
            untrimmed=quals is not None and not trim,
        ),
    )
    return Query(
        name=read.name,
        sequence=seq,
        source_format=fmt,
        file_sha256=digest,
        path=str(path),
        qc=qc,
        extra=extra,
    )


def _qc_flags(
    *, length: int, ambiguous: float, mean_q: float | None, min_quality: int, untrimmed: bool
) -> tuple[QcFlag, ...]:
    """The QC warnings of a finished read, each with its code."""
    flags: list[QcFlag] = []
    if length < MINI_BARCODE_MIN:
        flags.append(
            QcFlag(
                QcCode.VERY_SHORT,
                f"very short query ({length} bp): below the {MINI_BARCODE_MIN} bp minimum "
                "overlap used by barcode search engines",
            )
        )
    elif length < FULL_BARCODE_MIN:
        flags.append(QcFlag(QcCode.SHORT, f"short query ({length} bp): mini-barcode"))
    if ambiguous > MAX_AMBIGUOUS_SHARE:
        flags.append(QcFlag(QcCode.AMBIGUOUS_BASES, f"{ambiguous * 100:.1f} % ambiguous bases"))
    if mean_q is not None and mean_q < min_quality:
        flags.append(QcFlag(QcCode.LOW_QUALITY, f"low mean quality (Q{mean_q:.0f})"))
    if untrimmed:
        flags.append(QcFlag(QcCode.NOT_TRIMMED, "not quality-trimmed"))
    return tuple(flags)
