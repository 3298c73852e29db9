"""Signed label payloads: what the QR code on an evidence label carries.

This module owns the binary encoding of a label payload, its Ed25519 signature and
its text form. Nothing here prints, reads files or knows about the custody store:
the caller supplies the record hash and the signer's key, and `verify_label` asks
the caller for candidate public keys through `key_lookup`.

Text form::

    "CL1:" + base45(signed_bytes + signature)

The ``CL1:`` prefix names the application and the payload format version; base45
(RFC 9285) keeps every character in the QR alphanumeric set, so the QR code is
encoded in alphanumeric mode. Text starting with ``CL<digits>:`` other than ``CL1:``
is recognised as a custody label of another format version and refused as such.

Byte layout of format version 1 (all integers unsigned big-endian; strings UTF-8
with a one-byte length prefix; the layout is deterministic, so a payload has exactly
one encoding and `parse_label` refuses anything else)::

    size   field
    1      format version, 0x01
    1+n    item_id          1..40 bytes, e.g. "KWS-2026-0042/3.1"
    1+n    case_no          1..32 bytes
    1+n    seal             0..24 bytes (empty when the item is not sealed)
    5      seized_at        UTC epoch seconds (1970-01-01 .. 9999-12-31)
    16     record_hash      first 16 bytes of the caller's hash of the record
    8      key fingerprint  first 8 bytes of SHA-256(raw 32-byte Ed25519 public key)
    1      reprint          copy generation, 0 = first print, up to 255
    64     signature        Ed25519 over b"custody-label-v1" + all bytes above

A typical payload (item "KWS-2026-0042/3.1", case "KWS-2026-0042", seal "004471")
is 70 signed bytes + 64 signature bytes = 134 bytes = 205 text characters; the
largest allowed payload is 194 bytes = 295 characters.

QR size (alphanumeric mode; measured with both the `qrcode` library and zxing-cpp's
encoder, which agree; asserted in tests/test_labels_payload.py):

    payload           error M             error Q
    typical (205 ch)  version 8, 49x49    version 10, 57x57
    largest (295 ch)  version 10, 57x57   version 12, 65x65

A 2x1 inch thermal label printed at 203 dpi is 203 dots tall. With error
correction M and a 4-module quiet zone, version 8 needs 57 modules and version 10
needs 65; at 3 dots per module (0.375 mm) that is 171 and 195 dots, so every
allowed payload fits the label's height with modules of at least 3 printer dots.
The field limits above exist to keep that bound.

Invariants:

- `LabelPayload` holds exactly what a label carries: a timezone-aware `seized_at`
  is normalised to UTC whole seconds, `record_hash` is cut to its 16-byte prefix
  and `key_fingerprint` to its 16-hex-digit prefix when constructed. Hence
  ``parse_label(sign_label(p, key)).payload == p``.
- `parse_label` raises only `LabelError` subclasses, whatever text it is given.
- `verify_label` never raises for bad label text: it returns a `LabelCheck` whose
  `reason` says why the label is or is not genuine.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from labels.base45 import b45decode, b45encode
from labels.errors import ForeignLabelError, LabelError, PayloadError, UnsupportedVersionError

FORMAT_VERSION = 1
PREFIX = "CL1:"
DOMAIN = b"custody-label-v1"
RECORD_HASH_BYTES = 16
FINGERPRINT_BYTES = 8
SIGNATURE_BYTES = 64
MAX_ITEM_ID_BYTES = 40
MAX_CASE_NO_BYTES = 32
MAX_SEAL_BYTES = 24
MAX_REPRINT = 255
_TIME_BYTES = 5
_MAX_EPOCH = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
_OTHER_VERSION = re.compile(r"CL(\d{1,3}):")
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class LabelPayload:
    """The signed facts on one evidence label (see the module docstring for limits)."""

    item_id: str
    case_no: str
    seal: str
    seized_at: datetime
    record_hash: bytes
    key_fingerprint: str
    reprint: int = 0
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.format_version != FORMAT_VERSION:
            raise UnsupportedVersionError(
                f"Label payload format version {self.format_version} is not supported; "
                f"use format version {FORMAT_VERSION}."
            )
        _check_text("item ID", self.item_id, low=1, high=MAX_ITEM_ID_BYTES)
        _check_text("case number", self.case_no, low=1, high=MAX_CASE_NO_BYTES)
        _check_text("seal number", self.seal, low=0, high=MAX_SEAL_BYTES)
        object.__setattr__(self, "seized_at", _normalise_time(self.seized_at))
        object.__setattr__(self, "record_hash", _normalise_hash(self.record_hash))
        object.__setattr__(self, "key_fingerprint", _normalise_fingerprint(self.key_fingerprint))
        if isinstance(self.reprint, bool) or not isinstance(self.reprint, int):
            raise PayloadError(
                f"Reprint {self.reprint!r} is not an integer; pass 0 for a first print."
            )
        if not 0 <= self.reprint <= MAX_REPRINT:
            raise PayloadError(
                f"Reprint {self.reprint} is outside 0..{MAX_REPRINT}; "
                "pass the copy generation, 0 for a first print."
            )

    def matches_record(self, record_hash: bytes) -> bool:
        """Return True if the label's record hash prefix matches the caller's full hash."""
        return bytes(record_hash[:RECORD_HASH_BYTES]) == self.record_hash


@dataclass(frozen=True)
class SignedLabel:
    """A parsed label: the payload, its signature and the exact bytes that were signed."""

    payload: LabelPayload
    signature: bytes
    signed_bytes: bytes

    @property
    def message(self) -> bytes:
        """The domain-separated message the signature covers."""
        return DOMAIN + self.signed_bytes


@dataclass(frozen=True)
class LabelCheck:
    """Outcome of `verify_label`.

    `payload` is the parsed payload whenever the text could be parsed, even if the
    label is not genuine; treat it as an unproven claim unless `genuine` is True.
    `signer_fingerprint` is the full fingerprint of the key that verified the label.
    """

    genuine: bool
    payload: LabelPayload | None
    reason: str
    signer_fingerprint: str | None


def fingerprint_of(public_key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    """Return the lowercase hex SHA-256 of a raw 32-byte Ed25519 public key."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()


