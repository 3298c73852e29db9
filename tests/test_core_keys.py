"""Actor keys: created with the actor, kept private (0600), optionally passphrase-protected."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody.canonical import canonical_json, hash_record
from custody.errors import KeyProblem
from custody.events import load_signer
from custody.records import add_actor
from custody.store import Store


def test_private_key_file_is_0600_and_matches_store(store: Store) -> None:
    actor = add_actor(
        store, handle="aotieno", name="Amina Otieno", role="officer", agency_code="KWS"
    )
    # beside the agency root key made by init, the actor's own key
    files = list((store.home / "keys").glob("aotieno.*"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((store.home / "keys").stat().st_mode) == 0o700
    assert "PRIVATE KEY" in files[0].read_text()
    assert load_signer(store, "aotieno").key.fingerprint == actor.key_fingerprint
    files[0].chmod(0o644)
    with pytest.raises(KeyProblem, match="chmod 600"):
        load_signer(store, "aotieno")


def test_passphrase_protected_key(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    add_actor(
        store, handle="jmwangi", name="Joseph Mwangi", role="custodian", passphrase="correct horse"
    )
    assert "ENCRYPTED" in next((store.home / "keys").glob("jmwangi.*")).read_text()
    with pytest.raises(KeyProblem, match="set CUSTODY_PASSPHRASE"):
        load_signer(store, "jmwangi")
    monkeypatch.setenv("CUSTODY_PASSPHRASE", "wrong")
    with pytest.raises(KeyProblem, match="could not be unlocked"):
        load_signer(store, "jmwangi")
    monkeypatch.setenv("CUSTODY_PASSPHRASE", "correct horse")
    assert load_signer(store, "jmwangi").actor.role == "custodian"


def test_missing_private_key_names_the_fix(store: Store) -> None:
    add_actor(store, handle="wkamau", name="Dr Wanjiru Kamau", role="analyst")
    for f in (store.home / "keys").iterdir():
        f.unlink()
    with pytest.raises(KeyProblem, match="not on this machine"):
        load_signer(store, "wkamau")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_canonical_encoding_ignores_key_order(value: dict[str, object]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert canonical_json(value) == canonical_json(reordered)
    assert hash_record(value) == hash_record(reordered)
    assert hash_record(value).startswith("sha256:")


@given(
    st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-5))]
        )
    )
)
def test_canonical_times_are_utc(value: datetime) -> None:
    assert canonical_json({"t": value}) == canonical_json({"t": value.astimezone(UTC)})
    assert canonical_json({"t": value}).decode().endswith('Z"}')


def test_canonical_is_compact_and_utf8() -> None:
    assert (
        canonical_json({"b": 1, "a": "Pangolin — écailles"})
        == '{"a":"Pangolin — écailles","b":1}'.encode()
    )
