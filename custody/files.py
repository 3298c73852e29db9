"""Files the user names: what may be read, and how outputs are written.

Invariants:
- An input is read only when it is a regular file: a FIFO, device or socket is
  refused before it is opened for reading (opening is non-blocking, so a FIFO
  swapped in at the last moment cannot hang the command either).
- An attachment path taken from a CSV file resolves inside the CSV's folder:
  absolute paths, `..`, symbolic links and non-regular files are refused.
- An output is written to a temporary file created exclusively (random name,
  O_EXCL) in the target folder, then renamed into place; a symbolic link at the
  target is never followed, an existing file is never replaced unless forced,
  and a missing folder is never created.
- JSON read from a file is refused when it nests deeper than `MAX_JSON_DEPTH`.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from custody.errors import AlreadyExists, InvalidInput, NotFound
from species_ref.files import os_reason  # one wording of OS errors for both packages

MAX_JSON_DEPTH = 64


def require_regular(path: Path, *, what: str) -> Path:
    """Return `path` when it names an existing regular file (links to one are fine)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotFound(f"The {what} {path} does not exist; check the path.") from None
    except (OSError, ValueError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else "its name is not valid"
        raise InvalidInput(
            f"The {what} {path} cannot be read ({reason}); check the path."
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"The {what} {path} is a folder; give the path of a file.")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(
            f"The {what} {path} is not a regular file (a pipe, device or socket); "
            f"give the path of an ordinary file."
        )
    return path


def read_bytes(path: Path, *, what: str) -> bytes:
    """The bytes of a regular file; never blocks on a FIFO."""
    require_regular(path, what=what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InvalidInput(
            f"The {what} {path} cannot be read ({os_reason(exc)}); check the path."
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidInput(
                f"The {what} {path} is not a regular file; give the path of an ordinary file."
            )
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    except OSError as exc:
        raise InvalidInput(
            f"The {what} {path} cannot be read ({os_reason(exc)}); check the path."
        ) from None
    finally:
        os.close(fd)


def read_text(path: Path, *, what: str) -> str:
    """The UTF-8 text of a regular file (a byte-order mark is dropped)."""
    data = read_bytes(path, what=what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"The {what} {path} is not UTF-8 text; save it as UTF-8.") from None


def json_depth(value: Any) -> int:
    """How deeply `value` nests lists and objects (0 for a scalar); iterative."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def parse_json(text: str) -> Any:
    """Parsed JSON, or None when the text is not JSON or nests too deeply to be a custody
    document (a parser fed 100,000 brackets must give an error, not a crash)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if json_depth(value) > MAX_JSON_DEPTH:
        return None
    return value


def attachment_inside(base: Path, relative: str, *, where: str) -> Path:
    """The file `relative` names inside the folder `base`, or `InvalidInput`.

    Used for paths written in an import file: they may only name ordinary files
    in the import file's folder or below it, reached without symbolic links.
    """
    text = relative.strip()
    pure = PurePosixPath(text)
    if pure.is_absolute() or text.startswith("~") or "\\" in text or "\x00" in text:
        raise InvalidInput(
            f"{where}: the attachment path '{text}' is not relative to the CSV's folder; "
            f"give paths like photos/scales.jpg inside that folder."
        )
    if ".." in pure.parts:
        raise InvalidInput(
            f"{where}: the attachment path '{text}' leaves the CSV's folder; "
            f"copy the file into that folder and name it from there."
        )
    current = base
    mode = 0
    for part in pure.parts:
        if part == ".":
            continue
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            raise NotFound(
                f"{where}: the attachment {text} does not exist in {base}; check the path."
            ) from None
        except OSError as exc:
            raise InvalidInput(
                f"{where}: the attachment {text} cannot be read ({os_reason(exc)}); check the path."
            ) from None
        if stat.S_ISLNK(mode):
            raise InvalidInput(
                f"{where}: the attachment path '{text}' goes through a symbolic link; "
                f"copy the file itself into the CSV's folder."
            )
    if not stat.S_ISREG(mode):
        raise InvalidInput(
            f"{where}: the attachment '{text}' is not an ordinary file; name a photo or document."
        )
    return current


def check_output(path: Path, *, what: str, force: bool = False, can_force: bool = True) -> Path:
    """Refuse an output path that cannot or must not be written, before any work is done."""
    folder = path.parent
    if not folder.is_dir():
        raise InvalidInput(
            f"The {what} {path} cannot be written because its folder {folder} does not exist; "
            f"create the folder first or choose another path."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidInput(
            f"The folder {folder} is not writable, so the {what} {path.name} cannot be written "
            "there; choose another path."
        )
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise InvalidInput(
            f"The {what} {path} cannot be written ({os_reason(exc)}); choose another path."
        ) from None
    if stat.S_ISLNK(mode):
        raise InvalidInput(
            f"The {what} path {path} is a symbolic link; custody does not write through links, "
            f"so give the path of a plain file."
        )
    if stat.S_ISDIR(mode):
        raise InvalidInput(
            f"The {what} path {path} is a folder; give a file name inside it instead."
        )
    if not stat.S_ISREG(mode):
        raise InvalidInput(
            f"The {what} path {path} is not a regular file; give the path of a plain file."
        )
    if not force:
        raise AlreadyExists(
            f"The {what} {path} exists already; choose another name"
            + (" or pass --force to replace it." if can_force else ".")
        )
    return path


def write_output(path: Path, data: bytes, *, what: str, force: bool = False) -> Path:
    """Write `data` to `path` through an exclusive temporary file and a rename."""
    check_output(path, what=what, force=force)
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name[:40]}.", suffix=".tmp")
    except OSError as exc:
        raise InvalidInput(
            f"The {what} {path} cannot be written ({os_reason(exc)}); choose another path."
        ) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if force:
            os.replace(tmp, path)
        else:
            # A hard link never replaces a file that appeared since the check.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise AlreadyExists(
                    f"The {what} {path} exists already; choose another name or pass --force "
                    f"to replace it."
                ) from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                check_output(path, what=what, force=False)
                os.replace(tmp, path)
    except OSError as exc:
        raise InvalidInput(
            f"The {what} {path} cannot be written ({os_reason(exc)}); choose another path."
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
