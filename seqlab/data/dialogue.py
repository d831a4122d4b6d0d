"""Multi-turn dialogue data (DailyDialog, Li et al. 2017): dialogues as lists of turns, and the (context, response)
pairs a response generator learns from.

A DailyDialog file holds one dialogue per line, each turn followed by `` __eou__``::

    Say , Jim , how about going for a few beers after dinner ? __eou__ You know that is tempting ... __eou__

Any file in that format (plain or gzipped) can be read with ``read_dialogue_file``.  ``normalise_turn`` undoes the
source's quirks that would split one word into several vocabulary entries: the curly apostrophe with spaces around it
(``I ’ m`` -> ``i'm``), sentences glued at a full stop (``right.But`` -> ``right . but``), and a stray DEL character.

``dialogue_pairs`` makes one example per response turn: turn t (t >= 2) is the response, the ``history`` turns
before it are the context (fewer at the start of a dialogue).  The first turn has no context and is never a target.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

from seqlab.data.datasets import require
from seqlab.errors import DataError

EOU = "__eou__"
SPLITS = {"train": "train", "valid": "validation", "test": "test"}  # seqlab's split names -> DailyDialog's

GLUED_SENTENCE = re.compile(r"(?<=[a-z])([.?!])(?=[A-Z])")  # "right.But" -> "right . But"
SPACED_APOSTROPHE = re.compile(r" ?[’‘] ?")  # "I ’ m" -> "I'm", "don’t" -> "don't"


@dataclass(frozen=True)
class DialoguePair:
    """One training example: the context turns (oldest first, tokens), the response (tokens), and where it came
    from: ``dialogue`` index in its split, ``turn`` index of the response within the dialogue."""

    context: tuple[tuple[str, ...], ...]
    response: tuple[str, ...]
    dialogue: int
    turn: int


def dailydialog_path(split: str, data_dir: str | None = None) -> Path:
    if split not in SPLITS:
        raise DataError(f"split: must be one of {', '.join(SPLITS)}, got {split!r}")
    name = SPLITS[split]
    relative = f"dailydialog/{name}/dialogues_{name}.txt.gz"
    return require("dailydialog", data_dir, [relative]) / relative


def read_dialogue_file(path: str | Path) -> list[list[str]]:
    """Every dialogue of a DailyDialog-format file as its list of raw turns (whitespace stripped).  A line that does
    not end with ``__eou__`` or has an empty turn is refused with its line number."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    dialogues = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            if not line.endswith(EOU):
                raise DataError(f"{path}:{number}: a dialogue line must end with {EOU}")
            turns = [turn.strip() for turn in line.split(EOU)[:-1]]
            if not all(turns):
                raise DataError(f"{path}:{number}: empty turn (two {EOU} markers with nothing between)")
            dialogues.append(turns)
    return dialogues


def read_dailydialog(split: str, data_dir: str | None = None) -> list[list[str]]:
    """The official train / valid / test split (11,118 / 1,000 / 1,000 dialogues) as raw turns."""
    return read_dialogue_file(dailydialog_path(split, data_dir))


def normalise_turn(text: str, lowercase: bool = True) -> list[str]:
    """One raw turn -> its tokens (the source is already tokenised with spaces around punctuation)."""
    text = text.replace("\x7f", " ")
    text = GLUED_SENTENCE.sub(r" \1 ", text)
    text = SPACED_APOSTROPHE.sub("'", text)
    if lowercase:
        text = text.lower()
    return text.split()


def dialogue_pairs(dialogues: list[list[list[str]]], history: int) -> list[DialoguePair]:
    """Tokenised dialogues -> one (context, response) pair per turn after the first; the context is at most
    ``history`` turns, the most recent last."""
    if history <= 0:
        raise ValueError(f"history: must be > 0, got {history}")
    pairs = []
    for index, turns in enumerate(dialogues):
        for t in range(1, len(turns)):
            context = tuple(tuple(turn) for turn in turns[max(0, t - history):t])
            pairs.append(DialoguePair(context, tuple(turns[t]), index, t))
    return pairs


def overlapping_dialogues(split: list[list[str]], train: list[list[str]]) -> set[int]:
    """Indices of the dialogues of ``split`` that occur verbatim in ``train`` (93 of DailyDialog's 1,000 test
    dialogues; Wen et al. 2022 show they inflate test scores)."""
    seen = {tuple(turns) for turns in train}
    return {index for index, turns in enumerate(split) if tuple(turns) in seen}
