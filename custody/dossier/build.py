"""Build, issue and verify court dossiers.

Invariants:
- A dossier is built only from a freshly verified case; findings refuse the
  build unless explicitly allowed, and then they are printed prominently.
- The PDF embeds the canonical case bundle (and every attachment) as files, is
  signed (PAdES) by the issuing actor's key, and its issue is recorded as a
  `dossier-issue` event on the case chain (report ID, bundle hash, PDF hash).
- A later dossier of the same case is "Amendment N to report <first ID>"; it
  needs a reason, lists the events recorded since the previous issue and
  references it.
- Item descriptions are printed from the signed record in each item's creating
  event, never from the item row, so a row changed outside custody cannot change
  what the dossier says (the difference is a finding).
- The output path is checked before any work, and nothing is recorded unless
  the signed PDF is in place.
- Personal data of case entities is printed only when asked for, and only on
  the pages: the bundle and the events hold the salted commitments alone.
- `verify_dossier` needs only the PDF: no store, no network; it never raises on
  a damaged or hostile file, and keeps pypdf's own log lines and warnings quiet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody import files
from custody.attachments import blob_path
from custody.domain import EventRecord, EventType
from custody.dossier.bundle import (
    build_bundle,
    bundle_shape_problems,
    encode_bundle,
    verify_bundle,
)
from custody.dossier.case import (
    Attachment,
    CaseFile,
    IssuedDossier,
    ReportDetails,
    collect_case,
)
from custody.dossier.render import DossierContent, EntityEntry, ItemEntry, render_dossier
from custody.errors import CustodyError, InvalidInput
from custody.events import Draft, Signer, Writer, check_permission, event_time
from custody.findings import Finding, VerifyReport
from custody.records import item_sort_key
from custody.state import replay
from custody.store import Store
from custody.timeutil import now_utc, to_utc_text
from custody.trust import TrustEntry, TrustVerdict
from custody.verify import verify

BUNDLE_NAME = "case-bundle.json"
QR_PREFIX = "CUSTODY-DOSSIER/1"

Progress = Callable[[str], None]


class DossierRefused(CustodyError):
    """Verification found problems and the build was not told to go ahead."""


@dataclass
class DossierResult:
    report_id: str
    path: Path
    bundle_hash: str
    pdf_sha256: str
    pages: int
    amendment: int
    supersedes: str | None
    findings: list[Finding] = field(default_factory=list)


def prepare_content(
    store: Store,
    case: CaseFile,
    *,
    report: ReportDetails,
    verification: VerifyReport,
    bundle_hash: str,
    personal_data: bool = False,
) -> DossierContent:
    """What the renderer shows: items in number order with their chains, state and analyses,
    and the case entities (with their checked personal data only when `personal_data`)."""
    chains: dict[str, list[EventRecord]] = {}
    for ev in case.events:
        chains.setdefault(ev.chain, []).append(ev)
    attachments: dict[int, list[Attachment]] = {}
    for a in case.attachments:
        attachments.setdefault(a.event, []).append(a)
    analyses = {a.event.id: a for a in case.analyses}
    items = []
    for row in sorted(case.items, key=lambda i: item_sort_key(i.id)):
        item = case.item(row)
        chain = sorted(chains.get(item.id, []), key=lambda e: e.seq)
        items.append(
            ItemEntry(
                item=item,
                state=replay(item.id, chain),
                events=tuple(chain),
                attachments=tuple(a for e in chain for a in attachments.get(e.id, [])),
                analyses=tuple(analyses[e.id] for e in chain if e.id in analyses),
            )
        )
    problems: dict[int, list[str]] = {}
    for f in verification.findings:
        if f.event is not None:
            problems.setdefault(f.event, []).append(f.kind)

    def photo_path(sha: str) -> Path | None:
        path = blob_path(store.attachments_dir, sha)
        return path if path.exists() else None

    return DossierContent(
        report=report,
        agency=case.agency,
        case=case.case,
        items=tuple(items),
        actors={a.handle: a for a in case.actors},
        verification=verification,
        attachments=case.attachments,
        bundle_hash=bundle_hash,
        qr_text=f"{QR_PREFIX} {report.report_id} {bundle_hash}",
        photo_path=photo_path,
        event_problems=problems,
        entities=_entity_entries(store, case, personal_data=personal_data),
        personal_data=personal_data,
    )


def _entity_entries(
    store: Store, case: CaseFile, *, personal_data: bool
) -> tuple[EntityEntry, ...]:
    """The case entities; their personal data is read (and checked against the signed
    commitments) only when it is to be printed. It goes to the renderer alone: the
    bundle is encoded from the case file, which holds commitments only."""
    entities = case.entities
    if not personal_data:
        return tuple(EntityEntry(entity=e) for e in entities)
    from custody.entities import checked_nominal

    data, problems = checked_nominal(store, entities)
    return tuple(
        EntityEntry(entity=e, nominal=data.get(e.id), problem=problems.get(e.id, ""))
        for e in entities
    )


def _places(case: CaseFile) -> list[str]:
    """Where the work was done: places of seizure, then every location events name."""
    seen: list[str] = []
    for row in case.items:
        place = case.item(row).place
        if place and place not in seen:
            seen.append(place)
    for ev in case.events:
        loc = ev.data.get("location")
        if loc and loc not in seen:
            seen.append(loc)
    return seen


def _changes(case: CaseFile, since_event: int) -> list[str]:
    lines = [
        f"event {ev.id} ({_short(ev.at)}): {ev.type} on {ev.subject} by {ev.actor}"
        for ev in case.events
        if ev.id > since_event and ev.type != EventType.DOSSIER_ISSUE
    ]
    return lines or [
        "no custody events since the previous issue; reissued without changes to the record"
    ]


def _short(utc: str) -> str:
    return utc.replace("T", " ")[:16] + " UTC"


def embed_files(
    pdf_in: Path, pdf_out: Path, *, files: dict[str, bytes], metadata: dict[str, str]
) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(pdf_in))
    for name, data in files.items():
        writer.add_attachment(name, data)
    writer.add_metadata(metadata)
    with pdf_out.open("wb") as fh:
        writer.write(fh)


def check_output_path(
    out: Path, *, issued_hashes: Mapping[str, str] | None = None, force: bool = False
) -> None:
    """Refuse, before any work, an output path the PDF cannot or must not be written to.

    An existing file is never replaced unless `force`, and an issued dossier (one this
    store recorded, or any PDF carrying a custody report ID) never is.
    """
    files.check_output(out, what="dossier", force=True)  # folder, links, kind of file
    if out.exists():
        issued = _issued_dossier_id(out, issued_hashes or {})
        if issued:
            raise InvalidInput(
                f"{out} is the issued dossier {issued}; an issued dossier is never replaced, "
                "so choose another file name."
            )
        if not force:
            raise InvalidInput(
                f"{out} exists already; choose another file name, or pass --force to replace it "
                "(issued dossiers are never replaced)."
            )


def _issued_dossier_id(path: Path, issued_hashes: Mapping[str, str]) -> str | None:
    """The report ID of an issued dossier at `path`, None for any other file."""
    data = path.read_bytes() if path.is_file() else b""
    known = issued_hashes.get("sha256:" + hashlib.sha256(data).hexdigest())
    if known:
        return known
    marker = data.find(b"/CustodyReportID")
    if marker < 0:
        return None
    try:
        from pypdf import PdfReader

        meta: Mapping[str, Any] = PdfReader(path).metadata or {}
        return str(meta.get("/CustodyReportID") or path.name)
    except Exception:  # a damaged PDF that names a report is still treated as issued
        return path.name


def _unplace(staged: Path, out: Path) -> None:
    """Remove `out` only if it is the file this build placed (a hard link of `staged`)."""
    try:
        if os.path.samefile(staged, out):
            out.unlink()
    except OSError:
        pass


def _place(staged: Path, out: Path, *, force: bool) -> None:
    """Put the finished PDF at `out` without ever replacing an issued dossier: a hard
    link creates the name only if it is free (atomic); `force` first removes a file
    that `check_output_path` found not to be a dossier."""
    if force and out.exists() and not out.is_symlink():
        out.unlink()
    try:
        os.link(staged, out)
    except FileExistsError:
        raise InvalidInput(
            f"{out} appeared while the dossier was being made; nothing was issued — "
            "choose another file name."
        ) from None
    except OSError as exc:
        raise InvalidInput(
            f"The dossier cannot be written to {out} ({exc.strerror}); choose another output path."
        ) from None


def _issued(store: Store, case_no: str | None = None) -> list[IssuedDossier]:
    """Dossiers issued (of one case, or of the whole store), oldest first."""
    from sqlalchemy import text

    sql = "SELECT data FROM events WHERE type = :t"
    params = {"t": str(EventType.DOSSIER_ISSUE)}
    if case_no is not None:
        sql, params = sql + " AND case_no = :c", {**params, "c": case_no}
    with store.engine.connect() as conn:
        data = conn.execute(text(sql + " ORDER BY id"), params).scalars()
        return [IssuedDossier.from_data(json.loads(d)) for d in data]


def _issued_hashes(store: Store) -> dict[str, str]:
    """PDF hash -> report ID of every dossier this store issued."""
    return {d.pdf_sha256: d.report_id for d in _issued(store)}


@dataclass(frozen=True)
class IssueRecord:
    """An issued dossier with when and by whom it was issued."""

    dossier: IssuedDossier
    at: str
    by: str


def issued_dossiers(store: Store, case_no: str) -> list[IssueRecord]:
    """The dossiers issued for a case, oldest first (what `case show` lists)."""
    from sqlalchemy import text

    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT data, at, actor FROM events WHERE type = :t AND case_no = :c ORDER BY id"),
            {"t": str(EventType.DOSSIER_ISSUE), "c": case_no},
        ).all()
    return [IssueRecord(IssuedDossier.from_data(json.loads(d)), at, by) for d, at, by in rows]


def _check_reason(case_no: str, reason: str, issued: list[str]) -> None:
    if issued and not reason:
        raise InvalidInput(
            f"Case {case_no} already has dossier {issued[-1]}, so this one is an amendment; "
            f"say what changed and why with --reason."
        )
    if reason and not issued:
        raise InvalidInput(
            f"Case {case_no} has no dossier yet, so this is the original issue; "
            f"--reason is only for amendments, drop it."
        )


def build_dossier(
    store: Store,
    *,
    case_no: str,
    out: Path,
    signer: Signer,
    prepared_for: str = "",
    reason: str = "",
    allow_findings: bool = False,
    force: bool = False,
    personal_data: bool = False,
    progress: Progress | None = None,
) -> DossierResult:
    """Verify, render, embed, sign and record a dossier for `case_no`.

    `reason` says what changed and why; it is required for an amendment (when
    the case already has a dossier) and refused for the original issue.
    `personal_data` prints the case entities' personal data in the PDF's pages (never
    in its bundle); the issue event records that it did, as a disclosure.
    """
    say = progress or (lambda _m: None)
    check_permission(signer.actor, EventType.DOSSIER_ISSUE)
    out = Path(out)
    issued_before = _issued(store, case_no)
    check_output_path(out, issued_hashes=_issued_hashes(store), force=force)
    reason = reason.strip()
    _check_reason(case_no, reason, [d.report_id for d in issued_before])
    say("verifying the case")
    verification = _verified(store, case_no=case_no, allow_findings=allow_findings)
    case = collect_case(store, case_no, also_actors=(signer.actor.handle,))
    # Another issue may have been recorded since the early check.
    _check_reason(case_no, reason, [d.report_id for d in case.issued])
    report = _report_details(case, signer=signer, prepared_for=prepared_for, reason=reason)
    bundle = build_bundle(case, report=report, verification=verification)
    bundle["trust"] = _trust_section(store)
    data, bundle_hash = encode_bundle(bundle)
    say("rendering the PDF")
    content = prepare_content(
        store,
        case,
        report=report,
        verification=verification,
        bundle_hash=bundle_hash,
        personal_data=personal_data,
    )
    staged = out.with_name(f".{out.name[:60]}.{uuid.uuid4().hex[:8]}.staged.pdf")
    try:
        pages = _write_pdf(store, content, out=staged, bundle=data, signer=signer, say=say)
        pdf_sha = "sha256:" + hashlib.sha256(staged.read_bytes()).hexdigest()
        issue = IssuedDossier(
            report_id=report.report_id,
            amendment=report.amendment,
            supersedes=report.supersedes,
            bundle_hash=bundle_hash,
            pdf_sha256=pdf_sha,
            pages=pages,
            prepared_for=prepared_for,
            reason=reason,
            last_event=case.last_event,
            findings=len(verification.findings),
            personal_data=personal_data,
        )
        # The issue is recorded and the file placed in one transaction: the record
        # commits only once the file stands under its name, and the file is removed
        # again if the record cannot commit, so either both exist or neither does.
        _record_issue(
            store,
            case_no=case_no,
            signer=signer,
            issue=issue,
            place=lambda: _place(staged, out, force=force),
            unplace=lambda: _unplace(staged, out),
        )
    finally:
        staged.unlink(missing_ok=True)
    return DossierResult(
        report_id=report.report_id,
        path=out,
        bundle_hash=bundle_hash,
        pdf_sha256=pdf_sha,
        pages=pages,
        amendment=report.amendment,
        supersedes=report.supersedes,
        findings=verification.findings,
    )


def _trust_section(store: Store) -> dict[str, Any]:
    """The certificates and roots a reader needs to check the signers against a trust list."""
    from custody.trust import trust_section

    with store.read() as session:
        return trust_section(session)


def _verified(store: Store, *, case_no: str, allow_findings: bool) -> VerifyReport:
    """A fresh verification of the case; refused when it finds problems, unless allowed."""
    report = verify(store, case_no=case_no)
    if report.findings and not allow_findings:
        first = report.findings[0]
        raise DossierRefused(
            f"Verification of case {case_no} found {len(report.findings)} problem(s), the first: "
            f"{first.message} Fix them, or pass --allow-findings to print them in the dossier."
        )
    return report


def _report_details(
    case: CaseFile, *, signer: Signer, prepared_for: str, reason: str
) -> ReportDetails:
    """This issue's number, what it supersedes, and what changed since the previous one."""
    number = len(case.issued) + 1
    previous = case.issued[-1] if case.issued else None
    return ReportDetails(
        report_id=f"{case.case.case_no}-R{number}",
        version=number,
        amendment=number - 1,
        supersedes=previous.report_id if previous else None,
        original=case.issued[0].report_id if case.issued else None,
        issued_at=to_utc_text(now_utc()),
        issued_by=signer.actor.handle,
        prepared_for=prepared_for,
        reason=reason,
        places=tuple(_places(case)),
        changes=tuple(_changes(case, previous.last_event)) if previous else (),
    )


