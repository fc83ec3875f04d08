"""Reading and writing the files the tools keep, in one place.

Every file a command reads (proxies, configs, architecture lists, data files, checkpoints, caches)
goes through :func:`read_text` (JSON ones through :func:`read_json`), so a missing file, a folder, a
device or pipe, something huge, or bytes that are not UTF-8 end in one ``DataError`` naming the file.
Everything the tools write that a later run reads back (caches, checkpoints, results) goes through
:func:`atomic_write`: a reader sees the old file or the new one, never half of one, even when the
writer is killed.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from proxylang.errors import DataError

MAX_TEXT_BYTES = 64 << 20  # no proxy, config or ground-truth file comes near this


def _file_mode() -> int:
    """What ``open(path, "w")`` would create: 0o666 less the umask (a temporary file starts at 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def read_text(path: str | Path, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path``, a ``what`` file (named in errors)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise DataError(f"{path}: cannot read the {what} file: it is a folder")
        if not stat.S_ISREG(mode):
            raise DataError(f"{path}: cannot read the {what} file: not a regular file (a pipe or a device)")
        with path.open("rb") as f:
            return read_stream(f, str(path), what, max_bytes)
    except FileNotFoundError:
        raise DataError(f"{path}: cannot read the {what} file: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the {what} file ({exc.strerror})") from None


def read_stream(stream: BinaryIO, name: str, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of an open binary stream (a file, or stdin), read up to ``max_bytes``."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DataError(f"{name}: cannot read the {what} file: larger than {max_bytes >> 20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: cannot read the {what} file: not UTF-8 text (byte {exc.start})") from None


def read_json(path: str | Path, what: str) -> Any:
    """The JSON document of ``path`` (through :func:`read_text`); a file that is not JSON, or nests too
    deeply for the parser, is a ``DataError`` naming it. Only plain JSON values come back: nothing in
    the file is executed or turned into objects."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not a {what} file (invalid JSON at line {exc.lineno}, column {exc.colno})"
                        ) from None
    except (ValueError, RecursionError):
        raise DataError(f"{path}: not a {what} file (unreadable JSON)") from None


def writable_folder(folder: str | Path, what: str) -> Path:
    """``folder``, created if needed and checked writable before a long run reaches its first write there,
    so that no work is lost to a path under a file, a read-only place or ``/proc``."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{folder}: cannot create the {what} folder ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"{folder}: cannot write in the {what} folder")
    return folder


def atomic_write(path: str | Path, data: str | bytes | Callable[[BinaryIO], object]) -> None:
    """Write ``data`` (text, bytes, or a function that writes to a binary file, e.g. for
    ``torch.save``) to ``path`` through a synced temporary file in the same folder, then rename it; a
    failure is a ``DataError`` naming the file."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
