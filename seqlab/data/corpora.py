"""Reading text corpora: plain or gzipped lines, line-aligned parallel files, tab-separated pairs.

Every problem a user can cause becomes a one-line ``DataError`` naming the file (and the line when there is one):
a missing or empty file, a byte sequence that is not valid in the encoding, parallel files of different lengths,
a TSV line with too few columns.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from pathlib import Path
from typing import BinaryIO

from seqlab.errors import DataError


def read_bytes(path: str | Path) -> bytes:
    """The file's content, gunzipped when its name ends in ``.gz``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a text file")
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: not a valid gzip file ({error})") from None


def read_lines(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """All lines of a text file, without their line ends (``\\n`` or ``\\r\\n``); nothing else is stripped.

    Decoding is strict; a UTF-8 byte-order mark (files saved by Windows editors) is dropped, so it never glues
    itself to the first token.  Lines are split on ``\\n`` only, never with ``str.splitlines``, which would also break
    on U+0085, U+2028 and friends (the cp1252 rt-polarity file read as latin-1 grows 30 extra lines that way).
    """
    data = read_bytes(path)
    if not data:
        raise DataError(f"{path}: file is empty")
    return decode_lines(data, path, encoding)


def decode_lines(data: bytes, name: str | Path, encoding: str = "utf-8") -> list[str]:
    """``data`` decoded strictly and split into lines as ``read_lines`` does; ``name`` is what errors quote."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise DataError(_decode_error_message(name, data, error, encoding)) from None
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines[-1] == "":  # the final newline ends the last line, it does not open a new one
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


STDIN_NAME = "<stdin>"


def read_stdin_lines(stream: BinaryIO | None = None, encoding: str = "utf-8") -> list[str]:
    """All lines of standard input, checked like a file's: the bytes are decoded strictly here, never by the
    locale's text layer (which passes latin-1 silently under one locale and raises a traceback under another).
    An empty stdin is no lines, not an error: ``printf '' | seqlab translate M`` prints nothing."""
    stream = stream if stream is not None else getattr(sys.stdin, "buffer", sys.stdin)
    data = stream.read()
    if isinstance(data, str):  # a text stream without bytes underneath (a test's StringIO): already decoded
        data = data.encode(encoding, errors="surrogateescape")
    return decode_lines(data, STDIN_NAME, encoding) if data else []


def decode_stdin_line(raw: bytes, number: int, encoding: str = "utf-8") -> str:
    """One line typed at a terminal (interactive mode), checked like a file's line ``number``."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        message = _decode_error_message(STDIN_NAME, raw, error, encoding)
        raise DataError(message.replace(f"{STDIN_NAME}:1:", f"{STDIN_NAME}:{number}:", 1)) from None
    return text.removesuffix("\n").removesuffix("\r")


def read_input_lines(path: str | Path | None) -> list[str]:
    """The lines of a file, or of standard input when ``path`` is None or ``-``; one check for both."""
    if path is None or str(path) == "-":
        return read_stdin_lines()
    return read_lines(path)


def _decode_error_message(path: str | Path, data: bytes, error: UnicodeDecodeError, encoding: str) -> str:
    """``path:LINE: invalid utf-8 (byte 0xe9 at column 4)`` with the 1-based line and column of the bad byte.

    Counting newline bytes before the error offset gives the line: in UTF-8 (and in single-byte encodings) the
    byte 0x0A only ever means a newline, never part of a multi-byte character.
    """
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    name = "utf-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    return f"{path}:{line}: invalid {name} (byte 0x{data[error.start]:02x} at column {column}: {error.reason})"


def read_parallel(src_path: str | Path, tgt_path: str | Path, encoding: str = "utf-8") -> list[tuple[str, str]]:
    """Line i of ``src_path`` with line i of ``tgt_path``; both files must have the same number of lines."""
    src_lines = read_lines(src_path, encoding)
    tgt_lines = read_lines(tgt_path, encoding)
    if len(src_lines) != len(tgt_lines):
        raise DataError(f"parallel files differ in length: {src_path} has {len(src_lines)} lines, "
                        f"{tgt_path} has {len(tgt_lines)}")
    return list(zip(src_lines, tgt_lines))


def read_tsv_pairs(path: str | Path, src_column: int = 0, tgt_column: int = 1,
                   encoding: str = "utf-8") -> list[tuple[str, str]]:
    """(column ``src_column``, column ``tgt_column``) of every tab-separated line, e.g. Tatoeba's ``en<TAB>fr``."""
    needed = max(src_column, tgt_column) + 1
    pairs = []
    for number, line in enumerate(read_lines(path, encoding), start=1):
        columns = line.split("\t")
        if len(columns) < needed:
            raise DataError(f"{path}:{number}: expected at least {needed} tab-separated columns, got {len(columns)}")
        pairs.append((columns[src_column], columns[tgt_column]))
    return pairs
