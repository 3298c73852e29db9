"""Custody bundles: an item's whole custody, carried from one agency's store to another's.

A custody bundle holds items (with their sub-items), every event of their chains
and the opening event of their cases, the actors who signed, the certificates of
every trust log the store keeps, the attachments, the releasing agency's trust
entry, the transfer offer with its countersignatures (when it ends a hand-over),
and a CASE/UCO JSON-LD graph of the custody history (`custody.caseuco`). It is
signed by the actor who wrote it.

Invariants:
- The file is the canonical JSON encoding of the signed document: a changed byte
  either breaks canonical form or the signature, so it is refused.
- Reading is checking: shape, signature, every hash, link and signature of the
  chains, attachments, and, against the roots the reader trusts (the store's own
  and pinned roots, or a trust list), every signer's certificate. A bundle from an
  agency whose root is not pinned is refused with the fingerprint to compare.
- Import is one write transaction: everything or nothing. Events keep their hash
  and signatures; they get a place in the receiving store's log (`origin_id` keeps
  their id where they were recorded, which their hash covers). An event already in
  the store is recognised by its hash; a chain that diverged is refused.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from custody import attachments as cas
from custody.canonical import canonical_json
from custody.domain import EVENT_FIELDS, ORIGIN_FIELDS, EventRecord
from custody.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from custody.events import Signer, Writer, get_item, store_id
from custody.keys import key_matches, verify_signature
from custody.models import Actor, Agency, Case, Certificate, Event, Item
from custody.registrations import ACTOR_FIELDS, actor_keys
from custody.store import Store
from custody.timeutil import now_utc, to_utc_text
from custody.trust import (
    RoleBook,
    Root,
    TrustEntry,
    _entry,
    build_index,
    certificate_doc,
    check_event_certificates,
    own_entry,
    pinned_roots,
    short,
    store_certificates,
    trusted_roots,
    with_earlier_keys,
)

FORMAT = "custody-custody-bundle-v1"
DOMAIN = b"custody-bundle-v1\n"
MAX_ATTACHMENT_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------------------- writing
def _descendants(session: Session, item_ids: Iterable[str]) -> list[str]:
    """The items with their sub-items, and the items they were taken from (whose chains
    show them given out: a sub-item's record is checked against its parent's)."""
    out: list[str] = []
    for item_id in item_ids:
        item = get_item(session, item_id)
        above: list[str] = []
        while item.parent_id:
            above.insert(0, item.parent_id)
            item = get_item(session, item.parent_id)
        below = session.exec(select(Item.id).where(col(Item.id).startswith(item_id + "."))).all()
        for i in [*above, item_id, *below]:
            if i not in out:
                out.append(i)
    return out


def _columns(row: Any, fields: Sequence[str]) -> dict[str, Any]:
    return {f: getattr(row, f) for f in fields}


def create_bundle(
    store: Store,
    *,
    signer: Signer,
    item_ids: Sequence[str] = (),
    case_no: str | None = None,
    offer: Mapping[str, Any] | None = None,
) -> bytes:
    """The signed custody bundle of `item_ids` (and their sub-items) or of a whole case."""
    from custody.caseuco import custody_graph

    if bool(item_ids) == bool(case_no):
        raise InvalidInput("Name the items to bundle, or --case for a whole case (not both).")
    with store.read() as session:
        if case_no:
            if session.get(Case, case_no) is None:
                raise NotFound.case(case_no)
            roots = session.exec(
                select(Item.id).where(Item.case_no == case_no, col(Item.parent_id).is_(None))
            ).all()
            item_ids = list(roots)
            if not item_ids:
                raise InvalidInput(f"Case {case_no} has no items to bundle.")
        ids = _descendants(session, item_ids)
        items = [session.get(Item, i) for i in ids]
        cases = sorted({i.case_no for i in items if i is not None})
        events = list(
            session.exec(
                select(Event).where(col(Event.chain).in_(ids)).order_by(col(Event.id))
            ).all()
        )
        events += list(
            session.exec(
                select(Event).where(
                    col(Event.chain).in_([f"case:{c}" for c in cases]), Event.seq == 1
                )
            ).all()
        )
        records = [EventRecord.from_row(e) for e in events]
        handles = _handles(records) | {signer.actor.handle}
        handles |= {i.seizing_officer for i in items if i is not None}
        case_rows = [session.get(Case, c) for c in cases]
        handles |= {c.opened_by for c in case_rows if c is not None}
        actors = [session.get(Actor, h) for h in sorted(handles)]
        codes = {a.agency_code for a in actors if a and a.agency_code}
        codes |= {c.agency_code for c in case_rows if c and c.agency_code}
        agencies = [session.get(Agency, c) for c in sorted(codes)]
        entry = own_entry(session)
        content: dict[str, Any] = {
            "store_id": store_id(session),
            "agency": entry["agency"]["code"] if entry else None,
            "agency_entry": entry,
            "created_at": to_utc_text(now_utc()),
            "created_by": signer.actor.handle,
            "items": [i.model_dump() for i in items if i is not None],
            "cases": [c.model_dump() for c in case_rows if c is not None],
            "agencies": [a.model_dump() for a in agencies if a is not None],
            "actors": [_columns(a, ACTOR_FIELDS) for a in actors if a is not None],
            "events": [r.columns() for r in records],
            "certificates": [certificate_doc(c) for c in store_certificates(session)],
            "offer": dict(offer) if offer else None,
        }
    content["attachments"] = _attachments(store, records)
    content["case_uco"] = custody_graph(content)
    digest = hashlib.sha256(canonical_json(content)).hexdigest()
    doc = {
        "format": FORMAT,
        "content": content,
        "signature": {
            "handle": signer.actor.handle,
            "key": signer.key.fingerprint,
            "sig": signer.key.sign(DOMAIN + digest.encode("ascii")),
        },
    }
    return canonical_json(doc)


def _handles(records: Iterable[EventRecord]) -> set[str]:
    out: set[str] = set()
    for r in records:
        out |= {h for h in (r.actor, r.counterparty, r.witness) if h}
        out |= {str(s.get("handle")) for s in r.signatures() if s.get("handle")}
    return out


def _attachments(store: Store, records: Iterable[EventRecord]) -> list[dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for r in records:
        for a in r.data.get("attachments") or []:
            sha = str(a.get("sha256", "")) if isinstance(a, dict) else ""
            path = cas.blob_path(store.attachments_dir, sha)
            if sha and sha not in seen and path.is_file():
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                seen[sha] = {"sha256": sha, "name": str(a.get("name", "")), "data": data}
    return list(seen.values())


def write_bundle(path: Path, data: bytes, *, force: bool = False) -> None:
    from custody.files import write_output

    write_output(path, data, what="custody bundle", force=force)


# --------------------------------------------------------------------------- reading
def read_bundle(path: Path) -> dict[str, Any]:
    """The bundle document of `path`, refused unless it is byte for byte canonical."""
    from custody.files import parse_json, read_bytes

    raw = read_bytes(path, what="custody bundle")
    try:
        doc = parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidInput(
            f"{path} is not a custody bundle; write one with 'custody bundle create' or "
            f"'custody complete-transfer OFFER -o BUNDLE'."
        )
    if canonical_json(doc) != raw:
        raise InvalidInput(
            f"The custody bundle {path} was changed after it was written (it is not in its "
            f"signed form); ask the releasing agency for the original file."
        )
    return doc


_LISTS = ("items", "cases", "agencies", "actors", "events", "certificates", "attachments")


@dataclass
class BundleCheck:
    """What checking a custody bundle found."""

    problems: list[str] = field(default_factory=list)  # NOT VALID
    untrusted: list[str] = field(default_factory=list)  # NOT TRUSTED
    agency: str | None = None
    signer: str | None = None
    items: list[str] = field(default_factory=list)
    events: int = 0
    unpinned_root: str | None = None

    @property
    def verdict(self) -> str:
        if self.problems:
            return "NOT VALID"
        return "NOT TRUSTED" if self.untrusted else "TRUSTED"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "agency": self.agency,
            "signed_by": self.signer,
            "items": self.items,
            "events": self.events,
            "problems": self.problems,
            "untrusted": self.untrusted,
        }


def check_bundle(doc: Mapping[str, Any], roots: Mapping[str, Root]) -> BundleCheck:
    """Check a bundle read by `read_bundle` against trusted `roots`; never raises."""
    check = BundleCheck()
    content = doc.get("content")
    sig = doc.get("signature")
    if (
        not isinstance(content, dict)
        or not isinstance(sig, dict)
        or not all(isinstance(content.get(k), list) for k in _LISTS)
        or not all(isinstance(x, dict) for k in _LISTS for x in content[k])
    ):
        check.problems.append("The custody bundle lacks its sections; it is not a whole bundle.")
        return check
    try:
        _check_content(content, sig, roots, check)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        check.problems.append(
            f"The custody bundle is malformed ({exc.__class__.__name__}) and cannot be checked."
        )
    return check


def _check_content(
    content: dict[str, Any], sig: dict[str, Any], roots: Mapping[str, Root], check: BundleCheck
) -> None:
    from custody.verify import verify_chains

    check.items = [str(i["id"]) for i in content["items"]]
    check.signer = str(sig.get("handle"))
    actors = {str(a["handle"]): a for a in content["actors"]}
    signer = actors.get(check.signer)
    digest = hashlib.sha256(canonical_json(content)).hexdigest()
    if (
        signer is None
        or signer.get("key_fingerprint") != sig.get("key")
        or not key_matches(str(signer.get("public_key")), str(sig.get("key")))
        or not verify_signature(
            public_hex=str(signer["public_key"]),
            signature_b64=str(sig.get("sig")),
            message=DOMAIN + digest.encode("ascii"),
        )
    ):
        check.problems.append(
            f"The custody bundle's signature by '{check.signer}' does not verify: it was changed."
        )
        return
    for e in content["events"]:
        if any(f not in e for f in EVENT_FIELDS if f not in ORIGIN_FIELDS):
            check.problems.append("An event of the custody bundle lacks some of its columns.")
            return
    events = [EventRecord.from_mapping(e) for e in content["events"]]
    check.events = len(events)
    keys, findings = actor_keys({f: a[f] for f in ACTOR_FIELDS} for a in content["actors"])
    index = build_index(content["certificates"], roots)[0]
    with_earlier_keys(keys, index)  # keys replaced by a rotation
    chain_findings, _heads = verify_chains(
        events,
        keys,
        item_rows=content["items"],
        case_rows=content["cases"],
        agencies={a["code"]: a for a in content["agencies"]},
        roles=RoleBook({h: str(a["role"]) for h, a in actors.items()}, index),
    )
    findings.extend(chain_findings)
    for chain in sorted({e.chain for e in events}):
        if min(e.seq for e in events if e.chain == chain) != 1:
            check.problems.append(f"The chain of {chain} in the custody bundle lacks its start.")
    check.problems.extend(f.message for f in findings)
    for a in content["attachments"]:
        try:
            blob = base64.b64decode(str(a.get("data", "")), validate=True)
        except ValueError:
            blob = b""
        if "sha256:" + hashlib.sha256(blob).hexdigest() != a.get("sha256"):
            check.problems.append(
                f"Attachment {a.get('name')} of the bundle does not match its hash."
            )
    _check_offer(content, events, check)
    _check_trust(content, events, roots, check)


def _check_offer(content: dict[str, Any], events: list[EventRecord], check: BundleCheck) -> None:
    """A hand-over bundle ends the item's chain with the transfer its offer describes."""
    from custody.chain import body_of_row, handover_statement

    offer = content.get("offer")
    if offer is None:
        return
    st = offer.get("statement") if isinstance(offer, dict) else None
    if not isinstance(st, dict):
        check.problems.append("The custody bundle's transfer offer is malformed.")
        return
    chain = [e for e in events if e.chain == st.get("item")]
    last = max(chain, key=lambda e: e.seq) if chain else None
    if last is None or handover_statement(body_of_row(last)) != st:
        check.problems.append(
            f"The custody bundle's last event of {st.get('item')} is not the transfer its offer "
            f"describes."
        )


