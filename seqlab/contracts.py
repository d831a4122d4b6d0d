"""The contracts every model and every search strategy share.

Shape glossary (used in every docstring and shape comment of the package):
    B batch, S source length, T target length, V vocabulary, D model dim, H heads, K beam size.

Masks are boolean with True = real token; ``pad_id`` is always 0.

The decoding interface (STYLE.md habit 5) is what lets search run any model without asking which it is::

    memory = model.encode(src_ids, src_mask)          # seq2seq only
    state = model.init_state(memory, src_mask)        # seq2seq; a language model: model.init_state(batch_size)
    log_probs, state = model.step(tokens, state)      # tokens (B,) -> log_probs (B, V)
    state = state.reorder(index)                      # index (B',) picks rows: beam pruning and beam expansion

State is returned, never kept on the module; ``forward`` means teacher forcing and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable

import torch

PAD_ID = 0


@runtime_checkable
class DecoderState(Protocol):
    """Everything a decoder needs between two ``step`` calls (hidden states, KV caches, projected keys, ...)."""

    def reorder(self, index: torch.Tensor) -> "DecoderState":
        """Return the state whose row i is row ``index[i]`` of this one.  index: (B',) long; B' may differ from B
        (``arange(B).repeat_interleave(K)`` expands B sentences to B*K beams)."""
        ...


@runtime_checkable
class StepModel(Protocol):
    """Anything search can drive one token at a time: seq2seq decoders, language models, ensembles."""

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """tokens: (B,) long, the previous output token of every row -> (log_probs (B, V), new state)."""
        ...


@runtime_checkable
class Seq2SeqModel(StepModel, Protocol):
    """An encoder-decoder.  ``forward`` is teacher forcing; the other three methods are the decoding interface."""

    def forward(self, src_ids: torch.Tensor, src_mask: torch.Tensor, tgt_in_ids: torch.Tensor) -> torch.Tensor:
        """src_ids (B, S), src_mask (B, S) bool, tgt_in_ids (B, T) starting with <bos> -> logits (B, T, V)."""
        ...

    def encode(self, src_ids: torch.Tensor, src_mask: torch.Tensor) -> Any:
        """src_ids (B, S), src_mask (B, S) -> memory (model-specific, e.g. encoder outputs (B, S, D) + final state)."""
        ...

    def init_state(self, memory: Any, src_mask: torch.Tensor) -> DecoderState:
        """memory from ``encode`` -> the decoder state before the first target token."""
        ...


def step_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """One decoding step's logits (B, V) -> float log-probs, computed in place when no gradient is recorded:
    a fresh (B, V) result per step was 3 % of a beam-search step (allocation and cache misses)."""
    logits = logits.float()
    if torch.is_grad_enabled() and logits.requires_grad:
        return torch.log_softmax(logits, dim=-1)
    return torch.log_softmax(logits, dim=-1, out=logits)


class TensorState:
    """A ``DecoderState`` made of named tensors (or None, or nested ``TensorState``s / tuples of them).

    Subclass it as a dataclass and ``reorder`` comes for free: every tensor field is indexed on its batch
    dimension, given by ``batch_dims`` (default 0; e.g. ``{"hidden": 1}`` for an (L, B, D) RNN state).
    """

    batch_dims: dict[str, int] = {}

    def reorder(self, index: torch.Tensor):
        changes = {f.name: reorder_value(getattr(self, f.name), index, self.batch_dims.get(f.name, 0))
                   for f in fields(self)}  # type: ignore[arg-type]
        return type(self)(**changes)


def expand_rows(state: Any, index: torch.Tensor, k: int) -> Any:
    """Beam expansion: row b of ``state`` becomes rows b*K .. b*K+K-1; index = arange(B).repeat_interleave(K).

    The same as ``state.reorder(index)``; a state that can share per-sentence data among the K rows (the
    Transformer's memory keys/values) implements ``expand_rows(index, k)`` to avoid the copies.
    """
    expand = getattr(state, "expand_rows", None)
    return expand(index, k) if callable(expand) else state.reorder(index)


def reorder_value(value: Any, index: torch.Tensor, dim: int) -> Any:
    if isinstance(value, torch.Tensor):
        return value.index_select(dim, index)
    if isinstance(value, (tuple, list)):
        return type(value)(reorder_value(v, index, dim) for v in value)
    if hasattr(value, "reorder"):
        return value.reorder(index)
    return value  # None, ints, flags: shared by every row


@dataclass
class Seq2SeqBatch:
    """A padded batch of sentence pairs.

    src_ids (B, S), src_mask (B, S), tgt_in_ids (B, T) = <bos> y_1 .. y_n, tgt_out_ids (B, T) = y_1 .. y_n <eos>,
    tgt_mask (B, T).  ``indices`` (B,) are the examples' positions in the corpus, so outputs can be put back in
    input order after length bucketing.
    """

    src_ids: torch.Tensor
    src_mask: torch.Tensor
    tgt_in_ids: torch.Tensor
    tgt_out_ids: torch.Tensor
    tgt_mask: torch.Tensor
    indices: torch.Tensor

    @property
    def num_tgt_tokens(self) -> int:
        return int(self.tgt_mask.sum())

    def to(self, device: torch.device | str) -> "Seq2SeqBatch":
        return Seq2SeqBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})