def encode_payload(payload: LabelPayload) -> bytes:
    """Return the signed bytes of a payload (everything before the signature)."""
    seconds = int(payload.seized_at.timestamp())
    return b"".join(
        (
            bytes((payload.format_version,)),
            _field(payload.item_id),
            _field(payload.case_no),
            _field(payload.seal),
            seconds.to_bytes(_TIME_BYTES, "big"),
            payload.record_hash,
            bytes.fromhex(payload.key_fingerprint),
            bytes((payload.reprint,)),
        )
    )


def sign_label(payload: LabelPayload, private_key: Ed25519PrivateKey) -> str:
    """Sign a payload and return the text to put in the label's QR code."""
    actual = fingerprint_of(private_key)
    if not actual.startswith(payload.key_fingerprint):
        raise PayloadError(
            f"The payload names signing key {payload.key_fingerprint} but the private key "
            f"has fingerprint {actual[: FINGERPRINT_BYTES * 2]}; build the payload with "
            "fingerprint_of(the signer's key)."
        )
    signed = encode_payload(payload)
    signature = private_key.sign(DOMAIN + signed)
    return PREFIX + b45encode(signed + signature)


def parse_label(text: str) -> SignedLabel:
    """Parse label text without checking the signature; raise LabelError if it is not one."""
    if not isinstance(text, str):
        raise PayloadError(f"Label text must be a string, not {type(text).__name__}.")
    text = text.rstrip("\r\n")
    if not text.startswith(PREFIX):
        other = _OTHER_VERSION.match(text)
        if other:
            raise UnsupportedVersionError(
                f"This custody label uses format version {int(other.group(1))} "
                f"(prefix {other.group(0)}), which this software cannot read; "
                "upgrade custody to verify it."
            )
        raise ForeignLabelError(
            f"This QR code is not a custody evidence label (it does not start with {PREFIX})."
        )
    data = b45decode(text[len(PREFIX) :])
    if len(data) <= SIGNATURE_BYTES:
        raise PayloadError(
            f"The label holds only {len(data)} bytes, too few for a signed payload; "
            "the label text is truncated, so rescan the label."
        )
    signed, signature = data[:-SIGNATURE_BYTES], data[-SIGNATURE_BYTES:]
    return SignedLabel(payload=decode_payload(signed), signature=signature, signed_bytes=signed)


def decode_payload(signed: bytes) -> LabelPayload:
    """Decode the signed bytes of a payload; raise PayloadError unless they are canonical."""
    reader = _Reader(signed)
    version = reader.take(1)[0]
    if version != FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"The label payload has format version {version} behind prefix {PREFIX}, which "
            "this software cannot read; the label is corrupt or was written by newer software."
        )
    item_id = reader.text("item ID")
    case_no = reader.text("case number")
    seal = reader.text("seal number")
    seconds = int.from_bytes(reader.take(_TIME_BYTES), "big")
    if seconds > _MAX_EPOCH:
        raise PayloadError(
            f"The label's seizure time ({seconds} s after 1970) is after the year 9999; "
            "the label is corrupt, so rescan it."
        )
    record_hash = reader.take(RECORD_HASH_BYTES)
    fingerprint = reader.take(FINGERPRINT_BYTES).hex()
    reprint = reader.take(1)[0]
    if reader.remaining:
        raise PayloadError(
            f"The label payload has {reader.remaining} unexpected bytes before its signature; "
            "the label is corrupt, so rescan it."
        )
    return LabelPayload(
        item_id=item_id,
        case_no=case_no,
        seal=seal,
        seized_at=datetime.fromtimestamp(seconds, tz=UTC),
        record_hash=record_hash,
        key_fingerprint=fingerprint,
        reprint=reprint,
        format_version=version,
    )


