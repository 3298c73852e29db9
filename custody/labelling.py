"""Evidence labels in custody: print jobs recorded as `label-print` events, and scans
checked against the signed payload and the current record.

Invariants:
- A label's payload is signed by the printing actor's key and carries the
  item's current seal and the hash of its (immutable) seizure record.
- Every print job records one `label-print` event per item (layout, copies,
  reason, reprint generation) in one transaction. The output path is checked
  before anything is written; the PDF is moved into place before the events are
  recorded and taken back out (any earlier file restored) if recording fails, so
  a failed job leaves neither events nor a PDF. A reprint needs a reason and says
  REPRINT on the label.
- A scan is GENUINE only when the signature verifies with a registered key, a
  `label-print` event by that key with the label's reprint number is recorded for
  the item, and the label still matches the record (same record hash, same seal,
  not disposed).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from custody import files
from custody.canonical import canonical_json
from custody.domain import EventType
from custody.errors import IllegalTransition, InvalidInput, NotFound
from custody.events import LabelJob, Signer, record_label_print
from custody.models import Actor, Agency, Case, Event, Item
from custody.records import item_record, item_sort_key
from custody.state import ItemState, replay
from custody.store import Store
from custody.timeutil import from_utc_text

if TYPE_CHECKING:
    from labels.render import LabelContent

GENUINE, NOT_GENUINE, MISMATCH, VOID = "GENUINE", "NOT GENUINE", "MISMATCH", "VOID"
MAX_COPIES = 100


def record_hash(item: Item) -> bytes:
    """SHA-256 of the item's seizure record in canonical form (what the label vouches for)."""
    return hashlib.sha256(canonical_json(item_record(item))).digest()


@dataclass
class PrintJob:
    job: str
    path: Path
    layout: str
    items: list[str]
    copies: int
    pages: int
    reprints: dict[str, int]


def _states(session: Any, item_ids: Sequence[str]) -> dict[str, ItemState]:
    rows = session.exec(
        select(Event)
        .where(col(Event.chain).in_(list(item_ids)))
        .order_by(col(Event.chain), col(Event.seq))
    ).all()
    grouped: dict[str, list[Event]] = {}
    for ev in rows:
        grouped.setdefault(ev.chain, []).append(ev)
    return {i: replay(i, grouped.get(i, [])) for i in item_ids}


def _content(
    item: Item, state: ItemState, *, agency: str, officer: Actor | None, reprint: int, qr_text: str
) -> LabelContent:
    from labels.render import LabelContent

    # Labels print the record as it now reads (field corrections applied).
    corrected = {k: c.value for k, c in state.field_corrections.items()}
    item = item.model_copy(update=corrected) if corrected else item
    quantity = []
    if item.count is not None:
        quantity.append(f"{item.count} pcs")
    if item.weight is not None:
        quantity.append(f"{item.weight:g} {item.unit}".strip())
    other = json.loads(item.other_ids or "{}")
    seized = from_utc_text(item.seized_at)
    coords = (
        f" ({item.lat:.4f}, {item.lon:.4f})"
        if item.lat is not None and item.lon is not None
        else ""
    )
    return LabelContent(
        agency=agency,
        case_no=item.case_no,
        item_id=item.id,
        bag=f"Bag {item.bag_no} of {item.bag_total}" if item.bag_no else "",
        description=item.description,
        species=item.species,
        quantity=", ".join(quantity),
        seal=state.seal or "",
        seized_at_utc=seized.strftime("%Y-%m-%d %H:%M UTC"),
        seized_at_local=item.seized_at_local[:16].replace("T", " ") + item.seized_at_local[-6:]
        if len(item.seized_at_local) > 19
        else item.seized_at_local,
        officer=f"{officer.name}, {officer.badge}".strip(", ") if officer else item.seizing_officer,
        place=f"{item.place}{coords}",
        other_ids="; ".join(f"{k}: {v}" for k, v in sorted(other.items())),
        reprint=reprint,
        qr_text=qr_text,
    )


@dataclass
class _Sources:
    """What labels are made from, read in one transaction."""

    items: list[Item]
    states: dict[str, ItemState]
    prints: dict[str, int]  # item -> labels printed for it before
    actors: dict[str, Actor]
    cases: dict[str, Case]
    agencies: dict[str, Agency]


