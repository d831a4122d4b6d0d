"""Corpus readers: line splitting, gzip, and one-line DataErrors naming the file (and 1-based line) for every
problem a user can cause."""

import gzip

import pytest

from seqlab.data.corpora import read_lines, read_parallel, read_tsv_pairs
from seqlab.errors import DataError


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as error:
        call(*args, **kwargs)
    message = str(error.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------------ read_lines
def test_lines_without_line_ends_and_nothing_else_stripped(tmp_path):
    path = write(tmp_path / "a.txt", b" one \r\ntwo\n\nthree")
    assert read_lines(path) == [" one ", "two", "", "three"]
    assert read_lines(write(tmp_path / "b.txt", b"one\ntwo\n")) == ["one", "two"]


def test_utf8_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffein Haus\nzwei\n".encode("utf-8"))
    assert read_lines(path) == ["ein Haus", "zwei"]


def test_unicode_line_separators_do_not_split_lines(tmp_path):
    text = "a\u2028b\x85c\u2029d\x0ce\nsecond\n"
    assert read_lines(write(tmp_path / "a.txt", text.encode("utf-8"))) == ["a\u2028b\x85c\u2029d\x0ce", "second"]


def test_cp1252_file_keeps_its_line_count(tmp_path):
    """rt-polarity's 0x85 byte ('…' in cp1252) must not become a line break."""
    path = write(tmp_path / "a.txt", b"so \x85 good\nbad \x96 movie\n")
    assert read_lines(path, encoding="cp1252") == ["so \u2026 good", "bad \u2013 movie"]


def test_gzipped_files_are_read_transparently(tmp_path):
    path = write(tmp_path / "a.txt.gz", gzip.compress("é\nü\n".encode("utf-8")))
    assert read_lines(path) == ["é", "ü"]
    message = error_of(read_lines, write(tmp_path / "bad.gz", b"not gzip at all"))
    assert message.startswith(f"{tmp_path / 'bad.gz'}: not a valid gzip file")


def test_missing_directory_and_empty_files(tmp_path):
    assert error_of(read_lines, tmp_path / "nope.txt") == f"{tmp_path / 'nope.txt'}: no such file"
    assert error_of(read_lines, tmp_path) == f"{tmp_path}: is a directory, expected a text file"
    assert error_of(read_lines, write(tmp_path / "e.txt", b"")) == f"{tmp_path / 'e.txt'}: file is empty"
    empty_gz = write(tmp_path / "e.txt.gz", gzip.compress(b""))
    assert error_of(read_lines, empty_gz) == f"{empty_gz}: file is empty"


@pytest.mark.parametrize("data, line, column, byte", [
    (b"\xff first line", 1, 1, "0xff"),
    (b"ok\nstill ok\ncaf\xe9 au lait\n", 3, 4, "0xe9"),
    (b"ok\r\n\r\nab\xc3(\n", 3, 3, "0xc3"),  # a truncated 2-byte sequence
    (b"line\n" * 41 + b"\xe2\x82", 42, 1, "0xe2"),  # the file ends inside a character
])
def test_invalid_utf8_names_the_1_based_line_and_column(tmp_path, data, line, column, byte):
    path = write(tmp_path / "bad.txt", data)
    message = error_of(read_lines, path)
    assert message.startswith(f"{path}:{line}: invalid utf-8 (byte {byte} at column {column}")


def test_invalid_utf8_in_a_gzipped_file_names_the_line(tmp_path):
    path = write(tmp_path / "bad.txt.gz", gzip.compress(b"a\nb\nc\xff\n"))
    assert error_of(read_lines, path).startswith(f"{path}:3: invalid utf-8")


# ------------------------------------------------------------------------------------------------ parallel
def test_read_parallel_pairs_line_i_with_line_i(tmp_path):
    src = write(tmp_path / "src", b"go .\ni lost .\n")
    tgt = write(tmp_path / "tgt", "va !\nj'ai perdu .\n".encode("utf-8"))
    assert read_parallel(src, tgt) == [("go .", "va !"), ("i lost .", "j'ai perdu .")]


def test_read_parallel_line_count_mismatch_names_both_files_and_counts(tmp_path):
    src = write(tmp_path / "train.en", b"a\nb\nc\n")
    tgt = write(tmp_path / "train.fr", b"a\nb\n")
    assert error_of(read_parallel, src, tgt) == (f"parallel files differ in length: {src} has 3 lines, "
                                                 f"{tgt} has 2")


def test_read_parallel_reports_the_file_with_the_problem(tmp_path):
    src = write(tmp_path / "src", b"a\n")
    assert error_of(read_parallel, src, tmp_path / "tgt") == f"{tmp_path / 'tgt'}: no such file"
    bad = write(tmp_path / "bad", b"a\n\xff\n")
    assert error_of(read_parallel, bad, src).startswith(f"{bad}:2: invalid utf-8")


# ------------------------------------------------------------------------------------------------ tsv
def test_read_tsv_pairs_and_columns(tmp_path):
    path = write(tmp_path / "fra.txt", "Go.\tVa !\tCC-BY\nHi.\tSalut !\tCC-BY\n".encode("utf-8"))
    assert read_tsv_pairs(path) == [("Go.", "Va !"), ("Hi.", "Salut !")]
    assert read_tsv_pairs(path, src_column=1, tgt_column=2) == [("Va !", "CC-BY"), ("Salut !", "CC-BY")]


def test_bad_tsv_line_names_file_line_and_column_count(tmp_path):
    path = write(tmp_path / "fra.txt", b"Go.\tVa !\nHi. Salut !\nRun!\tCours !\n")
    assert error_of(read_tsv_pairs, path) == f"{path}:2: expected at least 2 tab-separated columns, got 1"
    assert error_of(read_tsv_pairs, write(tmp_path / "t.txt", b"a\tb\n"), 0, 2) == \
        f"{tmp_path / 't.txt'}:1: expected at least 3 tab-separated columns, got 2"
