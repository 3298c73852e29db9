"""SMART patrol import: confiscations become items, people become person entities,
re-import adds nothing, hostile or malformed files change nothing."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from custody.entities import list_entities, nominal_data
from custody.errors import InvalidInput, NotFound, PermissionDenied
from custody.records import list_items
from custody.smart import import_smart
from custody.verify import verify
from tests.conftest import CASE, World

DATA = Path(__file__).parent / "data" / "smart"
PATROL = DATA / "patrol_tsavo.xml"


def _event_bodies(world: World) -> str:
    con = sqlite3.connect(world.db_path)
    try:
        return "\n".join(r[0] for r in con.execute("SELECT data FROM events"))
    finally:
        con.close()


def test_patrol_xml_confiscations_and_people(world: World) -> None:
    result = import_smart(
        world.store, path=PATROL, case_no=CASE, tz="Africa/Nairobi", signer=world.officer
    )
    assert result.patrol == "TENP-2026-0311-04"
    assert len(result.items) == 2 and len(result.persons) == 2
    assert result.ignored == 2  # destroyed snares, firewood observed only
    views = {v.item.id: v.item for v in list_items(world.store, case_no=CASE)}
    meat = views[result.items[0]]
    assert (
        meat.weight == 14.5 and meat.unit == "kg" and meat.species == "tragelaphusscriptus (SMART)"
    )
    assert meat.seized_at == "2026-03-11T06:42:00.000000Z"  # 09:42 in Nairobi (UTC+3)
    assert (meat.lat, meat.lon) == (-2.9831, 38.75124)
    other = json.loads(meat.other_ids)
    assert other["smart"] == "TENP-2026-0311-04/101/1"
    assert other["smart_leader"] == "Daniel Mutua (KWS-R-2231)"
    ivory = views[result.items[1]]
    assert ivory.count == 2 and "loxodontaafricana" in ivory.species
    persons = {e.id: e for e in list_entities(world.store, CASE)}
    arrested = persons[result.persons[0]]
    assert arrested.category == "suspect" and arrested.attributes == {"nationality": "KE"}
    assert arrested.links == [{"item": meat.id, "relation": "seized-from"}]
    assert persons[result.persons[1]].category == "other"
    personal = nominal_data(world.store, arrested.id)
    assert personal == {"name": "Juma Kalume Baya", "id_number": "23456789", "phone": "0711 222 333",
                        "age": "34", "place_of_origin": "Kasigau village"}  # fmt: skip
    bodies = _event_bodies(world)
    for value in ("Juma Kalume Baya", "23456789", "0711 222 333", "Mwanajuma Chari"):
        assert value not in bodies
    assert verify(world.store).intact


def test_reimport_adds_nothing(world: World, db_snapshot) -> None:
    import_smart(world.store, path=PATROL, case_no=CASE, tz="Africa/Nairobi", signer=world.officer)
    before = db_snapshot(world.db_path)
    again = import_smart(
        world.store, path=PATROL, case_no=CASE, tz="Africa/Nairobi", signer=world.officer
    )
    assert (again.items, again.persons, again.skipped, again.event) == ([], [], 4, None)
    assert db_snapshot(world.db_path) == before


def test_schema_namespace_and_no_namespace_are_read(world: World, tmp_path: Path) -> None:
    text = PATROL.read_text()
    schema_ns = tmp_path / "schema_ns.xml"
    schema_ns.write_text(
        text.replace("xml/1.3/patrol", "xml/patrol.xsd").replace("TENP-2026-0311-04", "P-A")
    )
    bare = tmp_path / "bare.xml"
    bare.write_text(text.replace(' xmlns="http://www.smartconservationsoftware.org/xml/1.3/patrol"', "")
                    .replace("TENP-2026-0311-04", "P-B"))  # fmt: skip
    for path in (schema_ns, bare):
        result = import_smart(
            world.store, path=path, case_no=CASE, tz="Africa/Nairobi", signer=world.officer
        )
        assert len(result.items) == 2


def test_connect_geojson(world: World) -> None:
    result = import_smart(world.store, path=DATA / "connect_query.geojson", case_no=CASE,
                          tz="Africa/Nairobi", signer=world.officer)  # fmt: skip
    assert (len(result.items), len(result.persons), result.ignored) == (1, 1, 1)
    (item,) = [v.item for v in list_items(world.store, case_no=CASE)]
    assert (item.lat, item.lon, item.weight) == (-2.64102, 37.51733, 6.0)
    assert item.seized_at_local == "2026-04-02T07:55:00+03:00"
    (person,) = list_entities(world.store, CASE)
    assert person.attributes == {"nationality": "TZ"} and person.category == "suspect"


def test_map_file_decides_what_counts_as_seized(world: World, tmp_path: Path) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text('[seized]\nattributes = ["actiontakenitems"]\nvalues = ["destroyed"]\n')
    result = import_smart(world.store, path=PATROL, case_no=CASE, tz="Africa/Nairobi",
                          signer=world.officer, map_path=mapping)  # fmt: skip
    (snares,) = [v.item for v in list_items(world.store, case_no=CASE)]
    assert snares.count == 14 and len(result.items) == 1


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<patrol xmlns="http://www.smartconservationsoftware.org/xml/1.3/patrol" id="&lol3;"/>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE patrol [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<patrol xmlns="http://www.smartconservationsoftware.org/xml/1.3/patrol" id="x">&xxe;</patrol>"""


