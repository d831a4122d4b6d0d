"""Small functions over next-token log-probabilities (N, V) and over hypothesis scores.

N is the number of rows being searched (B sentences, or B*K beams).  Each function returns a new tensor; none
changes the model, so every search strategy can combine them freely.
"""

from __future__ import annotations

import torch

NEG_INF = float("-inf")


def length_normaliser(length: torch.Tensor | int, alpha: float, kind: str) -> torch.Tensor | float:
    """The denominator of a hypothesis score of ``length`` tokens (``<eos>`` included).

    average: L^alpha, the d2l seed's  (1 / L^alpha) log p(y_1..y_L)  (seed 001, beam search, "通常 alpha = 0.75");
    gnmt:    ((5 + L) / 6)^alpha  (Wu et al. 2016, eq. 14);   none: 1.
    Both grow with L, which is what lets beam search bound the best score a live hypothesis can still reach.
    """
    if kind == "none":
        return 1.0
    if kind == "average":
        return length ** alpha
    if kind == "gnmt":
        return ((5 + length) / 6) ** alpha
    raise ValueError(f"unknown length penalty {kind!r}")


def normalised_score(log_prob: float, length: int, alpha: float, kind: str) -> float:
    """Raw log p(y_1..y_L) -> the score hypotheses are ranked by."""
    return float(log_prob / length_normaliser(max(length, 1), alpha, kind))


def forbid_eos(log_probs: torch.Tensor, eos_id: int, lengths: torch.Tensor, min_len: int,
               inplace: bool = False) -> torch.Tensor:
    """No ``<eos>`` in rows that have generated fewer than ``min_len`` tokens.  lengths: (N,).
    ``inplace``: write into ``log_probs`` (a search that owns them) instead of a copy (6 % of a beam step)."""
    if min_len <= 0:
        return log_probs
    if not inplace:
        log_probs = log_probs.clone()
    log_probs[lengths < min_len, eos_id] = NEG_INF
    return log_probs


def force_tokens(log_probs: torch.Tensor, forced: torch.Tensor) -> torch.Tensor:
    """Rows with ``forced[i] >= 0`` may only emit that token (its log-prob is kept, so scores stay the model's
    probability of the whole output); rows with -1 are free.  forced: (N,) long."""
    allowed = torch.nn.functional.one_hot(forced.clamp(min=0), log_probs.size(-1)).bool()  # (N, V)
    allowed |= (forced < 0)[:, None]  # free rows keep every token
    return log_probs.masked_fill(~allowed, NEG_INF)


def block_repeated_ngrams(log_probs: torch.Tensor, history: torch.Tensor, n: int) -> torch.Tensor:
    """Forbid every token that would complete an n-gram already present in the row's history (N, t).

    The last n-1 tokens are the context; every earlier n-gram starting with that context bans its last token.
    """
    if n <= 0 or history.size(1) < n:
        return log_probs
    ngrams = history.unfold(1, n, 1)  # (N, t-n+1, n): every n-gram of every row
    context = history[:, history.size(1) - (n - 1):]  # (N, n-1)
    matches = (ngrams[:, :, :-1] == context[:, None, :]).all(-1)  # (N, t-n+1)
    # scatter_add, not scatter: a token may end several n-grams, matching or not.
    banned = torch.zeros_like(log_probs).scatter_add_(1, ngrams[:, :, -1], matches.to(log_probs.dtype)) > 0
    return log_probs.masked_fill(banned, NEG_INF)


def penalise_repetitions(log_probs: torch.Tensor, history: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al. 2019) on log-probs: a token already in the row's history (N, t)
    has its log-prob multiplied by ``penalty`` >= 1 (it is <= 0, so this lowers it), then rows are renormalised
    so scores stay log-probabilities of the penalised distribution."""
    if penalty == 1.0 or history.size(1) == 0:
        return log_probs
    seen = torch.zeros_like(log_probs, dtype=torch.bool).scatter_(1, history, True)
    return torch.log_softmax(torch.where(seen, log_probs * penalty, log_probs), dim=-1)
