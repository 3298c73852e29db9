"""Build the bundled demo reference library and demo queries from the refdata set.

Usage::

    python bench/make_demo_library.py /path/to/refdata [--out species_ref/data]

Reads coi.fasta, cytb.fasta, 12s.fasta and SOURCES.tsv from the refdata
directory (headers ``>ID|Genus species|marker``) and writes:

- demo_library.fasta: real records of traded taxa and their look-alikes, at
  most a few per (species, marker), skipping records the importer would refuse
  (> 1 % ambiguous bases, < 50 bp), headers kept as in refdata;
- demo_library_SOURCES.tsv: the SOURCES.tsv provenance rows of those records;
- demo_queries.fasta: a few real records held out of the library (so they are
  not in it) of species that are in it; one is reverse-complemented.

The selection is deterministic: file order decides which records are taken.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

# Traded taxa and look-alikes. A genus name takes every species of the genus;
# a binomial takes that species only.
TAXA = (
    # pangolins
    "Manis",
    "Phataginus",
    "Smutsia",
    # elephants, rhinos
    "Loxodonta",
    "Elephas",
    "Diceros",
    "Ceratotherium",
    "Rhinoceros",
    "Dicerorhinus",
    # big cats
    "Panthera",
    "Acinonyx",
    "Neofelis",
    # sharks
    "Sphyrna",
    "Carcharhinus",
    "Isurus",
    "Prionace",
    "Alopias",
    "Rhincodon",
    # parrots
    "Psittacus",
    "Ara",
    "Cacatua",
    "Amazona",
    # sea turtles
    "Chelonia",
    "Eretmochelys",
    "Caretta",
    "Lepidochelys",
    "Dermochelys",
    # primates
    "Pan",
    "Gorilla",
    "Pongo",
    "Macaca",
    "Homo sapiens",
    # domestic and common look-alikes
    "Sus scrofa",
    "Bos taurus",
    "Bos indicus",
    "Bubalus bubalis",
    "Capra hircus",
    "Ovis aries",
    "Canis lupus",
    "Felis catus",
    "Equus caballus",
    "Equus asinus",
    "Gallus gallus",
)

FILES = ("coi.fasta", "cytb.fasta", "12s.fasta")

# At most this many records per (species, marker); COI-5P is the main barcode.
CAP = {"COI-5P": 3}
DEFAULT_CAP = 2
MIN_LENGTH = 50
MAX_AMBIGUOUS = 0.01

# Held out of the library and written as demo queries: (ID, marker, reverse-complement?).
QUERIES = (
    ("KC690307", "COI-5P", False),  # Manis pentadactyla (Chinese pangolin)
    ("MH423734", "12S-V5", False),  # Manis pentadactyla, 12S mini-barcode (degraded scale)
    ("KJ862199", "COI-5P", True),  # Panthera tigris, given as the reverse strand
    ("MN737004", "COI-5P", False),  # Psittacus erithacus (grey parrot)
    ("KP177233", "COI-5P", False),  # Sphyrna lewini (scalloped hammerhead)
)

_COMPLEMENT = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")


def revcomp(seq: str) -> str:
    return seq.translate(_COMPLEMENT)[::-1]


def read_fasta(path: Path) -> list[tuple[str, str]]:
    records: list[tuple[str, str]] = []
    header: str | None = None
    chunks: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(">"):
            if header is not None:
                records.append((header, "".join(chunks)))
            header, chunks = line[1:].strip(), []
        elif line.strip():
            chunks.append(line.strip())
    if header is not None:
        records.append((header, "".join(chunks)))
    return records


def usable(seq: str) -> bool:
    """Same floors as species_ref.refimport's defaults: >= 50 bp, <= 1 % non-ACGT."""
    acgt = sum(seq.count(b) for b in "ACGT")
    return len(seq) >= MIN_LENGTH and (len(seq) - acgt) / len(seq) <= MAX_AMBIGUOUS


def wanted(species: str) -> bool:
    genus = species.split(" ", 1)[0]
    return species in TAXA or genus in TAXA


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("refdata", type=Path, help="refdata directory (coi.fasta, SOURCES.tsv)")
    parser.add_argument("--out", type=Path, default=Path("species_ref/data"))
    args = parser.parse_args(argv)

    held = {(qid, marker): rc for qid, marker, rc in QUERIES}
    taken: Counter[tuple[str, str]] = Counter()
    library: list[tuple[str, str]] = []
    queries: dict[tuple[str, str], tuple[str, str]] = {}
    for name in FILES:
        for header, seq in read_fasta(args.refdata / name):
            seq_id, species, marker = header.split("|")
            if not wanted(species):
                continue
            if (seq_id, marker) in held:
                queries[(seq_id, marker)] = (header, seq)
                continue
            if taken[(species, marker)] >= CAP.get(marker, DEFAULT_CAP):
                continue
            if not usable(seq):
                continue
            taken[(species, marker)] += 1
            library.append((header, seq))

    missing = [q for q in held if q not in queries]
    if missing:
        print(f"error: query records not found in refdata: {missing}", file=sys.stderr)
        return 1
    lib_species = {h.split("|")[1] for h, _ in library}
    for header, _ in queries.values():
        if header.split("|")[1] not in lib_species:
            print(f"error: query species of {header} is not in the library", file=sys.stderr)
            return 1

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "demo_library.fasta").open("w", encoding="utf-8", newline="\n") as f:
        for header, seq in library:
            f.write(f">{header}\n{seq}\n")

    with (args.out / "demo_queries.fasta").open("w", encoding="utf-8", newline="\n") as f:
        for qid, marker, rc in QUERIES:
            header, seq = queries[(qid, marker)]
            species = header.split("|")[1]
            strand = "reverse complement of" if rc else "copy of"
            name = f"demo_{species.replace(' ', '_')}_{marker}"
            f.write(
                f">{name} {strand} refdata record {header} (held out of the demo library)\n"
                f"{revcomp(seq) if rc else seq}\n"
            )

    keys = {(h.split("|")[0], h.split("|")[2]) for h, _ in library}
    with (args.refdata / "SOURCES.tsv").open(encoding="utf-8", newline="") as src:
        reader = csv.reader(src, delimiter="\t")
        head = next(reader)
        rows = [row for row in reader if (row[1], row[3]) in keys]
    with (args.out / "demo_library_SOURCES.tsv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(head)
        writer.writerows(rows)

    markers = Counter(h.split("|")[2] for h, _ in library)
    print(f"demo library: {len(library)} records, {len(lib_species)} species")
    for marker, n in sorted(markers.items()):
        print(f"  {marker:12} {n}")
    print(f"provenance rows: {len(rows)}; queries: {len(queries)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
