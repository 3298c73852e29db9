"""custody: wildlife forensic evidence and chain-of-custody tracker.

The pipeline, step by step, and the module that owns each step (every step
passes typed objects; JSON appears only in the store, in bundles and in
`--json` output):

- Vocabulary: `custody.domain` (`EventType`, `Role`, `ItemStatus`,
  `FindingKind`, and `EventRecord`, the one typed view of a custody event).
- Store: `custody.store` (`open_store`), tables in `custody.models`, schema
  changes in `custody.migrations`.
- Seizure: `custody.records` (`open_case`, `add_items`, `record_sample`).
- Custody events and their rules: `custody.events` (`Writer`, `Draft`,
  `check_transition`, `record_transfer`, ...), hashed and signed as
  `custody.chain` defines; an item's current state is `custody.state.replay`.
- Labels: `custody.labelling` (`print_labels`, `scan_label`) over the `labels`
  library.
- Hand-over between machines: `custody.handover` (transfer offers,
  countersignatures, actor cards).
- Species identification: `custody.species` over the `species_ref` library.
- Verification: `custody.verify` (`verify`) loads the record and runs
  `custody.integrity` (hashes, signatures, links, the store log),
  `custody.replay` (the custody rules again), `custody.registrations`
  (actors' keys) and `custody.checkpoints` (heads kept off the machine);
  findings are `custody.findings.Finding`.
- Dossier: `custody.dossier.build` collects the case and issues the signed PDF
  that `custody.dossier.render` draws, with the verifiable bundle of
  `custody.dossier.bundle` embedded.
- CLI: `custody.cli`, the only package that imports typer or rich.
"""

__version__ = "0.1.0"
