"""The custody history of a custody bundle as a CASE/UCO JSON-LD graph.

CASE (Cyber-investigation Analysis Standard Expression) over UCO is the ontology
forensic tools exchange investigations in. Each item becomes a `uco-core:Item`
with a `case-investigation:ProvenanceRecord` (its exhibit number, and its root
exhibit for sub-items); each custody event one `case-investigation:InvestigativeAction`
(performer, object, start time, and the provenance record as its result); each
actor a `uco-identity:Person`; each case a `case-investigation:Investigation`.

Invariant: the graph is derived from the bundle's events only; it is a view for
other tools, never read back (the signed events are the record).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

CONTEXT = {
    "kb": "urn:custody:kb:",
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


#: Node IRIs end with a UUID (as UCO asks), derived from what they name so that two
#: bundles of the same item name it alike.
_NAMESPACE = uuid.UUID("5b1e4a52-3c2f-4f0e-9d3e-6f1b2a7c9e10")


def _iri(kind: str, value: str) -> str:
    return f"kb:{kind}-{uuid.uuid5(_NAMESPACE, f'{kind}:{value}')}"


def _time(value: str) -> dict[str, str]:
    return {"@type": "xsd:dateTime", "@value": value}


def custody_graph(content: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-LD graph of a bundle's items, cases, actors and events."""
    graph: list[dict[str, Any]] = []
    for a in content["actors"]:
        graph.append(
            {
                "@id": _iri("person", a["handle"]),
                "@type": "uco-identity:Person",
                "uco-core:name": a["name"],
            }
        )
    for c in content["cases"]:
        graph.append(
            {
                "@id": _iri("investigation", c["case_no"]),
                "@type": "case-investigation:Investigation",
                "uco-core:name": c["case_no"],
                "uco-core:description": c.get("title", ""),
                "uco-core:object": [{"@id": _iri("item", i["id"])} for i in content["items"]],
            }
        )
    for i in content["items"]:
        root = i["id"].split(".", 1)[0]
        graph.append(
            {
                "@id": _iri("item", i["id"]),
                "@type": "uco-core:Item",
                "uco-core:name": i["id"],
                "uco-core:description": i.get("description", ""),
            }
        )
        graph.append(
            {
                "@id": _iri("provenance-record", i["id"]),
                "@type": "case-investigation:ProvenanceRecord",
                "case-investigation:exhibitNumber": i["id"],
                "case-investigation:rootExhibitNumber": root,
                "uco-core:description": "chronology of the custody of the item",
                "uco-core:object": [{"@id": _iri("item", i["id"])}],
            }
        )
    for e in content["events"]:
        if not e.get("item_id"):
            continue
        graph.append(
            {
                "@id": _iri("action", str(e["hash"])),
                "@type": "case-investigation:InvestigativeAction",
                "uco-core:name": e["type"],
                "uco-core:description": f"custody event {e['seq']} of {e['chain']}",
                "uco-action:startTime": _time(e["at"]),
                "uco-action:performer": {"@id": _iri("person", e["actor"])},
                "uco-action:object": [{"@id": _iri("item", e["item_id"])}],
                "uco-action:result": [{"@id": _iri("provenance-record", e["item_id"])}],
            }
        )
    return {"@context": CONTEXT, "@graph": graph}
