"""The machine-readable case bundle embedded in every dossier, and its offline check.

Invariants:
- The bundle holds everything needed to re-verify the case without the store:
  the case and item rows, every event of the case's chains with its
  signatures and log links, the registered actors (public keys and their
  self-signed registrations), the agencies, and the attachment manifest.
- Its bytes are the canonical JSON encoding; its hash is "sha256:<hex>" over
  those bytes. The hash is printed in the dossier, put in its QR code and
  recorded in the case's `dossier-issue` event.
- `verify_bundle` uses the same chain checks as store verification.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from custody.canonical import canonical_json, sha256_hex
from custody.store import Store
from custody.verify import ACTOR_FIELDS, EVENT_FIELDS, Finding, actor_keys, verify_chains

BUNDLE_FORMAT = "custody-case-bundle/1"


def collect_case(
    store: Store, case_no: str, *, also_actors: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Rows of one case as plain dicts (case, items, events, actors, agencies)."""
    from custody.errors import NotFound

    with store.engine.connect() as conn, conn.begin():
        case = (
            conn.execute(text("SELECT * FROM cases WHERE case_no = :c"), {"c": case_no})
            .mappings()
            .first()
        )
        if case is None:
            raise NotFound(f"Case {case_no} does not exist; list cases with 'custody case list'.")
        items = [
            dict(r)
            for r in conn.execute(
                text("SELECT * FROM items WHERE case_no = :c"), {"c": case_no}
            ).mappings()
        ]
        events = [
            dict(r)
            for r in conn.execute(
                text(
                    f"SELECT {', '.join(EVENT_FIELDS)} FROM events WHERE case_no = :c ORDER BY id"
                ),
                {"c": case_no},
            ).mappings()
        ]
        actors = [
            dict(r)
            for r in conn.execute(text(f"SELECT {', '.join(ACTOR_FIELDS)} FROM actors")).mappings()
        ]
        agencies = [dict(r) for r in conn.execute(text("SELECT * FROM agencies")).mappings()]
        meta: dict[str, str] = {
            str(k): str(v)
            for k, v in conn.exec_driver_sql("SELECT key, value FROM store_meta").all()
        }
    involved = (
        set(also_actors)
        | {e["actor"] for e in events}
        | {e["counterparty"] for e in events}
        | {e["witness"] for e in events}
    )
    return {
        "case": dict(case),
        "items": items,
        "events": events,
        "actors": [a for a in actors if a["handle"] in involved],
        "agencies": [
            a
            for a in agencies
            if a["code"] in {case["agency_code"]} | {x["agency_code"] for x in actors}
        ],
        "store_id": meta.get("store_id", ""),
    }


def attachment_manifest(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for ev in events:
        data = json.loads(ev["data"])
        for entry in data.get("attachments") or []:
            out.append({**entry, "event": ev["id"], "item": ev["item_id"]})
    return out


def build_bundle(
    rows: dict[str, Any], *, report: dict[str, Any], verification: dict[str, Any]
) -> dict[str, Any]:
    return {
        "format": BUNDLE_FORMAT,
        "report": report,
        "store_id": rows["store_id"],
        "case": rows["case"],
        "agencies": rows["agencies"],
        "actors": rows["actors"],
        "items": rows["items"],
        "events": rows["events"],
        "attachments": attachment_manifest(rows["events"]),
        "verification": verification,
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


def verify_bundle(bundle: dict[str, Any]) -> BundleCheck:
    """Re-verify every chain, signature, item and case row in a bundle, offline."""
    check = BundleCheck()
    if bundle.get("format") != BUNDLE_FORMAT:
        check.findings.append(
            Finding(
                "bundle", None, "altered", f"The embedded bundle is not a {BUNDLE_FORMAT} document."
            )
        )
        return check
    try:
        actors = [tuple(a[f] for f in ACTOR_FIELDS) for a in bundle["actors"]]
        rows = [tuple(e[f] for f in EVENT_FIELDS) for e in bundle["events"]]
    except (KeyError, TypeError):
        check.findings.append(
            Finding("bundle", None, "altered", "The embedded bundle lacks required fields.")
        )
        return check
    keys, actor_findings = actor_keys(actors)
    check.findings.extend(actor_findings)
    agencies = {a["code"]: a for a in bundle.get("agencies", [])}
    findings, check.heads = verify_chains(
        rows,
        keys,
        item_rows=bundle.get("items", []),
        case_rows=[bundle["case"]],
        agencies=agencies,
        roles={a["handle"]: a["role"] for a in bundle["actors"]},
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
                    "missing",
                    f"Chain {chain} in the bundle does not end at the head recorded at issue.",
                )
            )
    check.findings.sort(key=lambda f: (f.subject, f.event or 0, f.kind))
    return check
