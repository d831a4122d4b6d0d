"""Ancestral sampling with temperature, top-k and nucleus (top-p) filtering.

Scores are the *model's* log-probs of the drawn tokens (before temperature and filtering), so they compare with
greedy and beam scores.
"""

from __future__ import annotations

from typing import Any

import torch

from seqlab.decoding.greedy import SearchResult, decode_loop
from seqlab.decoding.penalties import NEG_INF


def sample(model: Any, state: Any, batch_size: int, bos_id: int, eos_id: int, max_len: int | torch.Tensor,
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, generator: torch.Generator | None = None,
           prefix: list[list[int]] | None = None, return_attention: bool = False) -> SearchResult:
    """Draw every next token from softmax(filtered log-probs / temperature).  Reproducible given ``generator``;
    ``top_k=1`` is greedy search."""

    def choose(log_probs: torch.Tensor) -> torch.Tensor:
        logits = filter_top_p(filter_top_k(log_probs / temperature, top_k), top_p)
        probs = torch.softmax(logits, dim=-1)  # (B, V)
        # The generator fixes the device the draw happens on; the result goes back to the model's device.
        where = generator.device if generator is not None else probs.device
        return torch.multinomial(probs.to(where), 1, generator=generator)[:, 0].to(probs.device)

    return decode_loop(model, state, batch_size, bos_id, eos_id, max_len, choose, prefix, return_attention)


def filter_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest entries of every row (B, V), -inf elsewhere; k = 0 keeps all."""
    if k <= 0 or k >= logits.size(-1):
        return logits
    kth = logits.topk(k, dim=-1).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, NEG_INF)


def filter_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering (Holtzman et al. 2020): keep the smallest set of most probable tokens whose total
    probability reaches p; p = 1 keeps all."""
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
    # Drop a token when the tokens before it already reach p; the most probable token always stays.
    drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= p
    drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
    return logits.masked_fill(drop, NEG_INF)
