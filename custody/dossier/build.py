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
- `verify_dossier` needs only the PDF: no store, no network; it never raises on
  a damaged or hostile file, and keeps pypdf's own log lines and warnings quiet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody.attachments import blob_path
from custody.domain import EventRecord, EventType
from custody.dossier.bundle import (
    build_bundle,
    bundle_shape_problems,
    collect_case,
    encode_bundle,
    verify_bundle,
)
from custody.dossier.render import DossierContent, render_dossier
from custody.errors import CustodyError, InvalidInput
from custody.events import Draft, Signer, Writer, check_permission, event_time
from custody.records import item_sort_key
from custody.state import replay
from custody.store import Store
from custody.timeutil import now_utc, to_utc_text
from custody.verify import Finding, verify

BUNDLE_NAME = "case-bundle.json"
QR_PREFIX = "CUSTODY-DOSSIER/1"


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


class _Row:
    """Attribute access over an event dict, for the state replay."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)


def _event_view(ev: dict[str, Any]) -> dict[str, Any]:
    return {**ev, "data": json.loads(ev["data"]), "signatures": json.loads(ev["signatures"])}


def signed_items(rows: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each item's record as signed in its creating (seize or sample) event, by item ID."""
    out: dict[str, dict[str, Any]] = {}
    for ev in rows["events"]:
        if ev["item_id"] and ev["seq"] == 1 and ev["type"] in ("seize", "sample"):
            record = json.loads(ev["data"]).get("item")
            if isinstance(record, dict) and record.get("id") == ev["item_id"]:
                out[ev["item_id"]] = record
    return out


def prepare_content(
    store: Store,
    rows: dict[str, Any],
    *,
    report: dict[str, Any],
    verification: dict[str, Any],
    findings: list[Finding],
    bundle: dict[str, Any],
    bundle_hash: str,
) -> DossierContent:
    events_by_chain: dict[str, list[dict[str, Any]]] = {}
    for ev in rows["events"]:
        events_by_chain.setdefault(ev["chain"], []).append(ev)
    # An item without a creating event is shown as its row says; verification
    # reports it as inserted outside custody.
    records = signed_items(rows)
    items = []
    for row in sorted(rows["items"], key=lambda i: item_sort_key(i["id"])):
        item = records.get(row["id"], row)
        chain = sorted(events_by_chain.get(item["id"], []), key=lambda e: e["seq"])
        state = replay(item["id"], [EventRecord.from_mapping(e) for e in chain])
        depth = item["id"].split("/", 1)[1].count(".") if "/" in item["id"] else 0
        items.append(
            {
                "item": item,
                "state": state.to_dict(),
                "events": [_event_view(e) for e in chain],
                "depth": depth,
            }
        )
    problems: dict[int, list[str]] = {}
    for f in findings:
        if f.event is not None:
            problems.setdefault(f.event, []).append(f.kind)
    agency: dict[str, Any] = next(
        (a for a in rows["agencies"] if a["code"] == rows["case"].get("agency_code")), {}
    )

    def photo_path(sha: str) -> Path | None:
        path = blob_path(store.attachments_dir, sha)
        return path if path.exists() else None

    return DossierContent(
        report=report,
        agency=agency,
        case=rows["case"],
        items=items,
        actors={a["handle"]: a for a in rows["actors"]},
        findings=[f.to_dict() for f in findings],
        verification=verification,
        attachments=bundle["attachments"],
        bundle_hash=bundle_hash,
        qr_text=f"{QR_PREFIX} {report['report_id']} {bundle_hash}",
        photo_path=photo_path,
        event_problems=problems,
    )