def _check_trust(
    content: dict[str, Any],
    events: list[EventRecord],
    roots: Mapping[str, Root],
    check: BundleCheck,
) -> None:
    entry_doc = content.get("agency_entry")
    if entry_doc is None:
        check.untrusted.append("The custody bundle names no releasing agency's trust entry.")
    else:
        try:
            entry = _entry(entry_doc, name="The bundle's agency entry")
        except InvalidInput as exc:
            check.problems.append(str(exc))
            return
        check.agency = entry.code
        if entry.fingerprint not in roots:
            check.unpinned_root = entry.fingerprint
            check.untrusted.append(
                f"The custody bundle comes from agency {entry.code} ({entry.name}), whose root "
                f"{short(entry.fingerprint)} is not trusted here; compare the fingerprint with "
                f"them and pin it with 'custody trust add ENTRY'."
            )
            return
    index, findings = build_index(content["certificates"], roots)
    check.problems.extend(f.message for f in findings)
    bad = check_event_certificates(events, index, anchor="checked against the trusted roots")
    check.untrusted.extend(f.message for f in bad)
    problem = index.problem(
        str(check.signer), _signer_key(content, check.signer), str(content.get("created_at"))
    )
    if problem is not None:
        check.untrusted.append(f"The bundle's signer '{check.signer}' {problem}.")


