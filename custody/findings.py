"""What verification reports: findings, and the report of one verification run.

Invariant: verification never prints and never raises for a problem in the
record; every problem becomes one `Finding`, and an empty list means intact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from custody.domain import FindingKind


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: which item (or chain), which event, what is wrong."""

    subject: str  # item ID, "case:<no>", "actor:<handle>", "checkpoint" or "store"
    event: int | None
    kind: FindingKind
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "event": self.event,
            "kind": str(self.kind),
            "message": self.message,
        }


@dataclass(frozen=True)
class LogHead:
    """The end of the store-wide log as verification saw it."""

    seq: int
    hash: str | None
    signed_by: str | None = None
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "hash": self.hash}
        if self.signed_by is not None:
            out.update({"signed_by": self.signed_by, "key": self.key})
        return out


@dataclass
class VerifyReport:
    scope: str
    events_checked: int = 0
    chains_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)  # chain -> last event hash
    signers: dict[str, str] = field(default_factory=dict)  # handle -> key fingerprint
    log_head: LogHead = field(default_factory=lambda: LogHead(seq=0, hash=None))
    root: str | None = None  # fingerprint of the agency root the store names
    anchor: str = "store"  # what anchored trust: "trust list", "root key here" or "store"

    @property
    def intact(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "intact": self.intact,
            "events_checked": self.events_checked,
            "chains_checked": self.chains_checked,
            "findings": [f.to_dict() for f in self.findings],
            "heads": self.heads,
            "signers": self.signers,
            "log_head": self.log_head.to_dict(),
            "root": self.root,
            "anchor": self.anchor,
        }