def print_labels(
    store: Store,
    *,
    signer: Signer,
    out: Path,
    item_ids: Sequence[str] = (),
    case_no: str | None = None,
    layout: str = "a4-3x8",
    start: int = 1,
    copies: int = 1,
    reason: str = "",
    at: str | None = None,
) -> PrintJob:
    """Render signed labels for items (or a whole case) and record the print job."""
    from labels.layouts import get_layout

    get_layout(layout)  # unknown layout: clear error before anything else
    if not 1 <= copies <= MAX_COPIES:
        raise InvalidInput(f"Copies must be between 1 and {MAX_COPIES}, not {copies}.")
    # A repeated ID would load the same row twice into one session; label it once.
    item_ids = list(dict.fromkeys(item_ids))
    if bool(item_ids) == bool(case_no):
        raise InvalidInput("Name the items to label, or --case for all items of a case (not both).")
    src = _read_sources(store, item_ids=item_ids, case_no=case_no)
    if case_no:
        src.items = [i for i in src.items if not src.states[i.id].voided]
    if not src.items:
        raise InvalidInput(f"Case {case_no} has no items to label.")
    voided = [i.id for i in src.items if src.states[i.id].voided]
    if voided:
        raise IllegalTransition(
            f"Item {voided[0]} was voided as entered in error; it gets no evidence label."
        )
    reprinted = [i.id for i in src.items if src.prints[i.id]]
    if reprinted and not reason.strip():
        raise InvalidInput(
            f"Item {reprinted[0]} already has a printed label; a reprint needs a reason (pass --reason)."
        )
    label_job = LabelJob(
        job=uuid.uuid4().hex[:12],
        layout=layout,
        copies=copies,
        reason=reason.strip(),
        item_ids=tuple(i.id for i in src.items),
        reprints={i.id: src.prints[i.id] for i in src.items},
        seals={i.id: src.states[i.id].seal for i in src.items},
    )
    out = _writable_output(Path(out))
    pages = _render_and_record(
        store,
        _label_contents(src, signer),
        job=label_job,
        out=out,
        start=start,
        signer=signer,
        at=at,
    )
    return PrintJob(
        job=label_job.job, path=out, layout=layout, items=list(label_job.item_ids), copies=copies,
        pages=pages, reprints={i: n for i, n in label_job.reprints.items() if n},
    )  # fmt: skip


def _read_sources(store: Store, *, item_ids: Sequence[str], case_no: str | None) -> _Sources:
    with store.read() as session:
        if case_no:
            if session.get(Case, case_no) is None:
                raise NotFound.case(case_no)
            items = list(session.exec(select(Item).where(Item.case_no == case_no)).all())
            items.sort(key=lambda i: item_sort_key(i.id))
        else:
            items = []
            for item_id in item_ids:
                item = session.get(Item, item_id)
                if item is None:
                    raise NotFound.item(item_id)
                items.append(item)
        printed = select(Event).where(Event.type == EventType.LABEL_PRINT)
        src = _Sources(
            items=items,
            states=_states(session, [i.id for i in items]),
            prints={
                i.id: len(session.exec(printed.where(Event.chain == i.id)).all()) for i in items
            },
            actors={a.handle: a for a in session.exec(select(Actor)).all()},
            cases={c.case_no: c for c in session.exec(select(Case)).all()},
            agencies={a.code: a for a in session.exec(select(Agency)).all()},
        )
        for obj in [*items, *src.actors.values(), *src.cases.values(), *src.agencies.values()]:
            session.expunge(obj)
    return src


def _label_contents(src: _Sources, signer: Signer) -> list[LabelContent]:
    """Each item's label text and signed QR payload."""
    from labels.payload import LabelPayload, sign_label

    contents = []
    for item in src.items:
        state = src.states[item.id]
        case = src.cases[item.case_no]
        agency = src.agencies.get(case.agency_code or "")
        payload = LabelPayload(
            item_id=item.id,
            case_no=item.case_no,
            seal=state.seal or "",
            seized_at=from_utc_text(item.seized_at),
            record_hash=record_hash(item),
            key_fingerprint=signer.key.fingerprint,
            reprint=src.prints[item.id],
        )
        contents.append(
            _content(
                item,
                state,
                agency=agency.name if agency else (case.agency_code or ""),
                officer=src.actors.get(item.seizing_officer),
                reprint=src.prints[item.id],
                qr_text=sign_label(payload, signer.key.private),
            )
        )
    return contents


def _render_and_record(
    store: Store,
    contents: list[LabelContent],
    *,
    job: LabelJob,
    out: Path,
    start: int,
    signer: Signer,
    at: str | None,
) -> int:
    """Draw the labels and record the print job: both happen, or neither does. Returns pages."""
    from labels.render import render_labels

    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            report = render_labels(
                contents, layout=job.layout, out=tmp, start=start, copies=job.copies
            )
        except OSError as exc:
            raise InvalidInput(
                f"The labels cannot be written to {out} ({exc.strerror or exc}); "
                "choose another output path."
            ) from None
        backup = _place(tmp, out)
        try:
            record_label_print(store, job=job, signer=signer, at=at)
        except Exception:
            # Nothing was recorded, so the PDF must not stay either.
            if backup is not None:
                os.replace(backup, out)
            else:
                out.unlink(missing_ok=True)
            raise
        if backup is not None:
            backup.unlink(missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)
    return int(report.pages)


def _writable_output(out: Path) -> Path:
    """Refuse an output path the PDF cannot be written to, before anything is recorded
    (an existing label PDF is replaced: a reprint job writes the same sheet again)."""
    return files.check_output(out, what="label PDF", force=True)


