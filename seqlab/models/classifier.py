"""Many-to-one sequence models (d2l "more RNN applications": classification).

Two peers behind one interface ``forward(ids (B, S), mask (B, S)) -> logits (B, C)``:

* ``TextClassifier``: embeddings -> an encoder -> padding-aware pooling over time -> dropout -> linear.
  Encoders: a (bi)directional RNN / GRU / LSTM run on packed sequences (padding never enters the recurrence), or
  a small Transformer encoder (``seqlab.nn.transformer``).  Pooling: "last" (the final real state; for a biRNN the
  forward state after the last token joined with the backward state after the first), "mean", "max", or
  "attention" (a learned query scoring every state, Yang et al. 2016).
* ``CNNTextClassifier``: Kim (2014), "Convolutional Neural Networks for Sentence Classification": parallel 1-D
  convolutions of widths 3, 4, 5 over the embeddings, ReLU, max over time, concatenated.

Shapes: B batch, S sentence length, E embedding size, D encoder output size, C classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.contracts import PAD_ID
from seqlab.nn.char_cnn import CharCNN, make_char_cnn
from seqlab.nn.init import INIT_SCHEMES, init_weights
from seqlab.nn.rnn import CELL_NAMES, encode_packed, make_rnn
from seqlab.nn.transformer import EncoderLayer, TokenEmbedding, padding_to_attention_mask

ENCODERS = (*CELL_NAMES, "transformer")
POOLINGS = ("last", "mean", "max", "attention")


@dataclass
class ClassifierConfig:
    """``encoder``: rnn | rnn_relu | gru | gru_seed | lstm | transformer | cnn (the last builds ``CNNTextClassifier``)."""

    encoder: str = "lstm"
    embedding_size: int = 128
    hidden_size: int = 128  # per direction for RNNs; the model dim for the Transformer
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.3
    # Kim (2014) drops only the penultimate layer (embedding_dropout 0): 0.5 on the word vectors as well made his
    # CNN-rand learn slowly here (TREC 87.6 % with it, configs/trec_kimcnn.yaml)
    embedding_dropout: float | None = None  # on the word vectors; None = the same as dropout
    num_heads: int = 4  # transformer
    ffn_size: int = 256  # transformer
    kernel_sizes: tuple[int, ...] = (3, 4, 5)  # cnn
    num_filters: int = 100  # cnn, per kernel size
    # character-CNN word features (seqlab.nn.char_cnn) joined to each word embedding, RNN and CNN encoders only;
    # the task then builds a character vocabulary from the training words and passes char_ids (B, S, W)
    char_embedding_size: int = 0  # size of a character embedding; 0 = no character features
    char_filters: int = 50  # character features per word (the char CNN's filters)
    char_width: int = 3  # characters per char-CNN window
    # Kim (2014) draws CNN-rand word vectors from U(-0.25, 0.25), word2vec's variance; PyTorch's N(0, 1) is ~7x
    # wider, so Adam's ~lr-sized steps move the vectors relatively 7x slower (TREC, Kim CNN, 10 epochs: see
    # docs/RESULTS_CLASSIFY.md)
    embedding_init_range: float = 0.0  # > 0: word embeddings from U(-range, range), after init; 0 = as init leaves them
    init: str = "default"  # a scheme of seqlab.nn.init (the Transformer keeps its own Xavier init by default)
    init_bias: float = 0.0  # biases' start (not uniform/default); 0.1: the seed's ReLU advice
    # Dai & Le 2015 (seqlab.nn.pretrained): rows matched by the word; embedding_size must equal the LM's
    pretrained: str = ""  # a word-level LM's model dir whose word vectors start the embedding; "" = random start
    freeze_pretrained: bool = False  # keep the handed-over table fixed (Kim's CNN-static); False: fine-tune it
    pretrained_encoder: bool = False  # also the LM's recurrent layers into the encoder's forward direction (ULMFiT)

    def __post_init__(self) -> None:
        self.kernel_sizes = tuple(self.kernel_sizes)
        if self.encoder not in (*ENCODERS, "cnn"):
            raise ConfigError(f"encoder: must be one of {', '.join((*ENCODERS, 'cnn'))}, got {self.encoder!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling: must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        for name in ("embedding_size", "hidden_size", "num_layers", "num_heads", "ffn_size", "num_filters",
                     "char_filters", "char_width"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in ("dropout", "embedding_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ConfigError(f"{name}: must be in [0, 1), got {value}")
        if self.encoder == "transformer" and self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size: must be divisible by num_heads={self.num_heads}, got {self.hidden_size}")
        if self.init not in INIT_SCHEMES:
            raise ConfigError(f"init: must be one of {', '.join(INIT_SCHEMES)}, got {self.init!r}")
        if self.embedding_init_range < 0 or (self.embedding_init_range and self.encoder == "transformer"):
            raise ConfigError(f"embedding_init_range: must be >= 0, and 0 for the transformer (it scales its own "
                              f"embeddings), got {self.embedding_init_range}")
        if self.char_embedding_size < 0:
            raise ConfigError(f"char_embedding_size: must be >= 0 (0 = no character features), got "
                              f"{self.char_embedding_size}")
        if self.uses_chars and self.encoder == "transformer":
            raise ConfigError("char_embedding_size: character features are for the RNN and CNN encoders")
        if self.pretrained and self.encoder == "transformer":
            raise ConfigError("pretrained: word vectors are handed to the RNN and CNN encoders only")
        for name in ("freeze_pretrained", "pretrained_encoder"):
            if getattr(self, name) and not self.pretrained:
                raise ConfigError(f"{name}: needs model.pretrained (an LM model directory)")
        if self.pretrained_encoder and self.encoder not in ("rnn", "rnn_relu", "gru", "lstm"):
            raise ConfigError(f"pretrained_encoder: needs an rnn, gru or lstm encoder, got {self.encoder}")
        if not self.kernel_sizes or min(self.kernel_sizes) <= 0:
            raise ConfigError(f"kernel_sizes: must be positive widths, got {list(self.kernel_sizes)}")

    @property
    def uses_chars(self) -> bool:
        return self.char_embedding_size > 0


def embed_words(embedding: nn.Embedding, chars: CharCNN | None, ids: torch.Tensor,
                char_ids: torch.Tensor | None) -> torch.Tensor:
    """ids (B, S) [+ char_ids (B, S, W)] -> (B, S, E [+ F]): the word embedding, joined by the spelling's
    character-CNN vector when the model has one (Ma & Hovy 2016)."""
    embedded = embedding(ids)  # (B, S, E)
    if chars is None:
        return embedded
    if char_ids is None:
        raise ValueError("this classifier reads characters: pass char_ids (B, S, W)")
    return torch.cat([embedded, chars(char_ids)], dim=-1)  # (B, S, E + F)


def word_feature_size(config: ClassifierConfig) -> int:
    return config.embedding_size + (config.char_filters if config.uses_chars else 0)


def init_embedding(embedding: nn.Embedding, init_range: float) -> None:
    """U(-init_range, init_range) word vectors (Kim 2014), the padding row zero again; 0 leaves them."""
    if init_range > 0:
        with torch.no_grad():
            embedding.weight.uniform_(-init_range, init_range)
            embedding.weight[PAD_ID].zero_()


def embedding_dropout(config: ClassifierConfig) -> float:
    """The dropout rate on the word vectors: ``embedding_dropout``, or ``dropout`` when that is unset."""
    return config.dropout if config.embedding_dropout is None else config.embedding_dropout


def run_packed(rnn: nn.RNNBase, embedded: torch.Tensor,
               mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``encode_packed`` from a mask: embedded (B, S, E), mask (B, S) left-aligned -> outputs (B, S, D), zero at
    padding, and h_n (L * dirs, B, H) at each row's own end.  Empty rows run as length 1 (their input is the zero
    padding embedding) so packing never fails on them."""
    outputs, final = encode_packed(rnn, embedded, mask.sum(1).clamp_min(1))
    return outputs, final[0] if isinstance(final, tuple) else final  # LSTM: (h_n, c_n)


