"""CoNLL-2000 chunking (Tjong Kim Sang & Buchholz 2000): one token per line ``word POS chunk``, a blank line after
every sentence.  train: 8,936 sentences / 211,727 tokens; test: 2,012 / 47,377 (shared/data/README.md).

Chunk tags are IOB2 over 11 chunk types.  ``I-LST`` occurs only in the test file, so the tag set is the fixed list
``CHUNK_TAGS`` (23 tags), not whatever the training file happens to contain.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from seqlab.data.labelled import dataset_folder
from seqlab.errors import DataError

CHUNK_TYPES = ("ADJP", "ADVP", "CONJP", "INTJ", "LST", "NP", "PP", "PRT", "SBAR", "UCP", "VP")
CHUNK_TAGS: tuple[str, ...] = ("O",) + tuple(f"{prefix}-{kind}" for kind in CHUNK_TYPES for prefix in "BI")
CONLL_FILES = {"train": "train.txt.gz", "test": "test.txt.gz"}


@dataclass(frozen=True)
class TaggedSentence:
    """Parallel lists: ``words[i]`` has part of speech ``pos_tags[i]`` and chunk tag ``chunk_tags[i]``."""

    words: list[str]
    pos_tags: list[str]
    chunk_tags: list[str]


def parse_conll(lines: Iterable[str], where: str = "<lines>") -> list[TaggedSentence]:
    """Sentences from ``word POS chunk`` lines separated by blank lines; a bad line -> DataError ``where:line``."""
    sentences: list[TaggedSentence] = []
    columns: list[list[str]] = [[], [], []]
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            if columns[0]:
                sentences.append(TaggedSentence(*columns))
                columns = [[], [], []]
            continue
        if len(fields) != 3:
            raise DataError(f"{where}:{number}: expected 'word POS chunk', got {line.strip()[:60]!r}")
        if fields[2] not in CHUNK_TAGS:
            raise DataError(f"{where}:{number}: unknown chunk tag {fields[2]!r}")
        for column, value in zip(columns, fields):
            column.append(value)
    if columns[0]:  # a file that does not end with a blank line still ends its last sentence
        sentences.append(TaggedSentence(*columns))
    return sentences


def read_conll2000(split: str, data_dir: str | Path | None = None) -> list[TaggedSentence]:
    """The CoNLL-2000 ``split`` ("train" or "test") from ``<data_dir>/conll2000``."""
    if split not in CONLL_FILES:
        raise DataError(f"conll2000 split: must be one of {', '.join(CONLL_FILES)}, got {split!r}")
    path = dataset_folder("conll2000", data_dir) / CONLL_FILES[split]
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return parse_conll(handle, str(path))
