"""Count-based n-gram language models: MLE, add-k, interpolated Kneser-Ney and modified Kneser-Ney.

The seed (d2l slides, "language models and n-grams") estimates p(x' | x) = n(x, x') / n(x); this module adds the
smoothing that makes such a model usable on held-out text, following KenLM's ``lmplz`` so that our 5-gram modified
Kneser-Ney model on PTB scores like KenLM's.

Conventions (the same as KenLM and SRILM):

* every sentence is padded with n-1 ``<s>`` in front and one ``</s>`` at the end.  ``</s>`` is predicted and counted
  as a token in perplexity; ``<s>`` is never predicted.  Because nothing precedes ``<s>``, the n-gram
  ``<s> <s> w1`` carries no more information than ``<s> w1``, so it is stored as the shorter one: every stored
  n-gram has at most one leading ``<s>``.
* the vocabulary is ``<unk>``, ``<s>``, ``</s>`` and the training words (optionally cut by ``min_count`` /
  ``max_vocab``).  Other words are scored as ``<unk>`` and counted as OOVs.  A literal ``<unk>`` in the training text
  (PTB has one) is an ordinary word that happens to share that id.  The uniform distribution of the lowest order
  covers the vocabulary without ``<s>``.
* Kneser-Ney lower orders use adjusted counts: the number of distinct words seen before the n-gram (continuation
  count), except for n-grams starting with ``<s>``, which keep their raw count (Chen & Goodman 1998, sec. 3.5;
  KenLM ``adjust_counts.cc``).

Estimators (``NGramLM.fit(..., smoothing=...)``):

* "mle": the seed's n(h w) / n(h).  A context never seen in training backs off to the longest seen suffix (the
  ratio is undefined there); an unseen word after a seen context has probability 0, so held-out perplexity is
  usually infinite, as in NLTK.
* "add-k": (n(h w) + k) / (n(h) + k |V|) on the longest history (Laplace: k = 1); an unseen history is uniform.
* "kn": interpolated Kneser-Ney, one discount per order, estimated as n1 / (n1 + 2 n2) or fixed (``discount=0.75``).
* "mkn": modified Kneser-Ney, D1, D2, D3+ per order from count-of-counts (Chen & Goodman 1998), as KenLM's lmplz.
  When a tiny corpus leaves a discount undefined or out of range, KenLM's ``--discount_fallback`` values 0.5 1 1.5
  are used with a warning, or ``discount_fallback=False`` raises a ``DataError``.

Both Kneser-Ney variants interpolate the unigrams with the uniform distribution over the vocabulary (as KenLM), so
unseen words get a non-zero probability.  On PTB the 3/4/5-gram "mkn" test perplexities equal KenLM's
(148.28 / 142.72 / 141.19), and KenLM scores our ARPA files like we do (``benchmarks/ngram_ptb.py``).

Storage.  A fitted model is a back-off table per order, exactly the content of an ARPA file: for every seen n-gram
its (interpolated) log10 probability and, if it is a context, its log10 back-off weight.  N-grams of order n are
"nodes" numbered by their rank in a sorted int64 array of keys ``key = node(context) * W + word`` (W = vocabulary
size, unigram nodes are word ids), so an order's children of one context are contiguous and lookups are one
``np.searchsorted`` per order for a whole corpus.  Every estimator is written as per-order (u, gamma) pairs::

    p_n(w | h) = u_n(w | h) + gamma_n(h) * p_{n-1}(w | h[1:]),      p_0(w) = 1 / |V|

with u = 0 for unseen n-grams and gamma = 1 for unseen contexts.
"""

from __future__ import annotations

import json
import math
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from seqlab.errors import CheckpointError, ConfigError, DataError
from seqlab.lm.arpa import BOS, EOS, UNK, Level, ngram_names, read_arpa, write_arpa
from seqlab.utils import atomic_write

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SMOOTHINGS = ("mle", "add-k", "kn", "mkn")
# KenLM's ``--discount_fallback`` defaults for D1, D2, D3+.
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
KN_FALLBACK_DISCOUNT = 0.75  # the usual fixed Kneser-Ney discount (Chen & Goodman 1998, sec. 2.7)
FORMAT_VERSION = 1


