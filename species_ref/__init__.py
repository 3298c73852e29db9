"""Reference libraries, query reading and QC, matching and species decisions (DNA barcodes).

From a lab's file to a species call, one module per step:

- `refimport`, `library`: reference files into frozen, hashed library versions.
- `reading`: query files (FASTA, FASTQ, .ab1) into trimmed, QC'd `Query` objects.
- `index`, `matching`: k-mer candidates, then alignments (`Hit`).
- `profile`: what the library shows about each species (`LibraryProfile`).
- `rules`: named threshold sets (`Rule`, `RULES`); tuning notes in docs/decision-rules.md.
- `decision`: hits into a call (`decide` -> `Decision`).
- `identify`: the entry point (`Engine`, `identify` -> `Identification`).
- `validate`, `conflicts`, `cites`: measured error rates, name conflicts, CITES status.
- `vocab`: levels, flag, QC and conflict codes, and the words for them.
- `parallel`: `fork_map`, the one process pool.
"""