def verify_label(text: str, key_lookup: Callable[[str], list[bytes]]) -> LabelCheck:
    """Check that label text was signed by a known key and has not been altered.

    `key_lookup` receives the 16-hex-digit fingerprint prefix carried by the label and
    returns candidate raw 32-byte public keys (usually zero or one).
    """
    try:
        label = parse_label(text)
    except LabelError as exc:
        return LabelCheck(genuine=False, payload=None, reason=str(exc), signer_fingerprint=None)
    prefix = label.payload.key_fingerprint
    candidates = [
        bytes(key)
        for key in key_lookup(prefix)
        if len(key) == 32 and fingerprint_of(bytes(key)).startswith(prefix)
    ]
    if not candidates:
        return LabelCheck(
            genuine=False,
            payload=label.payload,
            reason=(
                f"This label is signed by an unknown key (fingerprint {prefix}...); import "
                "the signer's public key before trusting it."
            ),
            signer_fingerprint=None,
        )
    for raw in candidates:
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(label.signature, label.message)
        except (InvalidSignature, ValueError):
            continue
        fingerprint = fingerprint_of(raw)
        return LabelCheck(
            genuine=True,
            payload=label.payload,
            reason=f"The label is genuine: signed by key {fingerprint}.",
            signer_fingerprint=fingerprint,
        )
    return LabelCheck(
        genuine=False,
        payload=label.payload,
        reason=(
            f"The label's signature does not match its contents for key {prefix}...; the "
            "label was altered or forged, so check the item against its record."
        ),
        signer_fingerprint=None,
    )


class _Reader:
    """Sequential reader over signed bytes that turns running short into PayloadError."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, size: int) -> bytes:
        if self.remaining < size:
            raise PayloadError(
                "The label payload ends early; the label text is truncated, so rescan the label."
            )
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def text(self, what: str) -> str:
        raw = self.take(self.take(1)[0])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError(
                f"The label's {what} is not valid UTF-8; the label is corrupt, so rescan it."
            ) from None


def _field(value: str) -> bytes:
    raw = value.encode("utf-8")
    return bytes((len(raw),)) + raw


def _check_text(what: str, value: object, *, low: int, high: int) -> None:
    if not isinstance(value, str):
        raise PayloadError(f"The {what} must be text, not {type(value).__name__}.")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise PayloadError(
            f"The {what} {value!r} holds characters that cannot be encoded as UTF-8; remove them."
        ) from None
    if not low <= size <= high:
        wanted = "must not be empty" if size < low else f"is {size} bytes, over {high}"
        raise PayloadError(
            f"The {what} {value!r} {wanted}; use at most {high} bytes of UTF-8 text."
        )
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise PayloadError(f"The {what} {value!r} holds control characters; remove them.")


def _normalise_time(value: object) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise PayloadError(
            f"Seizure time {value!r} is not a timezone-aware datetime; pass one with a tzinfo."
        )
    try:
        utc = value.astimezone(UTC).replace(microsecond=0)
    except OverflowError:
        raise PayloadError(
            f"Seizure time {value.isoformat()} is outside the calendar in UTC; "
            "pass the real seizure time."
        ) from None
    if not 0 <= int(utc.timestamp()) <= _MAX_EPOCH:
        raise PayloadError(
            f"Seizure time {value.isoformat()} is before 1970; pass the real seizure time."
        )
    return utc


def _normalise_hash(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise PayloadError(f"The record hash must be bytes, not {type(value).__name__}.")
    raw = bytes(value)
    if len(raw) < RECORD_HASH_BYTES:
        raise PayloadError(
            f"The record hash is {len(raw)} bytes, fewer than {RECORD_HASH_BYTES}; "
            "pass the full digest of the item's record."
        )
    return raw[:RECORD_HASH_BYTES]


def _normalise_fingerprint(value: object) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"The key fingerprint must be hex text, not {type(value).__name__}.")
    hexed = value.lower()
    if len(hexed) < FINGERPRINT_BYTES * 2 or not _HEX.fullmatch(hexed) or len(hexed) % 2:
        raise PayloadError(
            f"Key fingerprint {value!r} is not hex of at least {FINGERPRINT_BYTES} bytes; "
            "pass fingerprint_of(the signer's public key)."
        )
    return hexed[: FINGERPRINT_BYTES * 2]


def _raw_public(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if isinstance(key, Ed25519PublicKey):
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    raw = bytes(key)
    if len(raw) != 32:
        raise PayloadError(
            f"An Ed25519 public key is 32 raw bytes, not {len(raw)}; pass the raw key bytes."
        )
    return raw
