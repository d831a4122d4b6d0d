"""The RNN encoder-decoder (d2l seed 001 "序列到序列学习"; CS182 seeds 000/002; Sutskever et al. 2014;
Bahdanau et al. 2015; Luong et al. 2015), optionally with attention.

Encoder: embedding -> stacked (bi)RNN/GRU/LSTM over packed sequences -> memory (B, S, dirs*H) + final states.
``reverse_source`` reads every sentence backwards within its real length (Sutskever et al.: the first source
words end up close to the first target words); the outputs are put back in source order, so attention weights
still line up with the source tokens.

Decoder: embedding of y_{t-1}, concatenated with
  * the context c = the encoder's final top-layer state, at every step, when there is no attention
    (``feed_context``, the d2l seq2seq), and/or
  * the previous attentional vector h̃_{t-1} (``attention_use="input_feeding"``, Luong et al. 2015),
-> stacked RNN -> output layer.  With attention the decoder state s_t queries the encoder outputs:
  * ``"output"``: h̃_t = tanh(W_c [s_t; a_t]) feeds the output layer (Luong et al. 2015, eq. 5);
  * ``"input_feeding"``: the same h̃_t, also fed with the next word (so teacher forcing must loop over steps);
  * ``"next_layer"``: the first layer's state queries and its context joins the input of the next layers
    (the seed's second option: "提供给下一个 RNN 图层").
Its initial state (``init_decoder``): zeros, the encoder's final states ("last"; two directions merged by a
linear map), or a learned bridge tanh(W h_enc + b) (JoeyNMT's "bridge").

``forward`` runs the fused RNN over the whole target when it can (every option except input feeding); ``step``
runs the same code on one token, so search sees exactly the teacher-forced probabilities.

Shapes: B batch, S source length, T target length, V vocabulary, E embedding size, H hidden size, L layers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.contracts import PAD_ID, TensorState, step_log_probs
from seqlab.nn.attention import ATTENTION_KINDS, Attention, AttentionKeys
from seqlab.nn.init import INIT_SCHEMES, init_weights
from seqlab.nn.rnn import CELL_NAMES, RNNState, encode_packed, make_rnn

ATTENTION_USES = ("output", "input_feeding", "next_layer")
INIT_DECODER = ("zero", "last", "bridge")


@dataclass
class RNNSeq2SeqConfig:
    cell: str = "gru"  # rnn | rnn_relu | gru | gru_seed | lstm
    embedding_size: int = 256
    hidden_size: int = 512
    num_layers: int = 2  # encoder and decoder alike
    dropout: float = 0.2  # on embeddings, between layers, before the output layer
    bidirectional: bool = False  # encoder only
    reverse_source: bool = False  # Sutskever et al. 2014
    init_decoder: str = "last"  # zero | last | bridge
    feed_context: bool = True  # without attention: c joins every decoder input (d2l)
    attention: str = "none"  # none | dot | scaled_dot | general | additive | key_value | multihead
    attention_heads: int = 1  # multihead only
    attention_use: str = "output"  # output | input_feeding | next_layer
    tie_embeddings: bool = False  # output layer = target embedding (a projection is added when E != H)
    init: str = "xavier"  # xavier | kaiming | lecun | orthogonal | orthogonal_all | uniform | default
    uniform_range: float = 0.1
    init_bias: float = 0.0  # every bias's start (not uniform/default); 0.1 = the seed's small positive ReLU bias
    forget_bias: float = 1.0  # LSTM only

    def __post_init__(self):
        self._check_choice("cell", CELL_NAMES)
        self._check_choice("init_decoder", INIT_DECODER)
        self._check_choice("attention", ("none",) + ATTENTION_KINDS)
        self._check_choice("attention_use", ATTENTION_USES)
        self._check_choice("init", INIT_SCHEMES)
        for name in ("embedding_size", "hidden_size", "num_layers", "attention_heads"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")
        if self.uniform_range <= 0:
            raise ConfigError(f"uniform_range: must be > 0, got {self.uniform_range}")
        self._check_attention()

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise ConfigError(f"{name}: must be one of {list(choices)}, got {getattr(self, name)!r}")

    def _check_attention(self) -> None:
        if self.attention == "none":
            return
        if self.attention in ("dot", "scaled_dot") and self.bidirectional:
            raise ConfigError(f"attention: {self.attention!r} needs encoder outputs of the decoder's size, but a "
                              "bidirectional encoder doubles them; use 'general' or 'additive'")
        if self.attention == "multihead" and self.hidden_size % self.attention_heads:
            raise ConfigError(f"attention_heads: must divide hidden_size {self.hidden_size}, "
                              f"got {self.attention_heads}")
        if self.attention_use == "next_layer" and self.num_layers < 2:
            raise ConfigError("attention_use: 'next_layer' needs num_layers >= 2 (the context feeds layer 2)")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1


@dataclass
class RNNEncoderOutput(TensorState):
    """outputs (B, S, dirs*H), zero on padding; hidden (L*dirs, B, H); cell (L*dirs, B, H) for an LSTM."""

    outputs: torch.Tensor
    hidden: torch.Tensor
    cell: torch.Tensor | None = None
    batch_dims = {"hidden": 1, "cell": 1}


@dataclass
class RNNDecoderState(TensorState):
    """Everything ``step`` needs.  hidden/cell (L, B, H); context (B, dirs*H) when fed to every step; keys:
    the attention's projected keys/values; memory (B, S, dirs*H) and memory_mask (B, S); attentional (B, H) the
    previous h̃ (input feeding); attention (B, S) the last attention weights (for plots)."""

    hidden: torch.Tensor
    cell: torch.Tensor | None
    context: torch.Tensor | None
    keys: AttentionKeys | None
    memory: torch.Tensor
    memory_mask: torch.Tensor
    attentional: torch.Tensor | None
    attention: torch.Tensor | None
    batch_dims = {"hidden": 1, "cell": 1}

    def rnn_state(self, layers: slice = slice(None)) -> RNNState:
        """The (slice of the) state in the form nn.GRU / nn.LSTM take it."""
        return self.hidden[layers] if self.cell is None else (self.hidden[layers], self.cell[layers])


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` positions of x (B, S, ...), leaving padding in place.

    Its own inverse: applying it twice gives x back.
    """
    positions = torch.arange(x.size(1), device=x.device)[None, :]  # (1, S)
    source = torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)  # (B, S)
    source = source.view(*source.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, source)