def _write_pdf(
    store: Store,
    content: DossierContent,
    *,
    out: Path,
    bundle: bytes,
    signer: Signer,
    say: Progress,
) -> int:
    """Render, embed the bundle and attachments, sign, then move the PDF into place.

    Returns the number of pages; `out` appears only once the signed PDF is complete.
    """
    report_id = content.report.report_id
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        draft = Path(tmp) / "draft.pdf"
        pages = render_dossier(content, draft)
        files = {BUNDLE_NAME: bundle}
        for entry in content.attachments:
            path = blob_path(store.attachments_dir, entry.sha256)
            if path.exists():
                files[attachment_file_name(entry.sha256, entry.name)] = path.read_bytes()
        embedded = Path(tmp) / "embedded.pdf"
        embed_files(
            draft,
            embedded,
            files=files,
            metadata={"/CustodyReportID": report_id, "/CustodyBundleSHA256": content.bundle_hash},
        )
        say("signing the PDF")
        signed = Path(tmp) / "signed.pdf"
        _sign(store, embedded, signed, content=content, signer=signer)
        os.replace(signed, out)
    return pages


def _issued_certificate(store: Store, signer: Signer) -> Any:
    """The signer's X.509 certificate issued by the agency root as CA, if the trust log has one."""
    from cryptography import x509

    from custody.trust import actor_x509

    with store.read() as session:
        pem = actor_x509(session, signer.actor.handle, signer.key.fingerprint)
    return x509.load_pem_x509_certificate(pem.encode("ascii")) if pem else None


