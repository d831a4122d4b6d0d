"""BLEU (Papineni et al. 2002): corpus BLEU through sacreBLEU, and d2l's sentence BLEU.

* ``corpus_bleu``: the number to report.  sacreBLEU does the tokenization (13a by default), the clipped n-gram
  counts summed over the corpus, the brevity penalty against the closest reference length, and the signature
  that makes the score reproducible (``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``).
* ``corpus_bleu_tokens``: BLEU-1..4 of already tokenized captions (Flickr8k: 5 references per image), also
  through sacreBLEU, with its tokenizer off.
* ``sentence_bleu_d2l``: the teaching formula of the d2l slides, written by hand because no library computes it
  (its n-gram weights are 1/2^n, not sacreBLEU's 1/4, and it has no smoothing).

References, when there are several per hypothesis, are given **per sentence**: ``references[i]`` is the list of
references of ``hypotheses[i]`` (any number, at least one).  This is how captions come (5 per image); sacreBLEU's
own API takes reference *streams* instead (``refs[k][i]``: the k-th reference of sentence i), and the
conversion lives in ``_reference_streams``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from sacrebleu.metrics import BLEU


@dataclass
class BleuResult:
    """A corpus BLEU score (0-100) with what it is made of.

    ``precisions`` are the modified n-gram precisions p_1..p_4 in percent, ``bp`` the brevity penalty,
    ``sys_len`` / ``ref_len`` the hypothesis and effective reference lengths in tokens, ``signature`` sacreBLEU's.
    """

    score: float
    precisions: list[float]
    bp: float
    sys_len: int
    ref_len: int
    signature: str

    def __str__(self) -> str:
        """sacreBLEU's text line (score, n-gram precisions, brevity penalty, lengths), then the signature."""
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        ratio = self.sys_len / self.ref_len if self.ref_len else 0.0
        return (f"BLEU = {self.score:.2f} {precisions} (BP = {self.bp:.3f} ratio = {ratio:.3f} "
                f"hyp_len = {self.sys_len} ref_len = {self.ref_len}) {self.signature}")


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
                tokenize: str = "13a", lowercase: bool = False) -> BleuResult:
    """Corpus BLEU of detokenized ``hypotheses`` against their references (sacreBLEU's defaults).

    ``references``: one string per hypothesis, or one list of strings per hypothesis (multiple references; the
    lists may differ in length).  ``tokenize``: a sacreBLEU tokenizer name (13a, intl, zh, char, none, ...).
    """
    streams = _reference_streams(hypotheses, references)
    metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    score = metric.corpus_score(list(hypotheses), streams)
    return BleuResult(score=score.score, precisions=list(score.precisions), bp=score.bp, sys_len=score.sys_len,
                      ref_len=score.ref_len, signature=str(metric.get_signature()))


def corpus_bleu_tokens(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[Sequence[str]]],
                       max_n: int = 4) -> dict[str, float]:
    """BLEU-1 .. BLEU-``max_n`` (0-100) of tokenized hypotheses, as reported for image captioning.

    ``hyps[i]`` is a token list, ``refs[i]`` the token lists of its references.  BLEU-n is the cumulative score:
    the geometric mean of p_1..p_n times the brevity penalty, which is sacreBLEU with ``max_ngram_order=n``.
    Returns ``{"bleu_1": ..., ..., "bleu_<max_n>": ...}``.
    """
    if max_n < 1:
        raise ValueError(f"max_n must be >= 1, got {max_n}")
    hypotheses = [" ".join(tokens) for tokens in hyps]
    references = [[" ".join(tokens) for tokens in sentence_refs] for sentence_refs in refs]
    streams = _reference_streams(hypotheses, references)
    scores = {}
    for n in range(1, max_n + 1):
        # tokenize="none": the tokens are the caller's; force: tokenized input ending in " ." is intended here.
        metric = BLEU(tokenize="none", max_ngram_order=n, force=True)
        scores[f"bleu_{n}"] = metric.corpus_score(hypotheses, streams).score
    return scores


def _reference_streams(hypotheses: Sequence[str],
                       references: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-sentence references -> sacreBLEU's streams; a sentence with fewer references gets ``None`` (which
    sacreBLEU skips) in the streams it lacks."""
    if not hypotheses:
        raise ValueError("no hypotheses: the BLEU of an empty corpus is undefined")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    per_sentence = [[ref] if isinstance(ref, str) else list(ref) for ref in references]
    if any(not refs for refs in per_sentence):
        raise ValueError(f"sentence {next(i for i, refs in enumerate(per_sentence) if not refs)} has no reference")
    width = max(len(refs) for refs in per_sentence)
    return [[refs[k] if k < len(refs) else None for refs in per_sentence] for k in range(width)]


def sentence_bleu_d2l(pred_tokens: Sequence[str], label_tokens: Sequence[str], k: int = 4) -> float:
    """d2l's BLEU of one prediction against one label (slides "BLEU"; d2l book, section 9.7 / 10.7)::

        exp(min(0, 1 - len_label / len_pred)) * prod_{n=1..k} p_n ** (1 / 2**n)

    p_n = (n-grams of the prediction found in the label, each label n-gram used at most once) / (n-grams of the
    prediction).  The brevity factor punishes short predictions; the weights 1/2^n let long matches count more
    (p_n <= 1, so a smaller exponent pulls it towards 1).  Worked example of the slides: label A B C D E F,
    prediction A B B C D -> p_1..p_4 = 4/5, 3/4, 1/3, 0.

    Where d2l divides by zero we return 0.0: an empty prediction, or one shorter than ``k`` (it has no n-grams
    for the larger n, so nothing of that order can match).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    if len_pred < k:
        return 0.0
    score = math.exp(min(0.0, 1.0 - len_label / len_pred))
    for n in range(1, k + 1):
        score *= ngram_precision(pred_tokens, label_tokens, n) ** (0.5 ** n)
    return score


def ngram_precision(pred_tokens: Sequence[str], label_tokens: Sequence[str], n: int) -> float:
    """Clipped n-gram precision p_n: a prediction n-gram matches at most as often as it occurs in the label."""
    pred_ngrams = _ngrams(pred_tokens, n)
    total = sum(pred_ngrams.values())
    if total == 0:
        return 0.0
    matches = sum((pred_ngrams & _ngrams(label_tokens, n)).values())  # Counter & = min of the two counts
    return matches / total


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