def masked_pool(states: torch.Tensor, mask: torch.Tensor, how: str,
                scores: torch.Tensor | None = None) -> torch.Tensor:
    """states (B, S, D), mask (B, S) -> (B, D), ignoring padding.

    "mean": average of the real states; "max": elementwise max over real states; "last": the state at each row's
    last real token; "attention": softmax(scores) weighted sum, ``scores`` (B, S) given by the caller.
    """
    real = mask.unsqueeze(-1)  # (B, S, 1)
    if how == "mean":
        return (states * real).sum(1) / real.sum(1).clamp_min(1)
    if how == "max":
        return states.masked_fill(~real, float("-inf")).amax(1)
    if how == "last":
        last = (mask.sum(1) - 1).clamp_min(0)  # (B,)
        return states[torch.arange(states.size(0), device=states.device), last]
    if how == "attention" and scores is not None:
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)  # (B, S)
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (B, 1, S) @ (B, S, D) -> (B, D)
    raise ValueError(f"unknown pooling {how!r} (or attention pooling without scores)")


class TextClassifier(nn.Module):
    """Embeddings -> RNN/GRU/LSTM (packed) or Transformer encoder -> masked pooling -> dropout -> linear."""

    def __init__(self, config: ClassifierConfig, vocab_size: int, num_classes: int, char_vocab_size: int = 0):
        super().__init__()
        if config.encoder not in ENCODERS:
            raise ConfigError(f"encoder: TextClassifier takes {', '.join(ENCODERS)}; use CNNTextClassifier for cnn")
        self.config = config
        if config.encoder == "transformer":
            self.embedding: nn.Module = TokenEmbedding(vocab_size, config.hidden_size, dropout=config.dropout)
            self.layers = nn.ModuleList(
                EncoderLayer(config.hidden_size, config.num_heads, config.ffn_size, config.dropout, 0.0, "relu",
                             pre_norm=True) for _ in range(config.num_layers))
            self.final_norm = nn.LayerNorm(config.hidden_size)  # pre-LN stacks end with a norm
            output_size = config.hidden_size
        else:
            self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
            self.chars = make_char_cnn(config, char_vocab_size)
            self.rnn = make_rnn(config.encoder, word_feature_size(config), config.hidden_size, config.num_layers,
                                config.dropout, config.bidirectional)
            output_size = config.hidden_size * (2 if config.bidirectional else 1)
            self.embedding_dropout = nn.Dropout(embedding_dropout(config))
        self.attention_query = nn.Linear(output_size, 1, bias=False) if config.pooling == "attention" else None
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(output_size, num_classes)
        init_weights(self, config.init, bias=config.init_bias)
        if config.encoder != "transformer":
            init_embedding(self.embedding, config.embedding_init_range)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, char_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, S), mask (B, S) bool [, char_ids (B, S, W)] -> logits (B, C)."""
        states, final = self.encode(ids, mask, char_ids)  # (B, S, D)
        if self.config.pooling == "last" and final is not None:
            pooled = final
        else:
            scores = self.attention_query(torch.tanh(states)).squeeze(-1) if self.attention_query else None
            pooled = masked_pool(states, mask, self.config.pooling, scores)  # (B, D)
        return self.output(self.dropout(pooled))

    def encode(self, ids: torch.Tensor, mask: torch.Tensor,
               char_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> states (B, S, D) and, for RNNs, the "last" summary (B, D): the top layer's final state per direction
        (the backward direction's final state is the one after reading the first token)."""
        if self.config.encoder == "transformer":
            x = self.embedding(ids)
            attention_mask = padding_to_attention_mask(mask)  # (B, 1, 1, S)
            for layer in self.layers:
                x = layer(x, attention_mask)
            return self.final_norm(x), None
        embedded = embed_words(self.embedding, self.chars, ids, char_ids)  # (B, S, E [+ F])
        embedded = self.embedding_dropout(embedded)
        states, hidden = run_packed(self.rnn, embedded, mask)  # hidden (L * dirs, B, H)
        directions = 2 if self.config.bidirectional else 1
        top = hidden[-directions:]  # (dirs, B, H): the last layer's forward (and backward) final states
        return states, top.transpose(0, 1).reshape(ids.size(0), -1)  # (B, dirs * H)


