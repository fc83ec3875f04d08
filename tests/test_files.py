"""One input layer and one atomic writer: every unreadable file is one DataError naming it."""

from __future__ import annotations

import io
import os

import pytest

from proxylang.errors import DataError
from proxylang.files import FILE_MODE, atomic_write, read_stream, read_text


def test_read_text_names_the_file_and_the_problem(tmp_path):
    good = tmp_path / "ok.px"
    good.write_text("sum(W)\n", encoding="utf-8")
    assert read_text(good, "proxy") == "sum(W)\n"
    latin = tmp_path / "latin.px"
    latin.write_bytes("sum(W) # é".encode("latin-1"))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # a pipe with no writer: opening it would block forever
    big = tmp_path / "big.px"
    big.write_bytes(b"W" * 2048)
    cases = [(tmp_path / "none.px", "no such file"), (tmp_path, "it is a folder"), (latin, "not UTF-8"),
             (fifo, "not a regular file")]
    for path, problem in cases:
        with pytest.raises(DataError, match=f"{path}: cannot read the proxy file: {problem}"):
            read_text(path, "proxy")
    with pytest.raises(DataError, match="larger than"):
        read_text(big, "proxy", max_bytes=1024)


def test_atomic_write_replaces_whole_files_or_leaves_the_old_one(tmp_path):
    path = tmp_path / "sub" / "state.json"
    atomic_write(path, "old")
    atomic_write(path, b"new")
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == FILE_MODE  # as open(path, "w") would leave it, not 0o600

    def failing(f):
        f.write(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, failing)
    assert path.read_text() == "new" and list(path.parent.iterdir()) == [path]  # no temporary left
    atomic_write(path, lambda f: f.write(b"from a writer"))
    assert path.read_text() == "from a writer"
    with pytest.raises(DataError, match="cannot write"):
        atomic_write(path / "under-a-file", "x")


def test_a_stream_is_read_with_the_same_limits_as_a_file():
    assert read_stream(io.BytesIO("sum(W) # é".encode()), "<stdin>", "proxy") == "sum(W) # é"
    with pytest.raises(DataError, match="<stdin>: cannot read the proxy file: not UTF-8"):
        read_stream(io.BytesIO(b"\xff"), "<stdin>", "proxy")
    with pytest.raises(DataError, match="<stdin>: cannot read the proxy file: larger than"):
        read_stream(io.BytesIO(b"W" * 2048), "<stdin>", "proxy", max_bytes=1024)
