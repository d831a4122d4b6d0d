"""Search strategies over any ``StepModel``: greedy, sampling, beam, exhaustive (the oracle), ensembles.

``search`` picks the strategy a ``DecodeConfig`` names, for every task that generates (translation, language
models, captioning); the strategies are also callable one by one.
"""

from __future__ import annotations

from typing import Any

import torch

from seqlab.decoding.beam import Hypothesis, beam_search, beam_step
from seqlab.decoding.config import DecodeConfig, resolve_max_len
from seqlab.decoding.ensemble import EnsembleModel, majority_vote
from seqlab.decoding.exhaustive import enumerate_hypotheses, exhaustive_search
from seqlab.decoding.greedy import SearchResult, greedy_search
from seqlab.decoding.sampling import sample

__all__ = ["DecodeConfig", "EnsembleModel", "Hypothesis", "SearchResult", "beam_search", "beam_step", "search",
           "enumerate_hypotheses", "exhaustive_search", "greedy_search", "majority_vote", "resolve_max_len", "sample"]


def search(model: Any, state: Any, batch_size: int, bos_id: int, eos_id: int, config: DecodeConfig,
           max_len: int | torch.Tensor, prefix: list[list[int]] | None = None,
           generator: torch.Generator | None = None, return_attention: bool = False) -> list[list[Hypothesis]]:
    """Per row, its hypotheses best first: ``config.nbest`` from beam search, one from greedy search or sampling
    (whose ``score`` is then the unnormalised log-probability).  max_len: int or (B,) step budgets
    (``resolve_max_len``); ``generator`` seeds sampling (default: ``config.seed``, unseeded if None)."""
    if config.strategy == "beam":
        return beam_search(model, state, batch_size, bos_id, eos_id, config, max_len, prefix, return_attention)
    if config.strategy == "sample":
        if generator is None and config.seed is not None:
            generator = torch.Generator().manual_seed(config.seed)
        result = sample(model, state, batch_size, bos_id, eos_id, max_len, config.temperature, config.top_k,
                        config.top_p, generator, prefix, return_attention)
    else:
        result = greedy_search(model, state, batch_size, bos_id, eos_id, max_len, prefix, return_attention)
    attention = result.attention if result.attention is not None else [None] * batch_size
    return [[Hypothesis(tokens, float(score), float(score), weights)]
            for tokens, score, weights in zip(result.tokens, result.scores, attention)]
