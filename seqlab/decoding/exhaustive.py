"""Exhaustive search: score every output sequence (d2l seed 001, 穷举搜索: n^T of them).

Only for tiny problems: it is the oracle beam search is tested against.  Sequences are ranked exactly as beam
search ranks its hypotheses (``penalties.normalised_score``, lengths counting <eos>; a sequence cut by
``max_len`` has no <eos>).
"""

from __future__ import annotations

from typing import Any

import torch

from seqlab.decoding.beam import Hypothesis
from seqlab.decoding.greedy import model_device
from seqlab.decoding.penalties import normalised_score


def exhaustive_search(model: Any, state: Any, vocab_size: int, bos_id: int, eos_id: int, max_len: int,
                      length_penalty: str = "average", alpha: float = 0.75) -> Hypothesis:
    """The best output of ONE sentence (``state`` has one row) over all sequences of at most ``max_len`` steps."""
    return enumerate_hypotheses(model, state, vocab_size, bos_id, eos_id, max_len, length_penalty, alpha)[0]


def enumerate_hypotheses(model: Any, state: Any, vocab_size: int, bos_id: int, eos_id: int, max_len: int,
                         length_penalty: str = "average", alpha: float = 0.75) -> list[Hypothesis]:
    """Every output of one sentence, best first.  Breadth first: all live prefixes of a length are one batch."""
    device = model_device(model)
    prefixes: list[list[int]] = [[]]
    prefix_scores = torch.zeros(1, device=device)  # (N,) summed log-probs of the live prefixes
    tokens = torch.full((1,), bos_id, dtype=torch.long, device=device)
    hypotheses: list[Hypothesis] = []
    for step in range(max_len):
        log_probs, state = model.step(tokens, state)
        if log_probs.size(-1) != vocab_size:
            raise ValueError(f"model has {log_probs.size(-1)} tokens, expected {vocab_size}")
        totals = (prefix_scores[:, None] + log_probs.float()).tolist()  # (N, V)
        last_step = step + 1 == max_len
        rows, next_tokens, next_prefixes = [], [], []
        for row, prefix in enumerate(prefixes):
            for token, total in enumerate(totals[row]):
                if token == eos_id or last_step:  # the sequence ends here, with or without <eos>
                    ended = prefix if token == eos_id else prefix + [token]
                    score = normalised_score(total, step + 1, alpha, length_penalty)
                    hypotheses.append(Hypothesis(ended, score, total))
                else:
                    rows.append(row)
                    next_tokens.append(token)
                    next_prefixes.append(prefix + [token])
        if last_step:
            break
        index = torch.tensor(rows, dtype=torch.long, device=device)
        state = state.reorder(index)  # (N,) -> (N*(V-1),) rows: every live prefix once per continuation
        tokens = torch.tensor(next_tokens, dtype=torch.long, device=device)
        prefix_scores = torch.tensor([totals[r][t] for r, t in zip(rows, next_tokens)], device=device)
        prefixes = next_prefixes
    return sorted(hypotheses, key=lambda h: -h.score)
