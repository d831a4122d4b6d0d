"""ARPA back-off files (the text format of SRILM, KenLM, IRSTLM) for ``NGramLM``.

An ARPA file lists, per order, ``log10 p(w | h)  h w  [log10 backoff(h w)]``.  A model's ``Level`` tables hold
exactly these numbers, so writing is formatting and reading is parsing plus rebuilding the sorted node keys
(``key = node(context) * W + word``, see ``seqlab.lm.ngram``).  log10 0 is written as -99, as SRILM and KenLM do.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from dataclasses import dataclass
from typing import IO, Any, Iterator

import numpy as np

from seqlab.errors import DataError
from seqlab.utils import atomic_write

UNK, BOS, EOS = "<unk>", "<s>", "</s>"


@dataclass
class Level:
    """One order of a fitted model (one ARPA section).  Arrays are aligned by node id."""

    keys: np.ndarray  # int64, sorted: node(context) * W + word id; order 1: the word ids 0..W-1
    log10_prob: np.ndarray  # float64, interpolated log10 p(word | context); -inf for never-predicted <s>
    log10_backoff: np.ndarray  # float64, log10 gamma of this n-gram as a context; 0 where it is none


LOG_ZERO = -99.0  # ARPA convention for log10 0
_COUNT_LINE = re.compile(r"ngram\s+(\d+)\s*=\s*(\d+)")


def _numbers(values: np.ndarray) -> list[str]:
    """log10 values as ARPA text: 7 decimals (KenLM stores float32, ~7 digits), log10 0 as -99."""
    return [f"{value:.7f}" for value in np.maximum(values, LOG_ZERO).tolist()]


def write_arpa(path: str | Path, model: Any) -> None:  # model: an NGramLM (vocab, order, levels)
    """Write ``model`` as an ARPA file (atomically); back-off weights only on n-grams that are contexts."""
    with atomic_write(path) as handle:
        handle.write("\\data\\\n")
        for n, level in enumerate(model.levels, start=1):
            handle.write(f"ngram {n}={len(level.keys)}\n")
        for n, (level, names) in enumerate(zip(model.levels, ngram_names(model)), start=1):
            handle.write(f"\n\\{n}-grams:\n")
            is_context = _context_mask(model, n).tolist()
            probs, backoffs = _numbers(level.log10_prob), _numbers(level.log10_backoff)
            handle.writelines(
                f"{probs[i]}\t{words}\t{backoffs[i]}\n" if is_context[i] else f"{probs[i]}\t{words}\n"
                for i, words in enumerate(names)
            )
        handle.write("\n\\end\\\n")


def ngram_names(model: Any) -> Iterator[list[str]]:
    """The stored n-grams of each order as space-joined words, in node-id order, order 1 first.

    Each order reuses the names of the order below (node ``key // W`` is the context's name), so writing a
    whole model builds every name once.
    """
    names = list(model.vocab)
    width = len(model.vocab)
    yield names
    for level in model.levels[1:]:
        contexts, words = (level.keys // width).tolist(), (level.keys % width).tolist()
        names = [f"{names[c]} {model.vocab[w]}" for c, w in zip(contexts, words)]
        yield names


def _context_mask(model: Any, n: int) -> np.ndarray:
    """Which n-gram nodes are followed by something at order n + 1 (they get a back-off column)."""
    mask = np.zeros(len(model.levels[n - 1].keys), dtype=bool)
    if n < model.order:
        mask[np.unique(model.levels[n].keys // len(model.vocab))] = True
    return mask


def _open_text(path: Path) -> IO[str]:
    if not path.exists():
        raise DataError(f"{path}: no such ARPA file")
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _split_sections(path: Path) -> list[list[str]]:
    """The lines of every ``\\n-grams:`` section, checked against the counts declared in ``\\data\\``."""
    with _open_text(path) as handle:
        text = handle.read()
    head, _, body = text.partition("\n\\1-grams:\n")
    declared = [int(count) for _, count in _COUNT_LINE.findall(head)]
    if not body or not declared:
        raise DataError(f"{path}: not an ARPA file (no \\data\\ counts or no \\1-grams: section)")
    body = body.split("\n\\end\\", 1)[0]
    pieces = re.split(r"\n\\(\d+)-grams:\n", body)  # chunk, "2", chunk, "3", chunk, ...
    if pieces[1::2] != [str(n) for n in range(2, len(pieces) // 2 + 2)]:
        raise DataError(f"{path}: n-gram sections out of order: 1, {', '.join(pieces[1::2])}")
    sections = [[line for line in chunk.split("\n") if line.strip()] for chunk in pieces[::2]]
    if [len(section) for section in sections] != declared:
        raise DataError(f"{path}: \\data\\ declares {declared} n-grams per order, the sections hold "
                        f"{[len(section) for section in sections]}")
    return sections


def _parse_section(lines: list[str], n: int, path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(log10 probs, words (n per line, flat), log10 backoffs) of one order; a missing back-off column means 0.

    The fields of all lines go into one flat list with numpy index arithmetic on top: a list per line would
    leave millions of small containers alive, and the garbage collector's passes over them tripled load time.
    """
    fields: list[str] = []
    widths = np.empty(len(lines), dtype=np.int64)
    for i, line in enumerate(lines):
        parts = line.split()
        widths[i] = len(parts)
        fields.extend(parts)
    bad = np.flatnonzero((widths != n + 1) & (widths != n + 2))
    if len(bad):
        raise DataError(f"{path}: {n}-gram line {lines[bad[0]][:60]!r}: expected 'log10prob {n} words [backoff]'")
    starts = np.cumsum(widths) - widths  # index of each line's first field
    word_at = (starts[:, None] + np.arange(1, n + 1)).ravel().tolist()  # (lines * n,) flat, line by line
    try:
        probs = np.array([fields[i] for i in starts.tolist()], dtype=np.float64)
        backoffs = np.zeros(len(lines))
        has_backoff = widths == n + 2
        backoffs[has_backoff] = np.array([fields[i] for i in (starts + n + 1)[has_backoff].tolist()], dtype=float)
    except ValueError as error:
        raise DataError(f"{path}: {n}-grams: {error}") from None
    # log10 0 is written as -99 (or lower): read it back as a true zero, for probabilities and back-off weights
    probs[probs <= LOG_ZERO] = -np.inf
    backoffs[backoffs <= LOG_ZERO] = -np.inf
    return probs, [fields[i] for i in word_at], backoffs


def read_arpa(path: str | Path) -> tuple[list[str], list[Level]]:
    """Parse an ARPA file (``.gz`` allowed) into (vocab, levels) for ``NGramLM``."""
    path = Path(path)
    sections = _split_sections(path)
    probs, words, backoffs = _parse_section(sections[0], 1, path)
    unigrams = {w: (p, b) for p, w, b in zip(probs.tolist(), words, backoffs.tolist())}
    vocab = [UNK, BOS, EOS, *(w for w in unigrams if w not in (UNK, BOS, EOS))]
    index = {word: i for i, word in enumerate(vocab)}
    # A missing <unk> gets log10 p = -100, as KenLM assumes; a missing <s> or </s> is never predicted anyway.
    first = [unigrams.get(w, (-100.0 if w == UNK else -np.inf, 0.0)) for w in vocab]
    levels = [Level(np.arange(len(vocab), dtype=np.int64), np.array([p for p, _ in first]),
                    np.array([b for _, b in first]))]
    for n, lines in enumerate(sections[1:], start=2):
        probs, words, backoffs = _parse_section(lines, n, path)
        levels.append(_build_level(probs, words, backoffs, index, levels, path))
    return vocab, levels


def _build_level(probs: np.ndarray, words: list[str], backoffs: np.ndarray, index: dict[str, int],
                 levels: list[Level], path: Path) -> Level:
    """Sorted keys for one order: the context node is found order by order with ``np.searchsorted``."""
    n, width = len(levels) + 1, len(index)
    try:
        word_ids = np.fromiter(map(index.__getitem__, words), np.int64, len(words)).reshape(-1, n)  # (count, n)
    except KeyError as error:
        raise DataError(f"{path}: {n}-gram word {error} is not among the 1-grams") from None
    context = word_ids[:, 0]
    for m in range(2, n):  # node of the prefix w_1..w_m at order m
        keys = levels[m - 1].keys
        key = context * width + word_ids[:, m - 1]
        at = np.minimum(np.searchsorted(keys, key), max(len(keys) - 1, 0))
        missing = ~np.isin(key, keys) if len(keys) == 0 else keys[at] != key
        if np.any(missing):
            bad = int(np.argmax(missing))
            raise DataError(f"{path}: {n}-gram '{' '.join(words[bad * n:(bad + 1) * n])}' "
                            f"has no {m}-gram prefix entry")
        context = at
    keys = context * width + word_ids[:, -1]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if np.any(keys[1:] == keys[:-1]):
        raise DataError(f"{path}: a {n}-gram is listed twice")
    return Level(keys, probs[order], backoffs[order])
