"""Ensembles (seed 002: "average their probabilities, or take a majority vote").

``EnsembleModel`` is itself a ``StepModel``: every search strategy runs it unchanged.  Its next-token distribution
is the mean of the members' probabilities,  log (1/M) sum_m p_m(y | ...),  computed with logsumexp so tiny
probabilities do not underflow.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from seqlab.contracts import expand_rows


@dataclass
class EnsembleMemory:
    """What ``EnsembleModel.encode`` returns: one encoder memory per member."""

    memories: tuple[Any, ...]


@dataclass
class EnsembleState:
    """One decoder state per member; reordering reorders them all."""

    states: tuple[Any, ...]

    def reorder(self, index: torch.Tensor) -> "EnsembleState":
        return EnsembleState(tuple(state.reorder(index) for state in self.states))

    def expand_rows(self, index: torch.Tensor, k: int) -> "EnsembleState":
        return EnsembleState(tuple(expand_rows(state, index, k) for state in self.states))

    @property
    def attention(self) -> torch.Tensor | None:
        """The members' mean attention (B, S), over the members that expose one."""
        weights = [w for w in (getattr(s, "attention", None) for s in self.states) if w is not None]
        return torch.stack(weights).mean(0) if weights else None


class EnsembleModel(nn.Module):
    """Several models with one vocabulary, decoded as one.  Members may be seq2seq models, captioners or language
    models, of different architectures (an RNN and a Transformer) as long as they share the vocabulary."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.members = nn.ModuleList(models)

    def encode(self, src_ids: torch.Tensor, src_mask: torch.Tensor | None = None) -> EnsembleMemory:
        """Every member's memory of the source: token ids (B, S) with their mask, or images (B, 3, H, W) alone."""
        if src_mask is None:  # a captioner's encode takes the images only
            return EnsembleMemory(tuple(m.encode(src_ids) for m in self.members))
        return EnsembleMemory(tuple(m.encode(src_ids, src_mask) for m in self.members))

    def init_state(self, memory_or_batch_size: Any, *args: Any) -> EnsembleState:
        """Seq2seq: ``init_state(memory, src_mask)`` with the ``EnsembleMemory`` of ``encode``;
        language models: ``init_state(batch_size, ...)``, the same arguments for every member."""
        if isinstance(memory_or_batch_size, EnsembleMemory):
            return EnsembleState(tuple(m.init_state(memory, *args)
                                       for m, memory in zip(self.members, memory_or_batch_size.memories)))
        return EnsembleState(tuple(m.init_state(memory_or_batch_size, *args) for m in self.members))

    def step(self, tokens: torch.Tensor, state: EnsembleState) -> tuple[torch.Tensor, EnsembleState]:
        """tokens (B,) -> log of the members' mean next-token probabilities (B, V), new state."""
        outputs = [m.step(tokens, s) for m, s in zip(self.members, state.states)]
        log_probs = torch.stack([lp.float() for lp, _ in outputs])  # (M, B, V)
        return average_log_probs(log_probs), EnsembleState(tuple(s for _, s in outputs))

    def forward(self, src_ids: torch.Tensor, src_mask: torch.Tensor, tgt_in_ids: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the ensemble's log-probs (B, T, V), usable wherever logits are expected."""
        logits = [torch.log_softmax(m(src_ids, src_mask, tgt_in_ids).float(), -1) for m in self.members]
        return average_log_probs(torch.stack(logits))


def average_log_probs(log_probs: torch.Tensor) -> torch.Tensor:
    """(M, ...) log-probs of M models -> log of their mean probability (...)."""
    return torch.logsumexp(log_probs, dim=0) - math.log(log_probs.size(0))


def majority_vote(outputs: list[list[list[int]]]) -> list[list[int]]:
    """outputs[m][b]: model m's tokens for sentence b -> per sentence the most frequent output.
    A tie goes to the output of the earliest model among the tied ones."""
    return [list(c) for c in vote(outputs, tuple)]


def vote(outputs: list[list[Any]], key: Callable[[Any], Any] = lambda output: output) -> list[Any]:
    """outputs[m][b]: model m's output for input b -> per input the output most models gave, two outputs being the
    same when their ``key`` is (their text, their tokens).  A tie goes to the earliest model's output."""
    chosen = []
    for candidates in zip(*outputs):  # one input, every model's output
        counts = Counter(key(c) for c in candidates)
        best = max(counts.values())
        chosen.append(next(c for c in candidates if counts[key(c)] == best))
    return chosen
