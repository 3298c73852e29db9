"""Checkpoints: the signed head of the store log, carried off the machine.

A copy kept elsewhere (with the prosecutor, on paper) lets a later `verify`
detect what the store alone cannot: a store re-created from nothing, restored
from an older copy, or rewritten together with its own signed head.

Invariant: a checkpoint is trusted only through its own signature and the
public key it carries; the store it is checked against is never consulted for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from custody.chain import head_message
from custody.domain import EventRecord, FindingKind
from custody.errors import InvalidInput
from custody.files import parse_json, read_text
from custody.findings import Finding
from custody.keys import key_matches, verify_signature
from custody.store import Store
from custody.timeutil import now_utc, to_utc_text

CHECKPOINT_FORMAT = "custody-checkpoint-v1"
_TEXT_FIELDS = ("store_id", "log_hash", "signed_by", "key", "public_key", "signature")


@dataclass(frozen=True)
class Checkpoint:
    store_id: str
    seq: int
    log_hash: str
    signed_by: str
    key: str
    public_key: str
    signature: str
    taken_at: str
    name: str = ""  # the file it was read from

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON form (without the name of the file it was read from)."""
        out = {"format": CHECKPOINT_FORMAT, **asdict(self)}
        del out["name"]
        return out

    def to_json(self) -> str:
        """The text written to a checkpoint file."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    @property
    def label(self) -> str:
        return f"checkpoint {self.name} (taken {self.taken_at or '?'})"


def take_checkpoint(store: Store) -> Checkpoint:
    """The signed head of the store log, with what is needed to check it anywhere.

    Raises `InvalidInput` when nothing has been recorded yet (there is no head).
    """
    with store.engine.connect() as conn, conn.begin():
        q = conn.exec_driver_sql
        head = q(
            "SELECT log_seq, log_hash, actor, actor_key, signature FROM store_head WHERE id = 1"
        ).first()
        store_id = q("SELECT value FROM store_meta WHERE key = 'store_id'").scalar()
        if head is None:
            raise InvalidInput(
                "The store has no custody events yet; record one before taking a checkpoint."
            )
        public = conn.execute(
            text("SELECT public_key FROM actors WHERE handle = :h"), {"h": head[2]}
        ).scalar()
    return Checkpoint(
        store_id=str(store_id or ""),
        seq=int(head[0]),
        log_hash=str(head[1]),
        signed_by=str(head[2]),
        key=str(head[3]),
        public_key=str(public or ""),
        signature=str(head[4]),
        taken_at=to_utc_text(now_utc()),
    )


def read_checkpoint(text_: str, *, name: str) -> Checkpoint:
    """Parse a checkpoint file's text; `InvalidInput` names the file when it is not one."""
    data = parse_json(text_)
    if (
        not isinstance(data, dict)
        or data.get("format") != CHECKPOINT_FORMAT
        or any(not isinstance(data.get(f), str) for f in _TEXT_FIELDS)
        or not isinstance(data.get("seq"), int)
        or isinstance(data.get("seq"), bool)
    ):
        raise InvalidInput(
            f"{name} is not a custody checkpoint; write one with 'custody checkpoint -o FILE'."
        )
    return Checkpoint(
        **{f: data[f] for f in _TEXT_FIELDS},
        seq=data["seq"],
        taken_at=str(data.get("taken_at", "")),
        name=name,
    )


def read_checkpoint_file(path: Path) -> Checkpoint:
    return read_checkpoint(read_text(path, what="checkpoint file"), name=path.name)


def check_checkpoint(
    checkpoint: Checkpoint, *, store_id: str, events: Sequence[EventRecord]
) -> list[Finding]:
    """Findings when the store no longer holds the history a checkpoint vouches for."""
    cp, label = checkpoint, checkpoint.label
    message = head_message(store_id=cp.store_id, seq=cp.seq, hash_=cp.log_hash)
    if not key_matches(cp.public_key, cp.key) or not verify_signature(
        public_hex=cp.public_key, signature_b64=cp.signature, message=message
    ):
        return [
            Finding(
                "checkpoint",
                cp.seq,
                FindingKind.BAD_SIGNATURE,
                f"The signature of {label} does not verify: the file was edited; use an untouched copy.",
            )
        ]
    if cp.store_id != store_id:
        return [
            Finding(
                "store",
                None,
                FindingKind.MISSING,
                f"This store ({store_id or 'no id'}) is not the one {label} was taken from "
                f"({cp.store_id}): it was re-created or replaced, and the {cp.seq} "
                "events recorded before the checkpoint are not in it.",
            )
        ]
    entry = _entry(events, cp.seq)
    if entry is None:
        last = events[-1].id if events else 0
        return [
            Finding(
                "store",
                cp.seq,
                FindingKind.MISSING,
                f"The {label} names store log entry {cp.seq}, but the log ends at {last}: "
                "events were deleted or the store was restored from an older copy.",
            )
        ]
    if entry.log_hash != cp.log_hash:
        return [
            Finding(
                "store",
                cp.seq,
                FindingKind.ALTERED,
                f"Store log entry {cp.seq} differs from the {label}: the history up to it was rewritten.",
            )
        ]
    return []


def _entry(events: Sequence[EventRecord], seq: int) -> EventRecord | None:
    return next((e for e in events if e.id == seq), None)
