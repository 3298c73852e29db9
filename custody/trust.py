"""The agency's root of trust: its root key, the trust log of certificates, trust entries.

Invariants:
- An agency's root key is an Ed25519 key kept like actors' keys (0600, passphrase-able)
  under the file name `_agency-root.<fingerprint16>.pem` (no actor handle starts with
  '_'). The store records only the root's public key (`store_meta`), and verification
  never trusts a root because the store names it: a trust list kept outside the store
  (`--trust FILE`) or the agency's own root key on this machine anchors it.
- Registering an actor is an act of the agency. Each registration, role change, key
  rotation and revocation is a certificate in the trust log (`certificates`), signed by
  the root or by an admin the root certified, hash-chained to the previous entry of the
  same root's log. Certificates are verified one by one (hash, then signature by a root
  or by an admin certified at the time), so a bundle can carry some of them.
- Every event signature must come from a key certified for that handle, at the time
  the event was recorded, by a chain ending at a trusted root, and not revoked
  before it (`check_event_certificates`).
- A trust entry (code, name, country, root public key, validity) is signed by its
  root; `custody trust add` pins one in the store, `--trust FILE` reads a list of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from custody.canonical import canonical_json, hash_record
from custody.domain import EventRecord, FindingKind, Role, UnreadableEvent
from custody.errors import (
    AlreadyExists,
    InvalidInput,
    KeyProblem,
    NotFound,
    PermissionDenied,
    StoreProblem,
)
from custody.findings import Finding
from custody.keys import (
    KeyPair,
    create_key,
    fingerprint,
    key_matches,
    keys_dir,
    load_key,
    verify_signature,
)
from custody.models import Actor, Agency, Certificate, StoreMeta, TrustedRoot
from custody.timeutil import now_utc, to_utc_text

ROOT_KEY_NAME = "_agency-root"
CERT_FORMAT = "custody-certificate-v1"
ENTRY_FORMAT = "custody-trust-entry-v1"
LIST_FORMAT = "custody-trust-list-v1"
CERT_DOMAIN = b"custody-certificate-v1\n"
ENTRY_DOMAIN = b"custody-trust-entry-v1\n"
TRUST_HEAD_DOMAIN = b"custody-trust-head-v1\n"
#: store_meta key of the signed head of the store's own trust log.
TRUST_HEAD_KEY = "trust_head"
KINDS = ("register", "upgrade", "import", "role", "rotate", "revoke")
#: the root's certificates are issued by "root"; an admin's by their handle.
ROOT_ISSUER = "root"

K = FindingKind


# --------------------------------------------------------------------------- the root
@dataclass(frozen=True)
class Root:
    """An agency root as the store (or a trust entry) names it."""

    agency_code: str
    public_key: str
    fingerprint: str
    #: the end of the trust entry's validity: nothing it certifies is trusted after it.
    valid_until: str | None = None


def store_root(session: Session) -> Root | None:
    """The root the store names (not trusted for that alone)."""
    meta = {
        k: session.get(StoreMeta, k) for k in ("root_public_key", "root_fingerprint", "root_agency")
    }
    if any(v is None for v in meta.values()):
        return None
    return Root(
        agency_code=meta["root_agency"].value,  # type: ignore[union-attr]
        public_key=meta["root_public_key"].value,  # type: ignore[union-attr]
        fingerprint=meta["root_fingerprint"].value,  # type: ignore[union-attr]
    )


def root_key_on_machine(home: Path, root: Root) -> bool:
    """True when this machine keeps the private root key of `root` (it anchors trust here)."""
    return (keys_dir(home) / f"{ROOT_KEY_NAME}.{root.fingerprint[:16]}.pem").exists()


def load_root_key(home: Path, root: Root, *, passphrase: str | None = None) -> KeyPair:
    return load_key(home, handle=ROOT_KEY_NAME, fpr=root.fingerprint, passphrase=passphrase)


def create_root(
    session: Session, *, home: Path, agency_code: str, passphrase: str | None
) -> tuple[Root, KeyPair]:
    """Create the agency root key on this machine and record its public key in the store.

    Actors registered before the store had a root are certified now, each certificate
    saying that it was issued at upgrade time.
    """
    key = create_key(home, ROOT_KEY_NAME, passphrase=passphrase)
    now = to_utc_text(now_utc())
    for k, v in (
        ("root_public_key", key.public_hex),
        ("root_fingerprint", key.fingerprint),
        ("root_agency", agency_code),
        ("root_created_at", now),
    ):
        session.add(StoreMeta(key=k, value=v))
    session.flush()
    root = Root(agency_code=agency_code, public_key=key.public_hex, fingerprint=key.fingerprint)
    root_pem = _x509_or_none(lambda: _root_x509(session, key, agency_code))
    if root_pem is not None:
        session.add(StoreMeta(key="root_x509", value=root_pem))
        session.flush()
    # Kept so custody bundles can carry it without the root key on the releasing machine.
    entry = make_entry(session, key=key)
    session.add(StoreMeta(key="trust_entry", value=canonical_json(entry).decode("utf-8")))
    log = TrustLog(session, root)
    for actor in session.exec(select(Actor).order_by(col(Actor.handle))).all():
        log.issue(
            kind="upgrade",
            actor=actor,
            issuer=ROOT_ISSUER,
            key=key,
            valid_from=actor.created_at,
            reason=f"registered before the store had an agency root; certified by the root "
            f"at upgrade time ({now})",
        )
    return root, key


def _root_x509(session: Session, key: KeyPair, agency_code: str) -> str:
    """The root as an X.509 CA certificate (PEM), for PDF readers that trust the agency."""
    from cryptography.hazmat.primitives import serialization

    from custody.dossier.signing import root_ca_certificate

    agency = session.get(Agency, agency_code) if agency_code else None
    cert = root_ca_certificate(
        private_key=key.private,
        agency=(agency.name if agency else "") or agency_code or "custody",
        country=agency.country if agency else "",
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _x509_or_none(make: Any) -> str | None:
    """An X.509 certificate is an extra for PDF readers: names X.509 cannot hold (over 64
    characters) leave it out (the dossier then carries a self-signed one) rather than
    refusing the registration."""
    try:
        return str(make())
    except ValueError:
        return None


def root_certificate_pem(session: Session) -> str | None:
    row = session.get(StoreMeta, "root_x509")
    return row.value if row is not None else None


def _actor_x509(session: Session, actor: Actor, key: KeyPair) -> str | None:
    """The actor's X.509 certificate issued by the root as CA (PEM); None without a root CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from custody.dossier.signing import issued_certificate

    pem = root_certificate_pem(session)
    if pem is None:
        return None
    ca = x509.load_pem_x509_certificate(pem.encode("ascii"))
    agency = session.get(Agency, actor.agency_code) if actor.agency_code else None
    cert = issued_certificate(
        public_key=Ed25519PublicKey.from_public_bytes(bytes.fromhex(actor.public_key)),
        ca_key=key.private,
        ca_certificate=ca,
        name=actor.name,
        handle=actor.handle,
        role=actor.role,
        agency=(agency.name if agency else "") or actor.agency_code or "custody",
        country=agency.country if agency else "",
        badge=actor.badge,
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def actor_x509(session: Session, handle: str, fpr: str) -> str | None:
    """The newest root-issued X.509 certificate of `handle`'s key `fpr` in the trust log."""
    rows = session.exec(
        select(Certificate)
        .where(Certificate.handle == handle, Certificate.fingerprint == fpr)
        .order_by(col(Certificate.id).desc())
    ).all()
    from custody.files import parse_json

    for row in rows:
        body = parse_json(row.body)
        if isinstance(body, dict) and isinstance(body.get("x509"), str):
            return str(body["x509"])
    return None


# --------------------------------------------------------------------------- certificates
def certificate_body(
    *,
    root: Root,
    seq: int,
    prev: str | None,
    kind: str,
    actor: Actor,
    issuer: str,
    issuer_key: str,
    issued_at: str,
    valid_from: str,
    valid_until: str | None = None,
    reason: str = "",
    x509_pem: str | None = None,
) -> dict[str, Any]:
    body = {
        "format": CERT_FORMAT,
        "agency": root.agency_code,
        "root": root.fingerprint,
        "seq": seq,
        "prev": prev,
        "kind": kind,
        "subject": {
            "handle": actor.handle,
            "name": actor.name,
            "role": actor.role,
            "badge": actor.badge,
            "agency": actor.agency_code,
            "public_key": actor.public_key,
            "fingerprint": actor.key_fingerprint,
        },
        "issuer": issuer,
        "issuer_key": issuer_key,
        "issued_at": issued_at,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "reason": reason,
    }
    if x509_pem:
        body["x509"] = x509_pem  # the same grant as an X.509 certificate, for PDF readers
    return body


def certificate_message(hash_: str) -> bytes:
    return CERT_DOMAIN + hash_.encode("ascii")


class TrustLog:
    """Appends certificates to the store's own trust log inside a write session."""

    def __init__(self, session: Session, root: Root):
        self.session = session
        self.root = root
        last = session.exec(
            select(Certificate)
            .where(Certificate.root == root.fingerprint)
            .order_by(col(Certificate.seq).desc())
            .limit(1)
        ).first()
        self.seq = last.seq if last else 0
        self.prev = last.hash if last else None
        self._check_head()

    def _check_head(self) -> None:
        """Refuse to extend a log that no longer ends at its signed head: signing a new head
        over it would hide the removal of its newest entries."""
        from custody.files import parse_json

        row = self.session.get(StoreMeta, TRUST_HEAD_KEY)
        if row is None:
            return  # a log from before heads were signed: its next entry signs one
        head = parse_json(row.value)
        if (
            not isinstance(head, dict)
            or head.get("root") != self.root.fingerprint
            or (head.get("seq"), head.get("hash")) != (self.seq, self.prev)
        ):
            raise StoreProblem(
                "The trust log no longer ends at its signed head (entries were removed or "
                "added outside custody), so nothing more is certified; run 'custody verify' "
                "and restore the store from a backup."
            )

    def issue(
        self,
        *,
        kind: str,
        actor: Actor,
        issuer: str,
        key: KeyPair,
        valid_from: str | None = None,
        reason: str = "",
    ) -> Certificate:
        now = to_utc_text(now_utc())
        body = certificate_body(
            root=self.root,
            seq=self.seq + 1,
            prev=self.prev,
            kind=kind,
            actor=actor,
            issuer=issuer,
            issuer_key=key.fingerprint,
            issued_at=now,
            valid_from=valid_from or now,
            reason=reason,
            x509_pem=(
                _x509_or_none(lambda: _actor_x509(self.session, actor, key))
                if issuer == ROOT_ISSUER and kind != "revoke"
                else None
            ),
        )
        hash_ = hash_record(body)
        row = Certificate(
            root=self.root.fingerprint,
            seq=self.seq + 1,
            kind=kind,
            handle=actor.handle,
            fingerprint=actor.key_fingerprint,
            body=canonical_json(body).decode("utf-8"),
            hash=hash_,
            signature=key.sign(certificate_message(hash_)),
        )
        self.session.add(row)
        self.session.flush()
        self.seq += 1
        self.prev = hash_
        self._sign_head(issuer=issuer, key=key)
        return row

    def _sign_head(self, *, issuer: str, key: KeyPair) -> None:
        """Sign the newest entry as the head, so deleting it (a revocation, a role change)
        is a finding rather than a shorter, still well-linked log."""
        assert self.prev is not None
        head = {
            "root": self.root.fingerprint,
            "seq": self.seq,
            "hash": self.prev,
            "issuer": issuer,
            "issuer_key": key.fingerprint,
            "signature": key.sign(
                trust_head_message(root=self.root.fingerprint, seq=self.seq, hash_=self.prev)
            ),
        }
        value = canonical_json(head).decode("utf-8")
        row = self.session.get(StoreMeta, TRUST_HEAD_KEY)
        if row is None:
            self.session.add(StoreMeta(key=TRUST_HEAD_KEY, value=value))
        else:
            row.value = value
            self.session.add(row)
        self.session.flush()


def trust_head_message(*, root: str, seq: int, hash_: str) -> bytes:
    return TRUST_HEAD_DOMAIN + canonical_json({"root": root, "seq": seq, "hash": hash_})


def certificate_doc(row: Certificate | Mapping[str, Any]) -> dict[str, str]:
    """A certificate as bundles carry it: its canonical body, hash and signature."""
    get = row.get if isinstance(row, Mapping) else lambda k: getattr(row, k)
    return {"body": str(get("body")), "hash": str(get("hash")), "signature": str(get("signature"))}


# --------------------------------------------------------------------------- the index
@dataclass
class Grant:
    """One key certified for one handle, from when, until when, by which agency."""

    handle: str
    role: str
    agency: str
    root: str
    name: str
    valid_from: str
    valid_until: str | None
    public_key: str = ""
    revoked_at: str | None = None
    revoked_reason: str = ""
    replaced: bool = False  # ended by a key rotation at valid_until


@dataclass
class CertIndex:
    """What the trusted certificates say: key fingerprint -> its grants."""

    grants: dict[str, list[Grant]] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)  # root fingerprint -> agency code
    #: root fingerprint -> end of its trust entry's validity (None: no end)
    root_until: dict[str, str | None] = field(default_factory=dict)

    def problem(self, handle: str, fpr: str, when: str) -> str | None:
        """Why `handle`'s key `fpr` was not certified at `when`; None when it was."""
        grants = [g for g in self.grants.get(fpr, []) if g.handle == handle]
        if not grants:
            return "is certified by no trusted agency root"
        reasons = []
        for g in grants:
            why = self._why_not(g, when)
            if why is None:
                return None
            reasons.append(why)
        return reasons[0]

    def grant(self, handle: str, fpr: str, when: str) -> Grant | None:
        """The newest grant of `handle`'s key `fpr` in force at `when`."""
        for g in reversed(self.grants.get(fpr, [])):
            if g.handle == handle and self._why_not(g, when) is None:
                return g
        return None

    def _why_not(self, g: Grant, when: str) -> str | None:
        until = self.root_until.get(g.root)
        if until is not None and until < when:
            return (
                f"was certified by agency root {g.root[:16]}… of "
                f"{self.roots.get(g.root) or 'an agency'}, whose trust entry was valid only "
                f"until {until}"
            )
        return _why_not(g, when)