def _places(rows: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    records = signed_items(rows)
    for row in rows["items"]:
        item = records.get(row["id"], row)
        if item.get("place") and item["place"] not in seen:
            seen.append(item["place"])
    for ev in rows["events"]:
        loc = json.loads(ev["data"]).get("location")
        if loc and loc not in seen:
            seen.append(loc)
    return seen


def _changes(rows: dict[str, Any], since_event: int) -> list[str]:
    lines = []
    for ev in rows["events"]:
        if ev["id"] > since_event and ev["type"] != "dossier-issue":
            what = ev["item_id"] or ev["chain"]
            lines.append(
                f"event {ev['id']} ({_short(ev['at'])}): {ev['type']} on {what} by {ev['actor']}"
            )
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


def check_output_path(out: Path) -> None:
    """Refuse, before any work, an output path the PDF cannot be written to."""
    if out.is_dir():
        raise InvalidInput(
            f"The output path {out} is a folder; name the PDF file to write, e.g. {out / 'dossier.pdf'}."
        )
    parent = out.parent
    if not parent.is_dir():
        raise InvalidInput(
            f"The folder {parent} for the dossier {out.name} does not exist; create it first or choose another output path."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput(
            f"The folder {parent} is not writable, so the dossier {out.name} cannot be written there; choose another output path."
        )


def _issued_reports(store: Store, case_no: str) -> list[str]:
    """Report IDs of the case's earlier dossiers, oldest first."""
    from sqlalchemy import text

    with store.engine.connect() as conn:
        data = conn.execute(
            text(
                "SELECT data FROM events WHERE case_no = :c AND type = 'dossier-issue' ORDER BY id"
            ),
            {"c": case_no},
        ).scalars()
        return [str(json.loads(d).get("report_id")) for d in data]


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
    progress: Callable[[str], None] | None = None,
) -> DossierResult:
    """Verify, render, embed, sign and record a dossier for `case_no`.

    `reason` says what changed and why; it is required for an amendment (when
    the case already has a dossier) and refused for the original issue.
    """
    say = progress or (lambda _m: None)
    check_permission(signer.actor, EventType.DOSSIER_ISSUE)
    out = Path(out)
    check_output_path(out)
    reason = reason.strip()
    _check_reason(case_no, reason, _issued_reports(store, case_no))
    say("verifying the case")
    report = verify(store, case_no=case_no)
    if report.findings and not allow_findings:
        first = report.findings[0]
        raise DossierRefused(
            f"Verification of case {case_no} found {len(report.findings)} problem(s), the first: "
            f"{first.message} Fix them, or pass --allow-findings to print them in the dossier."
        )
    rows = collect_case(store, case_no, also_actors=(signer.actor.handle,))
    issues = [e for e in rows["events"] if e["type"] == "dossier-issue"]
    # Another issue may have been recorded since the early check.
    _check_reason(case_no, reason, [json.loads(e["data"])["report_id"] for e in issues])
    number = len(issues) + 1
    first_id = json.loads(issues[0]["data"])["report_id"] if issues else None
    previous = json.loads(issues[-1]["data"]) if issues else None
    report_id = f"{case_no}-R{number}"
    meta = {
        "report_id": report_id,
        "version": number,
        "amendment": number - 1,
        "supersedes": previous["report_id"] if previous else None,
        "original": first_id,
        "issued_at": to_utc_text(now_utc()),
        "issued_by": signer.actor.handle,
        "prepared_for": prepared_for,
        "reason": reason,
        "places": _places(rows),
        "changes": _changes(rows, previous["last_event"]) if previous else [],
    }
    verification = report.to_dict()
    bundle = build_bundle(rows, report=meta, verification=verification)
    data, bundle_hash = encode_bundle(bundle)
    say("rendering the PDF")
    content = prepare_content(
        store,
        rows,
        report=meta,
        verification=verification,
        findings=report.findings,
        bundle=bundle,
        bundle_hash=bundle_hash,
    )
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        draft = Path(tmp) / "draft.pdf"
        pages = render_dossier(content, draft)
        files = {BUNDLE_NAME: data}
        for entry in bundle["attachments"]:
            path = blob_path(store.attachments_dir, entry["sha256"])
            if path.exists():
                files[_attachment_name(entry)] = path.read_bytes()
        embedded = Path(tmp) / "embedded.pdf"
        embed_files(
            draft,
            embedded,
            files=files,
            metadata={"/CustodyReportID": report_id, "/CustodyBundleSHA256": bundle_hash},
        )
        say("signing the PDF")
        from custody.dossier.signing import actor_certificate, sign_pdf

        agency = content.agency
        cert = actor_certificate(
            private_key=signer.key.private,
            name=signer.actor.name,
            handle=signer.actor.handle,
            role=signer.actor.role,
            agency=agency.get("name") or (signer.actor.agency_code or "custody"),
            country=agency.get("country", ""),
            badge=signer.actor.badge,
        )
        signed = Path(tmp) / "signed.pdf"
        sign_pdf(
            pdf_in=embedded,
            pdf_out=signed,
            private_key=signer.key.private,
            certificate=cert,
            reason=f"Issue of evidence dossier {report_id}",
            location=agency.get("name", ""),
        )
        os.replace(signed, out)
    pdf_sha = "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    _record_issue(
        store,
        case_no=case_no,
        signer=signer,
        data={
            "report_id": report_id,
            "amendment": number - 1,
            "supersedes": meta["supersedes"],
            "bundle_hash": bundle_hash,
            "pdf_sha256": pdf_sha,
            "pages": pages,
            "prepared_for": prepared_for,
            "reason": reason,
            "last_event": max((e["id"] for e in rows["events"]), default=0),
            "findings": len(report.findings),
        },
    )
    return DossierResult(
        report_id=report_id,
        path=out,
        bundle_hash=bundle_hash,
        pdf_sha256=pdf_sha,
        pages=pages,
        amendment=number - 1,
        supersedes=previous["report_id"] if previous else None,
        findings=report.findings,
    )


