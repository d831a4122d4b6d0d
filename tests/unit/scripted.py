"""Step models for search tests: one whose next-token distributions are a table keyed by the prefix (hand-checkable
searches, fairseq-style), and a tiny random GRU (realistic, untied scores for oracle comparisons)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from seqlab.contracts import TensorState


@dataclass
class PrefixState:
    """Every row's fed tokens so far (<bos> first), plus a fake attention (B, S) for the attention plumbing."""

    prefixes: list[tuple[int, ...]]
    attention: torch.Tensor | None = None

    def reorder(self, index: torch.Tensor) -> "PrefixState":
        attention = None if self.attention is None else self.attention[index]
        return PrefixState([self.prefixes[i] for i in index.tolist()], attention)


class ScriptedModel:
    """p(next | output prefix) = table[prefix] (probabilities over V tokens), ``default`` for unlisted prefixes.

    The first fed token (<bos>) is not part of the key: table[()] is the first output distribution.  Attention is
    one-hot on source position (number of fed tokens - 1) mod S, so a test can predict every row of it.
    """

    def __init__(self, table: dict[tuple[int, ...], list[float]], default: list[float], source_len: int = 3):
        self.table, self.default, self.source_len = table, default, source_len
        self.calls = 0

    def init_state(self, batch_size: int) -> PrefixState:
        return PrefixState([() for _ in range(batch_size)])

    def step(self, tokens: torch.Tensor, state: PrefixState) -> tuple[torch.Tensor, PrefixState]:
        self.calls += 1
        prefixes = [p + (t,) for p, t in zip(state.prefixes, tokens.tolist())]
        probs = torch.tensor([self.table.get(p[1:], self.default) for p in prefixes], dtype=torch.float64)
        positions = torch.tensor([(len(p) - 1) % self.source_len for p in prefixes])
        attention = torch.nn.functional.one_hot(positions, self.source_len).float()  # (B, S)
        return torch.log(probs).float(), PrefixState(prefixes, attention)


# d2l seed 001 (束搜索 slides): tokens A, B, C, <eos> = 0..3; <bos> = 4 is never emitted.
A, B, C, EOS, BOS = 0, 1, 2, 3, 4
D2L_TABLE = {
    (): [0.5, 0.2, 0.2, 0.1, 0.0],  # time step 1 (both tables)
    (A,): [0.1, 0.4, 0.3, 0.2, 0.0],  # time step 2
    (A, B): [0.2, 0.2, 0.4, 0.2, 0.0],  # greedy table, time step 3
    (A, B, C): [0.0, 0.2, 0.2, 0.6, 0.0],  # greedy table, time step 4
    (A, C): [0.1, 0.6, 0.2, 0.1, 0.0],  # second table, step 3 after choosing C at step 2
    (A, C, B): [0.1, 0.2, 0.1, 0.6, 0.0],  # second table, step 4
}
D2L_DEFAULT = [0.25, 0.25, 0.25, 0.25, 0.0]


def d2l_model() -> ScriptedModel:
    return ScriptedModel(D2L_TABLE, D2L_DEFAULT)


@dataclass
class HiddenState(TensorState):
    hidden: torch.Tensor  # (B, D)
    attention: torch.Tensor | None = None  # (B, S): softmax over a fake source of S positions


class TinyGRU(nn.Module):
    """A random GRU step model: embedding -> GRUCell -> sharpened log-softmax.  Different initial hidden rows play
    the part of different source sentences."""

    def __init__(self, vocab_size: int = 4, hidden_size: int = 8, seed: int = 0, sharpness: float = 3.0,
                 source_len: int = 3):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.cell = nn.GRUCell(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, vocab_size)
        self.keys = nn.Linear(hidden_size, source_len)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / math.sqrt(hidden_size))
        self.sharpness = sharpness

    def init_state(self, hidden: torch.Tensor) -> HiddenState:
        return HiddenState(hidden)

    def step(self, tokens: torch.Tensor, state: HiddenState) -> tuple[torch.Tensor, HiddenState]:
        hidden = self.cell(self.embedding(tokens), state.hidden)  # (B, D)
        log_probs = torch.log_softmax(self.sharpness * self.output(hidden), dim=-1)  # (B, V)
        return log_probs, HiddenState(hidden, torch.softmax(self.keys(hidden), dim=-1))


def random_hidden(batch_size: int, hidden_size: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch_size, hidden_size, generator=torch.Generator().manual_seed(seed))
