"""Verification of custody chains: loads the record, runs the checks, returns findings.

What is checked, for the chosen scope (whole store, one item, or one case):
- every event's hash is recomputed from its columns (altered), its data column
  must be in canonical form, and its signatures (actor, receiver, witness) are
  checked against the registered public keys (bad signature, unknown key); a
  receiver or witness who countersigned a transfer offer on another machine
  signed its hand-over statement (`custody.chain.handover_message`) instead;
- every chain runs seq 1..n with each event linking to the previous hash
  (missing, inserted, reordered), and every item chain replays through the
  custody rules (`custody.replay`);
- item and case rows equal the record in the event that created them (altered);
- actor rows carry a valid self-signature over their registration (altered);
and, whatever the scope, the store-wide log: ids run 1..N, each log hash links
to the previous one, and the signed head names the last event (so removing a
whole item, or the newest events, is detected). Checkpoints kept off the
machine (`custody.checkpoints`) catch what the store alone cannot show.

Loading (`load_snapshot`, the only SQL here) is kept apart from checking
(`custody.integrity`, `custody.replay`), which works on typed `EventRecord`s.
Signature checks run on both cores for large stores; the result is the same
sorted list of findings either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from custody.checkpoints import Checkpoint, check_checkpoint
from custody.domain import EVENT_COLUMNS, EventRecord, FindingKind
from custody.entities import nominal_findings
from custody.errors import NotFound
from custody.findings import Finding, VerifyReport
from custody.integrity import (
    check_attachments,
    check_event,
    check_log,
    check_rows_against_genesis,
    link_chain,
)
from custody.registrations import ACTOR_COLUMNS, KeyMap, actor_keys, keep_trusted
from custody.replay import RoleLookup, check_sub_items, replay_rules
from custody.store import Store
from custody.trust import RoleBook, TrustEntry, with_earlier_keys

PARALLEL_THRESHOLD = 4000


@dataclass
class Snapshot:
    """What one verification reads from the store, in one read transaction."""

    actors: list[dict[str, Any]]
    store_id: str
    head: tuple[Any, ...] | None
    events: list[EventRecord]
    item_rows: list[dict[str, Any]] = field(default_factory=list)
    case_rows: list[dict[str, Any]] = field(default_factory=list)
    agencies: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    certificates: list[dict[str, Any]] = field(default_factory=list)
    pinned: list[dict[str, Any]] = field(default_factory=list)


def load_snapshot(store: Store, *, item_id: str | None, case_no: str | None) -> Snapshot:
    """Read actors, the whole event log and the rows in scope; unknown scopes raise NotFound."""
    with store.engine.connect() as conn, conn.begin():
        q = conn.exec_driver_sql
        actors = [dict(r) for r in q(f"SELECT {ACTOR_COLUMNS} FROM actors").mappings().all()]
        meta = {str(k): str(v) for k, v in q("SELECT key, value FROM store_meta").all()}
        head = q(
            "SELECT log_seq, log_hash, actor, actor_key, signature FROM store_head WHERE id = 1"
        ).first()
        events = [
            EventRecord.from_values(r)
            for r in q(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY id").all()
        ]

        def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
            return [dict(r) for r in conn.execute(text(sql), params).mappings().all()]

        snap = Snapshot(actors, meta.get("store_id", ""), tuple(head) if head else None, events)
        if item_id:
            snap.item_rows = rows("SELECT * FROM items WHERE id = :i", i=item_id)
            if not snap.item_rows and not any(e.chain == item_id for e in events):
                raise NotFound.item(item_id)
        elif case_no:
            snap.item_rows = rows("SELECT * FROM items WHERE case_no = :c", c=case_no)
            snap.case_rows = rows("SELECT * FROM cases WHERE case_no = :c", c=case_no)
            if not snap.case_rows and not any(e.case_no == case_no for e in events):
                raise NotFound.case(case_no)
        else:
            snap.item_rows = rows("SELECT * FROM items")
            snap.case_rows = rows("SELECT * FROM cases")
        snap.agencies = {r["code"]: r for r in rows("SELECT * FROM agencies")}
        snap.meta = meta
        snap.certificates = rows("SELECT * FROM certificates ORDER BY root, seq")
        snap.pinned = rows("SELECT * FROM trusted_roots")
    return snap


def check_events(events: Sequence[EventRecord], keys: KeyMap, *, workers: int = 0) -> list[Finding]:
    """Per-event checks, spread over the machine's cores when there are many events."""
    from species_ref.parallel import chunks, fork_map

    if len(events) < PARALLEL_THRESHOLD:
        return _check_slice(keys, events)
    parts = fork_map(
        _check_slice,
        chunks(events, size=1000),
        shared=keys,
        workers=workers or None,
        min_per_worker=1,
    )
    return [f for part in parts for f in part]


