"""Exports: the AITR, non-nominal shared seizure records (leak test), i2 charts, item tables."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import zipfile
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET
from openpyxl import load_workbook

from custody import events as ev
from custody.entities import add_entity, case_nominal
from custody.errors import AlreadyExists, InvalidInput, NotFound
from custody.exports.aitr import AITR_COLUMNS, export_aitr
from custody.exports.common import disclosure_log
from custody.exports.i2 import export_i2
from custody.exports.items import export_items
from custody.exports.shared import export_seizures
from custody.facts import record_seizure_facts, record_trade_terms
from custody.records import open_case
from custody.timeutil import now_utc
from custody.verify import verify
from tests.conftest import CASE, World

YEAR = now_utc().year
NOTE = "Driver Nguyen Van Thanh said the sacks belong to his cousin Tran"
PLACE = "Godown behind the house of Mr Tran, Embakasi"


def _identification(taxon: str) -> dict[str, object]:
    return {"query": "q1", "level": "species", "taxon": taxon, "rank": "species",
            "statement": f"identified as {taxon}"}  # fmt: skip


@pytest.fixture
def case(world: World, tmp_path: Path) -> dict[str, str]:
    """A realistic case: scales (DNA-identified), tusks (claimed), people, vehicle, shipment."""
    stamp = f"{YEAR}-01-15T09:30:00+03:00"
    scales = world.item(description="Sack of dried pangolin scales", species="Manis sp.", weight=3.2,
                        unit="kg", seized_at=stamp, lat=-1.31923, lon=36.92781, place=PLACE, seal="S-1")  # fmt: skip
    tusks = world.item(description="Elephant tusks wrapped in sacking", species="Loxodonta africana",
                       count=2, seized_at=stamp, place=PLACE)  # fmt: skip
    photo = tmp_path / "photo_of_tran_passport.jpg"
    photo.write_bytes(b"\xff\xd8 fake jpeg")
    ev.record_note(world.store, item_id=scales, signer=world.officer, text=NOTE, files=[photo])
    record_seizure_facts(world.store, case_no=CASE, signer=world.officer, facts={
        "detecting_agency": "KWS Canine Unit", "detection_method": "sniffer dog",
        "location_type": "airport", "transport_mode": "air", "concealment": "declared as dried fish maw",
        "reason": "no CITES permit", "origin": "NG", "transit": "KE", "destination": "VN",
        "value_amount": 125000, "value_currency": "USD", "law": "WCMA 2013 s.92",
    })  # fmt: skip
    suspect = add_entity(world.store, case_no=CASE, kind="person", category="suspect",
                         signer=world.officer, attributes={"nationality": "VN"},
                         nominal={"name": "Nguyen Van Thanh", "dob": "1979-03-14", "passport": "C4471902",
                                  "phone": "+84 912 555 014", "email": "thanh@example.vn",
                                  "address": "12 Hang Bac, Hanoi"},
                         links=[(scales, "owned-by"), (tusks, "carried-by")])  # fmt: skip
    add_entity(world.store, case_no=CASE, kind="person", category="witness", signer=world.officer,
               attributes={"nationality": "KE"}, nominal={"name": "Grace Achieng", "phone": "0722 111 222"})  # fmt: skip
    add_entity(world.store, case_no=CASE, kind="conveyance", category="vehicle", signer=world.officer,
               attributes={"country": "KE"}, nominal={"identifier": "KDA 123X", "owner": "Joseph Kariuki"},
               links=[(tusks, "found-in")])  # fmt: skip
    add_entity(world.store, case_no=CASE, kind="shipment", category="airway-bill", signer=world.officer,
               attributes={"origin": "NG", "destination": "VN"},
               nominal={"number": "706-11230044", "consignor": "Lagos Fish Exports Ltd",
                        "consignee": "Hai Phong Seafood Trading Co"}, links=[(scales, "found-in")])  # fmt: skip
    add_entity(world.store, case_no=CASE, kind="organisation", category="company", signer=world.officer,
               attributes={"country": "NG"}, nominal={"name": "Lagos Fish Exports Ltd", "registration": "RC 1188734"})  # fmt: skip
    ev.record_transfer(world.store, item_id=scales, signer=world.officer, receiver=world.custodian,
                       purpose="safe keeping")  # fmt: skip
    # The evidence store hands the scales to the lab, which opens them for DNA analysis.
    ev.record_receive(world.store, item_id=scales, signer=world.custodian, condition="sealed")
    ev.record_transfer(world.store, item_id=scales, signer=world.custodian, receiver=world.analyst)
    ev.record_receive(world.store, item_id=scales, signer=world.analyst, condition="sealed")
    ev.record_unseal(world.store, item_id=scales, signer=world.analyst, seal="S-1", reason="DNA")
    ev.record_analysis(world.store, item_id=scales, signer=world.analyst,
                       result={"analysis": "species-identification", **_identification("Phataginus tricuspis")})  # fmt: skip
    return {"scales": scales, "tusks": tusks, "suspect": suspect.id}


def test_aitr_xlsx_has_the_template_columns_and_one_row_per_species_and_term(
    world: World, case: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "aitr.xlsx"
    result = export_aitr(world.store, year=YEAR, out=out, signer=world.officer)
    sheet = load_workbook(out).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == AITR_COLUMNS
    body = {r[1]: r for r in rows[1:]}
    assert set(body) == {"Phataginus tricuspis", "Loxodonta africana (claimed)"}
    scales = body["Phataginus tricuspis"]
    assert scales[0] == f"{YEAR}-01-15" and scales[2:5] == ("SCA", 3.2, "KIL")
    assert scales[5] == "KWS Canine Unit" and scales[7] == "sniffer dog"
    assert scales[11:15] == ("NG", "KE", "VN", "VN")
    assert scales[15] == "125,000 USD" and scales[16] == "WCMA 2013 s.92"
    tusks = body["Loxodonta africana (claimed)"]
    assert tusks[2:5] == ("TUS", 2, None)
    assert result.rows == 2 and result.cases == [CASE]
    recorded = _export_events(world)
    assert recorded[-1]["sha256"] == "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    assert recorded[-1]["export"] == "aitr" and recorded[-1]["year"] == YEAR
    assert verify(world.store).intact


def test_aitr_csv_and_terms_changed_by_events(
    world: World, case: dict[str, str], tmp_path: Path
) -> None:
    record_trade_terms(world.store, item_ids=[case["tusks"]], signer=world.officer, term="IVP")
    out = tmp_path / "aitr.csv"
    export_aitr(world.store, year=YEAR, out=out, signer=world.officer)
    text = out.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].split(",")[:3] == ["Date of seizure", "Species (scientific name)",
                                                   "Description of specimens (CITES term)"]  # fmt: skip
    assert ",IVP,2,," in text


def _export_events(world: World) -> list[dict[str, object]]:
    con = sqlite3.connect(world.db_path)
    try:
        return [json.loads(r[0]) for r in con.execute(
            "SELECT data FROM events WHERE type = 'share-export' ORDER BY id")]  # fmt: skip
    finally:
        con.close()


def _file_text(path: Path) -> str:
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return path.read_bytes().decode("utf-8-sig")


def _nominal_values(world: World) -> list[str]:
    values = [v for data in case_nominal(world.store, CASE).values() for v in data.values()]
    values += [
        NOTE,
        "Nguyen",
        "cousin Tran",
        "Mr Tran",
        PLACE,
        "Embakasi",
        "photo_of_tran_passport",
        "dried pangolin",
    ]
    values += ["Amina Otieno", "Joseph Mwangi", "R-1042", "aotieno", "jmwangi"]
    return values


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_shared_export_leaks_no_nominal_value(
    world: World, case: dict[str, str], tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"twix{suffix}"
    export_seizures(world.store, recipient="EU-TWIX", out=out, signer=world.officer)
    text = _file_text(out)
    leaked = [v for v in _nominal_values(world) if v.casefold() in text.casefold()]
    assert leaked == []
    # What may travel does: nationality, countries, coarse GPS, species, term, pseudonyms.
    for wanted in (
        "VN",
        "NG",
        "-1.3",
        "36.9",
        "Phataginus tricuspis",
        "SCA",
        "P-",
        "V-",
        "S-",
        "O-",
    ):
        assert wanted in text
    assert "-1.31923" not in text and "36.92781" not in text
    record = _export_events(world)[-1]
    assert record["recipient"] == "EU-TWIX" and record["export"] == "seizures-non-nominal"
    assert record["sha256"] == "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    assert verify(world.store).intact


def _person_keys(path: Path) -> list[str]:
    import csv

    rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    return [k for r in rows for k in r["persons"].split(";") if k]


def test_pseudonyms_link_across_cases_for_one_recipient_only(
    world: World, case: dict[str, str], tmp_path: Path
) -> None:
    open_case(
        world.store, case_no="KWS-2026-0107", title="Ivory at Mombasa port", signer=world.officer
    )
    from custody.models import ItemCreate
    from custody.records import add_item

    other = add_item(world.store, case_no="KWS-2026-0107", signer=world.officer,
                     spec=ItemCreate(description="Ivory pieces", species="Loxodonta africana", count=40)).id  # fmt: skip
    add_entity(world.store, case_no="KWS-2026-0107", kind="person", category="suspect", signer=world.officer,
               attributes={"nationality": "VN"},
               nominal={"name": "NGUYEN Van Thanh", "passport": "c 4471902"}, links=[(other, "owned-by")])  # fmt: skip
    export_seizures(
        world.store,
        recipient="EU-TWIX",
        out=tmp_path / "a.csv",
        signer=world.officer,
        case_nos=[CASE],
    )
    export_seizures(world.store, recipient="EU-TWIX", out=tmp_path / "b.csv", signer=world.officer,
                    case_nos=["KWS-2026-0107"])  # fmt: skip
    export_seizures(world.store, recipient="AFRICA-TWIX", out=tmp_path / "c.csv", signer=world.officer,
                    case_nos=["KWS-2026-0107"])  # fmt: skip
    (suspect_b,) = _person_keys(tmp_path / "b.csv")
    assert suspect_b in _person_keys(tmp_path / "a.csv")
    assert suspect_b not in _person_keys(tmp_path / "c.csv")


def test_i2_chart_parses_with_entities_and_links(
    world: World, case: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "case.anx"
    export_i2(world.store, case_no=CASE, out=out, signer=world.officer)
    raw = out.read_bytes()
    assert raw[:2] == b"\xff\xfe"
    root = SafeET.fromstring(raw.decode("utf-16"))
    assert root.tag == "Chart"
    kinds = {e.get("Type") for e in root.iter("IconStyle")}
    assert {"Evidence item", "Person", "Vehicle", "Shipment", "Organisation", "Location", "Agency",
            "Laboratory", "Officer", "Species", "Case"} <= kinds  # fmt: skip
    links = {e.get("Type") for e in root.iter("LinkStyle")}
    assert {"Custody transfer", "Found in", "Owned by", "Identified as", "Seized by"} <= links
    labels = {e.get("Label") for e in root.iter("ChartItem")}
    assert "Nguyen Van Thanh" in labels
    ids = {e.get("EntityId") for e in root.iter("Entity")}
    for link in root.iter("Link"):
        assert link.get("End1Id") in ids and link.get("End2Id") in ids
    assert any("event" in (e.get("SourceReference") or "") for e in root.iter("ChartItem"))
    assert verify(world.store).intact


def test_i2_csv_tables_and_no_nominal(world: World, case: dict[str, str], tmp_path: Path) -> None:
    result = export_i2(world.store, case_no=CASE, out=tmp_path / "chart.csv", signer=world.officer,
                       fmt="csv", nominal=False)  # fmt: skip
    entities = (tmp_path / "chart-entities.csv").read_text(encoding="utf-8-sig")
    links = (tmp_path / "chart-links.csv").read_text(encoding="utf-8-sig")
    assert result.extra_paths == [tmp_path / "chart-links.csv"]
    assert entities.startswith("entity_id,type,label") and links.startswith("link_id,from_id,to_id")
    assert "Nguyen" not in entities and f"entity:{CASE}/P1" in entities
    assert "Custody transfer" in links


def test_items_export_csv_and_json(world: World, case: dict[str, str], tmp_path: Path) -> None:
    export_items(world.store, out=tmp_path / "items.json", fmt="json", case_no=CASE)
    rows = json.loads((tmp_path / "items.json").read_text())
    scales = next(r for r in rows if r["id"] == case["scales"])
    assert (
        scales["species_reported"] == "Phataginus tricuspis"
        and scales["species_basis"] == "identified"
    )
    assert scales["status"] == "in custody" and scales["custodian"] == "wkamau"
    assert scales["cites_unit"] == "KIL"
    export_items(world.store, out=tmp_path / "items.csv", fmt="csv")
    assert (
        (tmp_path / "items.csv")
        .read_text(encoding="utf-8-sig")
        .startswith("id,case_no,parent_id,description,")
    )


def test_outputs_are_never_overwritten_and_bad_input_changes_nothing(
    world: World, case: dict[str, str], tmp_path: Path, db_snapshot
) -> None:
    existing = tmp_path / "exists.xlsx"
    existing.write_bytes(b"keep me")
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    before = db_snapshot(world.db_path)
    with pytest.raises(AlreadyExists, match="never overwrite"):
        export_aitr(world.store, year=YEAR, out=existing, signer=world.officer)
    with pytest.raises(AlreadyExists):
        export_seizures(world.store, recipient="EU-TWIX", out=fifo, signer=world.officer)
    with pytest.raises(InvalidInput, match="Year 1800"):
        export_aitr(world.store, year=1800, out=tmp_path / "x.xlsx", signer=world.officer)
    with pytest.raises(InvalidInput, match=r"\.xlsx or \.csv"):
        export_aitr(world.store, year=YEAR, out=tmp_path / "x.pdf", signer=world.officer)
    with pytest.raises(InvalidInput, match="folder"):
        export_aitr(world.store, year=YEAR, out=tmp_path / "no" / "x.csv", signer=world.officer)
    with pytest.raises(NotFound, match="Case NOPE"):
        export_i2(world.store, case_no="NOPE", out=tmp_path / "x.anx", signer=world.officer)
    with pytest.raises(NotFound, match="Case NOPE"):
        export_seizures(world.store, recipient="EU-TWIX", out=tmp_path / "x.csv", signer=world.officer,
                        case_nos=["NOPE"])  # fmt: skip
    with pytest.raises(InvalidInput, match="Recipient"):
        export_seizures(
            world.store, recipient="<script>", out=tmp_path / "x.csv", signer=world.officer
        )
    with pytest.raises(InvalidInput, match="nothing was exported"):
        export_seizures(world.store, recipient="EU-TWIX", out=tmp_path / "x.csv", signer=world.officer,
                        year=YEAR - 1)  # fmt: skip
    assert existing.read_bytes() == b"keep me"
    assert db_snapshot(world.db_path) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("x", ".x"))) == []


def test_tampered_personal_data_refuses_a_shared_export(
    world: World, case: dict[str, str], tmp_path: Path
) -> None:
    con = sqlite3.connect(world.db_path)
    con.execute("UPDATE nominal_records SET data = replace(data, 'C4471902', 'X0000000')")
    con.commit()
    con.close()
    with pytest.raises(InvalidInput, match="does not match its signed commitment"):
        export_seizures(
            world.store, recipient="EU-TWIX", out=tmp_path / "x.csv", signer=world.officer
        )
    assert not (tmp_path / "x.csv").exists()


def test_identifications_through_the_species_module_count(world: World, tmp_path: Path) -> None:
    item = world.item(description="Scales", species="Manis sp.", weight=500, unit="g")
    world.hand_to_lab(item)
    ev.record_analysis(world.store, item_id=item, signer=world.analyst,
                       result={"analysis": "species-identification", **_identification("Smutsia gigantea")})  # fmt: skip
    export_aitr(world.store, year=YEAR, out=tmp_path / "a.csv", signer=world.officer)
    assert "Smutsia gigantea,SCA,0.5,KIL" in (tmp_path / "a.csv").read_text(encoding="utf-8-sig")


def test_every_disclosure_is_in_the_log(world: World, case: dict[str, str], tmp_path: Path) -> None:
    export_aitr(world.store, year=YEAR, out=tmp_path / "a.csv", signer=world.prosecutor)
    export_seizures(world.store, recipient="WCO CEN", out=tmp_path / "b.csv", signer=world.officer)
    export_i2(world.store, case_no=CASE, out=tmp_path / "c", signer=world.officer, fmt="csv")
    log = disclosure_log(world.store, case_no=CASE)
    assert [(e.export, e.actor) for e in log] == [
        ("aitr", "pnjeri"),
        ("seizures-non-nominal", "aotieno"),
        ("i2-chart", "aotieno"),
    ]
    assert log[1].recipient == "WCO CEN" and log[1].items == [case["scales"], case["tusks"]]
    digest = "sha256:" + hashlib.sha256((tmp_path / "b.csv").read_bytes()).hexdigest()
    assert log[1].files == [{"file": "b.csv", "sha256": digest}]
    assert [f["file"] for f in log[2].files] == ["c-entities.csv", "c-links.csv"]
    with pytest.raises(NotFound):
        disclosure_log(world.store, case_no="NOPE")