def _signer_key(content: Mapping[str, Any], handle: str | None) -> str:
    for a in content["actors"]:
        if a.get("handle") == handle:
            return str(a.get("key_fingerprint"))
    return ""


def verify_bundle_file(
    path: Path, *, trust: Sequence[TrustEntry] | None, store: Store | None
) -> BundleCheck:
    """Check a bundle file offline against a trust list, or against a store's trusted roots."""
    doc = read_bundle(path)
    if trust is not None:
        roots = trusted_roots(trust)
    elif store is not None:
        with store.read() as session:
            roots = pinned_roots(session)
    else:
        roots = {}
    return check_bundle(doc, roots)


# --------------------------------------------------------------------------- importing
@dataclass
class Imported:
    agency: str | None
    items: list[str]
    events: int
    pending: dict[str, str]  # item -> who must record its receipt here


def import_bundle(store: Store, doc: Mapping[str, Any], *, signer: Signer, name: str) -> Imported:
    """Verify a custody bundle against this store's trusted roots and bring its custody in."""
    with store.read() as session:
        roots = pinned_roots(session)
    check = check_bundle(doc, roots)
    if check.problems:
        raise InvalidInput(
            f"The custody bundle {name} is not valid ({check.problems[0]}); nothing was imported."
        )
    if check.untrusted:
        raise PermissionDenied(
            check.untrusted[0]
            if check.unpinned_root
            else f"The custody bundle {name} is not trusted: {check.untrusted[0]} Nothing was "
            f"imported."
        )
    content = doc["content"]
    with store.write() as session:
        writer = Writer(session)
        try:
            _insert_rows(session, content, name=name)
            added = _insert_events(session, writer, content, signer=signer, name=name)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Checked bundles have these rows; a signer who wrote odd ones gets a sentence.
            raise InvalidInput(
                f"The custody bundle {name} holds a malformed row ({exc.__class__.__name__}); "
                f"nothing was imported."
            ) from None
        if not added:
            raise AlreadyExists(
                f"Every event of the custody bundle {name} is in this store already; "
                f"nothing to import."
            )
        writer.finish()
        for a in content["attachments"]:
            _store_blob(store, a)
        pending = {
            i: s.pending_receiver
            for i in check.items
            if (s := writer.item_state(i)).pending_receiver is not None
        }
    return Imported(check.agency, check.items, added, pending)


