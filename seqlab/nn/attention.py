"""Attention over an encoder's outputs for recurrent decoders (CS182 seed 002, "注意力"; d2l).

A query q (the decoder state s_t) scores every key k_s (from the encoder outputs h_s); the softmax of the scores
over the real (non-padding) positions weights a sum of values::

    e_s = score(q, k_s),   α = softmax(e) over real positions,   context = Σ_s α_s v_s

Kinds (``score``; keys k and values v are the encoder outputs h unless said otherwise):

* ``dot``:        qᵀ h  (seed: k and q are identities; needs query_size == key_size)
* ``scaled_dot``: qᵀ h / sqrt(D)  (Vaswani et al. 2017: keeps the softmax out of saturation for large D)
* ``general``:    qᵀ W h  (Luong et al. 2015 "general"; the seed's multiplicative / linear variant)
* ``additive``:   vᵀ tanh(W_q q + W_k h)  (Bahdanau et al. 2015)
* ``key_value``:  q(s)ᵀ k(h) with learned linear k, q and values v(h) (the seed's third variant)
* ``multihead``:  ``num_heads`` heads of scaled dot over learned projections, concatenated and projected

Everything that depends only on the encoder outputs (the projected keys and values) is computed once per
sentence by ``project_keys`` and kept in the decoder state as ``AttentionKeys``, which reorders with the beam.

Shapes: B batch, S source length, T query steps, Dq query size, Dk key (encoder output) size, Dv context size,
Hd heads.  Keys are stored as (B, Hd, S, d), values as (B, Hd, S, dv); Hd = 1 except for ``multihead``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.contracts import TensorState

ATTENTION_KINDS = ("dot", "scaled_dot", "general", "additive", "key_value", "multihead")


@dataclass
class AttentionKeys(TensorState):
    """What ``project_keys`` computes once per sentence: keys (B, Hd, S, d) and values (B, Hd, S, dv)."""

    keys: torch.Tensor
    values: torch.Tensor


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax over the last dim of ``scores`` restricted to ``mask`` (True = real), exactly 0 elsewhere.

    Masked scores are set to the dtype's most negative finite value rather than -inf, so a row with no real
    position gives a finite (uniform) softmax instead of NaN, and the final fill makes it all zeros.
    """
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)


class Attention(nn.Module):
    """``project_keys(memory) -> AttentionKeys``; ``forward(query, keys, memory_mask) -> (context, weights)``.

    ``hidden_size`` (default: query_size) is the size of the additive layer, and of the learned projections of
    ``key_value`` and ``multihead`` (whose context then has that size); ``dot``/``scaled_dot``/``general`` have
    no hidden layer.  ``value_size`` tells the size of the returned context.
    """

    def __init__(self, kind: str, query_size: int, key_size: int, hidden_size: int | None = None,
                 num_heads: int = 1):
        super().__init__()
        hidden_size = hidden_size or query_size
        _validate(kind, query_size, key_size, hidden_size, num_heads)
        self.kind, self.num_heads = kind, num_heads if kind == "multihead" else 1
        self.value_size = hidden_size if kind in ("key_value", "multihead") else key_size
        self.key_projection: nn.Linear | None = None
        self.query_projection: nn.Linear | None = None
        self.value_projection: nn.Linear | None = None
        self.output_projection: nn.Linear | None = None
        self.score_vector: nn.Linear | None = None
        if kind == "general":
            self.key_projection = nn.Linear(key_size, query_size, bias=False)  # W h, so that qᵀ (W h)
        elif kind == "additive":
            self.key_projection = nn.Linear(key_size, hidden_size, bias=False)  # W_k
            self.query_projection = nn.Linear(query_size, hidden_size, bias=True)  # W_q (+ the layer's bias)
            self.score_vector = nn.Linear(hidden_size, 1, bias=False)  # vᵀ
        elif kind in ("key_value", "multihead"):
            self.key_projection = nn.Linear(key_size, hidden_size)
            self.query_projection = nn.Linear(query_size, hidden_size)
            self.value_projection = nn.Linear(key_size, hidden_size)
            if kind == "multihead":  # mixes the concatenated heads (Vaswani et al. 2017, W^O)
                self.output_projection = nn.Linear(hidden_size, hidden_size)

    def project_keys(self, memory: torch.Tensor) -> AttentionKeys:
        """memory (B, S, Dk) -> keys (B, Hd, S, d) and values (B, Hd, S, dv), computed once per sentence."""
        keys = memory if self.key_projection is None else self.key_projection(memory)
        values = memory if self.value_projection is None else self.value_projection(memory)
        return AttentionKeys(self._split_heads(keys), self._split_heads(values))

    def forward(self, query: torch.Tensor, keys: AttentionKeys,
                memory_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Dq) or (B, T, Dq), memory_mask (B, S) -> context (B, [T,] Dv), weights (B, [T,] S).

        Weights sum to 1 over each row's real positions and are exactly 0 on padding; for ``multihead`` they
        are the mean over heads (for plots).
        """
        one_step = query.dim() == 2
        query = query.unsqueeze(1) if one_step else query  # (B, T, Dq)
        scores = self._scores(query, keys.keys)  # (B, Hd, T, S)
        weights = masked_softmax(scores, memory_mask[:, None, None, :])  # (B, Hd, T, S)
        context = weights @ keys.values  # (B, Hd, T, dv)
        context = context.transpose(1, 2).flatten(2)  # (B, T, Hd*dv): heads side by side
        if self.output_projection is not None:
            context = self.output_projection(context)
        weights = weights.mean(dim=1)  # (B, T, S)
        return (context[:, 0], weights[:, 0]) if one_step else (context, weights)

    def _scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """query (B, T, Dq), keys (B, Hd, S, d) -> scores (B, Hd, T, S)."""
        if self.kind == "additive":
            projected = self.query_projection(query)  # (B, T, d)
            # (B, 1, T, 1, d) + (B, 1, 1, S, d): every query with every key -> tanh -> (B, 1, T, S)
            hidden = torch.tanh(projected[:, None, :, None, :] + keys[:, :, None, :, :])
            return self.score_vector(hidden).squeeze(-1)
        if self.query_projection is not None:
            query = self.query_projection(query)
        query = self._split_heads(query)  # (B, Hd, T, d)
        scores = query @ keys.transpose(-1, -2)  # (B, Hd, T, S)
        if self.kind in ("scaled_dot", "multihead"):
            scores = scores / math.sqrt(query.size(-1))
        return scores

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, Hd*d) -> (B, Hd, N, d)."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)


def _validate(kind: str, query_size: int, key_size: int, hidden_size: int, num_heads: int) -> None:
    if kind not in ATTENTION_KINDS:
        raise ConfigError(f"attention: must be one of {list(ATTENTION_KINDS)}, got {kind!r}")
    if kind in ("dot", "scaled_dot") and query_size != key_size:
        raise ConfigError(f"attention: {kind!r} needs query size == key size, got {query_size} and {key_size}; "
                          "use 'general' or 'additive'")
    if kind == "multihead" and (num_heads < 1 or hidden_size % num_heads):
        raise ConfigError(f"attention_heads: must be >= 1 and divide the attention size {hidden_size}, "
                          f"got {num_heads}")
