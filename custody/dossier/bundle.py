"""The machine-readable case bundle embedded in every dossier, and its offline check.

Invariants:
- The bundle holds everything needed to re-verify the case without the store:
  the case and item rows, every event of the case's chains with its
  signatures and log links, the registered actors (public keys and their
  self-signed registrations), the agencies, and the attachment manifest.
- Its bytes are the canonical JSON encoding; its hash is "sha256:<hex>" over
  those bytes. The hash is printed in the dossier, put in its QR code and
  recorded in the case's `dossier-issue` event.
- It is encoded from the typed `CaseFile` (custody.dossier.case), whose records
  give back the stored columns unchanged; this module is the JSON edge.
- `verify_bundle` uses the same chain checks as store verification. A bundle
  read from a PDF is hostile input: its shape is checked first
  (`bundle_shape_problems`), so a malformed one yields sentences, never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from custody.canonical import canonical_json, sha256_hex
from custody.domain import ORIGIN_FIELDS, EventRecord, FindingKind
from custody.dossier.case import CaseFile, ReportDetails
from custody.findings import Finding, VerifyReport
from custody.registrations import ACTOR_FIELDS, actor_keys
from custody.verify import verify_chains

BUNDLE_FORMAT = "custody-case-bundle/1"
MAX_SHAPE_PROBLEMS = 10

# JSON types each field must have; verification reads these fields and nothing else.
_STR, _INT, _OPT_STR = (str,), (int,), (str, type(None))
EVENT_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": _INT, "chain": _STR, "seq": _INT, "item_id": _OPT_STR, "case_no": _STR, "type": _STR,
    "at": _STR, "recorded_at": _STR, "actor": _STR, "actor_key": _STR, "counterparty": _OPT_STR,
    "witness": _OPT_STR, "data": _STR, "prev_hash": _OPT_STR, "hash": _STR, "signatures": _STR,
    "log_prev": _OPT_STR, "log_hash": _OPT_STR, "origin_id": (int, type(None)),
    "origin_store": _OPT_STR,
}  # fmt: skip
#: Fields a bundle written before they existed lacks (events imported from another store).
OPTIONAL_FIELDS = frozenset(ORIGIN_FIELDS)
ACTOR_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "handle": _STR, "name": _STR, "role": _STR, "badge": _OPT_STR, "agency_code": _OPT_STR,
    "public_key": _STR, "key_fingerprint": _STR, "created_at": _STR,
    "registration_signature": _STR,
}  # fmt: skip
ATTACHMENT_FIELD_TYPES: dict[str, tuple[type, ...]] = {"name": _STR, "sha256": _STR}
SIGNATURE_FIELDS = ("role", "handle", "key", "sig")


def build_bundle(
    case: CaseFile, *, report: ReportDetails, verification: VerifyReport
) -> dict[str, Any]:
    """The bundle of `case` as JSON-ready values (the stored columns, unchanged)."""
    return {
        "format": BUNDLE_FORMAT,
        "report": report.to_bundle(),
        "store_id": case.store_id,
        "case": case.case.columns(),
        "agencies": [a.columns() for a in case.agencies],
        "actors": [a.columns() for a in case.actors],
        "items": [i.columns() for i in case.items],
        "events": [e.columns() for e in case.events],
        "attachments": [a.columns() for a in case.attachments],
        "verification": verification.to_dict(),
    }


def encode_bundle(bundle: dict[str, Any]) -> tuple[bytes, str]:
    data = canonical_json(bundle)
    return data, sha256_hex(data)


@dataclass
class BundleCheck:
    findings: list[Finding] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)
    events: int = 0

    @property
    def intact(self) -> bool:
        return not self.findings


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return type(value).__name__


def _wanted(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", type(None): "null", dict: "an object"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _fits(value: Any, types: tuple[type, ...]) -> bool:
    # JSON true/false is not an integer, whatever Python thinks.
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _check_fields(
    record: Any, where: str, types: dict[str, tuple[type, ...]], out: list[str]
) -> bool:
    """Append a sentence for each missing or mistyped field; True when the record is usable."""
    if not isinstance(record, dict):
        out.append(f"In the embedded bundle, {where} is {_json_type(record)}, not an object.")
        return False
    ok = True
    for name, allowed in types.items():
        if name not in record and name in OPTIONAL_FIELDS:
            continue
        if name not in record:
            out.append(f"In the embedded bundle, {where} lacks the field '{name}'.")
            ok = False
        elif not _fits(record[name], allowed):
            out.append(
                f"In the embedded bundle, {where}.{name} is {_json_type(record[name])}, "
                f"not {_wanted(allowed)}."
            )
            ok = False
    return ok


def _list_of(bundle: dict[str, Any], key: str, out: list[str]) -> list[Any]:
    value = bundle.get(key)
    if key not in bundle:
        out.append(f"The embedded bundle lacks its '{key}' section.")
        return []
    if not isinstance(value, list):
        out.append(f"In the embedded bundle, '{key}' is {_json_type(value)}, not a list.")
        return []
    return value


_UNREADABLE = object()


def _parsed(text_value: str) -> Any:
    try:
        return json.loads(text_value)
    except (ValueError, RecursionError):
        return _UNREADABLE


def _check_event_texts(event: dict[str, Any], where: str, out: list[str]) -> None:
    """The JSON held in an event's data and signatures columns, as far as checks read it."""
    data = _parsed(event["data"])
    if not isinstance(data, dict):
        out.append(f"In the embedded bundle, {where}.data does not hold a JSON object.")
    else:
        for key in ("item", "case"):
            if key in data and not isinstance(data[key], dict):
                out.append(
                    f"In the embedded bundle, {where}.data '{key}' is "
                    f"{_json_type(data[key])}, not an object."
                )
        agency = data.get("agency")
        if agency and not (isinstance(agency, dict) and isinstance(agency.get("code"), str)):
            out.append(
                f"In the embedded bundle, {where}.data 'agency' is not an object with a code."
            )
    sigs = _parsed(event["signatures"])
    if not isinstance(sigs, list) or not all(
        isinstance(s, dict) and all(isinstance(s.get(f, ""), str) for f in SIGNATURE_FIELDS)
        for s in sigs
    ):
        out.append(
            f"In the embedded bundle, {where}.signatures does not hold a list of signature objects."
        )