def _sign(
    store: Store, pdf_in: Path, pdf_out: Path, *, content: DossierContent, signer: Signer
) -> None:
    """Sign with the issuing actor's key, under a certificate naming them and their agency."""
    from custody.dossier.signing import actor_certificate, sign_pdf

    agency = content.agency
    actor = signer.actor
    cert = _issued_certificate(store, signer) or actor_certificate(
        private_key=signer.key.private,
        name=actor.name,
        handle=actor.handle,
        role=actor.role,
        agency=(agency.name if agency else "") or (actor.agency_code or "custody"),
        country=agency.country if agency else "",
        badge=actor.badge,
    )
    sign_pdf(
        pdf_in=pdf_in,
        pdf_out=pdf_out,
        private_key=signer.key.private,
        certificate=cert,
        reason=f"Issue of evidence dossier {content.report.report_id}",
        location=agency.name if agency else "",
    )


def _record_issue(
    store: Store,
    *,
    case_no: str,
    signer: Signer,
    issue: IssuedDossier,
    place: Callable[[], None],
    unplace: Callable[[], None],
) -> None:
    when = event_time(None)
    try:
        with store.write() as session:
            writer = Writer(session)
            draft = Draft(
                chain=f"case:{case_no}",
                case_no=case_no,
                type=EventType.DOSSIER_ISSUE,
                data=issue.to_data(),
                at=when,
            )
            writer.append(draft, signer=signer)
            writer.finish()
            place()
    except BaseException:
        unplace()
        raise


