"""Layering and property tests for the intelligence modules: parsers fed arbitrary
bytes give a result or an expected error, codes and pseudonyms behave."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody import codes
from custody.entities import Entity
from custody.errors import CustodyError
from custody.exports.shared import coarse, pseudonym
from custody.itemcsv import detect_delimiter, parse_items_csv
from custody.smart import parse_geojson, parse_patrol_xml

SLOW = settings(
    deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_intelligence_modules_do_not_import_the_cli_toolkits() -> None:
    code = (
        "import sys\n"
        "import custody.facts, custody.entities, custody.smart, custody.room, custody.itemcsv\n"
        "import custody.exports.aitr, custody.exports.shared, custody.exports.i2, custody.exports.items\n"
        "import custody.demo_intel\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


@SLOW
@given(st.binary(max_size=400))
def test_patrol_xml_parser_on_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_patrol_xml(data, name="fuzz.xml")
    except CustodyError as exc:
        assert "\n" not in str(exc)


@SLOW
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_geojson_parser_on_arbitrary_json(value: object) -> None:
    import json

    doc = {"type": "FeatureCollection", "features": value}
    try:
        parse_geojson(json.dumps(doc).encode(), name="fuzz.geojson")
    except CustodyError as exc:
        assert "\n" not in str(exc)


@SLOW
@given(st.text(max_size=300))
def test_item_csv_parser_on_arbitrary_text(tmp_path_factory: object, text: str) -> None:
    folder = tmp_path_factory.mktemp("csv")  # type: ignore[attr-defined]
    path = Path(folder) / "items.csv"
    path.write_text(text, encoding="utf-8")
    try:
        parse_items_csv(path, known_items=set())
    except CustodyError as exc:
        assert "\n" not in str(exc)


@given(st.lists(st.sampled_from([",", ";", "\t", "a", '"', " "]), max_size=40))
def test_delimiter_is_always_one_of_the_known(chars: list[str]) -> None:
    assert detect_delimiter("".join(chars)) in (",", ";", "\t")


@given(st.floats(min_value=-180, max_value=180))
def test_coarse_gps_is_within_a_twentieth_of_a_degree(value: float) -> None:
    shown = coarse(value)
    assert shown is not None and abs(shown - value) <= 0.05 + 1e-9 and shown == round(shown, 1)


def test_pseudonyms_depend_on_identity_and_key_only() -> None:
    person = Entity(id="C1/P1", case_no="C1", kind="person", category="suspect")
    other_case = Entity(id="C2/P4", case_no="C2", kind="person", category="witness")
    key, other_key = b"k" * 32, b"j" * 32
    a = pseudonym(key, person, {"name": "Nguyen Van Thanh", "passport": "C4471902"})
    b = pseudonym(key, other_case, {"name": "NGUYEN VAN THANH", "passport": "c 447-1902"})
    assert a == b and a.startswith("P-")
    assert pseudonym(other_key, person, {"passport": "C4471902"}) != a
    assert pseudonym(key, person, None) != pseudonym(key, other_case, None)


def test_default_quantities() -> None:
    assert codes.default_quantity(count=None, weight=500, unit="g") == (0.5, "KIL")
    assert codes.default_quantity(count=3, weight=None, unit="") == (3.0, "")
    assert codes.default_quantity(count=None, weight=2, unit="l") == (2.0, "LTR")
    assert codes.default_term("12 raw elephant tusks") == "TUS"
    assert codes.default_term("Something else") == "UNS"
