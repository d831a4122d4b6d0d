"""Transformer building blocks (Vaswani et al. 2017, "Attention Is All You Need"; CS182 seed 002, "变形金刚").

The seed's four ingredients, each a small piece here:

* positions: token embedding * sqrt(D) + a position code p_t (sinusoidal, learned, or none);
* multi-head attention: softmax(Q K^T / sqrt(d)) V per head, heads concatenated then projected;
* position-wise non-linearity: linear -> ReLU|GELU -> linear;
* masked decoding: a query never sees keys after it (score -inf -> weight 0).

Every sub-layer is wrapped as residual + LayerNorm: post-LN ``norm(x + f(x))`` as in the paper, or pre-LN
``x + f(norm(x))`` (Xiong et al. 2020), which trains without warm-up and needs a final norm after the stack.

Attention runs on ``F.scaled_dot_product_attention`` (fused kernels); ``attention_reference`` is its readable
twin, compared in the tests.  Position-wise work (projections, FFN, LayerNorm, dropout) can skip padding: with a
``Packing`` the layers carry only the N real tokens as (N, D) rows and attention alone sees the (B, T) layout
(see docs/PERFORMANCE.md; the padded path is its twin in the tests).

Masks are boolean with True = "may attend" (for padding: True = real token), shaped to broadcast against the
scores (B, H, Tq, Tk): a source padding mask (B, S) becomes (B, 1, 1, S).

Shapes: B batch, T query length, S key length, D model dim, H heads, Dh = D / H head dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.errors import ConfigError
from seqlab.contracts import PAD_ID
from seqlab.nn.dropout import Dropout
from seqlab.nn.kv_cache import KVCache
from seqlab.nn.packed_linear import project

KeyValue = tuple[torch.Tensor, torch.Tensor]  # keys (B, H, S, Dh), values (B, H, S, Dh)


# ------------------------------------------------------------------------------------------------ positions
def sinusoidal_positions(length: int, dim: int, offset: int = 0) -> torch.Tensor:
    """p_t[2i] = sin(t / 10000^(2i/D)), p_t[2i+1] = cos(t / 10000^(2i/D)) for t = offset .. offset+length-1.

    -> (length, dim).  Early dimensions turn fast, late ones slowly (seed: "频域编码"), so p_{t+k} is a fixed
    rotation of p_t and relative offsets are easy to read off.
    """
    positions = torch.arange(offset, offset + length, dtype=torch.float32)[:, None]  # (L, 1)
    inverse_frequencies = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = positions * inverse_frequencies  # (L, D/2)
    table = torch.empty(length, dim)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table


class TokenEmbedding(nn.Module):
    """ids (B, T) -> dropout(E[ids] * sqrt(D) + p_{offset..offset+T-1}) (B, T, D).

    ``positions``: "sinusoidal" (no parameters, any length), "learned" (a (max_positions, D) table; longer inputs
    are a ConfigError) or "none" (the encoder is then permutation-equivariant: a bag of words).
    """

    def __init__(self, vocab_size: int, d_model: int, positions: str = "sinusoidal", max_positions: int = 1024,
                 dropout: float = 0.0):
        super().__init__()
        self.d_model, self.positions, self.max_positions = d_model, positions, max_positions
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
        self.scale = math.sqrt(d_model)
        self.dropout = Dropout(dropout)
        self.learned = nn.Embedding(max_positions, d_model) if positions == "learned" else None
        # Not persistent: a fixed function of the config, so checkpoints need not carry it.
        table = sinusoidal_positions(max_positions, d_model) if positions == "sinusoidal" else torch.empty(0)
        self.register_buffer("sinusoid_table", table, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # N(0, D^-1/2): after the sqrt(D) scale the embeddings have unit variance, like the position codes.
        nn.init.normal_(self.embedding.weight, 0.0, self.d_model ** -0.5)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()
        if self.learned is not None:
            nn.init.normal_(self.learned.weight, 0.0, self.d_model ** -0.5)

    def position_codes(self, length: int, offset: int = 0) -> torch.Tensor | None:
        """-> (length, D) codes of positions offset .. offset+length-1, or None for positions="none"."""
        end = offset + length
        if self.positions == "learned":
            if end > self.max_positions:
                raise ConfigError(f"sequence length {end} exceeds max_positions={self.max_positions} "
                                  "of the learned position embedding")
            return self.learned.weight[offset:end]
        if self.positions == "sinusoidal":
            if end <= self.sinusoid_table.size(0):
                return self.sinusoid_table[offset:end]
            return sinusoidal_positions(length, self.d_model, offset).to(self.sinusoid_table.device)
        return None

    def forward(self, ids: torch.Tensor, offset: int = 0, packing: "Packing | None" = None) -> torch.Tensor:
        """ids (B, T) -> (B, T, D), or (N, D) real rows only when ``packing`` is given."""
        embedded = self.embedding(ids) * self.scale  # (B, T, D)
        codes = self.position_codes(ids.size(1), offset)
        if codes is not None:
            embedded = embedded + codes.to(embedded.dtype)  # (T, D) broadcast over B
        if packing is not None:
            embedded = packing.pack(embedded)  # (N, D): dropout draws masks for real tokens only
        return self.dropout(embedded)


# ------------------------------------------------------------------------------------------------ padding
class Packing:
    """Where the real tokens of a right-padded (B, T) batch are, so position-wise layers can skip padding.

    Linear layers, the FFN, LayerNorm and dropout treat every position alone, so they may run on the N real
    tokens as (N, D) rows instead of B*T rows (the "remove padding" of EffectiveTransformer / FasterTransformer).
    Only attention mixes positions; it gets the (B, T) layout back from ``pad`` for the length of the SDPA call.
    With 20-40 % padding (typical of target sides even in length-bucketed batches) that is 20-40 % fewer FLOPs.

        mask (B=2, T=3)   [[1 1 1],        index = [0 1 2 3]   (flat positions b*T + t)
                           [1 0 0]]        x (B, T, D) --pack--> (N=4, D) --pad--> (B, T, D), zeros at padding
    """

    def __init__(self, mask: torch.Tensor):
        self.shape = mask.shape  # (B, T)
        self.index = mask.reshape(-1).nonzero().squeeze(1)  # (N,); nonzero syncs with the device once per batch

    @staticmethod
    def of(mask: torch.Tensor, enabled: bool = True) -> "Packing | None":
        """A Packing for ``mask`` (B, T), or None when disabled or when nothing is padded (no copies needed)."""
        if not enabled or bool(mask.all()):
            return None
        return Packing(mask)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (N, C), the real rows in row-major order (= ``x[mask]``)."""
        return x.reshape(-1, x.size(-1)).index_select(0, self.index)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C) -> (B, T, C) with zeros at padded positions.  Backward is a gather: no scatter-add."""
        # In place into fresh zeros: the out-of-place index_copy would first clone the zeros (a full extra pass).
        padded = x.new_zeros(self.shape.numel(), x.size(-1)).index_copy_(0, self.index, x)  # (B*T, C)
        return padded.view(*self.shape, x.size(-1))


# ------------------------------------------------------------------------------------------------ attention
def padding_to_attention_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, S) bool, True = real token -> (B, 1, 1, S): broadcasts over heads and queries, built once per batch."""
    return mask[:, None, None, :]