@dataclass
class DossierCheck:
    path: Path
    report_id: str | None = None
    bundle_hash: str | None = None
    events: int = 0
    problems: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    signature: dict[str, str | bool | None] = field(default_factory=dict)
    trust: TrustVerdict | None = None  # with a trust list: do all signers chain to its roots?
    bundle: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def valid(self) -> bool:
        return not self.problems and not self.findings

    @property
    def verdict(self) -> str:
        """VALID without a trust list; TRUSTED, NOT TRUSTED or NOT VALID with one."""
        if not self.valid:
            return "NOT VALID"
        if self.trust is None:
            return "VALID"
        return "TRUSTED" if self.trust.trusted else "NOT TRUSTED"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "valid": self.valid,
            "report_id": self.report_id,
            "bundle_hash": self.bundle_hash,
            "events_verified": self.events,
            "problems": self.problems,
            "findings": [f.to_dict() for f in self.findings],
            "signature": self.signature,
            "verdict": self.verdict,
            "trust": self.trust.to_dict() if self.trust else None,
        }


@contextmanager
def _quiet_pdf_readers() -> Iterator[None]:
    """Silence pypdf's (and pyHanko's) own log lines and warnings about a damaged file.

    Every problem they would mention is reported as one of our sentences instead.
    """
    # Their modules log to child loggers ("pypdf._reader"), which take the parent's level.
    loggers = [logging.getLogger(name) for name in ("pypdf", "pyhanko", "pyhanko_certvalidator")]
    saved = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, saved, strict=True):
            lg.setLevel(level)