@dataclass
class Perplexity:
    """Corpus perplexity, 10 ** (-log10_prob / tokens); tokens count the words and one ``</s>`` per sentence."""

    perplexity: float
    log10_prob: float
    tokens: int
    sentences: int
    oovs: int
    perplexity_without_oovs: float  # KenLM's "excluding OOVs": OOV tokens left out of both sum and count


@dataclass
class _Counts:
    """The n-grams of one order seen in training."""

    keys: np.ndarray  # int64, sorted unique node(context) * W + word
    raw: np.ndarray  # int64, how often each occurs
    suffix: np.ndarray  # int64, node id of (h[1:], w) at the order below; -1 at order 1
    starts_bos: np.ndarray  # bool, the n-gram begins with <s>


# ----------------------------------------------------------------------------------------------------- vocabulary


def build_vocab(sentences: Sequence[Sequence[str]], min_count: int = 1, max_vocab: int | None = None) -> list[str]:
    """``<unk> <s> </s>`` then the training words by decreasing count (ties alphabetical)."""
    counts = Counter(word for sentence in sentences for word in sentence)
    for special in (UNK, BOS, EOS):
        counts.pop(special, None)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_vocab is not None:
        words = words[: max(0, max_vocab - 3)]
    return [UNK, BOS, EOS, *words]