def causal_mask(length: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) bool, True on and below the diagonal: query t may see keys 0..t (the seed's "masked attention")."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                        is_causal: bool = False, dropout: float = 0.0) -> torch.Tensor:
    """The readable twin of SDPA: softmax(q k^T / sqrt(Dh)) v, masked scores set to -inf before the softmax,
    ``dropout`` (training only) on the attention weights.

    q (B, H, T, Dh), k and v (B, H, S, Dh), mask broadcastable to (B, H, T, S), True = may attend -> (B, H, T, Dh).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, T, S)
    if is_causal:
        scores = scores.masked_fill(~causal_mask(q.size(-2), q.device), float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if dropout:
        weights = F.dropout(weights, dropout)
    return weights @ v


# Up to this many queries per row, inference takes the explicit path (a decoding step has 1, or K beams that
# share one sentence's memory in cross-attention).
FEW_QUERIES = 8


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, is_causal: bool,
           dropout: float) -> torch.Tensor:
    """SDPA, except where the explicit ``attention_reference`` is faster (docs/PERFORMANCE.md):

    * a few queries per row at inference (a decoding step): the fused CPU kernel's set-up costs twice the three
      small ops;
    * bfloat16 on the CPU (``train.precision: bf16``, bf16 decoding): the CPU flash kernel runs 5-7x slower in
      bf16 than in fp32, its backward above all, and the explicit bf16 path is faster than either.

    Shapes as SDPA's."""
    if q.dtype == torch.bfloat16 and q.device.type == "cpu":
        return attention_reference(q, k, v, mask, is_causal, dropout)
    if q.size(-2) <= FEW_QUERIES and dropout == 0.0 and not is_causal and not torch.is_grad_enabled():
        return attention_reference(q, k, v, mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=dropout)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, D) -> (B, H, T, Dh).  A strided view: SDPA accepts it without a copy."""
    batch, length, dim = x.shape
    return x.view(batch, length, num_heads, dim // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, Dh) -> (B, T, D): the heads concatenated (the one copy of the attention block)."""
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused Q|K|V projection (one matmul instead of three).

    ``forward(x, mask, is_causal, past)`` returns the output and the keys/values it attended to, so incremental
    decoding appends this step's (k, v) to ``past`` and hands the result back as the next cache.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, is_causal: bool = False,
                past: KVCache | None = None, packing: Packing | None = None,
                ) -> tuple[torch.Tensor, KeyValue | KVCache]:
        """x (B, T, D), or (N, D) real rows with ``packing``; mask broadcastable to (B, H, T, S); past: the
        ``KVCache`` of earlier positions.  -> output shaped like x, and the keys/values attended to: (k, v)
        without ``past``, else ``past`` with this call's positions appended."""
        qkv = project(self.qkv, x)  # (B, T, 3D) or (N, 3D); project: a packed weight when decoding
        if packing is not None:
            qkv = packing.pad(qkv)  # (B, T, 3D); padded keys are zeros, hidden by the padding/causal mask
        q, k, v = (split_heads(part, self.num_heads) for part in qkv.chunk(3, dim=-1))  # 3 x (B, H, T, Dh)
        cache: KeyValue | KVCache = (k, v)
        if past is not None:
            cache = past.append(k, v)
            k, v = cache.keys, cache.values  # (B, H, S=t+T, Dh)
        attended = merge_heads(attend(q, k, v, mask, is_causal, self.dropout if self.training else 0.0))
        if packing is not None:
            attended = packing.pack(attended)  # (N, D)
        return self.out(attended), cache