def verify_dossier(path: Path, *, trust: Sequence[TrustEntry] | None = None) -> DossierCheck:
    """Check a dossier PDF offline: bundle, chains, signatures, printed hash, PDF signature.

    With `trust` (agencies' trust entries kept outside any store), also whether every
    signer, the PDF's included, chains to one of their roots (`check.verdict`).

    Never raises on a damaged or hostile file: every problem is a sentence in
    `problems` (or a finding of the bundle's chains).
    """
    check = DossierCheck(path=Path(path))
    if not check.path.is_file():
        from custody.errors import NotFound

        raise NotFound(f"The dossier {path} does not exist; check the path.")
    with _quiet_pdf_readers():
        _check_dossier(check)
    if trust is not None and check.valid and check.bundle is not None:
        from custody.trust import judge_bundle

        sig = check.signature
        pdf_signer = (
            [
                (
                    str(check.bundle["report"].get("issued_by")),
                    str(sig["signer_fingerprint"]),
                    str(sig.get("signing_time") or ""),
                )
            ]
            if sig.get("signer_fingerprint")
            else []
        )
        check.trust = judge_bundle(check.bundle, trust, extra_signers=pdf_signer)
    return check


def attachment_file_name(sha256: str, name: str) -> str:
    """The name an attachment is embedded under in the PDF."""
    return f"attachment-{sha256.removeprefix('sha256:')[:16]}-{name}"


def _read_bundle(data: bytes, check: DossierCheck) -> dict[str, Any] | None:
    """The embedded bundle when it is well-formed JSON; else None, with the problems noted."""
    try:
        bundle = json.loads(data)
    except (ValueError, RecursionError):
        check.problems.append("The embedded bundle is not valid JSON.")
        return None
    shape = bundle_shape_problems(bundle)
    if shape:
        check.problems.extend(shape)
        return None
    return dict(bundle)


@dataclass(frozen=True)
class _PdfParts:
    """What the check reads from the PDF: embedded files, metadata and printed text."""

    attachments: dict[str, bytes]
    metadata: dict[str, str]
    first_page: str
    text: str  # the first page and the last two