class RNNSeq2Seq(nn.Module):
    """An RNN encoder-decoder implementing ``seqlab.contracts.Seq2SeqModel`` (see the module docstring)."""

    def __init__(self, config: RNNSeq2SeqConfig, src_vocab_size: int, tgt_vocab_size: int):
        super().__init__()
        self.config = config
        embedding_size, hidden_size = config.embedding_size, config.hidden_size
        memory_size = config.directions * hidden_size
        self.src_embedding = nn.Embedding(src_vocab_size, embedding_size, padding_idx=PAD_ID)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embedding_size, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = make_rnn(config.cell, embedding_size, hidden_size, config.num_layers, config.dropout,
                                config.bidirectional)
        self.bridge_hidden = self._make_bridge(memory_size)
        self.bridge_cell = self._make_bridge(memory_size) if config.cell == "lstm" else None
        self.attention = None
        if config.attention != "none":
            self.attention = Attention(config.attention, hidden_size, memory_size, hidden_size,
                                       config.attention_heads)
        self.decoder_layers = self._make_decoder_layers(memory_size)
        self.attentional_layer = None  # W_c of Luong et al. 2015, eq. 5: h̃_t = tanh(W_c [s_t; a_t])
        if self.attention is not None and config.attention_use != "next_layer":
            self.attentional_layer = nn.Linear(hidden_size + self.attention.value_size, hidden_size, bias=False)
        # Tying needs the output layer's input to have the embedding's size (Press & Wolf 2017).
        tie_projection = config.tie_embeddings and embedding_size != hidden_size
        self.projection = nn.Linear(hidden_size, embedding_size) if tie_projection else None
        self.output = nn.Linear(embedding_size if tie_projection else hidden_size, tgt_vocab_size)
        init_weights(self, config.init, config.uniform_range, config.forget_bias, config.init_bias)
        if config.tie_embeddings:
            self.output.weight = self.tgt_embedding.weight  # one tensor, two uses

    def _make_bridge(self, memory_size: int) -> nn.Linear | None:
        """A map from the encoder's final states (dirs*H per layer) to the decoder's (H), when one is needed."""
        config = self.config
        if config.init_decoder == "bridge" or (config.init_decoder == "last" and config.bidirectional):
            return nn.Linear(memory_size, config.hidden_size)
        return None

    def _make_decoder_layers(self, memory_size: int) -> nn.ModuleList:
        """One fused stack; or, for ``next_layer`` attention, layer 1 alone and layers 2..L fed its context."""
        config = self.config
        input_size = config.embedding_size
        if self.attention is None and config.feed_context:
            input_size += memory_size  # c at every step (d2l)
        if self.attention is not None and config.attention_use == "input_feeding":
            input_size += config.hidden_size  # h̃_{t-1}
        if self.attention is None or config.attention_use != "next_layer":
            return nn.ModuleList([make_rnn(config.cell, input_size, config.hidden_size, config.num_layers,
                                           config.dropout)])
        upper_input = config.hidden_size + self.attention.value_size
        return nn.ModuleList([make_rnn(config.cell, input_size, config.hidden_size, 1),
                              make_rnn(config.cell, upper_input, config.hidden_size, config.num_layers - 1,
                                       config.dropout)])

    # ---------------------------------------------------------------------------------------- encoder
    def encode(self, src_ids: torch.Tensor, src_mask: torch.Tensor) -> RNNEncoderOutput:
        """src_ids (B, S), src_mask (B, S) -> outputs (B, S, dirs*H) in source order, final states."""
        # An empty source (all padding) is read as one pad token, so translation of an empty line still runs;
        # the attention mask keeps that position out of every context.
        lengths = src_mask.sum(dim=1).clamp(min=1)  # (B,)
        embedded = self.dropout(self.src_embedding(src_ids))  # (B, S, E)
        if self.config.reverse_source:
            embedded = reverse_within_lengths(embedded, lengths)
        outputs, final = encode_packed(self.encoder, embedded, lengths)
        if self.config.reverse_source:
            outputs = reverse_within_lengths(outputs, lengths)  # back in source order
        if self.config.cell == "lstm":
            return RNNEncoderOutput(outputs, final[0], final[1])
        return RNNEncoderOutput(outputs, final)

    def init_state(self, memory: RNNEncoderOutput, src_mask: torch.Tensor) -> RNNDecoderState:
        config, batch_size = self.config, src_mask.size(0)
        hidden = self._initial_state(memory.hidden, self.bridge_hidden, squash=config.init_decoder == "bridge")
        cell = None
        if config.cell == "lstm":  # the cell state is not squashed inside an LSTM, so no tanh on its bridge
            cell = self._initial_state(memory.cell, self.bridge_cell, squash=False)
        context = None
        if self.attention is None and config.feed_context:
            context = self._per_layer(memory.hidden)[-1]  # (B, dirs*H): top layer, both directions
        keys, attentional = None, None
        if self.attention is not None:
            keys = self.attention.project_keys(memory.outputs)
            if config.attention_use == "input_feeding":
                attentional = memory.outputs.new_zeros(batch_size, config.hidden_size)  # h̃_0 = 0
        return RNNDecoderState(hidden, cell, context, keys, memory.outputs, src_mask, attentional, None)

    def _per_layer(self, final: torch.Tensor) -> torch.Tensor:
        """(L*dirs, B, H), index layer*dirs + direction -> (L, B, dirs*H), the directions side by side."""
        layers, directions = self.config.num_layers, self.config.directions
        final = final.view(layers, directions, *final.shape[1:])  # (L, dirs, B, H)
        return final.permute(0, 2, 1, 3).flatten(2)  # (L, B, dirs*H)

    def _initial_state(self, final: torch.Tensor, bridge: nn.Linear | None, squash: bool) -> torch.Tensor:
        """The decoder's (L, B, H) initial hidden or cell state from the encoder's final one."""
        if self.config.init_decoder == "zero":
            return final.new_zeros(self.config.num_layers, final.size(1), self.config.hidden_size)
        merged = self._per_layer(final)  # (L, B, dirs*H)
        if bridge is None:  # "last", unidirectional: layer l starts where encoder layer l ended
            return merged.contiguous()
        merged = bridge(merged)
        return torch.tanh(merged) if squash else merged

    # ---------------------------------------------------------------------------------------- decoder
    def forward(self, src_ids: torch.Tensor, src_mask: torch.Tensor, tgt_in_ids: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src_ids (B, S), src_mask (B, S), tgt_in_ids (B, T) -> logits (B, T, V)."""
        return self.output(self._output_inputs(self._teacher_forced(src_ids, src_mask, tgt_in_ids)))

    @property
    def output_layer(self) -> nn.Linear:
        """The output projection to the target vocabulary (tied to the target embedding when asked)."""
        return self.output

    def target_hidden(self, src_ids: torch.Tensor, src_mask: torch.Tensor, tgt_in_ids: torch.Tensor,
                      tgt_mask: torch.Tensor) -> torch.Tensor:
        """What ``output_layer`` reads at the real target positions, (N, D): ``forward``'s logits are
        ``output_layer`` of these (for a loss that fuses the projection, ``linear_cross_entropy_sum``)."""
        return self._output_inputs(self._teacher_forced(src_ids, src_mask, tgt_in_ids))[tgt_mask]

    def _teacher_forced(self, src_ids: torch.Tensor, src_mask: torch.Tensor, tgt_in_ids: torch.Tensor) -> torch.Tensor:
        """The pre-output vectors (B, T, H) of every target position, fed the reference prefix."""
        state = self.init_state(self.encode(src_ids, src_mask), src_mask)
        if self.config.attention_use != "input_feeding" or self.attention is None:
            pre_output, _ = self._decode(tgt_in_ids, state)  # fast path: one fused RNN call over all T
            return pre_output
        # Input feeding makes step t's input depend on step t-1's attention: the slow path, a loop over steps.
        pre_outputs = []
        for t in range(tgt_in_ids.size(1)):
            pre_output, state = self._decode(tgt_in_ids[:, t:t + 1], state)
            pre_outputs.append(pre_output)
        return torch.cat(pre_outputs, dim=1)

    def step(self, tokens: torch.Tensor, state: RNNDecoderState) -> tuple[torch.Tensor, RNNDecoderState]:
        """tokens (B,) -> log_probs (B, V) of the next token, and the new state: one position of ``forward``."""
        pre_output, state = self._decode(tokens[:, None], state)
        return step_log_probs(self.output(self._output_inputs(pre_output))[:, 0]), state

    def _decode(self, tgt_ids: torch.Tensor, state: RNNDecoderState) -> tuple[torch.Tensor, RNNDecoderState]:
        """tgt_ids (B, T) -> pre-output vectors (B, T, H) and the state after position T.

        Shared by ``forward`` (all T at once) and ``step`` (T = 1), so both compute the same thing.
        """
        inputs = self._decoder_inputs(tgt_ids, state)  # (B, T, Din)
        if self.attention is not None and self.config.attention_use == "next_layer":
            return self._decode_next_layer(inputs, state)
        top, rnn_state = self.decoder_layers[0](inputs, state.rnn_state())  # (B, T, H)
        if self.attention is None:
            return top, self._with_rnn_state(state, rnn_state)
        context, weights = self.attention(top, state.keys, state.memory_mask)  # (B, T, Dv), (B, T, S)
        attentional = torch.tanh(self.attentional_layer(torch.cat([top, context], dim=-1)))  # (B, T, H)
        feed = attentional[:, -1] if state.attentional is not None else None  # input feeding: h̃_t -> t+1
        return attentional, self._with_rnn_state(state, rnn_state, attention=weights[:, -1], attentional=feed)

    def _decode_next_layer(self, inputs: torch.Tensor,
                           state: RNNDecoderState) -> tuple[torch.Tensor, RNNDecoderState]:
        """Layer 1's state s¹_t queries; [s¹_t; a_t] is the input of layers 2..L (seed 002, second option)."""
        first, first_state = self.decoder_layers[0](inputs, state.rnn_state(slice(0, 1)))  # (B, T, H)
        context, weights = self.attention(first, state.keys, state.memory_mask)  # (B, T, Dv), (B, T, S)
        upper_inputs = torch.cat([self.dropout(first), context], dim=-1)  # dropout between layers, as fused
        top, upper_state = self.decoder_layers[1](upper_inputs, state.rnn_state(slice(1, None)))
        if isinstance(first_state, tuple):
            rnn_state = tuple(torch.cat(pair) for pair in zip(first_state, upper_state))  # (h, c), (L, B, H)
        else:
            rnn_state = torch.cat([first_state, upper_state])  # (L, B, H)
        return top, self._with_rnn_state(state, rnn_state, attention=weights[:, -1])

    def _decoder_inputs(self, tgt_ids: torch.Tensor, state: RNNDecoderState) -> torch.Tensor:
        """[E y_{t-1}; c (no attention, feed_context); h̃_{t-1} (input feeding)] -> (B, T, Din)."""
        parts = [self.dropout(self.tgt_embedding(tgt_ids))]  # (B, T, E)
        if state.context is not None:
            parts.append(state.context[:, None].expand(-1, tgt_ids.size(1), -1))  # (B, T, dirs*H), no copy
        if state.attentional is not None:  # only ever with T = 1 (see forward)
            parts.append(state.attentional[:, None])  # (B, 1, H)
        return torch.cat(parts, dim=-1)

    @staticmethod
    def _with_rnn_state(state: RNNDecoderState, rnn_state: RNNState, **changes) -> RNNDecoderState:
        """A new state object (the old one is never modified: search may still hold it)."""
        hidden, cell = rnn_state if isinstance(rnn_state, tuple) else (rnn_state, None)
        return replace(state, hidden=hidden, cell=cell, **changes)

    def _output_inputs(self, pre_output: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> what the output layer reads, (B, T, D): dropout, then the projection to the embedding
        size when tied embeddings need one."""
        pre_output = self.dropout(pre_output)
        return pre_output if self.projection is None else self.projection(pre_output)
