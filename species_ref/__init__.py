"""Reference libraries, query reading and QC, matching and species decisions (DNA barcodes)."""