class CrossAttention(nn.Module):
    """Multi-head attention of decoder queries over encoder memory (seed: "交叉注意").

    Keys/values depend only on the memory, so ``project_memory`` runs once per sentence and decoding steps reuse
    them; K|V is one fused projection.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def project_memory(self, memory: torch.Tensor) -> KeyValue:
        """memory (B, S, D) -> keys, values (B, H, S, Dh), contiguous.

        Contiguous because decoding reads them at every step: as strided views of the (B, S, 2D) projection,
        each step's ``q @ k^T`` and ``weights @ v`` first copied them whole (11 % of greedy decoding time)."""
        k, v = self.key_value(memory).chunk(2, dim=-1)
        return split_heads(k, self.num_heads).contiguous(), split_heads(v, self.num_heads).contiguous()

    def forward(self, x: torch.Tensor, memory_kv: KeyValue, memory_mask: torch.Tensor | None,
                packing: Packing | None = None, group: int = 1) -> torch.Tensor:
        """x (B, T, D) or (N, D) with ``packing``, memory_kv from ``project_memory``, memory_mask (B, 1, 1, S)
        -> output shaped like x.

        ``group`` = G > 1: x has G rows per memory row (beam search's K beams of one sentence, rows b*G .. b*G+G-1
        read memory row b), so memory_kv and memory_mask have B/G rows; the G rows' queries attend as one block.
        """
        query = self.query(x)
        if packing is not None:
            query = packing.pad(query)  # (B, T, D)
        q = split_heads(query, self.num_heads) if group == 1 else self._group_queries(query, group)
        attended = attend(q, *memory_kv, memory_mask, False, self.dropout if self.training else 0.0)
        attended = merge_heads(attended) if group == 1 else self._ungroup(attended, group)  # (B, T, D)
        if packing is not None:
            attended = packing.pack(attended)  # (N, D)
        return self.out(attended)

    def _group_queries(self, query: torch.Tensor, group: int) -> torch.Tensor:
        """(B, T, D) -> (B/G, H, G*T, Dh): the G rows of one memory row become G*T queries of one attention."""
        rows, length, dim = query.shape
        q = query.view(rows // group, group, length, self.num_heads, dim // self.num_heads)  # (B/G, G, T, H, Dh)
        return q.permute(0, 3, 1, 2, 4).reshape(rows // group, self.num_heads, group * length, -1)

    @staticmethod
    def _ungroup(attended: torch.Tensor, group: int) -> torch.Tensor:
        """(B/G, H, G*T, Dh) -> (B, T, D), the inverse layout of ``_group_queries`` with heads merged."""
        memory_rows, heads, queries, head_dim = attended.shape
        length = queries // group
        out = attended.view(memory_rows, heads, group, length, head_dim).permute(0, 2, 3, 1, 4)  # (B/G,G,T,H,Dh)
        return out.reshape(memory_rows * group, length, heads * head_dim)


# ------------------------------------------------------------------------------------------------ layers
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


class FeedForward(nn.Module):
    """The position-wise non-linearity: linear (D -> F) -> ReLU|GELU -> linear (F -> D).

    No dropout inside (as the paper: dropout only on sub-layer outputs and embeddings); a dropout mask over the
    (B, T, F) activations costs ~7 % of a CPU training step at F = 4D.
    """

    def __init__(self, d_model: int, ffn_size: int, activation: str = "relu"):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, ffn_size), ACTIVATIONS[activation](), nn.Linear(ffn_size, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expand, activation, contract = self.net
        return project(contract, activation(project(expand, x)))  # self.net(x); project: packed when decoding


class Residual(nn.Module):
    """"Add & Norm" around one sub-layer: post-LN norm(x + drop(f(x))) or pre-LN x + drop(f(norm(x)))."""

    def __init__(self, d_model: int, dropout: float, pre_norm: bool):
        super().__init__()
        self.norm, self.dropout, self.pre_norm = nn.LayerNorm(d_model), Dropout(dropout), pre_norm

    def forward(self, x: torch.Tensor, sublayer_output) -> torch.Tensor:
        """``sublayer_output`` is a function of the (maybe normalised) input, so pre/post-LN share one path."""
        if self.pre_norm:
            return x + self.dropout(sublayer_output(self.norm(x)))
        return self.norm(x + self.dropout(sublayer_output(x)))


class EncoderLayer(nn.Module):
    """Self-attention (padding-masked) then the feed-forward net, each inside Add & Norm."""

    def __init__(self, d_model: int, num_heads: int, ffn_size: int, dropout: float, attention_dropout: float,
                 activation: str, pre_norm: bool):
        super().__init__()
        self.attention = SelfAttention(d_model, num_heads, attention_dropout)
        self.feed_forward = FeedForward(d_model, ffn_size, activation)
        self.attention_block = Residual(d_model, dropout, pre_norm)
        self.feed_forward_block = Residual(d_model, dropout, pre_norm)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, packing: Packing | None = None) -> torch.Tensor:
        """x (B, S, D) or (N, D) with ``packing``, mask (B, 1, 1, S) -> shaped like x."""
        x = self.attention_block(x, lambda h: self.attention(h, mask, packing=packing)[0])
        return self.feed_forward_block(x, self.feed_forward)


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over the memory (seq2seq only), feed-forward; each in Add & Norm.

    ``forward`` returns the self-attention keys/values too: the new KV cache when decoding step by step.
    """

    def __init__(self, d_model: int, num_heads: int, ffn_size: int, dropout: float, attention_dropout: float,
                 activation: str, pre_norm: bool, cross_attention: bool = True):
        super().__init__()
        self.self_attention = SelfAttention(d_model, num_heads, attention_dropout)
        self.self_attention_block = Residual(d_model, dropout, pre_norm)
        self.cross_attention = CrossAttention(d_model, num_heads, attention_dropout) if cross_attention else None
        self.cross_attention_block = Residual(d_model, dropout, pre_norm) if cross_attention else None
        self.feed_forward = FeedForward(d_model, ffn_size, activation)
        self.feed_forward_block = Residual(d_model, dropout, pre_norm)

    def forward(self, x: torch.Tensor, self_mask: torch.Tensor | None = None, is_causal: bool = False,
                past: KVCache | None = None, memory_kv: KeyValue | None = None,
                memory_mask: torch.Tensor | None = None, packing: Packing | None = None, memory_group: int = 1,
                ) -> tuple[torch.Tensor, KeyValue | KVCache]:
        """x (B, T, D) or (N, D) with ``packing`` -> shaped like x, and this layer's self-attention keys/values:
        (k, v), or ``past`` with this call's positions appended.  ``memory_group``: rows of x per memory row
        (``CrossAttention``'s ``group``)."""
        cache: list[KeyValue | KVCache] = []

        def attend_self(h: torch.Tensor) -> torch.Tensor:
            output, kv = self.self_attention(h, self_mask, is_causal, past, packing)
            cache.append(kv)
            return output

        x = self.self_attention_block(x, attend_self)
        if self.cross_attention is not None:
            x = self.cross_attention_block(
                x, lambda h: self.cross_attention(h, memory_kv, memory_mask, packing, memory_group))
        return self.feed_forward_block(x, self.feed_forward), cache[0]


def init_transformer_weights(module: nn.Module) -> None:
    """Xavier-uniform matrices and zero biases (paper / fairseq).  Fused projections are initialised block by
    block, so Q, K and V each get the variance a separate D x D matrix would have."""
    num_blocks = {}
    for sub in module.modules():
        if isinstance(sub, SelfAttention):
            num_blocks[id(sub.qkv)] = 3
        elif isinstance(sub, CrossAttention):
            num_blocks[id(sub.key_value)] = 2
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            for block in sub.weight.data.chunk(num_blocks.get(id(sub), 1), dim=0):  # views: init in place
                nn.init.xavier_uniform_(block)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
