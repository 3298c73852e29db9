"""Checkpoints kept off the machine catch what the store cannot show by itself."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from custody import events as ev
from custody.checkpoints import Checkpoint, read_checkpoint, take_checkpoint
from custody.cli.main import app
from custody.events import load_signer
from custody.models import ItemCreate
from custody.records import add_actor, add_item, init_store, open_case
from custody.verify import verify
from tests.conftest import CASE, World


def _checkpoint(world: World, name: str = "cp.json") -> Checkpoint:
    return read_checkpoint(take_checkpoint(world.store).to_json(), name=name)


def test_checkpoint_stays_valid_while_the_record_grows(world: World) -> None:
    item = world.item(seal="S-1")
    cp = _checkpoint(world)
    assert verify(world.store, checkpoints=[cp]).intact
    ev.record_note(world.store, item_id=item, signer=world.officer, text="photographed")
    ev.record_store(world.store, item_id=item, signer=world.officer, location="Vault B")
    assert verify(world.store, checkpoints=[cp]).intact


def test_store_restored_from_an_older_copy_is_caught(world: World, tmp_path: Path) -> None:
    item = world.item(seal="S-1")
    world.store.engine.dispose()
    shutil.copy(world.db_path, tmp_path / "older.db")
    ev.record_note(world.store, item_id=item, signer=world.officer, text="seal photographed")
    cp = _checkpoint(world)
    world.store.engine.dispose()
    shutil.copy(tmp_path / "older.db", world.db_path)
    assert verify(world.store).intact  # the older copy is consistent in itself
    (finding,) = verify(world.store, checkpoints=[cp]).findings
    assert finding.kind == "missing" and finding.event == cp.seq
    assert "restored from an older copy" in finding.message and "cp.json" in finding.message


def _forged_store(path: Path, home: Path, *, store_id: str, events: int) -> None:
    """A new, internally consistent store that claims the old store's id."""
    store = init_store(
        str(path), agency_code="KWS", agency_name="Kenya Wildlife Service", country="KE", home=home
    )
    con = sqlite3.connect(path)
    con.execute("UPDATE store_meta SET value = ? WHERE key = 'store_id'", (store_id,))
    con.commit()
    con.close()
    add_actor(store, handle="aotieno", name="Amina Otieno", role="officer", badge="R-1042",
              agency_code="KWS")  # fmt: skip
    officer = load_signer(store, "aotieno")
    open_case(store, case_no=CASE, title="Pangolin scales at JKIA", signer=officer)
    spec = ItemCreate(description="Bag of pangolin scales", species="Manis javanica")
    item = add_item(store, case_no=CASE, spec=spec, signer=officer).id
    while verify(store).log_head.seq < events:
        ev.record_note(store, item_id=item, signer=officer, text="note")
    assert verify(store).intact


def test_store_rebuilt_from_nothing_is_caught(world: World, tmp_path: Path) -> None:
    world.item(seal="S-1")
    cp = _checkpoint(world)
    world.store.engine.dispose()
    world.db_path.unlink()
    forged = tmp_path / "forged.db"
    _forged_store(forged, tmp_path / "home2", store_id="another", events=cp.seq)
    from custody.store import open_store

    report = verify(open_store(str(forged)), checkpoints=[cp])
    (finding,) = report.findings
    assert finding.kind == "missing" and "re-created or replaced" in finding.message


def test_history_rewritten_under_the_same_store_id_is_caught(world: World, tmp_path: Path) -> None:
    world.item(seal="S-1")
    cp = _checkpoint(world)
    forged = tmp_path / "forged.db"
    _forged_store(forged, tmp_path / "home2", store_id=cp.store_id, events=cp.seq)
    from custody.store import open_store

    forged_store = open_store(str(forged))
    assert verify(forged_store).intact  # nothing inside the store gives it away
    (finding,) = verify(forged_store, checkpoints=[cp]).findings
    assert finding.kind == "altered" and "rewritten" in finding.message


def test_edited_checkpoint_is_reported(world: World) -> None:
    world.item(seal="S-1")
    cp = _checkpoint(world)
    cp = dataclasses.replace(cp, seq=cp.seq - 1)
    (finding,) = verify(world.store, checkpoints=[cp]).findings
    assert finding.subject == "checkpoint" and finding.kind == "bad signature"


def test_checkpoint_cli(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    world.item(seal="S-1")
    path = tmp_path / "checkpoint.json"
    made = runner.invoke(app, ["checkpoint", "-o", str(path)])
    assert made.exit_code == 0, made.output
    assert json.loads(path.read_text())["format"] == "custody-checkpoint-v1"
    ok = runner.invoke(app, ["verify", "--checkpoint", str(path)])
    assert ok.exit_code == 0 and "INTACT" in ok.stdout
    junk = tmp_path / "junk.json"
    junk.write_text('{"seq": 1}')
    bad = runner.invoke(app, ["verify", "--checkpoint", str(junk)])
    assert bad.exit_code == 1
    assert "junk.json is not a custody checkpoint" in bad.stderr
    missing = runner.invoke(app, ["verify", "--checkpoint", str(tmp_path / "nowhere.json")])
    assert missing.exit_code == 1 and "nowhere.json does not exist" in missing.stderr
    unwritable = runner.invoke(app, ["checkpoint", "-o", str(tmp_path / "no" / "dir" / "cp.json")])
    assert unwritable.exit_code == 1 and "cannot be written" in unwritable.stderr


def test_checkpoint_of_an_empty_store_is_refused(store: object, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["checkpoint", "-o", str(tmp_path / "cp.json")])
    assert result.exit_code == 1 and "no custody events yet" in result.stderr
    assert not (tmp_path / "cp.json").exists()