def _check_slice(keys: KeyMap, events: Sequence[EventRecord]) -> list[Finding]:
    return [f for ev in events for f in check_event(ev, keys)]


def verify_chains(
    events: Sequence[EventRecord],
    keys: KeyMap,
    *,
    item_rows: Iterable[Mapping[str, Any]] = (),
    case_rows: Iterable[Mapping[str, Any]] = (),
    agencies: Mapping[str, Any] | None = None,
    roles: Mapping[str, str] | RoleLookup | None = None,
    workers: int = 0,
) -> tuple[list[Finding], dict[str, str]]:
    """Per-event, per-chain and genesis checks of a set of chains; returns findings and heads.

    With `roles` (actor handle -> role), every item chain is also replayed through
    the custody rules (`custody.replay`).
    """
    findings = check_events(events, keys, workers=workers)
    chains: dict[str, list[EventRecord]] = {}
    for ev in events:
        chains.setdefault(ev.chain, []).append(ev)
    heads: dict[str, str] = {}
    for chain, chain_events in chains.items():
        chain_events.sort(key=lambda e: (e.seq, e.id))
        findings.extend(link_chain(chain, chain_events))
        heads[chain] = chain_events[-1].hash
        if roles is not None and not chain.startswith("case:"):
            findings.extend(replay_rules(chain, chain_events, roles))
    if roles is not None:
        findings.extend(check_sub_items(chains))
    findings.extend(check_rows_against_genesis(item_rows, case_rows, chains, agencies or {}))
    return findings, heads


def verify(
    store: Store,
    *,
    item_id: str | None = None,
    case_no: str | None = None,
    workers: int = 0,
    progress: Callable[[str], None] | None = None,
    trusted_keys: frozenset[str] | None = None,
    checkpoints: Sequence[Checkpoint] = (),
    trust: Sequence[TrustEntry] | None = None,
) -> VerifyReport:
    """Verify the whole store, one item's chain, or one case; returns the findings.

    `trusted_keys` (key fingerprints kept outside the store, e.g. published by the
    agency) anchors trust: an actor whose key is not among them is reported, and
    every event it signed shows as signed by an unknown key. `checkpoints` must
    each still be part of the store's log.

    Every signature must come from a key certified by a chain to a trusted agency
    root at the time the event was recorded (`custody.trust`). `trust` (entries
    kept outside the store) says which roots are trusted; without it, the store's
    root is anchored by its private key on this machine, else only named.
    """
    scope = f"item {item_id}" if item_id else f"case {case_no}" if case_no else "store"
    report = VerifyReport(scope=scope)
    snap = load_snapshot(store, item_id=item_id, case_no=case_no)
    keys, actor_findings = actor_keys(snap.actors)
    report.findings.extend(actor_findings)
    in_scope = [
        e
        for e in snap.events
        if (item_id is None or e.chain == item_id) and (case_no is None or e.case_no == case_no)
    ]
    trust_findings, roles = _trust_findings(store, snap, in_scope, report, trust)
    if isinstance(roles, RoleBook):
        with_earlier_keys(keys, roles.index)  # keys replaced by a rotation
    if trusted_keys is not None:
        report.findings.extend(keep_trusted(keys, trusted_keys))
    report.signers = {h: k.fingerprint for h, k in sorted(keys.items())}
    if progress:
        progress("store log")
    log_findings, report.log_head = check_log(snap.events, snap.head, keys, snap.store_id)
    report.findings.extend(log_findings)
    for cp in checkpoints:
        report.findings.extend(check_checkpoint(cp, store_id=snap.store_id, events=snap.events))
    if progress:
        progress(f"{len(in_scope)} events")
    chain_findings, report.heads = verify_chains(
        in_scope,
        keys,
        item_rows=snap.item_rows,
        case_rows=snap.case_rows,
        agencies=snap.agencies,
        roles=roles,
        workers=workers,
    )
    report.findings.extend(chain_findings)
    report.findings.extend(check_attachments(store.attachments_dir, in_scope))
    # Personal data of case entities must still match the commitments signed for it.
    report.findings.extend(nominal_findings(store, in_scope))
    report.findings.extend(_deleted_rows(snap, in_scope, whole_case=not item_id))
    report.findings.extend(trust_findings)
    report.findings.extend(_library_findings(store, in_scope))
    report.events_checked = len(in_scope)
    report.chains_checked = len(report.heads)
    report.findings.sort(key=lambda f: (f.subject, f.event or 0, f.kind, f.message))
    return report