def _place(tmp: Path, out: Path) -> Path | None:
    """Move the rendered PDF to `out`; return where an earlier file at `out` was kept."""
    backup = None
    try:
        if out.exists():
            backup = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.bak")
            os.replace(out, backup)
        os.replace(tmp, out)
    except OSError as exc:
        if backup is not None and not out.exists():
            os.replace(backup, out)
        raise InvalidInput(
            f"The labels cannot be written to {out} ({exc.strerror or exc}); "
            "choose another output path."
        ) from None
    return backup


@dataclass
class ScanResult:
    verdict: str
    reasons: list[str] = field(default_factory=list)
    item_id: str | None = None
    case_no: str | None = None
    seal: str | None = None
    signer: str | None = None
    reprint: int | None = None
    custodian: str | None = None
    status: str | None = None
    current_seal: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def scan_texts(
    store: Store | None, texts: Sequence[str], *, public_keys: Sequence[str] = ()
) -> list[ScanResult]:
    """Check decoded label texts: signature first, then agreement with the current record."""
    from labels.payload import verify_label

    registered: dict[str, tuple[str, str]] = {}  # fingerprint -> (handle, public hex)
    if store is not None:
        from custody.trust import certified_public_keys

        with store.read() as session:
            # Only keys certified by a trusted agency root (this store's or a pinned one)
            # make a label GENUINE; an actor row alone can be planted in the database. An
            # actor's earlier key (before a key rotation) still vouches for labels it signed.
            handles = set(session.exec(select(Actor.handle)).all())
            for fpr, (handle, pub) in certified_public_keys(session).items():
                if handle in handles:
                    registered[fpr] = (handle, pub)
    for hexkey in public_keys:
        from custody.keys import fingerprint

        if hexkey.strip().lower() in registered:
            continue  # the fingerprint of a certified key: it resolves through its certificate

        try:
            raw = bytes.fromhex(hexkey)
        except ValueError:
            raise InvalidInput(
                f"The public key '{hexkey[:20]}' is not hex; give the 64-hex-digit Ed25519 key."
            ) from None
        # A registered actor's key keeps its handle when it is also given here.
        registered.setdefault(fingerprint(raw), ("(given key)", hexkey))

    def lookup(prefix: str) -> list[bytes]:
        return [
            bytes.fromhex(pub) for fpr, (_, pub) in registered.items() if fpr.startswith(prefix)
        ]

    results = []
    for text in texts:
        check = verify_label(text, lookup)
        payload = check.payload
        result = ScanResult(verdict=GENUINE if check.genuine else NOT_GENUINE)
        if payload is not None:
            result.item_id, result.case_no, result.seal, result.reprint = (
                payload.item_id,
                payload.case_no,
                payload.seal,
                payload.reprint,
            )
        if not check.genuine:
            result.reasons.append(check.reason)
            results.append(result)
            continue
        result.signer = registered.get(check.signer_fingerprint or "", ("?", ""))[0]
        if store is not None and payload is not None:
            _compare_with_record(
                store, payload, result, signer_fingerprint=check.signer_fingerprint or ""
            )
        results.append(result)
    return results


def _compare_with_record(
    store: Store, payload: Any, result: ScanResult, *, signer_fingerprint: str
) -> None:
    with store.read() as session:
        item = session.get(Item, payload.item_id)
        if item is None:
            result.verdict = MISMATCH
            result.reasons.append(f"Item {payload.item_id} is not in this store.")
            return
        events = session.exec(
            select(Event).where(Event.chain == item.id).order_by(col(Event.seq))
        ).all()
        state = replay(item.id, events)
        prints = [
            (e.actor_key, json.loads(e.data).get("reprint", 0))
            for e in events
            if e.type == EventType.LABEL_PRINT
        ]
    result.custodian, result.status, result.current_seal = (
        state.custodian,
        state.status,
        state.seal or "",
    )
    if not payload.matches_record(record_hash(item)):
        result.verdict = MISMATCH
        result.reasons.append(
            f"The label's record hash does not match item {item.id}'s seizure record."
        )
    if (state.seal or "") != payload.seal:
        result.verdict = MISMATCH
        result.reasons.append(
            f"The label names seal {payload.seal or '(none)'} but the item is now {'sealed with ' + state.seal if state.seal else 'unsealed'}; reseal or print a new label."
        )
    if state.void is not None:
        result.verdict = VOID
        result.reasons.append(
            f"Item {item.id} was voided as entered in error (event {state.void['event']}: "
            f"{state.void['reason']}); it is not evidence."
        )
        return
    if state.disposed:
        result.verdict = MISMATCH
        result.reasons.append(
            f"Item {item.id} was {(state.disposal or {}).get('method', 'disposed of')}; its custody is closed."
        )
    # A registered key can sign any payload; only a recorded print job by that key
    # of that reprint generation makes the label one the record vouches for.
    if (signer_fingerprint, payload.reprint) not in prints:
        result.verdict = MISMATCH
        result.reasons.append(
            f"No label print by {result.signer} with reprint {payload.reprint} "
            f"is recorded for item {item.id}."
        )
