"""A recurrent language model: p(x_1..x_T) = Π_t p(x_t | h_t), h_t = f(x_{t-1}, h_{t-1}) (d2l seed 001).

Embedding -> stacked RNN/GRU/LSTM (dropout between layers, as Zaremba et al. 2014) -> dropout -> linear.
Optional tied input/output embeddings (Press & Wolf 2017; Inan et al. 2017), which needs
``embedding_size == hidden_size`` or a projection; we add the projection when the sizes differ.  Optional
AWD-LSTM regularisers (``weight_drop``, ``variational_dropout``, ``word_dropout``; ``seqlab.nn.awd``): the stack
is then one module per layer.

Two ways to run it:
* ``forward(ids (B, T), state) -> (logits (B, T, V), state)``: teacher forcing over a chunk, the hidden state
  carried in and out so truncated BPTT can continue the stream across chunks;
* the decoding interface ``init_state(batch_size)`` / ``step(tokens, state)`` used by generation and scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.contracts import PAD_ID, TensorState, step_log_probs
from seqlab.nn.awd import LockedDropout, WeightDropRNN, embedding_dropout
from seqlab.nn.rnn import SeedGRU

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "gru_seed": SeedGRU, "lstm": nn.LSTM}


@dataclass
class RNNLMConfig:
    cell: str = "lstm"  # rnn | gru | gru_seed (reset gate before the product) | lstm
    embedding_size: int = 200
    hidden_size: int = 200
    num_layers: int = 2
    dropout: float = 0.0  # between layers and before the output layer
    embedding_dropout: float = 0.0
    tie_embeddings: bool = False
    init_range: float = 0.1  # uniform(±a) init of every weight (Zaremba et al.); 0 = PyTorch's default
    # AWD-LSTM's regularisers (seqlab.nn.awd; Merity et al. 2018); 0 / False = the plain fused stack above
    weight_drop: float = 0.0  # DropConnect on every hidden-to-hidden matrix, one mask per BPTT chunk
    variational_dropout: bool = False  # dropout and embedding_dropout masks shared by all time steps (locked)
    word_dropout: float = 0.0  # drop whole word types from the embedding table (AWD's dropoute)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ConfigError(f"cell: must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.cell == "gru_seed" and (self.weight_drop or self.variational_dropout):
            raise ConfigError("weight_drop, variational_dropout: need cell rnn, gru or lstm (PyTorch's kernels)")
        for name in ("embedding_size", "hidden_size", "num_layers"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in ("dropout", "embedding_dropout", "weight_drop", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name}: must be in [0, 1), got {getattr(self, name)}")


@dataclass
class RNNLMState(TensorState):
    """hidden (L, B, H); cell (L, B, H) for LSTM, else None."""

    hidden: torch.Tensor
    cell: torch.Tensor | None = None
    batch_dims = {"hidden": 1, "cell": 1}

    def detach(self) -> "RNNLMState":
        """Cut the graph between BPTT chunks: the values carry on, the gradients stop."""
        return RNNLMState(self.hidden.detach(), None if self.cell is None else self.cell.detach())


class RNNLM(nn.Module):
    stateful = True  # forward carries a state across chunks (truncated BPTT)

    def __init__(self, config: RNNLMConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        dropout = LockedDropout if config.variational_dropout else nn.Dropout
        self.embedding_dropout = dropout(config.embedding_dropout)
        if config.weight_drop or config.variational_dropout:  # one module per layer: a mask between them
            self.rnn = WeightDropRNN(CELLS[config.cell], config.embedding_size, config.hidden_size,
                                     config.num_layers, config.weight_drop, dropout(config.dropout))
        else:
            inter_layer = config.dropout if config.num_layers > 1 else 0.0
            self.rnn = CELLS[config.cell](config.embedding_size, config.hidden_size, config.num_layers,
                                          batch_first=True, dropout=inter_layer)
        self.output_dropout = dropout(config.dropout)
        tie_projection = config.tie_embeddings and config.hidden_size != config.embedding_size
        self.projection = nn.Linear(config.hidden_size, config.embedding_size) if tie_projection else None
        self.output = nn.Linear(config.embedding_size if tie_projection else config.hidden_size, vocab_size)
        if config.init_range > 0:
            for parameter in self.parameters():
                nn.init.uniform_(parameter, -config.init_range, config.init_range)
        if config.tie_embeddings:
            self.output.weight = self.embedding.weight  # one tensor, two uses

    @property
    def output_layer(self) -> nn.Linear:
        """The output projection: ``output_layer(hidden_states(ids)[0])`` are the logits of ``forward``."""
        return self.output

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> RNNLMState:
        device = device or self.embedding.weight.device
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        zeros = torch.zeros(shape, device=device)
        return RNNLMState(zeros, zeros.clone() if self.config.cell == "lstm" else None)

    def forward(self, ids: torch.Tensor, state: RNNLMState | None = None) -> tuple[torch.Tensor, RNNLMState]:
        """ids (B, T) -> logits (B, T, V), and the state after the last position."""
        hidden, state = self.hidden_states(ids, state)
        return self.output(hidden), state

    def hidden_states(self, ids: torch.Tensor, state: RNNLMState | None = None) -> tuple[torch.Tensor, RNNLMState]:
        """ids (B, T) -> the vectors the output layer reads (B, T, D), and the state after the last position.

        D is hidden_size, or embedding_size when tied embeddings add a projection; ``self.output(hidden)`` are
        the logits of ``forward``.  The continuous cache (seqlab.lm.cache) keys its memory on these vectors.
        """
        state = state or self.init_state(ids.size(0), ids.device)
        embedded = embedding_dropout(self.embedding, ids, self.config.word_dropout, self.training)
        embedded = self.embedding_dropout(embedded)  # (B, T, E)
        rnn_state = (state.hidden, state.cell) if self.config.cell == "lstm" else state.hidden
        outputs, new_state = self.rnn(embedded, rnn_state)  # (B, T, H)
        outputs = self.output_dropout(outputs)
        if self.projection is not None:
            outputs = self.projection(outputs)  # (B, T, E)
        return outputs, RNNLMState(*new_state) if self.config.cell == "lstm" else RNNLMState(new_state)

    def step(self, tokens: torch.Tensor, state: RNNLMState) -> tuple[torch.Tensor, RNNLMState]:
        """tokens (B,) -> log_probs (B, V): one position of ``forward``."""
        logits, state = self.forward(tokens.unsqueeze(1), state)
        return step_log_probs(logits[:, 0]), state