def _record_issue(store: Store, *, case_no: str, signer: Signer, data: dict[str, Any]) -> None:
    when = event_time(None)
    with store.write() as session:
        writer = Writer(session)
        draft = Draft(
            chain=f"case:{case_no}",
            case_no=case_no,
            type=EventType.DOSSIER_ISSUE,
            data=data,
            at=when,
        )
        writer.append(draft, signer=signer)
        writer.finish()


@dataclass
class DossierCheck:
    path: Path
    report_id: str | None = None
    bundle_hash: str | None = None
    events: int = 0
    problems: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    signature: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.problems and not self.findings

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


def verify_dossier(path: Path) -> DossierCheck:
    """Check a dossier PDF offline: bundle, chains, signatures, printed hash, PDF signature.

    Never raises on a damaged or hostile file: every problem is a sentence in
    `problems` (or a finding of the bundle's chains).
    """
    check = DossierCheck(path=Path(path))
    if not check.path.is_file():
        from custody.errors import NotFound

        raise NotFound(f"The dossier {path} does not exist; check the path.")
    with _quiet_pdf_readers():
        _check_dossier(check)
    return check


def _attachment_name(entry: dict[str, Any]) -> str:
    return f"attachment-{entry['sha256'].removeprefix('sha256:')[:16]}-{entry['name']}"


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


def _check_dossier(check: DossierCheck) -> None:
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(check.path))
        attachments = {str(name): parts[0] for name, parts in reader.attachments.items()}
        meta: dict[str, Any] = dict(reader.metadata or {})
        first_page = reader.pages[0].extract_text() or ""
        all_text = first_page + "".join((p.extract_text() or "") for p in reader.pages[-2:])
    except Exception as exc:  # pypdf raises many kinds of error on a hostile file
        check.problems.append(
            f"The file is not a readable PDF ({exc.__class__.__name__}); it may be truncated or corrupt."
        )
        return
    check.report_id = str(meta.get("/CustodyReportID") or "") or None
    data = attachments.get(BUNDLE_NAME)
    if not isinstance(data, bytes):
        check.problems.append(
            f"The PDF carries no embedded {BUNDLE_NAME}; it is not a custody dossier or the bundle was removed."
        )
        return
    check.bundle_hash = "sha256:" + hashlib.sha256(data).hexdigest()
    printed = str(meta.get("/CustodyBundleSHA256") or "")
    if printed != check.bundle_hash:
        check.problems.append(
            "The embedded bundle's SHA-256 differs from the hash recorded in the PDF: the bundle was changed."
        )
    flat = "".join(first_page.split())
    if check.bundle_hash.removeprefix("sha256:") not in flat:
        check.problems.append(
            "The bundle hash printed on the first page does not match the embedded bundle."
        )
    if check.report_id and check.report_id not in all_text:
        check.problems.append(
            f"The report ID {check.report_id} is not printed on the report's pages."
        )
    bundle = _read_bundle(data, check)
    if bundle is not None:
        result = verify_bundle(bundle)
        check.findings = result.findings
        check.events = result.events
        for entry in bundle["attachments"]:
            blob = attachments.get(_attachment_name(entry))
            if blob is None:
                check.problems.append(
                    f"Attachment {entry['name']} listed in the bundle is not embedded in the PDF."
                )
            elif "sha256:" + hashlib.sha256(blob).hexdigest() != entry["sha256"]:
                check.problems.append(
                    f"Embedded attachment {entry['name']} does not match its recorded SHA-256."
                )
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