def with_earlier_keys(keys: Any, index: CertIndex) -> None:
    """Let each actor's signatures by an earlier certified key (before a key rotation) be
    checked against that key; when each key was in force is `check_event_certificates`'."""
    from dataclasses import replace

    for fpr, grants in index.grants.items():
        for g in grants:
            known = keys.get(g.handle)
            if known is None or not g.public_key or known.public_for(fpr) is not None:
                continue
            if key_matches(g.public_key, fpr):
                keys[g.handle] = replace(known, earlier=(*known.earlier, (fpr, g.public_key)))


def _why_not(g: Grant, when: str) -> str | None:
    if g.valid_from > when:
        return f"was certified only from {g.valid_from}"
    if g.valid_until is not None and g.valid_until < when:
        if g.replaced:
            return f"was replaced by a new key at {g.valid_until} (key rotation)"
        return f"was certified only until {g.valid_until}"
    if g.revoked_at is not None and g.revoked_at <= when:
        return f"was revoked at {g.revoked_at} ({g.revoked_reason})"
    return None


@dataclass
class RoleBook:
    """Each actor's role when they recorded an event: from the certificates (role changes
    included), else from the actor's row."""

    fallback: Mapping[str, str]
    index: CertIndex

    def role_of(self, ev: EventRecord) -> str:
        g = self.index.grant(ev.actor, ev.actor_key, ev.recorded_at)
        return g.role if g is not None else self.fallback.get(ev.actor, "")