def _trust_findings(
    store: Store,
    snap: Snapshot,
    events: Sequence[EventRecord],
    report: VerifyReport,
    trust: Sequence[TrustEntry] | None,
) -> tuple[list[Finding], Mapping[str, str] | RoleLookup]:
    """Certificates in the trust log, and every signature certified when it was made; and
    the actors' roles at each event, as the certificates give them."""
    from custody.trust import (
        Root,
        build_index,
        check_event_certificates,
        check_trust_head,
        check_trust_log_links,
        root_key_on_machine,
    )

    meta = snap.meta
    rows_roles = {a["handle"]: a["role"] for a in snap.actors}
    if not all(k in meta for k in ("root_public_key", "root_fingerprint")):
        return [
            Finding(
                "store",
                None,
                FindingKind.UNTRUSTED_KEY,
                "The store has no agency root, so no signature is certified; run 'custody "
                "init' on the agency's machine to create it.",
            )
        ], rows_roles
    own = Root(meta.get("root_agency", ""), meta["root_public_key"], meta["root_fingerprint"])
    report.root = own.fingerprint
    out: list[Finding] = []
    if trust is not None:
        roots = {e.fingerprint: e.root for e in trust}
        report.anchor = "trust list"
        anchor = "checked against the trust list"
        if own.fingerprint not in roots:
            out.append(
                Finding(
                    "store",
                    None,
                    FindingKind.UNTRUSTED_KEY,
                    f"The store's agency root {own.fingerprint[:16]}… is not in the trust list: "
                    f"its history was signed under another root than the agencies trusted.",
                )
            )
    else:
        roots = {
            r["fingerprint"]: Root(
                r["agency_code"], r["public_key"], r["fingerprint"], r.get("valid_until")
            )
            for r in snap.pinned
        }
        roots[own.fingerprint] = own
        here = root_key_on_machine(store.home, own)
        report.anchor = "root key here" if here else "store"
        anchor = (
            "anchored by the root key on this machine"
            if here
            else "root named by the store; anchor it with --trust"
        )
    index, findings = build_index(snap.certificates, roots)
    out.extend(findings)
    out.extend(check_trust_log_links(snap.certificates, own))
    out.extend(check_trust_head(snap.certificates, own, meta.get("trust_head"), index))
    out.extend(check_event_certificates(events, index, anchor=anchor))
    return out, RoleBook(rows_roles, index)


def _library_findings(store: Store, events: Sequence[EventRecord]) -> list[Finding]:
    """Reference library versions that identifications cite by their signed manifest,
    recomputed against it (`custody.libsign`)."""
    from custody.libsign import check_version, cited_libraries

    out = []
    for name, version in sorted(cited_libraries(events)):
        for problem in check_version(store, name=name, version=version):
            out.append(Finding(f"library:{name} v{version}", None, FindingKind.ALTERED, problem))
    return out


def _deleted_rows(
    snap: Snapshot, events: Sequence[EventRecord], *, whole_case: bool
) -> list[Finding]:
    """Chains whose item or case row is gone."""
    present_items = {r["id"] for r in snap.item_rows}
    present_cases = {r["case_no"] for r in snap.case_rows}
    first: dict[str, int] = {}
    for ev in events:
        first[ev.chain] = min(first.get(ev.chain, ev.id), ev.id)
    out: list[Finding] = []
    for chain in sorted(first):
        if chain.startswith("case:"):
            if whole_case and chain[5:] not in present_cases:
                out.append(
                    Finding(
                        chain,
                        first[chain],
                        FindingKind.MISSING,
                        f"Case {chain[5:]} has custody events but its case row was deleted.",
                    )
                )
        elif chain not in present_items:
            out.append(
                Finding(
                    chain,
                    first[chain],
                    FindingKind.MISSING,
                    f"Item {chain} has custody events but its item row was deleted.",
                )
            )
    return out
