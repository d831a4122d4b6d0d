"""The hierarchical recurrent encoder-decoder for dialogue (HRED; Serban et al. 2016, "Building End-To-End Dialogue
Systems Using Generative Hierarchical Neural Network Models"; seed 003, the two-level LSTM of its dialogue section).

Two encoders, one above the other:

* the **utterance encoder** (the RNN seq2seq encoder, optionally bidirectional) reads each turn of the history on
  its own; its final top-layer state (both directions side by side) is the turn vector u_n (B, N, dirs*H);
* the **context encoder**, a unidirectional RNN of the same cell over u_1 .. u_N, gives the dialogue state
  c_N (L, B, dirs*H) after the last turn, and one state per turn (B, N, dirs*H).

The decoder is the RNN seq2seq decoder (``RNNSeq2Seq``, unchanged): it starts from tanh(W c_N) per layer (zeros
with ``init_decoder: zero``), reads c_N at every step when there is no attention (``feed_context``), and with
``attention`` set attends over the context encoder's turn states (``attend_to: turns``) or over every token state of
every turn (``attend_to: tokens``, the attention of the flat seq2seq, kept per turn).

Batches: src_ids (B, N, S) and src_mask (B, N, S): N turns of at most S tokens per example, real turns first (a turn
row of padding only is no turn).  Everything downstream of ``encode`` — teacher forcing, ``step``, search, forced
scoring — is the seq2seq code path.

Shapes: B batch, N turns, S tokens per turn, M real turns in the batch, T response length, H hidden size,
L layers, dirs 2 for a bidirectional utterance encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.models.rnn_seq2seq import RNNDecoderState, RNNSeq2Seq, RNNSeq2SeqConfig
from seqlab.nn.init import init_weights
from seqlab.nn.rnn import encode_packed, make_rnn

ATTEND_TO = ("turns", "tokens")


@dataclass
class HREDConfig(RNNSeq2SeqConfig):
    """The RNN seq2seq options (cell, sizes, layers, dropout, attention, init ...) plus where attention looks."""

    bidirectional: bool = True  # the utterance encoder
    init_decoder: str = "bridge"  # bridge (tanh(W c_N)) | zero; "last" has no meaning with a context RNN between
    attend_to: str = "turns"  # turns | tokens (only with attention)

    def __post_init__(self):
        super().__post_init__()
        if self.attend_to not in ATTEND_TO:
            raise ConfigError(f"attend_to: must be one of {list(ATTEND_TO)}, got {self.attend_to!r}")
        if self.init_decoder == "last":
            raise ConfigError("init_decoder: 'last' needs the encoder's states to be the decoder's size; HRED's "
                              "context RNN sits between them: use bridge or zero")


@dataclass
class HREDMemory:
    """What ``HRED.encode`` returns.  hidden/cell (L, B, dirs*H): the context RNN after the last turn; turns
    (B, N, dirs*H) and turn_mask (B, N): its state after each turn; tokens (B, N*S, dirs*H) and token_mask
    (B, N*S): every utterance-encoder output, turn after turn (only when attention reads them: None otherwise)."""

    hidden: torch.Tensor
    cell: torch.Tensor | None
    turns: torch.Tensor
    turn_mask: torch.Tensor
    tokens: torch.Tensor | None = None
    token_mask: torch.Tensor | None = None


class HRED(RNNSeq2Seq):
    """``RNNSeq2Seq`` with a two-level encoder (see the module docstring); one vocabulary for turns and responses."""

    def __init__(self, config: HREDConfig, vocab_size: int):
        super().__init__(config, vocab_size, vocab_size)
        memory_size = config.directions * config.hidden_size
        self.context_encoder = make_rnn(config.cell, memory_size, memory_size, config.num_layers, config.dropout)
        bridged = config.init_decoder == "bridge"
        self.bridge_hidden = nn.Linear(memory_size, config.hidden_size) if bridged else None
        self.bridge_cell = nn.Linear(memory_size, config.hidden_size) if bridged and config.cell == "lstm" else None
        init_weights(self, config.init, config.uniform_range, config.forget_bias, config.init_bias)
        if config.tie_embeddings:
            self.output.weight = self.tgt_embedding.weight  # re-tied: init_weights ran again over the new layers

    def encode(self, src_ids: torch.Tensor, src_mask: torch.Tensor) -> HREDMemory:  # type: ignore[override]
        """src_ids (B, N, S), src_mask (B, N, S) -> the context RNN's final state and the per-turn/token states."""
        batch, turns, _ = src_ids.shape
        turn_mask = src_mask.any(dim=2)  # (B, N)
        turn_mask[:, 0] = True  # an example with no history reads one empty turn (as an empty source is read)
        utterances = super().encode(src_ids[turn_mask], src_mask[turn_mask])  # outputs (M, S, dirs*H)
        vectors = self._per_layer(utterances.hidden)[-1]  # (M, dirs*H): top layer, both directions
        turn_vectors = vectors.new_zeros(batch, turns, vectors.size(-1))
        turn_vectors[turn_mask] = vectors
        states, final = encode_packed(self.context_encoder, self.dropout(turn_vectors), turn_mask.sum(dim=1))
        hidden, cell = final if isinstance(final, tuple) else (final, None)  # (L, B, dirs*H)
        memory = HREDMemory(hidden, cell, states, turn_mask)
        if self.attention is not None and self.config.attend_to == "tokens":  # a (B, N*S, dirs*H) copy otherwise unused
            token_states = utterances.outputs.new_zeros(batch, turns, *utterances.outputs.shape[1:])
            token_states[turn_mask] = utterances.outputs  # (B, N, S, dirs*H)
            memory.tokens = token_states.flatten(1, 2)
            memory.token_mask = (src_mask & turn_mask[:, :, None]).flatten(1)  # (B, N*S)
        return memory

    def init_state(self, memory: HREDMemory, src_mask: torch.Tensor) -> RNNDecoderState:  # type: ignore[override]
        config = self.config
        hidden = self._bridged(memory.hidden, self.bridge_hidden, squash=True)
        cell = None
        if config.cell == "lstm":  # no tanh on the cell's bridge: an LSTM's cell state is not squashed
            cell = self._bridged(memory.cell, self.bridge_cell, squash=False)
        context = memory.hidden[-1] if self.attention is None and config.feed_context else None  # (B, dirs*H)
        states, mask = ((memory.tokens, memory.token_mask) if memory.tokens is not None
                        else (memory.turns, memory.turn_mask))
        keys, attentional = None, None
        if self.attention is not None:
            keys = self.attention.project_keys(states)
            if config.attention_use == "input_feeding":
                attentional = states.new_zeros(states.size(0), config.hidden_size)  # h̃_0 = 0
        return RNNDecoderState(hidden, cell, context, keys, states, mask, attentional, None)

    def _bridged(self, final: torch.Tensor, bridge: nn.Linear | None, squash: bool) -> torch.Tensor:
        """The decoder's (L, B, H) start from the context RNN's (L, B, dirs*H) final state."""
        if bridge is None:  # init_decoder: zero
            return final.new_zeros(self.config.num_layers, final.size(1), self.config.hidden_size)
        merged = bridge(final)
        return torch.tanh(merged) if squash else merged
