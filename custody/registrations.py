"""Actors' registrations as verification trusts them.

Invariant: an actor's key is trusted only when its row matches the registration
record it signed itself (`custody.chain.actor_record`); an altered row is a
finding and its key is dropped, so events it signed show as signed by an
unknown key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from custody.chain import actor_message, actor_record
from custody.domain import FindingKind
from custody.errors import InvalidInput
from custody.files import read_text
from custody.findings import Finding
from custody.keys import key_matches, verify_signature

#: The actor columns a registration covers, in the order bundles and queries use.
ACTOR_FIELDS = (
    "handle", "name", "role", "badge", "agency_code", "public_key", "key_fingerprint", "created_at",
    "registration_signature",
)  # fmt: skip
ACTOR_COLUMNS = ", ".join(ACTOR_FIELDS)


@dataclass(frozen=True)
class RegisteredKey:
    fingerprint: str
    public_hex: str
    #: the actor's earlier keys (fingerprint, public hex), certified before a key rotation;
    #: whether one was in force when it signed is the certificates' check (`custody.trust`).
    earlier: tuple[tuple[str, str], ...] = ()

    def public_for(self, fpr: object) -> str | None:
        """The public key of this actor whose fingerprint is `fpr`, current or earlier."""
        if fpr == self.fingerprint:
            return self.public_hex
        return next((pub for f, pub in self.earlier if f == fpr), None)


#: handle -> the key verification accepts for that actor
KeyMap = dict[str, RegisteredKey]


def registration_ok(actor: Mapping[str, Any]) -> bool:
    """True when an actor's fields (ACTOR_FIELDS) match its self-signed registration."""
    record = actor_record(
        handle=actor["handle"],
        name=actor["name"],
        role=actor["role"],
        badge=actor["badge"],
        agency_code=actor["agency_code"],
        public_key=actor["public_key"],
        created_at=actor["created_at"],
    )
    return key_matches(actor["public_key"], actor["key_fingerprint"]) and verify_signature(
        public_hex=actor["public_key"],
        signature_b64=actor["registration_signature"],
        message=actor_message(record),
    )


def actor_keys(actors: Iterable[Mapping[str, Any]]) -> tuple[KeyMap, list[Finding]]:
    """Registered keys of actors whose rows carry a valid self-signed registration."""
    keys: KeyMap = {}
    findings: list[Finding] = []
    for a in actors:
        handle = str(a["handle"])
        if not registration_ok(a):
            findings.append(
                Finding(
                    f"actor:{handle}",
                    None,
                    FindingKind.ALTERED,
                    f"Actor '{handle}''s record or key does not match its signed registration.",
                )
            )
            continue
        keys[handle] = RegisteredKey(str(a["key_fingerprint"]), str(a["public_key"]))
    return keys, findings


def keep_trusted(keys: KeyMap, trusted: frozenset[str]) -> list[Finding]:
    """Drop (and report) every actor whose key is not in a trusted list kept outside the store."""
    findings = []
    for handle, key in sorted(keys.items()):
        if key.earlier:
            keys[handle] = key = replace(
                key, earlier=tuple(e for e in key.earlier if e[0] in trusted)
            )
        if key.fingerprint not in trusted:
            del keys[handle]
            findings.append(
                Finding(
                    f"actor:{handle}",
                    None,
                    FindingKind.UNKNOWN_KEY,
                    f"Actor '{handle}''s key {key.fingerprint[:16]}… is not in the trusted key list.",
                )
            )
    return findings


def read_trusted_keys(path: Path) -> frozenset[str]:
    """A trusted key file: 64-hex-digit fingerprints, one per line, `#` comments allowed."""
    lines = read_text(path, what="trusted key file").splitlines()
    trusted = frozenset(
        x.split("#", 1)[0].strip().lower() for x in lines if x.split("#", 1)[0].strip()
    )
    if not trusted or any(
        len(f) != 64 or any(c not in "0123456789abcdef" for c in f) for f in trusted
    ):
        raise InvalidInput(
            f"The trusted key file {path} must hold 64-hex-digit key fingerprints, one per line."
        )
    return trusted