def _insert_rows(session: Session, content: Mapping[str, Any], *, name: str) -> None:
    for a in content["agencies"]:
        if session.get(Agency, a["code"]) is None:
            session.add(Agency(**{k: a[k] for k in ("code", "name", "country")}))
    session.flush()
    for a in content["actors"]:
        existing = session.get(Actor, a["handle"])
        if existing is None:
            session.add(Actor(**{f: a[f] for f in ACTOR_FIELDS}))
        elif existing.public_key != a["public_key"]:
            raise AlreadyExists(
                f"The custody bundle {name} names actor '{a['handle']}' with another key than "
                f"this store's actor of that handle; nothing was imported."
            )
    session.flush()
    for c in content["certificates"]:
        _insert_certificate(session, c, name=name)
    for c in content["cases"]:
        if session.get(Case, c["case_no"]) is None:
            session.add(Case(**c))
    session.flush()
    for i in sorted(content["items"], key=lambda i: i["id"].count(".")):
        existing_item = session.get(Item, i["id"])
        if existing_item is None:
            session.add(Item(**i))
            session.flush()
        elif existing_item.model_dump() != i:
            raise AlreadyExists(
                f"Item {i['id']} of the custody bundle {name} differs from this store's item of "
                f"that number; nothing was imported."
            )


