"""The two ANX writers of `export i2`: anxwritter (optional extra) and the built-in one.

Both must give a chart that parses with the same entities (identity, type, label,
description, time, source, attributes) and the same links.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from defusedxml import ElementTree as SafeET

from custody.errors import InvalidInput
from custody.exports import i2
from custody.exports.i2 import export_i2
from custody.verify import verify
from tests.conftest import CASE, World
from tests.test_intel_exports import case  # noqa: F401 (the realistic case fixture)

Parsed = tuple[dict[str, tuple[Any, ...]], Counter[tuple[str | None, ...]], set[str | None]]


def _parse(raw: bytes) -> Parsed:
    """Entities by identity, links as a multiset (ends by identity), entity type names."""
    assert raw[:2] == b"\xff\xfe"
    root = SafeET.fromstring(raw.decode("utf-16"))
    assert root.tag == "Chart"
    ids: dict[str | None, str | None] = {}
    entities: dict[str, tuple[Any, ...]] = {}
    for item in root.iter("ChartItem"):
        entity = item.find("End/Entity")
        if entity is None:
            continue
        identity = str(entity.get("Identity"))
        ids[entity.get("EntityId")] = identity
        style = entity.find("Icon/IconStyle")
        attributes = {a.get("AttributeClass"): a.get("Value") for a in item.iter("Attribute")}
        entities[identity] = (
            style.get("Type") if style is not None else None,
            item.get("Label"),
            item.get("Description"),
            item.get("DateTime"),
            item.get("SourceReference"),
            tuple(sorted(attributes.items())),
        )
    links: Counter[tuple[str | None, ...]] = Counter()
    for item in root.iter("ChartItem"):
        link = item.find("Link")
        if link is None:
            continue
        style = link.find("LinkStyle")
        assert style is not None
        links[
            (
                ids[link.get("End1Id")],
                ids[link.get("End2Id")],
                style.get("Type"),
                style.get("ArrowStyle"),
                item.get("Label"),
                item.get("DateTime"),
                item.get("SourceReference"),
            )
        ] += 1
    types = {t.get("Name") for t in root.iter("EntityType")}
    return entities, links, types


def _writers(world: World) -> list[str]:
    con = sqlite3.connect(world.db_path)
    try:
        rows = con.execute("SELECT data FROM events WHERE type = 'share-export' ORDER BY id")
        return [json.loads(r[0]).get("writer") for r in rows]
    finally:
        con.close()


def test_anxwritter_and_builtin_writer_give_the_same_chart(
    world: World,
    case: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    anxwritter = pytest.importorskip("anxwritter")
    ours, theirs, default = tmp_path / "ours.anx", tmp_path / "theirs.anx", tmp_path / "auto.anx"
    export_i2(world.store, case_no=CASE, out=ours, signer=world.officer, writer="custody")
    export_i2(world.store, case_no=CASE, out=theirs, signer=world.officer, writer="anxwritter")
    export_i2(world.store, case_no=CASE, out=default, signer=world.officer)
    a_entities, a_links, a_types = _parse(ours.read_bytes())
    b_entities, b_links, b_types = _parse(theirs.read_bytes())
    assert a_entities == b_entities
    assert a_links == b_links
    assert a_types == b_types
    # The chart holds what the case has: persons by name, custody transfers, sources.
    kinds = {e[0] for e in b_entities.values()}
    assert {"Evidence item", "Person", "Vehicle", "Shipment", "Organisation", "Officer"} <= kinds
    assert "Nguyen Van Thanh" in {e[1] for e in b_entities.values()}
    assert sum(n for k, n in b_links.items() if k[2] == "Custody transfer") == 2
    assert len(a_links) and sum(b_links.values()) == sum(a_links.values())
    version = f"anxwritter {anxwritter.__version__}"
    assert _writers(world) == ["custody", version, version]  # installed: used by default
    assert _parse(default.read_bytes())[:2] == (b_entities, b_links)
    assert verify(world.store).intact


def test_builtin_writer_when_anxwritter_is_missing(
    world: World,
    case: dict[str, str],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db_snapshot: Any,
) -> None:
    monkeypatch.setattr(i2, "anxwritter_version", lambda: None)
    out = tmp_path / "chart.anx"
    export_i2(world.store, case_no=CASE, out=out, signer=world.officer)
    entities, links, _ = _parse(out.read_bytes())
    assert f"item:{case['scales']}" in entities and links
    assert _writers(world) == ["custody"]
    before = db_snapshot(world.db_path)
    with pytest.raises(InvalidInput, match="anxwritter is not installed"):
        export_i2(world.store, case_no=CASE, out=tmp_path / "x.anx", signer=world.officer,
                  writer="anxwritter")  # fmt: skip
    with pytest.raises(InvalidInput, match="not an ANX writer"):
        export_i2(world.store, case_no=CASE, out=tmp_path / "y.anx", signer=world.officer,
                  writer="xml")  # fmt: skip
    assert db_snapshot(world.db_path) == before
    assert not (tmp_path / "x.anx").exists() and not (tmp_path / "y.anx").exists()


def test_cli_chooses_the_writer(world: World, case: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    from typer.testing import CliRunner

    from custody.cli.main import app

    runner = CliRunner()
    out = tmp_path / "cli.anx"
    args = [
        "export",
        "i2",
        "--case",
        CASE,
        "-o",
        str(out),
        "--writer",
        "custody",
        "--as",
        "aotieno",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _writers(world) == ["custody"] and _parse(out.read_bytes())[0]
    args[3] = str(tmp_path / "other.anx")
    bad = runner.invoke(app, [*args[:-4], "--writer", "xml", "--as", "aotieno"])
    assert bad.exit_code == 1 and "not an ANX writer" in bad.stderr
