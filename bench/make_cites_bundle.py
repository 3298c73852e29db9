"""Build species_ref/data/cites_listings.csv.gz from the CITES snapshot files.

Usage::

    python bench/make_cites_bundle.py /path/to/cites [--out species_ref/data/cites_listings.csv.gz]

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
import io
from pathlib import Path

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
    parser.add_argument("cites", type=Path, help="directory with cites_listings*.csv")
    parser.add_argument("--out", type=Path, default=Path("species_ref/data/cites_listings.csv.gz"))
    args = parser.parse_args(argv)

    out_rows: list[dict[str, str]] = []
    with (args.cites / "cites_listings.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if (row["taxon_name"], row["rank"]) in DROPPED:
                continue
            out = {c: row.get(c, "") for c in COLUMNS}
            out["snapshot"] = SNAPSHOT_2017
            out["listed_under"] = row["listed_as"]
            out_rows.append(out)
    n2017 = len(out_rows)
    with (args.cites / "cites_listings_reptilia_2023.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            out = {c: row.get(c, "") for c in COLUMNS}
            out["snapshot"] = SNAPSHOT_REPTILES
            out["listed_under"] = row["listed_under"]
            out_rows.append(out)

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(out_rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.getvalue().encode("utf-8"))
    size = args.out.stat().st_size
    n_rep = len(out_rows) - n2017
    print(
        f"{args.out}: {n2017} rows of {SNAPSHOT_2017}, {n_rep} reptile rows of {SNAPSHOT_REPTILES}"
    )
    print(f"size: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
