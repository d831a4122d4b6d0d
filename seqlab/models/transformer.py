"""The Transformer encoder-decoder and the decoder-only language model (Vaswani et al. 2017; CS182 seed 002).

    src ids -> TokenEmbedding -> N x EncoderLayer -> memory (B, S, D)
    tgt ids -> TokenEmbedding -> N x DecoderLayer(masked self-attn, cross-attn on memory, FFN) -> linear -> logits

Teacher forcing (``forward``) runs every target position at once under a causal mask.  Decoding runs one token
per ``step``: each decoder layer keeps the keys/values of the positions already decoded (the KV cache, appended
per step) and the cross-attention keys/values of the memory, projected once per sentence in ``init_state``.
All of it lives in a ``TransformerState`` that ``reorder`` indexes for beam search; nothing is kept on the module.

Padding: the encoder and the cross-attention mask padded source keys.  The decoder uses only the causal mask:
targets are right-padded, so a padded key is always in the future of every real query, and padded queries'
outputs are ignored by the loss.  With ``remove_padding`` (default) the position-wise layers and the output
projection run on the real tokens only (``seqlab.nn.transformer.Packing``); padded positions then get zero
logits, ``forward(..., tgt_mask=mask)`` returns just the real positions' logits (N, V), and ``target_hidden``
their hidden states (N, D), which ``Seq2SeqTask.loss`` projects inside the fused loss.
(The language model also accepts arbitrary masks, see ``TransformerLM``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.contracts import PAD_ID, TensorState, reorder_value, step_log_probs
from seqlab.nn.kv_cache import BufferPool, KVCache
from seqlab.nn.packed_linear import project
from seqlab.nn.transformer import (ACTIVATIONS, DecoderLayer, EncoderLayer, KeyValue, Packing,
                                   TokenEmbedding, causal_mask, init_transformer_weights, padding_to_attention_mask)

POSITIONS = ("sinusoidal", "learned", "none")


@dataclass
class TransformerConfig:
    d_model: int = 256
    num_heads: int = 4
    ffn_size: int = 1024
    num_encoder_layers: int = 3  # unused by the language model
    num_decoder_layers: int = 3
    dropout: float = 0.1  # on embeddings + positions and on every sub-layer output (attention, FFN)
    attention_dropout: float = 0.0  # on the attention weights
    activation: str = "relu"  # relu | gelu
    positions: str = "sinusoidal"  # sinusoidal | learned | none
    max_positions: int = 1024  # length limit of learned positions (and size of the cached sinusoid table)
    pre_norm: bool = False  # False: post-LN as in the paper; True: pre-LN (Xiong et al. 2020)
    share_embeddings: bool = False  # one source/target embedding table (needs equal vocabulary sizes)
    tie_output: bool = True  # output projection = target embedding (Press & Wolf 2017)
    remove_padding: bool = True  # position-wise layers skip padded tokens (same results, fewer FLOPs)

    def __post_init__(self):
        for name in ("d_model", "num_heads", "ffn_size", "num_decoder_layers", "max_positions"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.num_encoder_layers < 0:
            raise ConfigError(f"num_encoder_layers: must be >= 0, got {self.num_encoder_layers}")
        if self.d_model % self.num_heads:
            raise ConfigError(f"d_model: must be divisible by num_heads={self.num_heads}, got {self.d_model}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name}: must be in [0, 1), got {getattr(self, name)}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation: must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.positions not in POSITIONS:
            raise ConfigError(f"positions: must be one of {list(POSITIONS)}, got {self.positions!r}")
        if self.positions == "sinusoidal" and self.d_model % 2:
            raise ConfigError(f"d_model: sinusoidal positions need an even d_model, got {self.d_model}")


@dataclass
class TransformerState(TensorState):
    """Decoder state between steps (every tensor has the batch on dim 0, so ``reorder`` indexes them all).

    self_cache: per decoder layer, the ``KVCache`` of the positions decoded so far (keys, values (B, H, t, Dh));
    memory_kv: per decoder layer, cross-attention (keys, values) of the memory, each (M, H, S, Dh); None for an LM;
    memory_mask: (M, 1, 1, S) source padding mask; None for an LM;
    position: index of the next token (its position code), the same for every row;
    rows_per_memory: G, the decoder rows per memory row: M = B / G and rows b*G .. b*G+G-1 read memory row b.

    G is 1 until beam search calls ``expand_rows``: then the K beams of a sentence share its memory (G = K), and
    ``reorder`` copies memory rows only when a sentence leaves the batch instead of (B*K, H, S, Dh) per layer
    and step (11 % of beam-search time, docs/PERFORMANCE.md).
    """

    self_cache: tuple[KVCache, ...]
    memory_kv: tuple[KeyValue, ...] | None
    memory_mask: torch.Tensor | None
    position: int
    rows_per_memory: int = 1

    def expand_rows(self, index: torch.Tensor, k: int) -> "TransformerState":
        """``reorder(index)`` for index = arange(B).repeat_interleave(k), keeping one memory row per sentence."""
        if self.rows_per_memory != 1:
            return self.reorder(index)
        cache = reorder_value(self.self_cache, index, 0)
        return TransformerState(cache, self.memory_kv, self.memory_mask, self.position, k)

    def reorder(self, index: torch.Tensor) -> "TransformerState":
        """Row i of the result is row index[i].  Grouped memory stays grouped while every block of G new rows
        reads one memory row (beam pruning: beams stay with their sentence); otherwise it is spread to one
        memory row per decoder row (G = 1), the plain reorder."""
        cache = reorder_value(self.self_cache, index, 0)
        if self.memory_kv is None:
            return TransformerState(cache, None, None, self.position)
        memory_index, group = self._memory_index(index)
        memory_kv, memory_mask = self.memory_kv, self.memory_mask
        if memory_index is not None:
            memory_kv = reorder_value(memory_kv, memory_index, 0)
            memory_mask = memory_mask.index_select(0, memory_index)
        return TransformerState(cache, memory_kv, memory_mask, self.position, group)

    def _memory_index(self, index: torch.Tensor) -> tuple[torch.Tensor | None, int]:
        """-> (memory rows to keep, or None to keep them all as they are; the new rows_per_memory)."""
        group = self.rows_per_memory
        if group == 1:
            return index, 1
        owners = index.view(-1, group) // group if index.numel() % group == 0 else None  # (B'/G, G)
        if owners is not None and bool((owners == owners[:, :1]).all()):  # one host sync
            first = owners[:, 0]
            unchanged = first.numel() == self.memory_mask.size(0) and bool(
                (first == torch.arange(first.numel(), device=first.device)).all())
            return (None if unchanged else first), group
        return index // group, 1


def _embedding(config: TransformerConfig, vocab_size: int) -> TokenEmbedding:
    return TokenEmbedding(vocab_size, config.d_model, config.positions, config.max_positions, config.dropout)


class TransformerDecoder(nn.Module):
    """Target embedding, N decoder layers, final norm (pre-LN only) and the output projection.

    Shared by the seq2seq model (``cross_attention=True``) and the language model (False).
    """

    def __init__(self, config: TransformerConfig, vocab_size: int, cross_attention: bool,
                 embedding: TokenEmbedding | None = None):
        super().__init__()
        self.config = config
        self.embedding = embedding if embedding is not None else _embedding(config, vocab_size)
        self.layers = nn.ModuleList(
            DecoderLayer(config.d_model, config.num_heads, config.ffn_size, config.dropout, config.attention_dropout,
                         config.activation, config.pre_norm, cross_attention)
            for _ in range(config.num_decoder_layers))
        # Pre-LN leaves the residual stream un-normalised: one LayerNorm after the stack (Xiong et al. 2020).
        self.final_norm = nn.LayerNorm(config.d_model) if config.pre_norm else nn.Identity()
        self.output = nn.Linear(config.d_model, vocab_size, bias=False)

    def tie_output(self) -> None:
        self.output.weight = self.embedding.embedding.weight  # one tensor, two uses

    def project_memory(self, memory: torch.Tensor) -> tuple[KeyValue, ...]:
        """memory (B, S, D) -> per layer the cross-attention (keys, values), each (B, H, S, Dh)."""
        return tuple(layer.cross_attention.project_memory(memory) for layer in self.layers)

    def hidden(self, ids: torch.Tensor, offset: int = 0, self_mask: torch.Tensor | None = None,
               is_causal: bool = False, past: tuple[KVCache, ...] | None = None,
               memory_kv: tuple[KeyValue, ...] | None = None, memory_mask: torch.Tensor | None = None,
               packing: Packing | None = None, memory_group: int = 1,
               ) -> tuple[torch.Tensor, tuple[KeyValue | KVCache, ...]]:
        """ids (B, T) at positions offset.. -> final hidden states (B, T, D), or (N, D) real rows with
        ``packing``, and the per-layer self-attention K/V (``KVCache``s when ``past`` is given).
        ``memory_group``: decoder rows per memory row (``TransformerState.rows_per_memory``)."""
        x = self.embedding(ids, offset, packing)  # (B, T, D) or (N, D)
        cache = []
        for index, layer in enumerate(self.layers):
            x, kv = layer(x, self_mask, is_causal, None if past is None else past[index],
                          None if memory_kv is None else memory_kv[index], memory_mask, packing, memory_group)
            cache.append(kv)
        return self.final_norm(x), tuple(cache)

    def empty_state(self, batch_size: int, memory_kv: tuple[KeyValue, ...] | None,
                    memory_mask: torch.Tensor | None) -> TransformerState:
        """A state before the first token: empty ``KVCache``s, which the steps append to."""
        heads, pool = self.config.num_heads, BufferPool()
        like = self.embedding.embedding.weight  # the model's dtype and device (the output layer may be int8)
        cache = tuple(KVCache.empty(batch_size, heads, self.config.d_model // heads, like, pool=pool)
                      for _ in self.layers)
        return TransformerState(cache, memory_kv, memory_mask, 0)

    def step(self, tokens: torch.Tensor, state: TransformerState) -> tuple[torch.Tensor, TransformerState]:
        """tokens (B,) -> log_probs (B, V) of the next token, and the state with this step's K/V appended."""
        # One query over keys 0..t: every cached key is in the past, so no mask (and not is_causal, which SDPA
        # would align top-left and so hide all keys but the first).
        hidden, cache = self.hidden(tokens[:, None], state.position, past=state.self_cache,
                                    memory_kv=state.memory_kv, memory_mask=state.memory_mask,
                                    memory_group=state.rows_per_memory)  # (B, 1, D)
        log_probs = step_log_probs(project(self.output, hidden[:, 0]))  # (B, V); project: packed weight
        return log_probs, TransformerState(cache, state.memory_kv, state.memory_mask, state.position + 1,
                                           state.rows_per_memory)


