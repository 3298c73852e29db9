"""Ed25519 keys of actors: creation, safe storage, loading, signing and checking.

Invariants: a private key never enters the store; it lives in
`<home>/keys/<handle>.<fingerprint16>.pem` with 0600 permissions (the folder
0700), encrypted when a passphrase is given. The store keeps the raw public key
(hex) and its fingerprint, the lowercase hex SHA-256 of the 32 raw key bytes.
Signatures are made over a domain-separated message so an event signature can
never be replayed as a head or label signature.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from custody.errors import KeyProblem

PASSPHRASE_ENV = "CUSTODY_PASSPHRASE"


def fingerprint(public_raw: bytes) -> str:
    """Lowercase hex SHA-256 of the raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_raw).hexdigest()


def public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class KeyPair:
    handle: str
    private: Ed25519PrivateKey
    public_hex: str
    fingerprint: str

    def sign(self, message: bytes) -> str:
        return b64(self.private.sign(message))


def keys_dir(home: Path) -> Path:
    return home / "keys"


def _key_path(home: Path, handle: str, fpr: str) -> Path:
    return keys_dir(home) / f"{handle}.{fpr[:16]}.pem"


def create_key(home: Path, handle: str, *, passphrase: str | None = None) -> KeyPair:
    """Generate a key pair and write the private key with 0600 permissions."""
    key = Ed25519PrivateKey.generate()
    raw = public_raw(key)
    fpr = fingerprint(raw)
    folder = keys_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=encryption,
    )
    path = _key_path(home, handle, fpr)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    return KeyPair(handle=handle, private=key, public_hex=raw.hex(), fingerprint=fpr)


def load_key(home: Path, *, handle: str, fpr: str, passphrase: str | None = None) -> KeyPair:
    """Load the private key of `handle` whose public key has fingerprint `fpr`."""
    path = _key_path(home, handle, fpr)
    if not path.exists():
        raise KeyProblem(
            f"The private key of actor '{handle}' is not on this machine (looked for {path}); "
            f"sign on the machine that holds it or set CUSTODY_HOME to its folder."
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyProblem(
            f"The private key file {path} is readable by other users (mode {mode:o}); "
            f"run 'chmod 600 {path}'."
        )
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
    data = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode("utf-8") if passphrase else None
        )
    except TypeError:
        raise KeyProblem(
            f"The private key of actor '{handle}' is passphrase-protected; "
            f"set {PASSPHRASE_ENV} to its passphrase."
        ) from None
    except ValueError:
        raise KeyProblem(
            f"The private key of actor '{handle}' could not be unlocked; "
            f"check {PASSPHRASE_ENV} or the key file {path}."
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"The key file {path} does not hold an Ed25519 key; re-create the actor.")
    raw = public_raw(key)
    if fingerprint(raw) != fpr:
        raise KeyProblem(
            f"The private key in {path} does not match actor '{handle}''s registered public key."
        )
    return KeyPair(handle=handle, private=key, public_hex=raw.hex(), fingerprint=fpr)


def verify_signature(*, public_hex: str, signature_b64: str, message: bytes) -> bool:
    """True when `signature_b64` is a valid Ed25519 signature of `message`."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(unb64(signature_b64), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def key_matches(public_hex: str, fpr: str | None) -> bool:
    """True when `public_hex` is a readable public key whose fingerprint is `fpr`."""
    try:
        return fingerprint(bytes.fromhex(public_hex)) == fpr
    except (TypeError, ValueError):
        return False
