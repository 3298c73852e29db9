"""The same store on PostgreSQL (runs when CUSTODY_TEST_PG names a server, as CI does)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG = os.environ.get("CUSTODY_TEST_PG")  # e.g. postgresql://postgres@/postgres?host=/tmp&port=55432
pytestmark = pytest.mark.skipif(
    not PG, reason="CUSTODY_TEST_PG is not set (no PostgreSQL server to test against)"
)


@pytest.fixture
def pg_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    assert PG is not None
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    name = f"custody_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("CUSTODY_DB", url)
    yield url

    with admin.connect() as conn:
        conn.execute(
            text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def test_flow_verify_and_tamper_on_postgres(pg_url: str, tmp_path: Path) -> None:
    from sqlalchemy import text

    from custody import events as ev
    from custody.events import load_signer
    from custody.models import ItemCreate
    from custody.records import add_actor, add_item, init_store, open_case, record_sample
    from custody.verify import verify

    store = init_store(
        pg_url,
        agency_code="KWS",
        agency_name="Kenya Wildlife Service",
        country="KE",
        home=tmp_path / "home",
    )
    add_actor(store, handle="aotieno", name="Amina Otieno", role="officer", agency_code="KWS")
    add_actor(store, handle="wkamau", name="Dr Wanjiru Kamau", role="analyst", agency_code="KWS")
    officer, analyst = load_signer(store, "aotieno"), load_signer(store, "wkamau")
    open_case(store, case_no="KWS-1", title="Ivory", signer=officer)
    item = add_item(
        store,
        case_no="KWS-1",
        spec=ItemCreate(
            description="Tusk", weight=4.25, unit="kg", lat=-4.06, lon=39.66, seal="S-1"
        ),
        signer=officer,
    ).id
    ev.record_transfer(store, item_id=item, signer=officer, receiver=analyst)
    ev.record_receive(store, item_id=item, signer=analyst, condition="sealed")
    ev.record_unseal(store, item_id=item, signer=analyst, seal="S-1", reason="sampling")
    record_sample(store, item_id=item, signer=analyst, description="core")
    report = verify(store)
    assert report.intact, report.findings
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE items SET weight = 4.0 WHERE id = :i"), {"i": item})
    assert any(f.kind == "altered" and "weight" in f.message for f in verify(store).findings)


def test_concurrent_writers_on_postgres(pg_url: str, tmp_path: Path) -> None:
    from custody.events import item_history, load_signer
    from custody.models import ItemCreate
    from custody.records import add_actor, add_item, init_store, open_case
    from custody.verify import verify

    home = tmp_path / "home"
    store = init_store(pg_url, agency_code="KWS", agency_name="KWS", home=home)
    add_actor(store, handle="aotieno", name="Amina Otieno", role="officer", agency_code="KWS")
    officer = load_signer(store, "aotieno")
    open_case(store, case_no="KWS-1", title="Ivory", signer=officer)
    item = add_item(store, case_no="KWS-1", spec=ItemCreate(description="Tusk"), signer=officer).id
    code = textwrap.dedent(
        """
        import sys
        from custody.store import open_store
        from custody.events import load_signer, record_note
        store = open_store(sys.argv[1])
        signer = load_signer(store, "aotieno")
        for n in range(20):
            record_note(store, item_id=sys.argv[2], signer=signer, text=f"{sys.argv[3]} {n}")
        """
    )
    env = {**os.environ, "CUSTODY_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, pg_url, item, tag],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in "AB"
    ]
    for p in procs:
        _, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, stderr
    _, events, _ = item_history(store, item)
    assert [e.seq for e in events] == list(range(1, 42))
    assert verify(store).intact
