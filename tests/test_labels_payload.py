"""Signed label payloads: encoding, base45, signatures, refusal of foreign and altered text."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labels.base45 import ALPHABET, b45decode, b45encode
from labels.errors import ForeignLabelError, LabelError, PayloadError, UnsupportedVersionError
from labels.layouts import get_layout
from labels.payload import (
    MAX_CASE_NO_BYTES,
    MAX_ITEM_ID_BYTES,
    MAX_SEAL_BYTES,
    PREFIX,
    LabelPayload,
    encode_payload,
    fingerprint_of,
    parse_label,
    sign_label,
    verify_label,
)
from labels.qr import qr_image, qr_matrix

ROOT = Path(__file__).resolve().parents[1]
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
PUBLIC = KEY.public_key().public_bytes_raw()
SEIZED = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)


def lookup_known(prefix: str) -> list[bytes]:
    return [PUBLIC] if fingerprint_of(PUBLIC).startswith(prefix) else []


def lookup_none(prefix: str) -> list[bytes]:
    return []


def make_payload(**overrides: object) -> LabelPayload:
    fields: dict[str, object] = {
        "item_id": "KWS-2026-0042/3.1",
        "case_no": "KWS-2026-0042",
        "seal": "004471",
        "seized_at": SEIZED,
        "record_hash": hashlib.sha256(b"record of KWS-2026-0042/3.1").digest(),
        "key_fingerprint": fingerprint_of(KEY),
        "reprint": 0,
    }
    fields.update(overrides)
    return LabelPayload(**fields)  # type: ignore[arg-type]


def largest_payload() -> LabelPayload:
    return make_payload(
        item_id="X" * MAX_ITEM_ID_BYTES,
        case_no="C" * MAX_CASE_NO_BYTES,
        seal="S" * MAX_SEAL_BYTES,
        seized_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        reprint=255,
    )


# --- base45 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
    ],
)
def test_base45_matches_rfc_9285_examples(raw: bytes, text: str) -> None:
    assert b45encode(raw) == text
    assert b45decode(text) == raw


@given(st.binary(max_size=300))
def test_base45_round_trips_any_bytes(raw: bytes) -> None:
    text = b45encode(raw)
    assert set(text) <= set(ALPHABET)
    assert b45decode(text) == raw


@given(st.text(max_size=40))
def test_base45_decode_raises_only_payload_errors(text: str) -> None:
    try:
        b45decode(text)
    except PayloadError:
        pass


@pytest.mark.parametrize("text", ["GGW", "A", "ABCD", "ab", "::"])
def test_base45_refuses_impossible_input(text: str) -> None:
    with pytest.raises(PayloadError, match="rescan the label"):
        b45decode(text)


# --- payload round trip ----------------------------------------------------------------


def test_sign_parse_verify_round_trip() -> None:
    payload = make_payload()
    text = sign_label(payload, KEY)
    assert text.startswith(PREFIX)
    assert set(text) <= set(ALPHABET)
    label = parse_label(text)
    assert label.payload == payload
    assert label.signed_bytes == encode_payload(payload)
    check = verify_label(text, lookup_known)
    assert check.genuine
    assert check.payload == payload
    assert check.signer_fingerprint == fingerprint_of(PUBLIC)
    assert "genuine" in check.reason


def test_payload_layout_is_compact_and_documented() -> None:
    payload = make_payload()
    signed = encode_payload(payload)
    # version + 3 length-prefixed strings + time 5 + hash 16 + fingerprint 8 + reprint 1
    assert len(signed) == 1 + (1 + 17) + (1 + 13) + (1 + 6) + 5 + 16 + 8 + 1 == 70
    assert signed[0] == 1
    assert signed[1] == 17 and signed[2:19] == b"KWS-2026-0042/3.1"
    assert int.from_bytes(signed[-30:-25], "big") == int(SEIZED.timestamp())
    assert len(sign_label(payload, KEY)) == 4 + 134 // 2 * 3 == 205


def test_payload_normalises_to_what_the_label_carries() -> None:
    full_hash = hashlib.sha256(b"x").digest()
    local = datetime(2026, 3, 1, 13, 5, 7, 999_999, tzinfo=timezone(timedelta(hours=3)))
    payload = make_payload(
        seized_at=local, record_hash=full_hash, key_fingerprint=fingerprint_of(KEY).upper()
    )
    assert payload.seized_at == datetime(2026, 3, 1, 10, 5, 7, tzinfo=UTC)
    assert payload.seized_at.tzinfo is UTC
    assert payload.record_hash == full_hash[:16]
    assert payload.key_fingerprint == fingerprint_of(KEY)[:16]
    assert payload.matches_record(full_hash)
    assert not payload.matches_record(hashlib.sha256(b"y").digest())


safe_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40
)


def fits(limit: int, *, empty: bool = False) -> st.SearchStrategy[str]:
    base = safe_text | st.just("") if empty else safe_text
    return base.filter(lambda value: len(value.encode("utf-8")) <= limit)


@settings(max_examples=150, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    item_id=fits(MAX_ITEM_ID_BYTES),
    case_no=fits(MAX_CASE_NO_BYTES),
    seal=fits(MAX_SEAL_BYTES, empty=True),
    seized_at=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    record_hash=st.binary(min_size=16, max_size=64),
    reprint=st.integers(min_value=0, max_value=255),
    secret=st.binary(min_size=32, max_size=32),
)
def test_round_trip_for_arbitrary_field_values(
    item_id: str,
    case_no: str,
    seal: str,
    seized_at: datetime,
    record_hash: bytes,
    reprint: int,
    secret: bytes,
) -> None:
    key = Ed25519PrivateKey.from_private_bytes(secret)
    raw = key.public_key().public_bytes_raw()
    payload = LabelPayload(
        item_id=item_id,
        case_no=case_no,
        seal=seal,
        seized_at=seized_at,
        record_hash=record_hash,
        key_fingerprint=fingerprint_of(key),
        reprint=reprint,
    )
    text = sign_label(payload, key)
    assert parse_label(text).payload == payload
    check = verify_label(text, lambda prefix: [raw])
    assert check.genuine and check.payload == payload


@given(st.text(max_size=300))
def test_parse_label_on_arbitrary_text_raises_only_label_errors(text: str) -> None:
    try:
        parse_label(text)
    except LabelError:
        pass


@given(st.text(alphabet=ALPHABET, max_size=300))
def test_parse_label_on_arbitrary_base45_raises_only_label_errors(body: str) -> None:
    try:
        parse_label(PREFIX + body)
    except LabelError:
        pass
    assert not verify_label(PREFIX + body, lookup_known).genuine


@given(st.binary(max_size=250))
def test_parse_label_on_arbitrary_bytes_raises_only_label_errors(raw: bytes) -> None:
    try:
        parse_label(PREFIX + b45encode(raw))
    except LabelError:
        pass


# --- refusals ---------------------------------------------------------------------------


def test_every_one_character_alteration_is_not_genuine() -> None:
    text = sign_label(make_payload(), KEY)
    for position, char in enumerate(text):
        replacement = "7" if char != "7" else "8"
        altered = text[:position] + replacement + text[position + 1 :]
        check = verify_label(altered, lookup_known)
        assert not check.genuine, position
        assert check.reason and check.signer_fingerprint is None


def test_a_well_formed_but_altered_payload_fails_the_signature() -> None:
    text = sign_label(make_payload(seal="004471"), KEY)
    label = parse_label(text)
    forged = label.signed_bytes.replace(b"004471", b"004472") + label.signature
    check = verify_label(PREFIX + b45encode(forged), lookup_known)
    assert not check.genuine
    assert check.payload is not None and check.payload.seal == "004472"
    assert "does not match its contents" in check.reason


def test_unknown_key_is_not_genuine() -> None:
    text = sign_label(make_payload(), KEY)
    check = verify_label(text, lookup_none)
    assert not check.genuine
    assert "signed by an unknown key" in check.reason
    assert fingerprint_of(KEY)[:16] in check.reason
    # A lookup that answers with some other key is no better than none.
    other = OTHER_KEY.public_key().public_bytes_raw()
    check = verify_label(text, lambda prefix: [other, b"short"])
    assert not check.genuine and "unknown key" in check.reason


def test_label_signed_by_another_key_with_lookup_of_that_key() -> None:
    payload = make_payload(key_fingerprint=fingerprint_of(OTHER_KEY))
    text = sign_label(payload, OTHER_KEY)
    assert not verify_label(text, lookup_known).genuine
    assert verify_label(text, lambda p: [OTHER_KEY.public_key().public_bytes_raw()]).genuine


def test_signing_with_a_key_other_than_the_named_one_is_refused() -> None:
    with pytest.raises(PayloadError, match="fingerprint_of"):
        sign_label(make_payload(), OTHER_KEY)


def test_foreign_qr_text_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ForeignLabelError) as caught:
        parse_label("https://example.org/item/42")
    assert str(caught.value) == (
        "This QR code is not a custody evidence label (it does not start with CL1:)."
    )
    check = verify_label("https://example.org/item/42", lookup_known)
    assert not check.genuine and check.payload is None
    assert "not a custody evidence label" in check.reason


def test_other_format_versions_are_recognised_and_refused() -> None:
    text = sign_label(make_payload(), KEY)
    with pytest.raises(UnsupportedVersionError, match="format version 2 .*upgrade"):
        parse_label("CL2:" + text[4:])
    raw = bytearray(b45decode(text[4:]))
    raw[0] = 2
    with pytest.raises(UnsupportedVersionError, match="format version 2"):
        parse_label(PREFIX + b45encode(bytes(raw)))


def test_truncated_and_padded_labels_are_refused() -> None:
    text = sign_label(make_payload(), KEY)
    for cut in (1, 2, 3, 30, 100, 200):
        with pytest.raises(PayloadError):
            parse_label(text[:-cut])
    raw = b45decode(text[4:])
    label = parse_label(text)
    padded = label.signed_bytes + b"\x00" + label.signature
    with pytest.raises(PayloadError, match="unexpected bytes"):
        parse_label(PREFIX + b45encode(padded))
    assert parse_label(text + "\r\n").payload == label.payload
    assert raw


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"item_id": ""}, "must not be empty"),
        ({"item_id": "X" * (MAX_ITEM_ID_BYTES + 1)}, "at most 40 bytes"),
        ({"case_no": "C" * (MAX_CASE_NO_BYTES + 1)}, "at most 32 bytes"),
        ({"seal": "S" * (MAX_SEAL_BYTES + 1)}, "at most 24 bytes"),
        ({"seal": "00\n44"}, "control characters"),
        ({"seized_at": datetime(2026, 3, 1)}, "timezone-aware"),
        ({"seized_at": datetime(1960, 1, 1, tzinfo=UTC)}, "before 1970"),
        (
            {"seized_at": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))},
            "outside the calendar",
        ),
        ({"record_hash": b"short"}, "fewer than 16"),
        ({"record_hash": "not bytes"}, "must be bytes"),
        ({"key_fingerprint": "xyz"}, "not hex"),
        ({"reprint": -1}, "outside 0..255"),
        ({"reprint": 256}, "outside 0..255"),
        ({"reprint": True}, "not an integer"),
        ({"format_version": 2}, "not supported"),
    ],
)
def test_invalid_payload_fields_are_refused(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(PayloadError, match=match):
        make_payload(**overrides)


def test_error_messages_are_single_sentences() -> None:
    for text in ("https://x", "CL1:AB", "CL1:", "CL1:" + "0" * 10):
        check = verify_label(text, lookup_known)
        assert check.reason.endswith("."), check.reason
        assert check.reason[0].isupper()


# --- QR size bound ---------------------------------------------------------------------


def test_typical_payload_is_qr_version_8_at_m_and_10_at_q() -> None:
    text = sign_label(make_payload(), KEY)
    assert qr_matrix(text, error="M").version == 8
    assert qr_matrix(text, error="Q").version == 10
    # The stand-alone image (qrcode library) agrees: 49 modules + 2 x 4 quiet zone.
    assert qr_image(text, error="M", scale=1).size == (57, 57)


def test_largest_allowed_payload_fits_version_10_at_m() -> None:
    text = sign_label(largest_payload(), KEY)
    assert len(text) == 295
    assert qr_matrix(text, error="M").version <= 10
    assert qr_image(text, error="M", scale=1).size[0] <= 57 + 8


@pytest.mark.parametrize("payload", [make_payload(), largest_payload()], ids=["typical", "largest"])
def test_modules_on_a_2x1_thermal_label_are_at_least_3_printer_dots(
    payload: LabelPayload,
) -> None:
    matrix = qr_matrix(sign_label(payload, KEY), error="M")
    layout = get_layout("thermal-2x1")
    module = layout.module_size(matrix.size)
    dots = module / 72 * 203
    assert dots == pytest.approx(3.0)
    assert module / 72 * 25.4 >= 0.375
    assert (matrix.size + 8) * dots <= 203


def test_names_in_any_script_round_trip() -> None:
    item = unicodedata.normalize("NFC", "ĶWS-2026/Ω.1 象牙")
    payload = make_payload(item_id=item, seal="№ 004471")
    assert parse_label(sign_label(payload, KEY)).payload == payload
