"""``atomic_write``: all-or-nothing, and the file ends with the mode an ordinary write would give it."""

import os
import stat

import pytest

from seqlab.errors import SeqlabError
from seqlab.utils import atomic_write


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_new_file_gets_the_umask_mode_not_0600(tmp_path, umask_022):
    with atomic_write(tmp_path / "out.txt") as handle:
        handle.write("x\n")
    assert mode_of(tmp_path / "out.txt") == 0o644
    with atomic_write(tmp_path / "out.bin", "wb") as handle:  # checkpoints go this way
        handle.write(b"\x00")
    assert mode_of(tmp_path / "out.bin") == 0o644


def test_another_umask_is_followed(tmp_path):
    previous = os.umask(0o077)
    try:
        with atomic_write(tmp_path / "private.txt") as handle:
            handle.write("x\n")
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "private.txt") == 0o600


def test_an_overwritten_file_keeps_its_mode(tmp_path, umask_022):
    target = tmp_path / "shared.txt"
    target.write_text("old\n", encoding="utf-8")
    os.chmod(target, 0o664)
    with atomic_write(target) as handle:
        handle.write("new\n")
    assert target.read_text(encoding="utf-8") == "new\n" and mode_of(target) == 0o664


def test_a_directory_as_the_path_is_a_clean_error_and_leaves_no_temp_file(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(SeqlabError, match="is a directory"):
        with atomic_write(tmp_path / "dir") as handle:
            handle.write("x")
    assert list((tmp_path / "dir").iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["dir"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("boom")
    assert target.read_text(encoding="utf-8") == "old\n" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_progress_reports_a_status_line_off_a_terminal(capsys, monkeypatch):
    from seqlab.utils import Progress

    clock = iter([0.0, 1.0, 20.0, 21.0, 22.0])
    monkeypatch.setattr("time.monotonic", lambda: next(clock))
    progress = Progress(100, "translate", every=15.0)
    progress.update(10)  # 1 s: too soon
    progress.update(30)  # 20 s: a line
    progress.update(60)  # done: no line
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["translate: 40/100 lines (40%), 20 s, ~30 s left"]
    silent = Progress(10, None)
    silent.update(10)
    assert capsys.readouterr().err == ""