def encode(sentences: Sequence[Sequence[str]], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten sentences to ``<s> w1 .. wk </s>`` word ids.

    Returns (ids, history, oov): history[i] is how many tokens of the same sentence precede position i (0 at
    ``<s>``), which bounds the usable context; oov marks words outside the vocabulary (scored as ``<unk>``).
    Built with numpy from one flat pass over the words: per-token Python lists cost ~60 MiB on PTB.
    """
    lengths = np.fromiter(map(len, sentences), np.int64, len(sentences)) + 2  # with <s> and </s>
    word_ids = np.fromiter((index.get(word, -1) for sentence in sentences for word in sentence), np.int64,
                           int(lengths.sum()) - 2 * len(sentences))
    starts = np.cumsum(lengths) - lengths  # position of each <s>
    history = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)
    is_word = np.ones(len(history), dtype=bool)
    is_word[starts] = is_word[starts + lengths - 1] = False
    ids = np.full(len(history), EOS_ID, dtype=np.int64)
    ids[starts] = BOS_ID
    ids[is_word] = word_ids
    oov = np.zeros(len(history), dtype=bool)
    oov[is_word] = word_ids < 0
    ids[oov] = UNK_ID
    return ids, history, oov


def _shift(nodes: np.ndarray) -> np.ndarray:
    """nodes[i - 1] at position i (-1 at 0): the node ending just before each position."""
    previous = np.empty_like(nodes)
    previous[0] = -1
    previous[1:] = nodes[:-1]
    return previous


# ------------------------------------------------------------------------------------------------------- counting


def count_ngrams(ids: np.ndarray, history: np.ndarray, order: int, vocab_size: int) -> list[_Counts]:
    """Count the n-grams of orders 1..order, never crossing a sentence start (see the module docstring).

    The order-n n-gram ending at position i exists when history[i] >= n - 1; its key combines the node id of the
    (n-1)-gram ending at i - 1 with the word at i, so one ``np.unique`` per order does the counting.
    """
    predicted = history > 0  # every token but <s>
    levels = [
        _Counts(
            keys=np.arange(vocab_size, dtype=np.int64),
            raw=np.bincount(ids[predicted], minlength=vocab_size).astype(np.int64),
            suffix=np.full(vocab_size, -1, dtype=np.int64),
            starts_bos=np.arange(vocab_size) == BOS_ID,
        )
    ]
    nodes = ids  # node id of the 1-gram ending at each position
    for n in range(2, order + 1):
        valid = history >= n - 1
        keys = _shift(nodes)[valid] * vocab_size + ids[valid]
        unique, inverse, raw = np.unique(keys, return_inverse=True, return_counts=True)
        suffix = np.empty(len(unique), dtype=np.int64)
        suffix[inverse] = nodes[valid]  # the (n-1)-gram ending at the same position is (h[1:], w)
        starts_bos = levels[-1].starts_bos[unique // vocab_size]
        levels.append(_Counts(unique, raw.astype(np.int64), suffix, starts_bos))
        nodes = np.full(len(ids), -1, dtype=np.int64)
        nodes[valid] = inverse
    return levels


def adjusted_counts(levels: list[_Counts]) -> list[np.ndarray]:
    """Kneser-Ney counts: raw at the top order and for n-grams starting with <s>, else N1+(. w_1..w_n)."""
    adjusted = []
    for n, level in enumerate(levels, start=1):
        if n == len(levels):
            adjusted.append(level.raw)
            continue
        left_extensions = np.bincount(levels[n].suffix, minlength=len(level.keys)).astype(np.int64)
        adjusted.append(np.where(level.starts_bos, level.raw, left_extensions))
    return adjusted


def _num_contexts(levels: list[_Counts], n: int) -> int:
    """How many nodes can be contexts of order n: the (n-1)-gram nodes, or the one empty context of unigrams."""
    return 1 if n == 1 else len(levels[n - 2].keys)


# ------------------------------------------------------------------------------------------------------ discounts


def _modified_discounts(counts: np.ndarray) -> tuple[float, float, float] | str:
    """Chen & Goodman (1998) eq. 26: Y = n1 / (n1 + 2 n2), D_k = k - (k + 1) Y n_{k+1} / n_k, k = 1, 2, 3.

    Returns the three discounts, or a one-line reason why they are undefined on these counts.
    """
    n = [int(np.count_nonzero(counts == k)) for k in range(5)]
    for k in (1, 2, 3):
        if n[k] == 0:  # D_k divides by n_k
            return f"no n-grams with adjusted count {k}, so D{k if k < 3 else '3+'} is undefined"
    y = n[1] / (n[1] + 2 * n[2])
    discounts = tuple(k - (k + 1) * y * n[k + 1] / n[k] for k in (1, 2, 3))
    for k, d in enumerate(discounts, start=1):
        if not 0.0 <= d <= k:
            return f"D{k if k < 3 else '3+'} = {d:.4f} is outside [0, {k}]"
    return discounts  # type: ignore[return-value]


def _single_discount(counts: np.ndarray) -> tuple[float, float, float] | str:
    """Ney, Essen & Kneser (1994): D = n1 / (n1 + 2 n2), used for every count."""
    n1, n2 = int(np.count_nonzero(counts == 1)), int(np.count_nonzero(counts == 2))
    if n1 == 0:
        return "no n-grams with adjusted count 1, so D is undefined"
    d = n1 / (n1 + 2 * n2)
    return (d, d, d)


def estimate_discounts(
    adjusted: list[np.ndarray], modified: bool, fixed: float | None, fallback: bool
) -> list[tuple[float, float, float]]:
    """(D1, D2, D3+) per order; a fixed discount is used as is, else estimated from count-of-counts."""
    if fixed is not None:
        return [(fixed, fixed, fixed)] * len(adjusted)
    discounts = []
    for n, counts in enumerate(adjusted, start=1):
        found = _modified_discounts(counts) if modified else _single_discount(counts)
        if isinstance(found, str):
            if not fallback:
                raise DataError(f"order {n}: Kneser-Ney discount {found} (corpus too small?); "
                                "pass discount_fallback=True to use KenLM's fallback discounts")
            fallback_text = "0.5, 1, 1.5" if modified else str(KN_FALLBACK_DISCOUNT)
            warnings.warn(f"order {n}: Kneser-Ney discount {found}; falling back to D = {fallback_text}",
                          stacklevel=3)
            discounts.append(FALLBACK_DISCOUNTS if modified else (KN_FALLBACK_DISCOUNT,) * 3)
        else:
            discounts.append(found)
    return discounts


# ----------------------------------------------------------------------------------------------------- estimators


def _context_totals(levels: list[_Counts], counts: list[np.ndarray], n: int, vocab_size: int) -> np.ndarray:
    """sum_w c(h w) for every context h of order n (0 where h is never followed by anything)."""
    contexts = levels[n - 1].keys // vocab_size
    return np.bincount(contexts, weights=counts[n - 1], minlength=_num_contexts(levels, n))


def mle_estimates(levels: list[_Counts], vocab_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The seed's n(x, x') / n(x): u = c(h w) / c(h), gamma = 0 for seen contexts (no smoothing at all)."""
    raw = [level.raw for level in levels]
    estimates = []
    for n, level in enumerate(levels, start=1):
        totals = _context_totals(levels, raw, n, vocab_size)
        seen = totals > 0
        u = level.raw / np.where(seen, totals, 1.0)[level.keys // vocab_size]
        estimates.append((u, np.where(seen, 0.0, 1.0)))
    return estimates


def add_k_estimates(levels: list[_Counts], vocab_size: int, k: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(c(h w) + k) / (c(h) + k |V|) on the longest history only; Laplace is k = 1.

    The longest history is the top order, or a shorter one that starts at <s>.  In (u, gamma) form:
    u = c / (c(h) + k|V|) and gamma = k|V| / (c(h) + k|V|) over a uniform lower order; the other orders
    pass through (u = 0, gamma = 1) so that the lower order reached is the uniform distribution.
    """
    raw = [level.raw for level in levels]
    uniform_mass = k * (vocab_size - 1)  # |V| excludes <s>
    estimates = []
    for n, level in enumerate(levels, start=1):
        totals = _context_totals(levels, raw, n, vocab_size)
        if n == len(levels):
            smoothed = np.ones(len(totals), dtype=bool)
        elif n == 1:
            smoothed = np.zeros(1, dtype=bool)
        else:
            smoothed = levels[n - 2].starts_bos.copy()
        seen = smoothed & (totals > 0)
        denominator = totals + uniform_mass
        u = np.where(seen[level.keys // vocab_size], level.raw / denominator[level.keys // vocab_size], 0.0)
        estimates.append((u, np.where(seen, uniform_mass / denominator, 1.0)))
    return estimates


def kneser_ney_estimates(
    levels: list[_Counts], vocab_size: int, adjusted: list[np.ndarray], discounts: list[tuple[float, float, float]]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Interpolated (modified) Kneser-Ney, Chen & Goodman (1998) eq. 17 with D(a) = D1, D2, D3+:

    u(w | h) = (a(h w) - D(a(h w))) / sum_w' a(h w'),
    gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / sum_w' a(h w').
    """
    estimates = []
    for n, level in enumerate(levels, start=1):
        counts = adjusted[n - 1]
        contexts = level.keys // vocab_size
        num_contexts = _num_contexts(levels, n)
        totals = np.bincount(contexts, weights=counts, minlength=num_contexts)
        safe_totals = np.where(totals > 0, totals, 1.0)
        d = np.array((0.0, *discounts[n - 1]))
        bucket = np.minimum(counts, 3)  # a = 0 (<s>, unseen <unk>) takes D = 0 and stays 0
        u = (counts - d[bucket]) / safe_totals[contexts]
        discounted_mass = np.bincount(contexts, weights=d[bucket], minlength=num_contexts)
        estimates.append((u, np.where(totals > 0, discounted_mass / safe_totals, 1.0)))
    return estimates


def interpolate(
    levels: list[_Counts], estimates: list[tuple[np.ndarray, np.ndarray]], vocab_size: int
) -> list[Level]:
    """Fold the (u, gamma) recursion into back-off tables: p_n = u_n + gamma_n(h) p_{n-1}(w | h[1:])."""
    tables: list[Level] = []
    lower: np.ndarray | None = None
    with np.errstate(divide="ignore"):  # MLE has p = 0 and gamma = 0: log10 gives -inf on purpose
        for n, (level, (u, gamma)) in enumerate(zip(levels, estimates), start=1):
            below = np.full(len(u), 1.0 / (vocab_size - 1)) if lower is None else lower[level.suffix]
            prob = u + gamma[level.keys // vocab_size] * below
            if n == 1:
                prob[BOS_ID] = 0.0  # never predicted
            if tables:  # gamma of order n is the back-off weight of the (n-1)-gram nodes
                tables[-1].log10_backoff = np.log10(gamma)
            tables.append(Level(level.keys, np.log10(prob), np.zeros(len(u))))
            lower = prob
    return tables


# ---------------------------------------------------------------------------------------------------------- model


@dataclass
class NGramLM:
    """A back-off n-gram language model; build one with ``NGramLM.fit`` or ``NGramLM.from_arpa``."""

    vocab: list[str]
    levels: list[Level]
    smoothing: str
    info: dict = field(default_factory=dict)  # discounts, k, timings: plain JSON data saved with the model

    def __post_init__(self) -> None:
        self.index = {word: i for i, word in enumerate(self.vocab)}

    @property
    def order(self) -> int:
        return len(self.levels)

    @classmethod
    def fit(
        cls,
        sentences: Iterable[Sequence[str]],
        order: int = 3,
        smoothing: str = "mkn",
        k: float = 1.0,
        discount_fallback: bool = True,
        *,
        discount: float | None = None,
        min_count: int = 1,
        max_vocab: int | None = None,
    ) -> "NGramLM":
        """Count ``sentences`` (lists of words) and estimate an ``order``-gram model.

        smoothing: "mle" | "add-k" (k, Laplace k = 1) | "kn" (one discount per order: ``discount`` or estimated
        n1 / (n1 + 2 n2)) | "mkn" (D1, D2, D3+ per order, or ``discount`` for all).  When a corpus is too small to
        estimate discounts, ``discount_fallback`` uses KenLM's 0.5 1 1.5 with a warning instead of raising.
        """
        _check_fit_arguments(order, smoothing, k, discount, min_count)
        if max_vocab is not None and max_vocab < 1:
            raise ConfigError(f"max_vocab: must be >= 1, got {max_vocab}")
        sentences = [list(sentence) for sentence in sentences]
        if not sentences:
            raise DataError("NGramLM.fit: no training sentences")
        vocab = build_vocab(sentences, min_count, max_vocab)
        ids, history, _ = encode(sentences, {word: i for i, word in enumerate(vocab)})
        levels = count_ngrams(ids, history, order, len(vocab))
        info: dict = {"order": order, "training_tokens": int(np.count_nonzero(history))}
        if smoothing == "mle":
            estimates = mle_estimates(levels, len(vocab))
        elif smoothing == "add-k":
            estimates, info["k"] = add_k_estimates(levels, len(vocab), k), k
        else:
            adjusted = adjusted_counts(levels)
            discounts = estimate_discounts(adjusted, smoothing == "mkn", discount, discount_fallback)
            estimates = kneser_ney_estimates(levels, len(vocab), adjusted, discounts)
            info["discounts"] = [list(d) for d in discounts]
        return cls(vocab, interpolate(levels, estimates, len(vocab)), smoothing, info)

    # ------------------------------------------------------------------------------------------------- scoring

    def _context_ids(self, context: Sequence[str]) -> list[int]:
        """Word ids of the last order-1 context words; everything before the last <s> is irrelevant."""
        ids = [self.index.get(word, UNK_ID) for word in context]
        if BOS_ID in ids:
            ids = ids[len(ids) - 1 - ids[::-1].index(BOS_ID):]
        return ids[max(0, len(ids) - (self.order - 1)):] if self.order > 1 else []

    def token_log10probs(self, ids: np.ndarray, history: np.ndarray) -> np.ndarray:
        """log10 p(ids[i] | the history[i] tokens before it) for every position (0 at <s> positions).

        Back-off lookup for a whole corpus at once: find the longest stored n-gram ending at i, add its log10
        probability and the log10 back-off weights of the longer contexts that were seen but not followed by w.
        """
        nodes = [ids]  # nodes[n - 1][i]: node id of the n-gram ending at i, -1 if the model lacks it
        for n in range(2, self.order + 1):
            keys = self.levels[n - 1].keys
            context = _shift(nodes[-1])
            valid = (history >= n - 1) & (context >= 0)
            key = np.where(valid, context, 0) * len(self.vocab) + ids
            at = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
            nodes.append(np.where(valid & (keys[at] == key), at, -1) if len(keys) else np.full(len(ids), -1))
        total = np.zeros(len(ids))
        done = history == 0  # <s> is not scored
        for n in range(self.order, 0, -1):
            node = nodes[n - 1]
            hit = ~done & (node >= 0)
            total[hit] += self.levels[n - 1].log10_prob[node[hit]]
            done |= hit
            if n > 1:  # not found at order n: multiply by gamma of the (n-1)-word context, if it is stored
                context = _shift(nodes[n - 2])
                missed = ~done & (context >= 0)
                total[missed] += self.levels[n - 2].log10_backoff[context[missed]]
        return total

    def log10prob(self, word: str, context: Sequence[str] = ()) -> float:
        """log10 p(word | context); context is the preceding words, starting with "<s>" at a sentence start."""
        ids = [*self._context_ids(context), self.index.get(word, UNK_ID)]
        # history counts from 1, not 0: no position is a sentence start (which is never scored), and the first
        # context word has nothing before it because position -1 does not exist
        history = np.arange(1, len(ids) + 1)
        return float(self.token_log10probs(np.asarray(ids, dtype=np.int64), history)[-1])

    def logprob(self, word: str, context: Sequence[str] = ()) -> float:
        """Natural-log p(word | context)."""
        return self.log10prob(word, context) * math.log(10)

    def prob(self, word: str, context: Sequence[str] = ()) -> float:
        return 10.0 ** self.log10prob(word, context)

    def sentence_log10prob(self, tokens: Sequence[str]) -> float:
        """log10 p(tokens + </s> | <s>), the number KenLM's ``model.score(s, bos=True, eos=True)`` gives."""
        ids, history, _ = encode([tokens], self.index)
        return float(self.token_log10probs(ids, history).sum())

    def sentence_logprob(self, tokens: Sequence[str]) -> float:
        """Natural-log p(tokens + </s> | <s>)."""
        return self.sentence_log10prob(tokens) * math.log(10)

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> Perplexity:
        """Perplexity over words plus one </s> per sentence; OOV words are scored as <unk> and counted."""
        sentences = [list(sentence) for sentence in sentences]
        if not sentences:
            raise DataError("perplexity: no sentences to score")
        ids, history, oov = encode(sentences, self.index)
        scores = self.token_log10probs(ids, history)
        predicted = history > 0
        tokens = int(np.count_nonzero(predicted))
        oovs = int(np.count_nonzero(oov))
        total = float(scores[predicted].sum())
        in_vocab = float(scores[predicted & ~oov].sum())
        known = tokens - oovs
        return Perplexity(
            perplexity=10.0 ** (-total / tokens) if tokens else float("nan"),
            log10_prob=total,
            tokens=tokens,
            sentences=len(sentences),
            oovs=oovs,
            perplexity_without_oovs=10.0 ** (-in_vocab / known) if known else float("nan"),
        )

    # ---------------------------------------------------------------------------------------------- generation

    def _find_node(self, ids: Sequence[int]) -> int:
        """Node id of the n-gram ``ids`` (n = len(ids)), or -1 when the model does not store it."""
        node = ids[0]
        for n, word in enumerate(ids[1:], start=2):
            keys = self.levels[n - 1].keys
            key = node * len(self.vocab) + word
            at = int(np.searchsorted(keys, key))
            if at == len(keys) or keys[at] != key:
                return -1
            node = at
        return node

    def distribution(self, context: Sequence[str] = ()) -> np.ndarray:
        """p(w | context) for every vocabulary id w (0 for <s>): the back-off recursion over whole rows."""
        h = self._context_ids(context)
        dist = 10.0 ** self.levels[0].log10_prob
        for j in range(1, len(h) + 1):
            node = self._find_node(h[-j:])
            if node < 0:
                break  # longer contexts are unseen too
            dist = dist * 10.0 ** self.levels[j - 1].log10_backoff[node]
            keys = self.levels[j].keys
            lo, hi = np.searchsorted(keys, [node * len(self.vocab), (node + 1) * len(self.vocab)])
            dist[keys[lo:hi] % len(self.vocab)] = 10.0 ** self.levels[j].log10_prob[lo:hi]
        return dist

    def generate(
        self, prefix: Sequence[str] = (), max_len: int = 50, seed: int = 0, temperature: float = 1.0
    ) -> list[str]:
        """Sample words after ``prefix`` until </s> or ``max_len`` words in total; returns prefix + sample."""
        if temperature <= 0:
            raise ConfigError(f"temperature: must be > 0, got {temperature}")
        rng = np.random.default_rng(seed)
        words = list(prefix)
        while len(words) < max_len:
            dist = self.distribution([BOS, *words]) ** (1.0 / temperature)
            word_id = int(rng.choice(len(dist), p=dist / dist.sum()))
            if word_id == EOS_ID:
                break
            words.append(self.vocab[word_id])
        return words

    # ------------------------------------------------------------------------------------------------------- files

    def ngrams(self, order: int) -> list[str]:
        """The stored n-grams of one order as space-joined words, in node-id order."""
        for n, names in enumerate(ngram_names(self), start=1):
            if n == order:
                return names
        raise ValueError(f"order {order}: the model has orders 1..{self.order}")

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` holding the vocabulary, the back-off tables and ``info`` (no pickles)."""
        arrays: dict[str, np.ndarray] = {"vocab": np.asarray(self.vocab, dtype=str)}
        for n, level in enumerate(self.levels, start=1):
            arrays[f"keys_{n}"] = level.keys
            arrays[f"log10_prob_{n}"] = level.log10_prob
            arrays[f"log10_backoff_{n}"] = level.log10_backoff
        meta = {"format": FORMAT_VERSION, "order": self.order, "smoothing": self.smoothing, "info": self.info}
        arrays["meta"] = np.asarray(json.dumps(meta))
        with atomic_write(path, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "NGramLM":
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                levels = [
                    Level(data[f"keys_{n}"], data[f"log10_prob_{n}"], data[f"log10_backoff_{n}"])
                    for n in range(1, meta["order"] + 1)
                ]
                vocab = [str(word) for word in data["vocab"]]
        except FileNotFoundError:
            raise CheckpointError(f"{path}: no such n-gram model file") from None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
            raise CheckpointError(f"{path}: not a seqlab n-gram model ({error})") from None
        return cls(vocab, levels, meta["smoothing"], meta.get("info", {}))

    def to_arpa(self, path: str | Path) -> None:
        write_arpa(path, self)

    @classmethod
    def from_arpa(cls, path: str | Path) -> "NGramLM":
        vocab, levels = read_arpa(path)
        return cls(vocab, levels, "arpa", {"source": str(path)})


def _check_fit_arguments(order: int, smoothing: str, k: float, discount: float | None, min_count: int) -> None:
    if order < 1:
        raise ConfigError(f"order: must be >= 1, got {order}")
    if smoothing not in SMOOTHINGS:
        raise ConfigError(f"smoothing: must be one of {', '.join(SMOOTHINGS)}, got {smoothing!r}")
    if k <= 0:
        raise ConfigError(f"k: must be > 0, got {k}")
    if discount is not None and not 0.0 < discount <= 1.0:
        raise ConfigError(f"discount: must be in (0, 1], got {discount}")
    if min_count < 1:
        raise ConfigError(f"min_count: must be >= 1, got {min_count}")
