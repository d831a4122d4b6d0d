"""Search strategies over any ``StepModel``: greedy, sampling, beam, exhaustive (the oracle), ensembles.

``decode`` picks the strategy a ``DecodeConfig`` names; the strategies are also callable one by one.
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

__all__ = ["DecodeConfig", "EnsembleModel", "Hypothesis", "SearchResult", "beam_search", "beam_step", "decode",
           "enumerate_hypotheses", "exhaustive_search", "greedy_search", "majority_vote", "sample"]


def decode(model: Any, state: Any, batch_size: int, bos_id: int, eos_id: int, config: DecodeConfig,
           src_lengths: torch.Tensor | None = None, prefix: list[list[int]] | None = None) -> list[list[int]]:
    """The best token ids (without <bos>/<eos>) of every row, by ``config.strategy``.

    src_lengths (B,) enable ``config.max_len_ratio``; sampling is seeded by ``config.seed`` (unseeded if None).
    """
    max_len = resolve_max_len(config, src_lengths)
    if config.strategy == "beam":
        return [hyps[0].tokens for hyps in beam_search(model, state, batch_size, bos_id, eos_id, config, max_len,
                                                       prefix)]
    if config.strategy == "sample":
        generator = torch.Generator().manual_seed(config.seed) if config.seed is not None else None
        return sample(model, state, batch_size, bos_id, eos_id, max_len, config.temperature, config.top_k,
                      config.top_p, generator, prefix).tokens
    return greedy_search(model, state, batch_size, bos_id, eos_id, max_len, prefix).tokens