def bundle_shape_problems(bundle: Any) -> list[str]:
    """Sentences naming each way `bundle` departs from the bundle format; empty when well formed.

    Only the shape is checked (sections, field presence and JSON types), which is
    what the chain checks need to run without failing; content is theirs to judge.
    """
    if not isinstance(bundle, dict):
        return [f"The embedded bundle is {_json_type(bundle)}, not a JSON object."]
    if bundle.get("format") != BUNDLE_FORMAT:
        return [f"The embedded bundle is not a {BUNDLE_FORMAT} document."]
    out: list[str] = []
    for key in ("report", "case", "verification"):
        if key not in bundle:
            out.append(f"The embedded bundle lacks its '{key}' section.")
        elif not isinstance(bundle[key], dict):
            out.append(
                f"In the embedded bundle, '{key}' is {_json_type(bundle[key])}, not an object."
            )
    if isinstance(bundle.get("report"), dict):
        _check_fields(bundle["report"], "report", {"issued_by": _STR}, out)
    if isinstance(bundle.get("case"), dict):
        _check_fields(bundle["case"], "case", {"case_no": _STR}, out)
    verification = bundle.get("verification")
    heads = verification.get("heads", {}) if isinstance(verification, dict) else {}
    if not isinstance(heads, dict) or not all(isinstance(h, str) for h in heads.values()):
        out.append("In the embedded bundle, verification.heads is not an object of chain hashes.")
    for n, agency in enumerate(_list_of(bundle, "agencies", out)):
        _check_fields(agency, f"agencies[{n}]", {"code": _STR}, out)
    for n, actor in enumerate(_list_of(bundle, "actors", out)):
        _check_fields(actor, f"actors[{n}]", ACTOR_FIELD_TYPES, out)
    for n, item in enumerate(_list_of(bundle, "items", out)):
        _check_fields(item, f"items[{n}]", {"id": _STR}, out)
    for n, event in enumerate(_list_of(bundle, "events", out)):
        if _check_fields(event, f"events[{n}]", EVENT_FIELD_TYPES, out):
            _check_event_texts(event, f"events[{n}]", out)
    for n, entry in enumerate(_list_of(bundle, "attachments", out)):
        _check_fields(entry, f"attachments[{n}]", ATTACHMENT_FIELD_TYPES, out)
    if len(out) > MAX_SHAPE_PROBLEMS:
        more = len(out) - MAX_SHAPE_PROBLEMS
        out = [
            *out[:MAX_SHAPE_PROBLEMS],
            f"The embedded bundle has {more} further problem(s) of shape, not listed.",
        ]
    return out


