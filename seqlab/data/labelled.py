"""Sentence classification corpora: sentence polarity (Pang & Lee 2005, "MR") and TREC questions (Li & Roth 2002).

Both are read from ``<data_dir>/rt-polarity`` and ``<data_dir>/trec`` (see shared/data/README.md):

* rt-polarity: 5,331 positive + 5,331 negative snippets, one per line, already lowercased and tokenised, encoded
  **cp1252** (latin-1 would turn byte 0x85 into a line break).  No official split: 10-fold cross-validation
  (Kim 2014), given here by ``cross_validation_folds``.
* TREC: ``COARSE:fine token token ...`` per line, train_5500 (5,452) / TREC_10 (500).  One train line carries a
  UTF-8 ``ð`` where the official file has an invalid byte; torchtext reads it as a space, and so do we.
"""

from __future__ import annotations

import gzip
import random
from dataclasses import dataclass
from pathlib import Path

from seqlab.data.corpora import read_lines
from seqlab.data.datasets import resolve_data_dir
from seqlab.errors import DataError

TREC_FILES = {"train": "train_5500.label.gz", "test": "TREC_10.label.gz"}


@dataclass(frozen=True)
class LabelledExample:
    """One sentence and its class name."""

    tokens: list[str]
    label: str


def dataset_folder(name: str, data_dir: str | Path | None = None) -> Path:
    """``<data directory>/<name>``, the data directory found by ``resolve_data_dir`` (argument, $SEQLAB_DATA,
    ../shared/data, ...)."""
    return resolve_data_dir(data_dir) / name


def _read_lines(path: Path, encoding: str) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with gzip.open(path, "rt", encoding=encoding, newline="\n") as handle:
            lines = handle.read().split("\n")
    except (UnicodeDecodeError, OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read as gzipped {encoding}: {error}") from None
    return lines[:-1] if lines and lines[-1] == "" else lines  # the final "\n" ends a line, it starts none


def read_rt_polarity(data_dir: str | Path | None = None) -> list[LabelledExample]:
    """The 10,662 MR snippets: all positive ones ("pos") first, then the negative ones ("neg"), in file order."""
    folder = dataset_folder("rt-polarity", data_dir)
    examples = []
    for label in ("pos", "neg"):
        path = folder / f"rt-polarity.{label}.gz"
        for line_number, line in enumerate(_read_lines(path, "cp1252"), start=1):
            tokens = line.split()
            if not tokens:
                raise DataError(f"{path}:{line_number}: empty line")
            examples.append(LabelledExample(tokens, label))
    return examples


def parse_trec_line(line: str, fine: bool = False, where: str = "<string>") -> LabelledExample:
    """``"LOC:city What is the capital ?"`` -> tokens + "LOC" (or "LOC:city" with ``fine``)."""
    label, _, question = line.replace("ð", " ").partition(" ")
    coarse, colon, _ = label.partition(":")
    tokens = question.split()
    if not colon or not coarse.isupper() or not tokens:
        raise DataError(f"{where}: expected 'COARSE:fine question ...', got {line[:60]!r}")
    return LabelledExample(tokens, label if fine else coarse)


def read_trec(split: str, data_dir: str | Path | None = None, fine: bool = False) -> list[LabelledExample]:
    """TREC questions of ``split`` ("train" or "test") with their 6 coarse labels, or the 50 fine ones."""
    if split not in TREC_FILES:
        raise DataError(f"trec split: must be one of {', '.join(TREC_FILES)}, got {split!r}")
    path = dataset_folder("trec", data_dir) / TREC_FILES[split]
    return [parse_trec_line(line, fine, f"{path}:{number}")
            for number, line in enumerate(_read_lines(path, "utf-8"), start=1)]


def cross_validation_folds(num_examples: int, num_folds: int = 10,
                           seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """K-fold cross-validation: ``num_folds`` pairs (train indices, test indices) over a seeded shuffle.

    Every index is in exactly one test fold; fold sizes differ by at most one.  The shuffle matters for MR, whose
    file order puts all positive snippets first.
    """
    if not 2 <= num_folds <= num_examples:
        raise DataError(f"num_folds: must be in [2, {num_examples}], got {num_folds}")
    order = list(range(num_examples))
    random.Random(seed).shuffle(order)
    folds = [sorted(order[fold::num_folds]) for fold in range(num_folds)]
    return [(sorted(i for other, f in enumerate(folds) if other != k for i in f), folds[k])
            for k in range(num_folds)]


def read_labelled_tsv(path: str | Path) -> list[LabelledExample]:
    """``label<TAB>text`` lines (text whitespace-tokenised); blank lines are skipped, anything else malformed
    is a DataError naming ``path:line``."""
    examples = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        if not tab or not label.strip() or not text.split():
            raise DataError(f"{path}:{number}: expected 'label<TAB>text', got {line[:60]!r}")
        examples.append(LabelledExample(text.split(), label.strip()))
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples
