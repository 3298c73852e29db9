"""Reading the files a user names and writing exports, safely.

Invariants (the same as custody's, restated here because species_ref never
imports custody):
- Only a regular file is read; a FIFO, device or socket is refused without
  blocking (it is opened non-blocking and checked with fstat).
- An export is written to a temporary file created exclusively (random name,
  O_EXCL) in the target folder and renamed into place; a symbolic link at the
  target is never followed, an existing file is replaced only when forced, and
  a missing folder is never created.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from species_ref.errors import InputFormatError, SpeciesRefError

_REASONS = {
    errno.ENAMETOOLONG: "its name is too long",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of its path is not a folder",
    errno.EACCES: "permission is denied",
    errno.ENOENT: "it does not exist",
    errno.ELOOP: "its path has too many symbolic links",
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
}


def os_reason(exc: OSError) -> str:
    """A short lower-case reason for an OS error, without paths or errno numbers."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    text = (exc.strerror or exc.__class__.__name__).strip().rstrip(".")
    return text[:1].lower() + text[1:]


def first_line(exc: BaseException, limit: int = 120) -> str:
    """The first sentence of a parser's message on one line (Biopython's messages run to
    many lines and several paragraphs), shortened."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.split(". ", 1)[0].rstrip(".:")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_regular(path: Path, *, what: str, hint: str) -> bytes:
    """The bytes of the regular file `path`; `InputFormatError` otherwise.

    `what` names the file ("Query file"), `hint` says what to give instead.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputFormatError(f"{what} {path} does not exist; check the path.") from None
    except (OSError, ValueError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else "its name is not valid"
        raise InputFormatError(
            f"{what} {path} cannot be read ({reason}); check the path."
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputFormatError(f"{what} {path} is a directory; {hint}.")
    if not stat.S_ISREG(st.st_mode):
        raise InputFormatError(
            f"{what} {path} is not a regular file (a pipe, device or socket); {hint}."
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputFormatError(
            f"{what} {path} cannot be read ({os_reason(exc)}); check the path."
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputFormatError(f"{what} {path} is not a regular file; {hint}.")
        os.set_blocking(fd, True)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise InputFormatError(
            f"{what} {path} cannot be read ({os_reason(exc)}); check the path."
        ) from None
    finally:
        os.close(fd)


def write_text_exclusive(out: Path, text: str, *, what: str, force: bool = False) -> Path:
    """Write `text` (UTF-8, LF) to `out` through an exclusive temporary file and a rename."""
    folder = out.parent
    if not folder.is_dir():
        raise SpeciesRefError(
            f"The folder {folder} for the {what} does not exist; create it first or choose "
            "another path."
        )
    try:
        mode: int | None = os.lstat(out).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise SpeciesRefError(
            f"The {what} {out} cannot be written ({os_reason(exc)}); choose another path."
        ) from None
    if mode is not None:
        if stat.S_ISLNK(mode):
            raise SpeciesRefError(
                f"The {what} path {out} is a symbolic link; exports are never written through "
                "links, so give the path of a plain file."
            )
        if not stat.S_ISREG(mode):
            raise SpeciesRefError(
                f"The {what} path {out} is not a plain file (a folder, pipe or device); "
                "give a file name."
            )
        if not force:
            raise SpeciesRefError(
                f"The {what} {out} exists already; choose another name or pass --force to "
                "replace it."
            )
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{out.name[:40]}.", suffix=".tmp")
    except OSError as exc:
        raise SpeciesRefError(
            f"The {what} {out} cannot be written ({os_reason(exc)}); choose another path."
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if force:
            os.replace(tmp, out)
        else:
            try:
                os.link(tmp, out)
            except FileExistsError:
                raise SpeciesRefError(
                    f"The {what} {out} exists already; choose another name or pass --force to "
                    "replace it."
                ) from None
    except OSError as exc:
        raise SpeciesRefError(
            f"The {what} {out} cannot be written ({os_reason(exc)}); choose another path."
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out