def _initialise(model: nn.Module, embeddings: list[TokenEmbedding], decoder: TransformerDecoder,
                tie_output: bool) -> None:
    """Xavier-uniform matrices, N(0, D^-1/2) embeddings (paper / fairseq); then tie the output projection."""
    init_transformer_weights(model)
    for embedding in embeddings:
        embedding.reset_parameters()
    if tie_output:
        decoder.tie_output()


class TransformerSeq2Seq(nn.Module):
    """The encoder-decoder Transformer; implements ``seqlab.contracts.Seq2SeqModel``."""

    def __init__(self, config: TransformerConfig, src_vocab_size: int, tgt_vocab_size: int):
        super().__init__()
        if config.share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ConfigError(f"share_embeddings: needs equal source and target vocabulary sizes, got "
                              f"{src_vocab_size} and {tgt_vocab_size}")
        self.config = config
        self.src_embedding = _embedding(config, src_vocab_size)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(config.d_model, config.num_heads, config.ffn_size, config.dropout, config.attention_dropout,
                         config.activation, config.pre_norm)
            for _ in range(config.num_encoder_layers))
        self.encoder_norm = nn.LayerNorm(config.d_model) if config.pre_norm else nn.Identity()
        tgt_embedding = self.src_embedding if config.share_embeddings else _embedding(config, tgt_vocab_size)
        self.decoder = TransformerDecoder(config, tgt_vocab_size, cross_attention=True, embedding=tgt_embedding)
        _initialise(self, [self.src_embedding, tgt_embedding], self.decoder, config.tie_output)

    def encode(self, src_ids: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """src_ids (B, S), src_mask (B, S) bool -> memory (B, S, D).  Rows at padded positions are junk (zeros
        with ``remove_padding``) that the cross-attention mask hides."""
        mask = padding_to_attention_mask(src_mask)  # (B, 1, 1, S), built once for all layers
        packing = Packing.of(src_mask, self.config.remove_padding)
        x = self.src_embedding(src_ids, packing=packing)  # (B, S, D) or (N, D)
        for layer in self.encoder_layers:
            x = layer(x, mask, packing)
        x = self.encoder_norm(x)
        return x if packing is None else packing.pad(x)

    def forward(self, src_ids: torch.Tensor, src_mask: torch.Tensor, tgt_in_ids: torch.Tensor,
                tgt_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: src_ids (B, S), src_mask (B, S), tgt_in_ids (B, T) right-padded -> logits (B, T, V).

        With ``tgt_mask`` (B, T) -> the logits of the real positions only, (N, V) = ``logits[tgt_mask]``: the
        loss then never touches padding (the log-softmax over V is as costly as the output projection).
        Without it, real positions are ``tgt_in_ids != PAD_ID``.
        """
        if tgt_mask is not None:
            hidden = self.target_hidden(src_ids, src_mask, tgt_in_ids, tgt_mask)  # (N, D)
            return self.decoder.output(hidden)  # (N, V)
        hidden, packing = self._decoder_hidden(src_ids, src_mask, tgt_in_ids, tgt_in_ids != PAD_ID)
        # The (B, T, V) contract: pad the (N, D) hidden states rather than the (N, V) logits.  Zero-filling and
        # scattering B*T*V floats (and gathering their gradient) costs more than projecting a few padded rows;
        # a zero hidden row gives zero logits (the projection has no bias).
        if packing is not None:
            hidden = packing.pad(hidden)  # (B, T, D)
        return self.decoder.output(hidden)  # (B, T, V)

    def target_hidden(self, src_ids: torch.Tensor, src_mask: torch.Tensor, tgt_in_ids: torch.Tensor,
                      tgt_mask: torch.Tensor) -> torch.Tensor:
        """The decoder's last hidden states at the real target positions, (N, D): ``forward(..., tgt_mask=)``
        before the output projection ``self.decoder.output``, for a loss that fuses the projection
        (``seqlab.train.loss.linear_cross_entropy_sum``)."""
        hidden, packing = self._decoder_hidden(src_ids, src_mask, tgt_in_ids, tgt_mask)
        return hidden if packing is not None else hidden[tgt_mask]

    def _decoder_hidden(self, src_ids, src_mask, tgt_in_ids, real) -> tuple[torch.Tensor, Packing | None]:
        """Encode, then run the decoder layers: (B, T, D), or (N, D) when ``real`` (B, T) packs the rows."""
        memory = self.encode(src_ids, src_mask)
        packing = Packing.of(real, self.config.remove_padding)
        hidden, _ = self.decoder.hidden(tgt_in_ids, is_causal=True, memory_kv=self.decoder.project_memory(memory),
                                        memory_mask=padding_to_attention_mask(src_mask), packing=packing)
        return hidden, packing

    @property
    def output_layer(self) -> nn.Linear:
        """The output projection (D -> V), tied to the embeddings when ``tie_output``."""
        return self.decoder.output

    def init_state(self, memory: torch.Tensor, src_mask: torch.Tensor) -> TransformerState:
        """Project the memory into every layer's cross-attention keys/values once per sentence."""
        return self.decoder.empty_state(memory.size(0), self.decoder.project_memory(memory),
                                        padding_to_attention_mask(src_mask))

    def step(self, tokens: torch.Tensor, state: TransformerState) -> tuple[torch.Tensor, TransformerState]:
        """tokens (B,) -> (log_probs (B, V), next state)."""
        return self.decoder.step(tokens, state)


class TransformerLM(nn.Module):
    """Decoder-only language model (GPT-style): embeddings, N masked self-attention layers, output projection.

    ``forward(ids, mask)`` sees each chunk on its own (not ``stateful``: no state carried across BPTT chunks).
    """

    def __init__(self, config: TransformerConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.decoder = TransformerDecoder(config, vocab_size, cross_attention=False)
        _initialise(self, [self.decoder.embedding], self.decoder, config.tie_output)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T), mask (B, T) bool (True = real token) or None -> logits (B, T, V)."""
        return self.decoder.output(self.hidden_states(ids, mask))

    @property
    def output_layer(self) -> nn.Linear:
        """The output projection: ``output_layer(hidden_states(ids, mask))`` are the logits of ``forward``."""
        return self.decoder.output

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T), mask as in ``forward`` -> the last layer's hidden states (B, T, D), before the output.

        A mask with no padding, or None, takes SDPA's fused causal path.  Otherwise keys are masked too; each
        position may always see itself, so a left-padded row never has all its scores at -inf (NaN).
        """
        if mask is None or bool(mask.all()):  # bool(): one host sync, cheaper than a (B, T, T) mask per batch
            hidden, _ = self.decoder.hidden(ids, is_causal=True)
        else:
            length = ids.size(1)
            allowed = causal_mask(length, ids.device) & mask[:, None, None, :]  # (B, 1, T, T)
            allowed = allowed | torch.eye(length, dtype=torch.bool, device=ids.device)
            hidden, _ = self.decoder.hidden(ids, self_mask=allowed)
        return hidden

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> TransformerState:
        """The state before the first token (``device`` is accepted for symmetry with RNNLM; the model's own
        device is used)."""
        return self.decoder.empty_state(batch_size, None, None)

    def step(self, tokens: torch.Tensor, state: TransformerState) -> tuple[torch.Tensor, TransformerState]:
        """tokens (B,) -> (log_probs (B, V), next state)."""
        return self.decoder.step(tokens, state)