def _read_pdf(check: DossierCheck) -> _PdfParts | None:
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(check.path))
        attachments = {str(name): parts[0] for name, parts in reader.attachments.items()}
        meta = {str(k): str(v or "") for k, v in (reader.metadata or {}).items()}
        first_page = reader.pages[0].extract_text() or ""
        text = first_page + "".join((p.extract_text() or "") for p in reader.pages[-2:])
    except Exception as exc:  # pypdf raises many kinds of error on a hostile file
        check.problems.append(
            f"The file is not a readable PDF ({exc.__class__.__name__}); it may be truncated or corrupt."
        )
        return None
    return _PdfParts(attachments, meta, first_page, text)


def _check_dossier(check: DossierCheck) -> None:
    pdf = _read_pdf(check)
    if pdf is None:
        return
    check.report_id = pdf.metadata.get("/CustodyReportID") or None
    data = pdf.attachments.get(BUNDLE_NAME)
    if not isinstance(data, bytes):
        check.problems.append(
            f"The PDF carries no embedded {BUNDLE_NAME}; it is not a custody dossier or the bundle was removed."
        )
        return
    check.bundle_hash = "sha256:" + hashlib.sha256(data).hexdigest()
    _check_printed(check, pdf)
    bundle = _read_bundle(data, check)
    check.bundle = bundle
    if bundle is not None:
        result = verify_bundle(bundle)
        check.findings = result.findings
        check.events = result.events
        _check_attachments(check, bundle=bundle, embedded=pdf.attachments)
    _check_signature(check, bundle)


def _check_printed(check: DossierCheck, pdf: _PdfParts) -> None:
    """The bundle hash in the metadata and on the first page, the report ID on the pages."""
    bundle_hash = check.bundle_hash or ""
    if pdf.metadata.get("/CustodyBundleSHA256", "") != bundle_hash:
        check.problems.append(
            "The embedded bundle's SHA-256 differs from the hash recorded in the PDF: the bundle was changed."
        )
    flat = "".join(pdf.first_page.split())
    if bundle_hash.removeprefix("sha256:") not in flat:
        check.problems.append(
            "The bundle hash printed on the first page does not match the embedded bundle."
        )
    if check.report_id and check.report_id not in pdf.text:
        check.problems.append(
            f"The report ID {check.report_id} is not printed on the report's pages."
        )


def _check_attachments(
    check: DossierCheck, *, bundle: dict[str, Any], embedded: dict[str, bytes]
) -> None:
    for entry in bundle["attachments"]:
        blob = embedded.get(attachment_file_name(entry["sha256"], entry["name"]))
        if blob is None:
            check.problems.append(
                f"Attachment {entry['name']} listed in the bundle is not embedded in the PDF."
            )
        elif "sha256:" + hashlib.sha256(blob).hexdigest() != entry["sha256"]:
            check.problems.append(
                f"Embedded attachment {entry['name']} does not match its recorded SHA-256."
            )


def _check_signature(check: DossierCheck, bundle: dict[str, Any] | None) -> None:
    """The PDF signature covers the whole file and is by the issuing actor's registered key."""
    from custody.dossier.signing import verify_pdf_signature

    sig = verify_pdf_signature(check.path)
    check.signature = {
        "signed": sig.signed,
        "intact": sig.intact,
        "covers_whole_file": sig.covers_whole_file,
        "signer": sig.signer_name,
        "signer_fingerprint": sig.signer_fingerprint,
        "signing_time": sig.signing_time,
    }
    check.problems.extend(sig.problems)
    if sig.signed and not sig.intact and not sig.problems:
        check.problems.append(
            "The PDF signature does not verify: the file was changed after signing."
        )
    if sig.signed and not sig.covers_whole_file and not sig.problems:
        check.problems.append(
            "The PDF signature does not cover the whole file: bytes were added after signing."
        )
    if not sig.signed and not sig.problems:
        check.problems.append("The PDF carries no digital signature.")
    if bundle is None:
        return  # without a well-formed bundle there is no issuing actor to compare with
    issuer = bundle["report"].get("issued_by")
    keys = {a["handle"]: a["key_fingerprint"] for a in bundle["actors"]}
    if sig.signer_fingerprint and keys.get(issuer or "") != sig.signer_fingerprint:
        check.problems.append(
            f"The PDF was signed by key {sig.signer_fingerprint[:16]}…, not by the issuing actor '{issuer}''s registered key."
        )