def _parse_cert(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    from custody.files import parse_json

    body = parse_json(str(doc.get("body", "")))
    if not isinstance(body, dict) or body.get("format") != CERT_FORMAT:
        return None
    subject = body.get("subject")
    if not isinstance(subject, dict) or not all(
        isinstance(subject.get(f), str) for f in ("handle", "role", "public_key", "fingerprint")
    ):
        return None
    if (
        not all(
            isinstance(body.get(f), str)
            for f in ("root", "kind", "issuer", "issuer_key", "issued_at")
        )
        or not isinstance(body.get("valid_from"), str)
        or not isinstance(body.get("valid_until"), str | None)
        or not isinstance(body.get("seq"), int)
    ):
        return None
    return body


def build_index(
    docs: Iterable[Mapping[str, Any]], roots: Mapping[str, Root]
) -> tuple[CertIndex, list[Finding]]:
    """Check certificates one by one and index those that chain to one of `roots`.

    `roots` maps root fingerprints to the trusted roots. Certificates of other roots
    are left out without a finding (they are simply not trusted); a certificate of a
    trusted root that does not verify is a finding.
    """
    index = CertIndex(
        roots={f: r.agency_code for f, r in roots.items()},
        root_until={f: r.valid_until for f, r in roots.items()},
    )
    findings: list[Finding] = []
    parsed = []
    for doc in docs:
        body = _parse_cert(doc)
        if body is None:
            findings.append(
                Finding("trust log", None, K.ALTERED, "A trust log entry is not a certificate.")
            )
            continue
        parsed.append((body, doc))
    parsed.sort(key=lambda p: (str(p[0]["root"]), int(p[0].get("seq") or 0)))
    for body, doc in parsed:
        root = roots.get(body["root"])
        if root is None:
            continue
        subject = body["subject"]
        where = f"actor:{subject['handle']}"
        if hash_record(body) != doc.get("hash") or canonical_json(body).decode() != doc.get("body"):
            findings.append(
                Finding(
                    where,
                    None,
                    K.ALTERED,
                    f"Trust log entry {body.get('seq')} ({body['kind']} of '{subject['handle']}') "
                    f"does not match its hash: it was changed after signing.",
                )
            )
            continue
        issuer_pub = _issuer_key(index, body, root)
        if issuer_pub is None or not verify_signature(
            public_hex=issuer_pub,
            signature_b64=str(doc.get("signature", "")),
            message=certificate_message(str(doc["hash"])),
        ):
            findings.append(
                Finding(
                    where,
                    None,
                    K.UNTRUSTED_KEY,
                    f"Trust log entry {body.get('seq')} ({body['kind']} of '{subject['handle']}') "
                    f"is not signed by the agency root {root.fingerprint[:16]}… or an admin it "
                    f"certified.",
                )
            )
            continue
        if not key_matches(subject["public_key"], subject["fingerprint"]):
            findings.append(
                Finding(
                    where,
                    None,
                    K.ALTERED,
                    f"Certificate of '{subject['handle']}' names a "
                    f"key that does not match its fingerprint.",
                )  # fmt: skip
            )
            continue
        _apply(index, body, root)
    return index, findings


def _issuer_key(index: CertIndex, body: Mapping[str, Any], root: Root) -> str | None:
    if body["issuer"] == ROOT_ISSUER:
        return root.public_key if body["issuer_key"] == root.fingerprint else None
    grant = index.grant(body["issuer"], body["issuer_key"], body["issued_at"])
    if grant is None or grant.role != Role.ADMIN or grant.root != root.fingerprint:
        return None
    return grant.public_key


def _apply(index: CertIndex, body: Mapping[str, Any], root: Root) -> None:
    subject = body["subject"]
    fpr = subject["fingerprint"]
    grants = index.grants.setdefault(fpr, [])
    if body["kind"] == "revoke":
        for g in grants:
            if g.handle == subject["handle"] and g.revoked_at is None:
                g.revoked_at = body["valid_from"]
                g.revoked_reason = str(body.get("reason") or "no reason given")
        return
    if body["kind"] == "role":
        # A role change ends the grant of the old role where the new one starts.
        for g in grants:
            if g.handle == subject["handle"] and g.valid_until is None:
                g.valid_until = body["valid_from"]
    if body["kind"] == "rotate":
        # A new key ends every earlier key of the actor where it starts: the old key
        # stays good for what it signed before, and signs nothing after.
        for other, others in index.grants.items():
            for g in others:
                if (
                    other != fpr
                    and g.handle == subject["handle"]
                    and g.root == root.fingerprint
                    and (g.valid_until is None or g.valid_until > body["valid_from"])
                ):
                    g.valid_until = body["valid_from"]
                    g.replaced = True
    grants.append(
        Grant(
            handle=subject["handle"],
            role=subject["role"],
            agency=str(subject.get("agency") or body.get("agency") or ""),
            root=root.fingerprint,
            name=str(subject.get("name", "")),
            valid_from=body["valid_from"],
            valid_until=body.get("valid_until"),
            public_key=subject["public_key"],
        )
    )


def check_trust_log_links(rows: Sequence[Mapping[str, Any]], root: Root) -> list[Finding]:
    """The store's own trust log runs 1..n, each entry naming the previous one's hash."""
    own = sorted((r for r in rows if r["root"] == root.fingerprint), key=lambda r: r["seq"])
    out: list[Finding] = []
    prev: str | None = None
    for n, row in enumerate(own, start=1):
        body = _parse_cert(row) or {}
        if row["seq"] != n or body.get("prev") != prev:
            out.append(
                Finding(
                    "trust log",
                    None,
                    K.MISSING,
                    f"The trust log breaks at entry {row['seq']}: an entry before it was "
                    f"removed or reordered.",
                )
            )
            break
        prev = row["hash"]
    return out


def check_trust_head(
    rows: Sequence[Mapping[str, Any]], root: Root, head_text: str | None, index: CertIndex
) -> list[Finding]:
    """The signed head of the store's own trust log names its newest entry.

    The head is signed by whoever issued that entry (the root, or an admin), so removing
    the newest certificate or revocation, or the head itself, is a finding.
    """
    from custody.files import parse_json

    own = sorted((r for r in rows if r["root"] == root.fingerprint), key=lambda r: r["seq"])
    if head_text is None:
        if not own:
            return []
        return [
            Finding(
                "trust log",
                None,
                K.MISSING,
                "The signed head of the trust log is missing: its newest entries may have "
                "been removed.",
            )
        ]
    head = parse_json(head_text)
    if (
        not isinstance(head, dict)
        or not isinstance(head.get("seq"), int)
        or not all(
            isinstance(head.get(f), str)
            for f in ("root", "hash", "issuer", "issuer_key", "signature")
        )
        or head["root"] != root.fingerprint
    ):
        return [Finding("trust log", None, K.ALTERED, "The trust log's head is not a signed head.")]
    if head["issuer"] == ROOT_ISSUER:
        pub = root.public_key if head["issuer_key"] == root.fingerprint else None
    else:
        pub = next(
            (
                g.public_key
                for g in index.grants.get(head["issuer_key"], [])
                if g.handle == head["issuer"]
                and g.role == Role.ADMIN
                and g.root == root.fingerprint
            ),
            None,
        )
    message = trust_head_message(root=root.fingerprint, seq=head["seq"], hash_=head["hash"])
    if pub is None or not verify_signature(
        public_hex=pub, signature_b64=head["signature"], message=message
    ):
        return [
            Finding(
                "trust log",
                None,
                K.BAD_SIGNATURE,
                f"The trust log's head is not signed by the agency root {root.fingerprint[:16]}… "
                f"or an admin it certified.",
            )
        ]
    last_seq = own[-1]["seq"] if own else 0
    if head["seq"] > last_seq:
        return [
            Finding(
                "trust log",
                None,
                K.MISSING,
                f"The signed head of the trust log names entry {head['seq']} but the log ends at "
                f"{last_seq}: the newest certificates or revocations were deleted.",
            )
        ]
    if head["seq"] < last_seq:
        return [
            Finding(
                "trust log",
                None,
                K.INSERTED,
                f"Trust log entries {head['seq'] + 1}..{last_seq} lie beyond its signed head: "
                f"they were added outside custody.",
            )
        ]
    if own[-1]["hash"] != head["hash"]:
        return [
            Finding(
                "trust log",
                None,
                K.ALTERED,
                f"The newest trust log entry ({last_seq}) differs from the signed head.",
            )
        ]
    return []


def check_event_certificates(
    events: Iterable[EventRecord], index: CertIndex, *, anchor: str
) -> list[Finding]:
    """Every signature of every event from a key certified at the event's recording time.

    One finding per signer key and problem (with the first event and how many), so a
    re-signed history gives a readable list rather than one line per event.
    """
    problems: dict[tuple[str, str, str], list[EventRecord]] = {}
    for ev in events:
        try:
            sigs = ev.signatures()
        except UnreadableEvent:
            continue  # reported by the signature checks
        for s in sigs:
            handle, fpr = str(s.get("handle", "")), str(s.get("key", ""))
            problem = index.problem(handle, fpr, ev.recorded_at)
            if problem is not None:
                problems.setdefault((handle, fpr, problem), []).append(ev)
    out = []
    for (handle, fpr, problem), evs in sorted(problems.items()):
        first = evs[0]
        more = f" and {len(evs) - 1} later event(s)" if len(evs) > 1 else ""
        out.append(
            Finding(
                first.subject,
                first.id,
                K.UNTRUSTED_KEY,
                f"Event {first.id}{more} signed by '{handle}' with key {fpr[:16]}…, which "
                f"{problem} ({anchor}).",
            )
        )
    return out


def store_certificates(session: Session) -> list[Certificate]:
    rows = session.exec(select(Certificate).order_by(col(Certificate.root), col(Certificate.seq)))
    return list(rows.all())


# --------------------------------------------------------------------------- authority
@dataclass(frozen=True)
class Authority:
    """Who acts for the agency: the root (its key here) or a certified admin."""

    issuer: str
    key: KeyPair


def root_authority(home: Path, session: Session) -> Authority:
    """The root key on this machine as the authority, or a one-sentence refusal."""
    root = store_root(session)
    if root is None:
        raise StoreProblem(
            "The store has no agency root; run 'custody init' on the agency's machine to "
            "create it (it certifies the existing actors)."
        )
    if not root_key_on_machine(home, root):
        raise PermissionDenied(
            "This needs the authority of the agency: the agency root key on this machine "
            "or --as ADMIN (an admin certified by the root)."
        )
    return Authority(ROOT_ISSUER, load_root_key(home, root))


def admin_authority(session: Session, *, handle: str, key: KeyPair) -> Authority:
    """An admin acting for the agency: role admin, certified now by the store's root."""
    root = store_root(session)
    if root is None:
        raise StoreProblem(
            "The store has no agency root; run 'custody init' on the agency's machine first."
        )
    index, _ = build_index(
        [certificate_doc(r) for r in store_certificates(session)], {root.fingerprint: root}
    )
    grant = index.grant(handle, key.fingerprint, to_utc_text(now_utc()))
    if grant is None or grant.role != Role.ADMIN:
        raise PermissionDenied(
            f"Actor '{handle}' is not an admin certified by the agency root, so cannot act "
            f"for the agency; use the root key or another admin."
        )
    return Authority(handle, key)


def is_revoked(session: Session, fpr: str) -> Certificate | None:
    return session.exec(
        select(Certificate).where(Certificate.fingerprint == fpr, Certificate.kind == "revoke")
    ).first()


def revoke_actor(session: Session, *, handle: str, reason: str, authority: Authority) -> None:
    """Revoke `handle`'s key from now on (events it signed before stay valid)."""
    if not reason.strip():
        raise InvalidInput("A revocation needs a reason; pass --reason.")
    actor = session.get(Actor, handle)
    if actor is None:
        raise NotFound.actor(handle)
    if is_revoked(session, actor.key_fingerprint) is not None:
        raise AlreadyExists(f"Actor '{handle}''s key is revoked already; nothing to do.")
    root = store_root(session)
    assert root is not None
    TrustLog(session, root).issue(
        kind="revoke", actor=actor, issuer=authority.issuer, key=authority.key, reason=reason
    )


# --------------------------------------------------------------------------- trust entries
def entry_message(body: Mapping[str, Any]) -> bytes:
    return ENTRY_DOMAIN + canonical_json(dict(body))


def make_entry(session: Session, *, key: KeyPair, valid_days: int = 3650) -> dict[str, Any]:
    """This agency's trust entry, signed by its root."""
    from datetime import timedelta

    root = store_root(session)
    if root is None or root.fingerprint != key.fingerprint:
        raise KeyProblem("The root key here is not the store's agency root.")
    agency = session.get(Agency, root.agency_code)
    now = now_utc()
    body = {
        "format": ENTRY_FORMAT,
        "agency": {
            "code": root.agency_code,
            "name": agency.name if agency else root.agency_code,
            "country": agency.country if agency else "",
        },
        "root_public_key": root.public_key,
        "root_fingerprint": root.fingerprint,
        "valid_from": to_utc_text(now),
        "valid_until": to_utc_text(now + timedelta(days=valid_days)),
        # The root as an X.509 CA, for PDF readers that validate dossier signatures.
        "root_certificate": root_certificate_pem(session),
    }
    return {**body, "signature": key.sign(entry_message(body))}


@dataclass(frozen=True)
class TrustEntry:
    code: str
    name: str
    country: str
    root: Root
    valid_from: str
    valid_until: str | None
    document: Mapping[str, Any]

    @property
    def fingerprint(self) -> str:
        return self.root.fingerprint


def _entry(doc: Any, *, name: str) -> TrustEntry:
    bad = InvalidInput(
        f"{name} is not a trust entry; ask the agency for the file of 'custody trust export'."
    )
    if not isinstance(doc, dict) or doc.get("format") != ENTRY_FORMAT:
        raise bad
    agency = doc.get("agency")
    if not isinstance(agency, dict) or not all(
        isinstance(agency.get(f), str) for f in ("code", "name", "country")
    ):
        raise bad
    if not all(
        isinstance(doc.get(f), str)
        for f in ("root_public_key", "root_fingerprint", "valid_from", "signature")
    ) or not isinstance(doc.get("valid_until"), str | None):
        raise bad
    body = {k: v for k, v in doc.items() if k != "signature"}
    if not key_matches(doc["root_public_key"], doc["root_fingerprint"]) or not verify_signature(
        public_hex=doc["root_public_key"],
        signature_b64=doc["signature"],
        message=entry_message(body),
    ):
        raise InvalidInput(
            f"The trust entry {name} is not signed by the root it names (it was edited); ask "
            f"the agency for a fresh one."
        )
    return TrustEntry(
        code=agency["code"],
        name=agency["name"],
        country=agency["country"],
        root=Root(
            agency["code"],
            doc["root_public_key"],
            doc["root_fingerprint"],
            valid_until=doc.get("valid_until"),
        ),
        valid_from=doc["valid_from"],
        valid_until=doc.get("valid_until"),
        document=doc,
    )


def parse_trust_list(text: str, *, name: str) -> list[TrustEntry]:
    """One entry, a JSON list of entries, or a `custody-trust-list-v1` document."""
    from custody.files import parse_json

    doc = parse_json(text)
    if isinstance(doc, dict) and doc.get("format") == LIST_FORMAT:
        doc = doc.get("entries")
    docs = doc if isinstance(doc, list) else [doc]
    if not docs:
        raise InvalidInput(f"The trust list {name} holds no entries; add at least one.")
    return [_entry(d, name=name) for d in docs]


def read_trust_list(path: Path) -> list[TrustEntry]:
    from custody.files import read_text

    return parse_trust_list(read_text(path, what="trust list"), name=str(path))


def read_trust_lists(paths: Sequence[Path]) -> list[TrustEntry] | None:
    """The entries of every trust list given (`--trust` may be repeated); None for none."""
    if not paths:
        return None
    return [entry for path in paths for entry in read_trust_list(path)]


def own_entry(session: Session) -> dict[str, Any] | None:
    """This store's trust entry as made when its root was created."""
    from custody.files import parse_json

    row = session.get(StoreMeta, "trust_entry")
    value = parse_json(row.value) if row is not None else None
    return value if isinstance(value, dict) else None


def trusted_roots(entries: Iterable[TrustEntry]) -> dict[str, Root]:
    return {e.fingerprint: e.root for e in entries}


def pin_entry(session: Session, entry: TrustEntry) -> TrustedRoot:
    import json

    if entry.valid_until is not None and entry.valid_until < to_utc_text(now_utc()):
        raise InvalidInput(
            f"The trust entry of {entry.code} (root {entry.fingerprint[:16]}…) expired at "
            f"{entry.valid_until}; ask the agency for a fresh one."
        )
    existing = session.get(TrustedRoot, entry.fingerprint)
    if (
        existing is not None
        and existing.valid_until is not None
        and (entry.valid_until is None or entry.valid_until > existing.valid_until)
    ):
        # A renewed entry of a pinned root extends its validity.
        existing.valid_from = entry.valid_from
        existing.valid_until = entry.valid_until
        existing.entry = json.dumps(dict(entry.document), sort_keys=True)
        session.add(existing)
        session.flush()
        session.expunge(existing)
        return existing
    if existing is not None:
        raise AlreadyExists(
            f"The root {entry.fingerprint[:16]}… of {entry.code} is pinned already; nothing to do."
        )
    own = store_root(session)
    if own is not None and own.fingerprint == entry.fingerprint:
        raise AlreadyExists(f"The root {entry.fingerprint[:16]}… is this store's own root.")
    if own is not None and own.agency_code and entry.code == own.agency_code:
        raise InvalidInput(
            f"The trust entry names this store's own agency {entry.code} with another root "
            f"({entry.fingerprint[:16]}…); an agency has one root, so it is refused."
        )
    row = TrustedRoot(
        fingerprint=entry.fingerprint,
        agency_code=entry.code,
        name=entry.name,
        country=entry.country,
        public_key=entry.root.public_key,
        valid_from=entry.valid_from,
        valid_until=entry.valid_until,
        entry=json.dumps(dict(entry.document), sort_keys=True),
        added_at=to_utc_text(now_utc()),
    )
    session.add(row)
    session.flush()
    session.expunge(row)
    return row


def pinned_roots(session: Session) -> dict[str, Root]:
    """The store's own root and the roots pinned with `trust add`."""
    roots = {
        r.fingerprint: Root(r.agency_code, r.public_key, r.fingerprint, r.valid_until)
        for r in session.exec(select(TrustedRoot)).all()
    }
    own = store_root(session)
    if own is not None:
        roots[own.fingerprint] = own
    return roots


def short(fpr: str) -> str:
    """How a fingerprint is shown: grouped, whole (a reader compares it by voice or on paper)."""
    return " ".join(fpr[i : i + 4] for i in range(0, len(fpr), 4))


def root_of_key(public_hex: str) -> str:
    return fingerprint(bytes.fromhex(public_hex))


# --------------------------------------------------------------------------- store-level
def export_entry(store: Any, *, passphrase: str | None = None) -> dict[str, Any]:
    """This store's agency trust entry, signed with the root key on this machine."""
    with store.read() as session:
        root = store_root(session)
        if root is None:
            raise StoreProblem(
                "The store has no agency root; run 'custody init' on the agency's machine first."
            )
        if not root_key_on_machine(store.home, root):
            raise KeyProblem(
                f"The agency root key {root.fingerprint[:16]}… is not on this machine; export "
                f"the trust entry on the machine that ran 'custody init'."
            )
        key = load_root_key(store.home, root, passphrase=passphrase)
        return make_entry(session, key=key)


def add_trusted(store: Any, entries: Sequence[TrustEntry]) -> list[TrustedRoot]:
    """Pin other agencies' roots in this store (all entries or none)."""
    with store.write() as session:
        return [pin_entry(session, e) for e in entries]


def list_trusted(store: Any) -> list[dict[str, Any]]:
    """This store's own root and the roots pinned in it."""
    with store.read() as session:
        own = store_root(session)
        rows = list(session.exec(select(TrustedRoot).order_by(col(TrustedRoot.agency_code))))
        out = []
        if own is not None:
            agency = session.get(Agency, own.agency_code)
            out.append(
                {
                    "agency": own.agency_code,
                    "name": agency.name if agency else "",
                    "country": agency.country if agency else "",
                    "fingerprint": own.fingerprint,
                    "own": True,
                    "valid_until": None,
                }
            )
        for r in rows:
            out.append(
                {
                    "agency": r.agency_code,
                    "name": r.name,
                    "country": r.country,
                    "fingerprint": r.fingerprint,
                    "own": False,
                    "valid_until": r.valid_until,
                }
            )
    return out


def certified_keys(session: Session, *, index: CertIndex | None = None) -> set[tuple[str, str]]:
    """(handle, key fingerprint) of every key a trusted root certified and did not revoke,
    under a root whose trust entry has not expired (a label carries no signing time, so
    it is judged now)."""
    if index is None:
        index, _ = build_index(
            [certificate_doc(r) for r in store_certificates(session)], pinned_roots(session)
        )
    now = to_utc_text(now_utc())
    return {
        (g.handle, fpr)
        for fpr, grants in index.grants.items()
        for g in grants
        if g.revoked_at is None
        and (index.root_until.get(g.root) is None or str(index.root_until[g.root]) >= now)
    }


def certified_public_keys(session: Session) -> dict[str, tuple[str, str]]:
    """Key fingerprint -> (handle, public hex) of every key `certified_keys` gives, earlier
    keys of a key rotation included: what it signed before the rotation stays genuine."""
    index, _ = build_index(
        [certificate_doc(r) for r in store_certificates(session)], pinned_roots(session)
    )
    certified = certified_keys(session, index=index)
    return {
        fpr: (g.handle, g.public_key)
        for fpr, grants in index.grants.items()
        for g in grants
        if (g.handle, fpr) in certified and g.public_key
    }


def trust_section(session: Session) -> dict[str, Any]:
    """What a bundle carries so a reader can check its signers against a trust list:
    every certificate of the store's trust logs, and the roots the store names."""
    return {
        "certificates": [certificate_doc(r) for r in store_certificates(session)],
        "roots": [
            {"agency": r.agency_code, "public_key": r.public_key, "fingerprint": r.fingerprint}
            for r in pinned_roots(session).values()
        ],
    }


@dataclass
class TrustVerdict:
    """Whether every signer of a bundle chains to a root of a trust list."""

    trusted: bool
    untrusted: list[str] = field(default_factory=list)  # sentences naming each signer

    def to_dict(self) -> dict[str, Any]:
        return {"trusted": self.trusted, "untrusted": self.untrusted}


def judge_bundle(
    bundle: Mapping[str, Any],
    entries: Sequence[TrustEntry],
    *,
    extra_signers: Sequence[tuple[str, str, str]] = (),
) -> TrustVerdict:
    """Check a (well-formed) bundle's event signers, and `extra_signers` (handle, key,
    time: e.g. the PDF signer), against the roots of `entries`. Never raises."""
    section = bundle.get("trust")
    if not isinstance(section, dict) or not isinstance(section.get("certificates"), list):
        return TrustVerdict(
            False, ["The bundle carries no certificates, so no signer can be traced to a root."]
        )
    docs = [d for d in section["certificates"] if isinstance(d, dict)]
    index, _ = build_index(docs, trusted_roots(entries))
    events = []
    for e in bundle.get("events", []):
        try:
            events.append(EventRecord.from_mapping(e))
        except (KeyError, TypeError, ValueError):
            continue
    findings = check_event_certificates(events, index, anchor="not in the trust list")
    out = [f.message for f in findings]
    for handle, fpr, when in extra_signers:
        if len(when) >= 19:
            when = when[:19] + ".999999Z"  # a PDF signing time has whole seconds only
        problem = index.problem(handle, fpr, when)
        if problem is not None:
            out.append(f"The PDF signer '{handle}' (key {fpr[:16]}…) {problem}.")
    return TrustVerdict(not out, out)


def current_role(session: Session, actor: Actor) -> str:
    """The role the trust log gives `actor`'s key now (the row's role without a grant)."""
    index, _ = build_index(
        [certificate_doc(r) for r in store_certificates(session)], pinned_roots(session)
    )
    grant = index.grant(actor.handle, actor.key_fingerprint, to_utc_text(now_utc()))
    return grant.role if grant is not None else actor.role


def change_role(session: Session, *, handle: str, role: str, authority: Authority) -> None:
    """Certify `handle`'s key under a new role from now on (earlier acts keep the old one)."""
    from custody.models import ROLES

    if role not in ROLES:
        raise InvalidInput(f"Role '{role}' does not exist; use one of {', '.join(ROLES)}.")
    actor = session.get(Actor, handle)
    if actor is None:
        raise NotFound.actor(handle)
    if is_revoked(session, actor.key_fingerprint) is not None:
        raise PermissionDenied(f"Actor '{handle}''s key is revoked; register a new key instead.")
    if current_role(session, actor) == role:
        raise AlreadyExists(f"Actor '{handle}' has the role {role} already; nothing to do.")
    root = store_root(session)
    assert root is not None
    changed = Actor(**{**actor.model_dump(), "role": role})
    TrustLog(session, root).issue(
        kind="role", actor=changed, issuer=authority.issuer, key=authority.key
    )
