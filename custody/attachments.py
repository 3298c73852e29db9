"""Content-addressed store for photos and other attachments.

Invariant: a file is stored once under `sha256/<2 hex>/<64 hex>` and never
rewritten; the event that adds it carries its hash, name, size and media type,
so any later change to the stored bytes is detected by verification.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from custody.errors import InvalidInput


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def blob_path(root: Path, sha: str) -> Path:
    hexdigest = sha.removeprefix("sha256:")
    return root / "sha256" / hexdigest[:2] / hexdigest


def describe(path: Path) -> dict[str, Any]:
    """The manifest entry of a file to attach (hash computed now, at capture)."""
    if not path.is_file():
        raise InvalidInput(
            f"The attachment {path} does not exist or is not a file; check the path."
        )
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return {
        "sha256": file_sha256(path),
        "name": path.name,
        "size": path.stat().st_size,
        "media_type": media_type,
    }


def store_file(root: Path, path: Path, sha: str) -> Path:
    """Copy `path` into the store under its hash (atomic; a no-op if already there)."""
    target = blob_path(root, sha)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        if file_sha256(Path(tmp)) != sha:
            raise InvalidInput(
                f"The file {path} changed while it was being attached; attach it again."
            )
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