@pytest.mark.parametrize(
    "content, words",
    [
        (BILLION_LAUGHS, "declares a DTD or entities"),
        (EXTERNAL_ENTITY, "declares a DTD or entities"),
        ("<patrol id='x'><legs>", "not well-formed XML"),
        ("<waypoints/>", "not a SMART patrol file"),
        ("\x00\x01binary", "not well-formed XML"),
        ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
        (
            '{"type": "FeatureCollection", "features": [{"properties": {"Waypoint ID": "1"}}]}',
            "no patrol id",
        ),
        (PATROL.read_text().replace('x="38.75124"', 'x="east"'), "is not a number"),
        (PATROL.read_text().replace('y="-2.98310"', 'y="-95"'), "outside -90..90"),
        (
            PATROL.read_text().replace('time="2026-03-12T08:10:00"', 'time="noon"'),
            "not an ISO time",
        ),
    ],
)
def test_hostile_or_malformed_files_change_nothing(
    world: World, tmp_path: Path, content: str, words: str, db_snapshot
) -> None:
    path = tmp_path / "patrol.xml"
    path.write_text(content)
    before = db_snapshot(world.db_path)
    with pytest.raises(InvalidInput, match=words) as info:
        import_smart(
            world.store, path=path, case_no=CASE, tz="Africa/Nairobi", signer=world.officer
        )
    assert "\n" not in str(info.value)
    assert db_snapshot(world.db_path) == before


def test_bad_arguments_change_nothing(world: World, tmp_path: Path, db_snapshot) -> None:
    fifo = tmp_path / "fifo.xml"
    os.mkfifo(fifo)
    bad_map = tmp_path / "map.toml"
    bad_map.write_text("[seized\n")
    before = db_snapshot(world.db_path)
    with pytest.raises(InvalidInput, match="not a time zone"):
        import_smart(
            world.store, path=PATROL, case_no=CASE, tz="Mars/Olympus", signer=world.officer
        )
    with pytest.raises(NotFound, match="Case NOPE"):
        import_smart(world.store, path=PATROL, case_no="NOPE", tz="UTC", signer=world.officer)
    with pytest.raises(InvalidInput, match="not a regular file"):
        import_smart(world.store, path=fifo, case_no=CASE, tz="UTC", signer=world.officer)
    with pytest.raises(NotFound, match="does not exist"):
        import_smart(
            world.store, path=tmp_path / "none.xml", case_no=CASE, tz="UTC", signer=world.officer
        )
    with pytest.raises(InvalidInput, match="not valid TOML"):
        import_smart(
            world.store, path=PATROL, case_no=CASE, tz="UTC", signer=world.officer, map_path=bad_map
        )
    with pytest.raises(PermissionDenied):
        import_smart(world.store, path=PATROL, case_no=CASE, tz="UTC", signer=world.custodian)
    assert db_snapshot(world.db_path) == before


@pytest.mark.parametrize(
    "text, words",
    [
        ("[seized]\nattributes = [1]\n", "not text"),
        ('[seized]\nattributes = "x"\n', "must be a list"),
        ("[nonsense]\nx = 1\n", "unknown section"),
        ("[seized\n", "not valid TOML"),
    ],
)
def test_bad_map_file_is_one_sentence_and_imports_nothing(
    world: World, tmp_path: Path, text: str, words: str
) -> None:
    from custody.errors import InvalidInput

    mapping = tmp_path / "map.toml"
    mapping.write_text(text)
    with pytest.raises(InvalidInput, match=words):
        import_smart(world.store, path=PATROL, case_no=CASE, tz="Africa/Nairobi",
                     signer=world.officer, map_path=mapping)  # fmt: skip
    assert list_items(world.store, case_no=CASE) == []
