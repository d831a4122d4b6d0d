"""Image captioning (CS182 seed 000 / 003): a CNN encoder whose pooled output becomes the initial state of an RNN
decoder, trained end to end ("CNN 编码器 → RNN 解码器"; Vinyals et al. 2015, "Show and Tell").  With
``attention=True`` the decoder also attends over the CNN's H'xW' feature map at every step (Xu et al. 2015,
"Show, Attend and Tell", with Bahdanau's additive score).

It implements the decoding interface of ``seqlab/models/base.py`` so the shared search captions images::

    memory = model.encode(images, None)        # images (B, 3, H, W) float, normalised
    state = model.init_state(memory, None)     # h0 = tanh(W pooled) (and c0 for an LSTM)
    log_probs, state = model.step(tokens, state)

``forward(images, tgt_in_ids) -> logits`` is teacher forcing.  Shapes: B batch, N = H'*W' feature positions,
F CNN channels, T caption length, E embedding size, H hidden size, L layers, A attention size, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.contracts import PAD_ID, TensorState, step_log_probs
from seqlab.nn.cnn import CNNConfig, CNNEncoder
from seqlab.nn.init import INIT_SCHEMES, init_weights
from seqlab.nn.rnn import CELL_NAMES, make_rnn


@dataclass
class CaptionerConfig:
    cnn: CNNConfig = field(default_factory=CNNConfig)
    cell: str = "lstm"  # rnn | rnn_relu | gru | gru_seed | lstm
    embedding_size: int = 128
    hidden_size: int = 256
    num_layers: int = 1
    attention: bool = False
    attention_size: int = 128
    dropout: float = 0.2
    init: str = "default"  # a scheme of seqlab.nn.init, applied to the decoder (the CNN keeps PyTorch's)
    init_bias: float = 0.0  # biases' start (not uniform/default); 0.1: the seed's ReLU advice

    def __post_init__(self) -> None:
        if isinstance(self.cnn, dict):  # from YAML
            self.cnn = CNNConfig(**self.cnn)
        if self.cell not in CELL_NAMES:
            raise ConfigError(f"cell: must be one of {', '.join(CELL_NAMES)}, got {self.cell!r}")
        if self.init not in INIT_SCHEMES:
            raise ConfigError(f"init: must be one of {', '.join(INIT_SCHEMES)}, got {self.init!r}")
        for name in ("embedding_size", "hidden_size", "num_layers", "attention_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")


@dataclass
class CaptionMemory(TensorState):
    """features (B, N, F): the CNN map flattened over positions; pooled (B, F): their mean."""

    features: torch.Tensor
    pooled: torch.Tensor


@dataclass
class CaptionState(TensorState):
    """hidden (L, B, H); cell (L, B, H) for an LSTM else None; features (B, N, F) and keys (B, N, A) with
    attention, else None (the image then lives only in the initial state)."""

    hidden: torch.Tensor
    cell: torch.Tensor | None = None
    features: torch.Tensor | None = None
    keys: torch.Tensor | None = None
    batch_dims = {"hidden": 1, "cell": 1}


class Captioner(nn.Module):
    def __init__(self, config: CaptionerConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.encoder = CNNEncoder(config.cnn)
        feature_size, hidden = self.encoder.out_channels, config.hidden_size
        # One projection makes all L layers' h0 (and one more their c0): the image is the decoder's only context.
        self.init_hidden = nn.Linear(feature_size, config.num_layers * hidden)
        self.init_cell = nn.Linear(feature_size, config.num_layers * hidden) if config.cell == "lstm" else None
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        context_size = feature_size if config.attention else 0
        self.rnn = make_rnn(config.cell, config.embedding_size + context_size, hidden, config.num_layers,
                            config.dropout)
        if config.attention:
            self.key_projection = nn.Linear(feature_size, config.attention_size, bias=False)
            self.query_projection = nn.Linear(hidden, config.attention_size)
            self.score = nn.Linear(config.attention_size, 1, bias=False)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(hidden + context_size, vocab_size)
        for name, child in self.named_children():
            if name != "encoder":  # Kaiming-style conv defaults suit the ReLU CNN better than the RNN schemes
                init_weights(child, config.init, bias=config.init_bias)

    # ---------------------------------------------------------------------------------- decoding interface
    def encode(self, images: torch.Tensor, src_mask: torch.Tensor | None = None) -> CaptionMemory:
        """images (B, C, H, W) -> CaptionMemory; ``src_mask`` is unused (every image position is real)."""
        feature_map = self.encoder(images)  # (B, F, H', W')
        features = feature_map.flatten(2).transpose(1, 2)  # (B, N, F)
        return CaptionMemory(features=features, pooled=features.mean(1))

    def init_state(self, memory: CaptionMemory, src_mask: torch.Tensor | None = None) -> CaptionState:
        """h0 = tanh(W_h pooled), c0 = tanh(W_c pooled), each split into L layers: (B, L*H) -> (L, B, H)."""
        batch, layers = memory.pooled.size(0), self.config.num_layers

        def per_layer(projection: nn.Linear) -> torch.Tensor:
            flat = torch.tanh(projection(memory.pooled))  # (B, L*H)
            return flat.view(batch, layers, -1).transpose(0, 1).contiguous()  # (L, B, H)

        cell = per_layer(self.init_cell) if self.init_cell is not None else None
        if not self.config.attention:
            return CaptionState(per_layer(self.init_hidden), cell)
        keys = self.key_projection(memory.features)  # (B, N, A), computed once per image, reused every step
        return CaptionState(per_layer(self.init_hidden), cell, memory.features, keys)

    def step(self, tokens: torch.Tensor, state: CaptionState) -> tuple[torch.Tensor, CaptionState]:
        """tokens (B,) -> log_probs (B, V), the next state."""
        hidden, state = self._advance(self.embedding(tokens).unsqueeze(1), state)  # (B, 1, D)
        logits = self.output(hidden)  # (B, 1, V)
        return step_log_probs(logits.squeeze(1)), state

    # ---------------------------------------------------------------------------------- teacher forcing
    def forward(self, images: torch.Tensor, tgt_in_ids: torch.Tensor,
                image_index: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, C, H, W), tgt_in_ids (B, T) = <bos> y_1 .. y_{T-1} -> logits (B, T, V).

        ``image_index`` (B',) lets several captions share one image: images is then (I, C, H, W), caption row b
        describes image ``image_index[b]``, and the CNN runs once per image rather than once per caption (the
        expensive part on a CPU; Karpathy's neuraltalk2 ``seq_per_img``).  Logits are then (B', T, V).

        Without attention the whole caption goes through the RNN in one call (cuDNN-friendly); with attention each
        step's context depends on the previous hidden state, so it runs step by step.
        """
        return self.output(self.hidden_states(images, tgt_in_ids, image_index))

    @property
    def output_layer(self) -> nn.Linear:
        """The output projection: ``output_layer(hidden_states(...))`` are the logits of ``forward``."""
        return self.output

    def hidden_states(self, images: torch.Tensor, tgt_in_ids: torch.Tensor,
                      image_index: torch.Tensor | None = None) -> torch.Tensor:
        """What the output layer reads at every position, (B, T, D) (dropout applied): ``forward`` before the
        output projection, for a loss that fuses the projection (``linear_cross_entropy_sum``)."""
        state = self.start_state(images, image_index)
        embedded = self.embedding(tgt_in_ids)  # (B, T, E)
        if not self.config.attention:
            return self._advance(embedded, state)[0]
        hidden = []
        for t in range(embedded.size(1)):
            step_hidden, state = self._advance(embedded[:, t:t + 1], state)  # (B, 1, D)
            hidden.append(step_hidden)
        return torch.cat(hidden, dim=1)

    def start_state(self, images: torch.Tensor, image_index: torch.Tensor | None = None) -> CaptionState:
        """The decoder state before <bos>, one row per caption: ``image_index`` as in ``forward``."""
        memory = self.encode(images)
        if image_index is not None:
            memory = memory.reorder(image_index)  # (I, ...) -> (B', ...): one row per caption
        return self.init_state(memory)

    def _advance(self, embedded: torch.Tensor, state: CaptionState) -> tuple[torch.Tensor, CaptionState]:
        """embedded (B, T, E) (T = 1 with attention) -> the output layer's inputs (B, T, D) and the state after
        the last step."""
        rnn_state = state.hidden if state.cell is None else (state.hidden, state.cell)
        context = None
        if state.features is not None:
            context = self._attend(state.hidden[-1], state.features, state.keys).unsqueeze(1)  # (B, 1, F)
            embedded = torch.cat([embedded, context], dim=-1)  # (B, 1, E + F)
        outputs, new_rnn_state = self.rnn(self.dropout(embedded), rnn_state)  # (B, T, H)
        if context is not None:
            outputs = torch.cat([outputs, context], dim=-1)  # (B, 1, H + F): "deep output" sees the context
        hidden, cell = new_rnn_state if isinstance(new_rnn_state, tuple) else (new_rnn_state, None)
        new_state = CaptionState(hidden, cell, state.features, state.keys)
        return self.dropout(outputs), new_state

    def _attend(self, query: torch.Tensor, features: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Additive attention: e_n = v^T tanh(W_k f_n + W_q h), α = softmax(e), context = Σ_n α_n f_n.
        query (B, H), features (B, N, F), keys (B, N, A) -> (B, F)."""
        scores = self.score(torch.tanh(keys + self.query_projection(query).unsqueeze(1))).squeeze(-1)  # (B, N)
        return torch.bmm(scores.softmax(-1).unsqueeze(1), features).squeeze(1)  # (B, 1, N) @ (B, N, F)