def verify_bundle(bundle: Any) -> BundleCheck:
    """Re-verify every chain, signature, item and case row in a bundle, offline.

    Never raises on a malformed bundle: each problem of shape is a finding.
    """
    check = BundleCheck()
    shape = bundle_shape_problems(bundle)
    if shape:
        check.findings.extend(Finding("bundle", None, FindingKind.ALTERED, s) for s in shape)
        return check
    try:
        _verify_well_formed(bundle, check)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        # The shape check covers what the chain checks read; this is the backstop
        # for a hostile bundle that still finds a corner of them.
        check.findings = [
            Finding(
                "bundle",
                None,
                FindingKind.ALTERED,
                f"The embedded bundle is malformed ({exc.__class__.__name__}) and cannot be checked.",
            )
        ]
    return check


def _roles(bundle: dict[str, Any]) -> Any:
    """Actors' roles at each event: from the bundle's certificates (role changes), else rows."""
    from custody.trust import RoleBook, Root, build_index

    rows = {a["handle"]: a["role"] for a in bundle["actors"]}
    section = bundle.get("trust")
    if not isinstance(section, dict) or not isinstance(section.get("roots"), list):
        return rows
    roots = {
        str(r.get("fingerprint")): Root(
            str(r.get("agency")), str(r.get("public_key")), str(r.get("fingerprint"))
        )
        for r in section["roots"]
        if isinstance(r, dict)
    }
    certs = section.get("certificates")
    docs = [c for c in certs if isinstance(c, dict)] if isinstance(certs, list) else []
    index, _ = build_index(docs, roots)
    return RoleBook(rows, index)


def _verify_well_formed(bundle: dict[str, Any], check: BundleCheck) -> None:
    rows = [EventRecord.from_mapping(e) for e in bundle["events"]]
    keys, actor_findings = actor_keys({f: a[f] for f in ACTOR_FIELDS} for a in bundle["actors"])
    check.findings.extend(actor_findings)
    agencies = {a["code"]: a for a in bundle.get("agencies", [])}
    roles = _roles(bundle)
    if not isinstance(roles, dict):
        from custody.trust import with_earlier_keys

        with_earlier_keys(keys, roles.index)  # keys replaced by a rotation
    findings, check.heads = verify_chains(
        rows,
        keys,
        item_rows=bundle.get("items", []),
        case_rows=[bundle["case"]],
        agencies=agencies,
        roles=roles,
    )
    check.findings.extend(findings)
    check.events = len(rows)
    recorded_heads = bundle.get("verification", {}).get("heads", {})
    for chain, head in recorded_heads.items():
        if check.heads.get(chain) != head:
            check.findings.append(
                Finding(
                    chain,
                    None,
                    FindingKind.MISSING,
                    f"Chain {chain} in the bundle does not end at the head recorded at issue.",
                )
            )
    check.findings.sort(key=lambda f: (f.subject, f.event or 0, f.kind))
