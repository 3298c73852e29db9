"""The demo case's seizure facts, people and consignment, and the files agencies
exchange about it: the AITR, non-nominal seizure records and an i2 chart.

Called by `custody.demo.run_demo`; reports progress through its callback and never prints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from custody.entities import add_entity
from custody.events import Signer
from custody.exports.aitr import export_aitr
from custody.exports.i2 import export_i2
from custody.exports.shared import export_seizures
from custody.facts import record_seizure_facts
from custody.store import Store


def demo_intel(
    store: Store,
    result: Any,
    s: dict[str, Signer],
    at: Callable[[float], str],
    say: Callable[[str], None],
) -> None:
    say("recording the seizure facts, the suspect and the consignment")
    case, bags = result.case_no, result.items[:3]
    record_seizure_facts(
        store,
        case_no=case,
        signer=s["aotieno"],
        facts={
            "detecting_agency": "Kenya Wildlife Service, Canine Unit JKIA",
            "detection_method": "sniffer dog, then x-ray of the consignment",
            "location_type": "airport",
            "location": "Jomo Kenyatta International Airport, cargo shed 3, Nairobi",
            "point_of_seizure": "transit",
            "transport_mode": "air",
            "concealment": "sacks declared as dried fish maw",
            "reason": "no CITES permit; Appendix I species",
            "origin": ["NG"],
            "transit": ["KE"],
            "destination": ["VN"],
            "value_amount": 95000,
            "value_currency": "USD",
            "law": "Wildlife Conservation and Management Act 2013, s.92",
        },
    )
    add_entity(
        store,
        case_no=case,
        kind="person",
        category="suspect",
        signer=s["aotieno"],
        attributes={"nationality": "VN"},
        nominal={
            "name": "Nguyen Van Thanh",
            "dob": "1979-03-14",
            "passport": "C4471902",
            "phone": "+84 912 555 014",
        },
        links=[(bag, "sent-by") for bag in bags],
    )
    add_entity(
        store,
        case_no=case,
        kind="shipment",
        category="airway-bill",
        signer=s["aotieno"],
        attributes={"origin": "NG", "destination": "VN"},
        nominal={"number": "706-1123", "consignor": "Lagos Fish Exports Ltd"},
        links=[(bag, "found-in") for bag in bags],
    )
    year = int(at(1)[:4])
    say(f"writing the {year} AITR, shared seizure records for EU-TWIX and the i2 chart")
    folder = result.folder
    aitr = export_aitr(store, year=year, out=folder / f"aitr-{year}.xlsx", signer=s["pnjeri"])
    shared = export_seizures(
        store, recipient="EU-TWIX", out=folder / "seizures-EU-TWIX.csv", signer=s["pnjeri"]
    )
    chart = export_i2(store, case_no=case, out=folder / f"{case}.anx", signer=s["pnjeri"])
    result.files["AITR"] = aitr.path
    result.files["EU-TWIX"] = shared.path
    result.files["i2 chart"] = chart.path
    result.facts.append(
        f"shared: AITR {aitr.rows} row(s), {shared.rows} non-nominal record(s) for EU-TWIX, "
        f"i2 chart of {chart.rows} entities and links (each export a signed event)"
    )
