"""Build species_ref/data/cites_listings.csv.gz from the CITES snapshot files.

Usage::

    python bench/make_cites_bundle.py /path/to/cites [--out species_ref/data/cites_listings.csv.gz]
    python bench/make_cites_bundle.py --lookup-only [--out species_ref/data/cites_listings.csv.gz]

Beside the bundle it writes its lookup tables (cites_lookup.json.gz: the data
row that answers each name, synonym and genus, bound to the bundle's SHA-256),
so that a look-up reads only the rows it needs. `--lookup-only` rewrites the
tables of an existing bundle.

Reads cites_listings.csv (CITES Checklist / Species+ "Index of CITES Species",
export of 2017-04-21) and cites_listings_reptilia_2023.csv (Species+ reptile
listings, July 2023) and writes one gzipped CSV with only the columns the
look-up needs (see `COLUMNS`) plus a `snapshot` column ("2017-04-21" or
"2023-07"). The output bytes are a pure function of the input files.

Rows dropped, on purpose:
- the 2017 "Homo" GENUS row: an artefact of the Primates order listing in the
  export; Homo sapiens is not a CITES-listed species.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
from pathlib import Path

from species_ref.cites import LOOKUP, LookupTables, parse_bundle

COLUMNS = (
    "snapshot",
    "taxon_name",
    "rank",
    "appendix",
    "annotation",
    "hash_annotation",
    "listed_under",
    "kingdom",
    "phylum",
    "class",
    "order",
    "family",
    "genus",
    "species",
    "subspecies",
    "synonyms",
    "english_names",
)

SNAPSHOT_2017 = "2017-04-21"
SNAPSHOT_REPTILES = "2023-07"
DROPPED = {("Homo", "GENUS")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cites", type=Path, nargs="?", help="directory with cites_listings*.csv")
    parser.add_argument("--out", type=Path, default=Path("species_ref/data/cites_listings.csv.gz"))
    parser.add_argument("--lookup-only", action="store_true", help="only rewrite the lookup tables")
    args = parser.parse_args(argv)
    if not args.lookup_only:
        if args.cites is None:
            parser.error("give the directory with cites_listings*.csv, or --lookup-only")
        write_bundle(args.cites, args.out)
    write_lookup(args.out)
    return 0


def write_lookup(bundle: Path) -> None:
    """Write the lookup tables of `bundle` beside it (see species_ref.cites.LookupTables)."""
    blob = bundle.read_bytes()
    rows, one_per_line = parse_bundle(gzip.decompress(blob).decode("utf-8"))
    if not one_per_line:
        raise SystemExit(f"{bundle}: a row spans several lines; rows cannot be read on demand.")
    tables = LookupTables.build(rows)
    out = bundle.with_name(LOOKUP)
    out.write_bytes(tables.to_json(bundle_sha256=hashlib.sha256(blob).hexdigest()))
    print(
        f"{out}: {len(tables.by_name)} names, {len(tables.by_synonym)} synonyms, "
        f"{out.stat().st_size / 1024:.0f} KiB"
    )


def write_bundle(cites: Path, out_path: Path) -> None:
    """Write the gzipped CSV bundle from the two snapshot exports in `cites`."""

    out_rows: list[dict[str, str]] = []
    with (cites / "cites_listings.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if (row["taxon_name"], row["rank"]) in DROPPED:
                continue
            out = {c: row.get(c, "") for c in COLUMNS}
            out["snapshot"] = SNAPSHOT_2017
            out["listed_under"] = row["listed_as"]
            out_rows.append(out)
    n2017 = len(out_rows)
    with (cites / "cites_listings_reptilia_2023.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            out = {c: row.get(c, "") for c in COLUMNS}
            out["snapshot"] = SNAPSHOT_REPTILES
            out["listed_under"] = row["listed_under"]
            out_rows.append(out)

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(out_rows)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.getvalue().encode("utf-8"))
    size = out_path.stat().st_size
    n_rep = len(out_rows) - n2017
    print(
        f"{out_path}: {n2017} rows of {SNAPSHOT_2017}, {n_rep} reptile rows of {SNAPSHOT_REPTILES}"
    )
    print(f"size: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    raise SystemExit(main())
