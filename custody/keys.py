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

from custody.errors import KeyProblem, PassphraseNeeded

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


def new_key_passphrase() -> str | None:
    """The passphrase for a new key from CUSTODY_PASSPHRASE: None when it is unset.

    Set but empty is refused: it would write an unencrypted key to someone who
    meant to encrypt it.
    """
    value = os.environ.get(PASSPHRASE_ENV)
    if value is None:
        return None
    if not value:
        raise KeyProblem(
            f"{PASSPHRASE_ENV} is set but empty, so the new key would not be encrypted; "
            f"set it to the passphrase, or unset it to store the key unencrypted."
        )
    return value


def _private_folder(path: Path) -> None:
    """Create `path` (and missing parents' last step) as 0700 whatever the umask."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    os.chmod(path, 0o700)


def check_keys_folder(folder: Path) -> None:
    """Refuse a keys folder other users can write to: keys in it could be planted."""
    try:
        mode = folder.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o022:
        raise KeyProblem(
            f"The keys folder {folder} can be written by other users (mode {mode:o}); "
            f"run 'chmod 700 {folder}'."
        )


def create_key(home: Path, handle: str, *, passphrase: str | None = None) -> KeyPair:
    """Generate a key pair and write the private key with 0600 permissions."""
    key = Ed25519PrivateKey.generate()
    raw = public_raw(key)
    fpr = fingerprint(raw)
    folder = keys_dir(home)
    _private_folder(home)
    _private_folder(folder)
    check_keys_folder(folder)
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
    check_keys_folder(path.parent)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyProblem(
            f"The private key file {path} is readable by other users (mode {mode:o}); "
            f"run 'chmod 600 {path}'."
        )
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
    data = path.read_bytes()
    password = passphrase.encode("utf-8") if passphrase else None
    try:
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except TypeError:
            if password is None:
                raise PassphraseNeeded(
                    f"The private key of actor '{handle}' is passphrase-protected; "
                    f"set {PASSPHRASE_ENV} to its passphrase."
                ) from None
            # A passphrase was given for a key stored unencrypted: it is simply not needed.
            key = serialization.load_pem_private_key(data, password=None)
    except PassphraseNeeded:
        raise
    except TypeError:
        raise KeyProblem(
            f"The key file {path} could not be loaded; re-create the actor's key."
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
