"""Small helpers used across the package."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator

from seqlab.errors import SeqlabError


def _umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _final_mode(path: Path) -> int:
    """The permission bits the file would get from a plain ``open(path, "w")``: an existing file keeps its
    mode; a new one gets 0666 less the umask (mkstemp's 0600 would hide outputs from the group and others)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def check_output_path(path: str | Path) -> Path:
    """``path`` as a Path, or a ``SeqlabError`` when it cannot become a file: it is a directory, or a parent
    is a file.  Commands call it before long work, so a typo in ``-o`` fails at once."""
    path = Path(path)
    if path.is_dir():
        raise SeqlabError(f"{path}: is a directory, expected a file name for the output")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SeqlabError(f"{parent}: not a directory (in the output path {path})")
            break
    return path


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write ``path`` all-or-nothing: into a temp file beside it, fsync, then rename over it.

    A crash or an exception half-way leaves the old file (or no file) in place, never a truncated one.  The file
    ends with the mode an ordinary write would give it (an overwritten file's own, else the umask's).  A
    directory at ``path`` is a ``SeqlabError``, raised before anything is written.
    """
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    final_mode = _final_mode(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), final_mode)
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


class Progress:
    """Progress of a long job on stderr: a tqdm bar at a terminal, otherwise one status line every ``every``
    seconds (``translate: 1200/3000 lines (40%), 25 s, ~37 s left``), so a log file shows that work goes on.
    A job shorter than ``every`` seconds prints nothing off a terminal.  ``label=None``: silent (the library's
    default; the commands turn it on)."""

    def __init__(self, total: int, label: str | None, unit: str = "lines", every: float = 15.0):
        import sys
        import time

        self.total, self.label, self.unit, self.every, self.done = total, label, unit, every, 0
        self.start = self.last = time.monotonic()
        self.bar = None
        if label is not None and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit=unit.rstrip("s") or unit, leave=False, file=sys.stderr)

    def update(self, count: int) -> None:
        import sys
        import time

        self.done += count
        if self.label is None:
            return
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.monotonic()
        if now - self.last >= self.every and self.done < self.total:
            self.last = now
            elapsed = now - self.start
            left = elapsed * (self.total - self.done) / max(self.done, 1)
            print(f"{self.label}: {self.done}/{self.total} {self.unit} ({100 * self.done // max(self.total, 1)}%), "
                  f"{elapsed:.0f} s, ~{left:.0f} s left", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