class CNNTextClassifier(nn.Module):
    """Kim (2014): embeddings -> Conv1d of each width k -> ReLU -> max over time -> concat -> dropout -> linear.

    The convolutions are "wide" (k-1 zeros of padding on both sides) so a sentence shorter than k still has a
    window.  Padding is made exactly zero before convolving and windows lying wholly in the batch padding are
    masked out of the max, so a sentence's logits do not depend on how much padding its batch has.
    """

    def __init__(self, config: ClassifierConfig, vocab_size: int, num_classes: int, char_vocab_size: int = 0):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.chars = make_char_cnn(config, char_vocab_size)
        self.embedding_dropout = nn.Dropout(embedding_dropout(config))
        self.convolutions = nn.ModuleList(
            nn.Conv1d(word_feature_size(config), config.num_filters, width, padding=width - 1)
            for width in config.kernel_sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.num_filters * len(config.kernel_sizes), num_classes)
        init_weights(self, config.init, bias=config.init_bias)
        init_embedding(self.embedding, config.embedding_init_range)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, char_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, S), mask (B, S) bool [, char_ids (B, S, W)] -> logits (B, C)."""
        embedded = embed_words(self.embedding, self.chars, ids, char_ids)  # (B, S, E [+ F])
        embedded = self.embedding_dropout(embedded) * mask.unsqueeze(-1)  # padding exactly 0
        embedded = embedded.transpose(1, 2)  # (B, E, S): Conv1d convolves the last axis
        lengths = mask.sum(1, keepdim=True)  # (B, 1)
        pooled = []
        for convolution, width in zip(self.convolutions, self.config.kernel_sizes):
            features = torch.relu(convolution(embedded))  # (B, F, S + k - 1); window j covers tokens j-k+1 .. j
            positions = torch.arange(features.size(-1), device=ids.device)  # (S + k - 1,)
            touches_text = positions.unsqueeze(0) < lengths + width - 1  # (B, S + k - 1)
            pooled.append(features.masked_fill(~touches_text.unsqueeze(1), float("-inf")).amax(-1))  # (B, F)
        return self.output(self.dropout(torch.cat(pooled, dim=-1)))


def build_classifier(config: ClassifierConfig, vocab_size: int, num_classes: int,
                     char_vocab_size: int = 0) -> nn.Module:
    """The classifier that ``config.encoder`` names (``char_vocab_size``: only with character features)."""
    if config.uses_chars and char_vocab_size <= 0:
        raise ConfigError("char_embedding_size: character features need a character vocabulary")
    if config.encoder == "cnn":
        return CNNTextClassifier(config, vocab_size, num_classes, char_vocab_size)
    return TextClassifier(config, vocab_size, num_classes, char_vocab_size)