def _insert_certificate(session: Session, doc: Mapping[str, Any], *, name: str) -> None:
    from custody.files import parse_json

    body = parse_json(str(doc["body"]))
    if not isinstance(body, dict):
        return
    existing = session.exec(
        select(Certificate).where(
            Certificate.root == body.get("root"), Certificate.seq == body.get("seq")
        )
    ).first()
    if existing is not None:
        if existing.hash != doc["hash"]:
            raise AlreadyExists(
                f"The custody bundle {name} carries a trust log entry that contradicts this "
                f"store's; nothing was imported."
            )
        return
    subject = body.get("subject") or {}
    session.add(
        Certificate(
            root=str(body.get("root")),
            seq=int(body.get("seq") or 0),
            kind=str(body.get("kind")),
            handle=str(subject.get("handle")),
            fingerprint=str(subject.get("fingerprint")),
            body=str(doc["body"]),
            hash=str(doc["hash"]),
            signature=str(doc["signature"]),
        )
    )
    session.flush()


def _insert_events(
    session: Session, writer: Writer, content: Mapping[str, Any], *, signer: Signer, name: str
) -> int:
    known = {h for h in session.exec(select(Event.hash)).all()}
    added = 0
    events = sorted(
        (EventRecord.from_mapping(e) for e in content["events"]), key=lambda e: (e.chain, e.seq)
    )
    for ev in events:
        if ev.hash in known:
            continue
        seq, prev_hash, _clock = writer.tail(ev.chain)
        if (seq + 1, prev_hash) != (ev.seq, ev.prev_hash):
            raise AlreadyExists(
                f"The chain of {ev.chain} in this store does not continue into the custody "
                f"bundle {name} (they diverge at event {ev.seq}); nothing was imported."
            )
        writer.append_foreign(ev, origin_store=str(content["store_id"]), importer=signer)
        added += 1
    return added


def _store_blob(store: Store, entry: Mapping[str, Any]) -> None:
    import tempfile

    data = base64.b64decode(str(entry["data"]))
    target = cas.blob_path(store.attachments_dir, str(entry["sha256"]))
    if target.exists():
        return
    with tempfile.NamedTemporaryFile(delete=False) as fh:
        fh.write(data)
        tmp = Path(fh.name)
    try:
        cas.store_file(store.attachments_dir, tmp, str(entry["sha256"]))
    finally:
        tmp.unlink(missing_ok=True)
