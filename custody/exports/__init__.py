"""Exports that agencies already exchange: the CITES Annual Illegal Trade Report,
non-nominal seizure records, i2 Analyst's Notebook charts, and item tables.

Invariants shared by every export (`write_output`):
- An existing output path is never overwritten (nor a FIFO, device or link
  followed): the export is refused with the fix before any work is recorded.
- The file is written to a temporary file in the target folder, synced, then
  linked into place (which fails instead of replacing a file that appeared in
  the meantime), so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from custody.errors import AlreadyExists, InvalidInput


def check_output(path: Path, *, suffixes: tuple[str, ...] = ()) -> None:
    """Refuse an output path that exists, is not in a folder, or has the wrong suffix."""
    if suffixes and path.suffix.lower() not in suffixes:
        raise InvalidInput(
            f"The output {path} must end in {' or '.join(suffixes)}; name the file accordingly."
        )
    if path.exists() or path.is_symlink():
        raise AlreadyExists(
            f"{path} exists already; exports never overwrite a file, so choose another name "
            f"or move the old file away."
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInput(f"The folder {parent} does not exist; create it or choose another path.")


def write_output(path: Path, data: bytes) -> str:
    """Write `data` to a new file at `path` (never replacing one); returns its sha256 hash."""
    check_output(path)
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if the name was taken meanwhile: never replaces
        except FileExistsError:
            raise AlreadyExists(
                f"{path} appeared while the export was written; nothing was replaced, choose "
                f"another name."
            ) from None
        except OSError:
            if path.exists():
                raise
            os.replace(tmp, path)  # file systems without hard links
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def remove_output(path: Path) -> None:
    """Take back a file written for an export whose record could not be written."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
