"""Transformer tests: fast paths against readable twins (SDPA vs explicit attention, KV cache vs recomputation),
masking, positions, padding invariance, weight tying, and learning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqlab.errors import ConfigError
from seqlab.models.transformer import TransformerConfig, TransformerLM, TransformerSeq2Seq
from seqlab.nn.transformer import (Packing, SelfAttention, attention_reference, causal_mask,
                                   padding_to_attention_mask, sinusoidal_positions)

BOS, EOS = 1, 2


def tiny_config(**overrides) -> TransformerConfig:
    options = dict(d_model=32, num_heads=4, ffn_size=64, num_encoder_layers=2, num_decoder_layers=2, dropout=0.0)
    return TransformerConfig(**{**options, **overrides})


def tiny_model(seed: int = 0, src_vocab: int = 20, tgt_vocab: int = 24, **overrides) -> TransformerSeq2Seq:
    torch.manual_seed(seed)
    return TransformerSeq2Seq(tiny_config(**overrides), src_vocab, tgt_vocab).eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """src (3, 7) with rows of length 7, 4, 2; tgt_in (3, 5) starting with <bos>, real ids only."""
    generator = torch.Generator().manual_seed(1)
    src = torch.randint(3, 20, (3, 7), generator=generator)
    lengths = torch.tensor([7, 4, 2])
    src_mask = torch.arange(7)[None, :] < lengths[:, None]
    src = src.masked_fill(~src_mask, 0)
    tgt = torch.randint(3, 24, (3, 5), generator=generator)
    tgt[:, 0] = BOS
    return src, src_mask, tgt


# ------------------------------------------------------------------------------------------------ attention
@pytest.mark.parametrize("masking", ["none", "padding", "causal", "padding+causal"])
def test_sdpa_matches_explicit_attention(masking):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))  # (B, H, T, Dh), T = S = 5
    lengths = torch.tensor([5, 3])
    padding = padding_to_attention_mask(torch.arange(5)[None, :] < lengths[:, None])  # (B, 1, 1, S)
    mask = None
    if "padding" in masking:
        mask = padding
    if "causal" in masking:
        mask = causal_mask(5) if mask is None else mask & causal_mask(5)
    fast = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(fast, attention_reference(q, k, v, mask), rtol=1e-5, atol=1e-6)
    if masking == "causal":  # the is_causal flag of both agrees with the explicit mask
        torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                   attention_reference(q, k, v, is_causal=True), rtol=1e-5, atol=1e-6)


def test_single_query_path_equals_sdpa():
    """``attend`` takes the explicit twin for one query per row (decoding steps); both must agree."""
    from seqlab.nn.transformer import attend

    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 1, 8), torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 8)
    mask = padding_to_attention_mask(torch.arange(6)[None, :] < torch.tensor([6, 2, 4])[:, None])
    for m in (None, mask):
        torch.testing.assert_close(attend(q, k, v, m, False, 0.0), F.scaled_dot_product_attention(q, k, v, m),
                                   rtol=1e-5, atol=1e-6)


def test_masked_keys_get_no_weight():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 1, 2, 4) for _ in range(3))
    mask = torch.tensor([True, False])[None, None, None, :]
    # With key 1 masked, every query returns exactly v_0.
    torch.testing.assert_close(attention_reference(q, k, v, mask), v[:, :, :1].expand(1, 1, 2, 4))


def test_fused_self_attention_equals_per_head_loop():
    """The fused Q|K|V projection and head split equal the textbook per-head computation."""
    torch.manual_seed(0)
    d_model, heads = 12, 3
    attention = SelfAttention(d_model, heads).eval()
    x = torch.randn(2, 4, d_model)
    w_q, w_k, w_v = attention.qkv.weight.chunk(3, dim=0)
    b_q, b_k, b_v = attention.qkv.bias.chunk(3)
    q, k, v = x @ w_q.T + b_q, x @ w_k.T + b_k, x @ w_v.T + b_v  # (B, T, D)
    head_dim = d_model // heads
    outputs = []
    for h in range(heads):
        part = slice(h * head_dim, (h + 1) * head_dim)
        weights = torch.softmax(q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(head_dim), dim=-1)
        outputs.append(weights @ v[..., part])
    expected = attention.out(torch.cat(outputs, dim=-1))
    torch.testing.assert_close(attention(x)[0], expected, rtol=1e-5, atol=1e-6)


def test_sinusoidal_positions_follow_the_formula():
    table = sinusoidal_positions(50, 8)
    t = 7
    for i in range(4):
        angle = t / 10000 ** (2 * i / 8)
        assert table[t, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
        assert table[t, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    torch.testing.assert_close(sinusoidal_positions(5, 8, offset=45), table[45:50])


# ------------------------------------------------------------------------------------------------ masking / positions
def test_decoder_is_causal():
    model = tiny_model()
    src, src_mask, tgt = padded_batch()
    logits = model(src, src_mask, tgt)
    changed = tgt.clone()
    changed[:, 3:] = (changed[:, 3:] + 5) % 20 + 3  # new future tokens
    new_logits = model(src, src_mask, changed)
    torch.testing.assert_close(new_logits[:, :3], logits[:, :3])
    assert not torch.allclose(new_logits[:, 3:], logits[:, 3:])  # the change is visible where it should be


@pytest.mark.parametrize("positions, equivariant", [("none", True), ("sinusoidal", False), ("learned", False)])
def test_encoder_permutation_equivariance_only_without_positions(positions, equivariant):
    model = tiny_model(positions=positions)
    src = torch.randint(3, 20, (2, 6), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(src, dtype=torch.bool)
    permutation = torch.tensor([4, 0, 5, 2, 1, 3])
    memory = model.encode(src, mask)
    permuted_memory = model.encode(src[:, permutation], mask)
    assert torch.allclose(permuted_memory, memory[:, permutation], atol=1e-5) == equivariant


def test_learned_positions_have_a_clear_length_limit():
    model = tiny_model(positions="learned", max_positions=512)
    long_src = torch.ones(1, 600, dtype=torch.long)
    with pytest.raises(ConfigError, match="sequence length 600 exceeds max_positions=512 of the learned"):
        model.encode(long_src, long_src.bool())
    model.encode(long_src[:, :512], long_src[:, :512].bool())  # the limit itself is fine


def test_learned_position_limit_during_decoding():
    model = tiny_model(positions="learned", max_positions=3)
    src, src_mask, _ = padded_batch()
    state = model.init_state(model.encode(src[:, :3], src_mask[:, :3]), src_mask[:, :3])
    tokens = torch.full((3,), BOS)
    for _ in range(3):
        _, state = model.step(tokens, state)
    with pytest.raises(ConfigError, match="sequence length 4 exceeds max_positions=3"):
        model.step(tokens, state)


def test_padding_invariance():
    """A sentence alone and the same sentence padded inside a batch give the same logits at real positions."""
    model = tiny_model()
    src, src_mask, tgt = padded_batch()
    tgt_lengths = [5, 3, 4]
    tgt_padded = tgt.clone()
    for row, length in enumerate(tgt_lengths):
        tgt_padded[row, length:] = 0
    batch_logits = model(src, src_mask, tgt_padded)
    for row, length in enumerate(tgt_lengths):
        src_length = int(src_mask[row].sum())
        alone = model(src[row:row + 1, :src_length], src_mask[row:row + 1, :src_length], tgt[row:row + 1, :length])
        torch.testing.assert_close(batch_logits[row, :length], alone[0], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------ remove padding
def test_packing_round_trip_and_layout():
    mask = torch.tensor([[True, True, True], [True, False, False]])
    x = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    packing = Packing(mask)
    assert packing.index.tolist() == [0, 1, 2, 3]  # flat b*T + t of the real tokens
    torch.testing.assert_close(packing.pack(x), x[mask])
    padded = packing.pad(packing.pack(x))
    torch.testing.assert_close(padded[mask], x[mask])
    assert padded[~mask].abs().sum().item() == 0.0
    assert Packing.of(torch.ones(2, 3, dtype=torch.bool)) is None  # nothing to skip
    assert Packing.of(mask, enabled=False) is None


def twin_models(**overrides) -> tuple[TransformerSeq2Seq, TransformerSeq2Seq]:
    """The same weights with and without ``remove_padding``."""
    packed = tiny_model(remove_padding=True, **overrides)
    padded = tiny_model(remove_padding=False, **overrides)
    padded.load_state_dict(packed.state_dict())
    return packed, padded


def padded_target_batch():
    src, src_mask, tgt = padded_batch()
    tgt_mask = torch.arange(5)[None, :] < torch.tensor([5, 2, 4])[:, None]
    return src, src_mask, tgt.masked_fill(~tgt_mask, 0), tgt_mask


@pytest.mark.parametrize("pre_norm", [False, True])
def test_removing_padding_changes_nothing_at_real_positions(pre_norm):
    """The fast path (position-wise layers on real tokens only) against its twin (everything padded)."""
    packed, padded = twin_models(pre_norm=pre_norm)
    src, src_mask, tgt, tgt_mask = padded_target_batch()
    full = padded(src, src_mask, tgt)  # (B, T, V)
    fast = packed(src, src_mask, tgt)
    torch.testing.assert_close(fast[tgt_mask], full[tgt_mask], rtol=1e-5, atol=1e-5)
    assert fast[~tgt_mask].abs().sum().item() == 0.0  # padded positions get zero logits
    torch.testing.assert_close(packed.encode(src, src_mask)[src_mask], padded.encode(src, src_mask)[src_mask],
                               rtol=1e-5, atol=1e-5)
    for model in (packed, padded):  # tgt_mask= returns the real rows, in row-major order, on both paths
        torch.testing.assert_close(model(src, src_mask, tgt, tgt_mask=tgt_mask), full[tgt_mask], rtol=1e-5,
                                   atol=1e-5)


def test_removing_padding_gives_the_same_gradients():
    packed, padded = twin_models()
    src, src_mask, tgt, tgt_mask = padded_target_batch()
    targets = torch.randint(3, 24, tgt.shape, generator=torch.Generator().manual_seed(9))[tgt_mask]
    for model, logits_of in ((packed, lambda m: m(src, src_mask, tgt, tgt_mask=tgt_mask)),
                             (padded, lambda m: m(src, src_mask, tgt)[tgt_mask])):
        model.train()  # dropout is 0 in tiny_config: train mode changes nothing else
        F.cross_entropy(logits_of(model), targets, reduction="sum").backward()
    for (name, fast), (_, slow) in zip(packed.named_parameters(), padded.named_parameters(), strict=True):
        torch.testing.assert_close(fast.grad, slow.grad, rtol=1e-4, atol=1e-5, msg=name)


# ------------------------------------------------------------------------------------------------ KV cache
def greedy_with_cache(model, src, src_mask, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    state = model.init_state(model.encode(src, src_mask), src_mask)
    tokens, outputs, scores = torch.full((src.size(0),), BOS), [], []
    for _ in range(max_len):
        log_probs, state = model.step(tokens, state)
        score, tokens = log_probs.max(dim=-1)
        outputs.append(tokens)
        scores.append(score)
    return torch.stack(outputs, 1), torch.stack(scores, 1)


def greedy_recomputing(model, src, src_mask, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    prefix, scores = torch.full((src.size(0), 1), BOS), []
    for _ in range(max_len):
        log_probs = torch.log_softmax(model(src, src_mask, prefix)[:, -1], dim=-1)  # the whole prefix again
        score, tokens = log_probs.max(dim=-1)
        prefix = torch.cat([prefix, tokens[:, None]], dim=1)
        scores.append(score)
    return prefix[:, 1:], torch.stack(scores, 1)


@pytest.mark.parametrize("pre_norm", [False, True])
def test_cached_greedy_equals_recomputation(pre_norm):
    model = tiny_model(pre_norm=pre_norm)
    src, src_mask, _ = padded_batch()
    cached_tokens, cached_scores = greedy_with_cache(model, src, src_mask, 8)
    full_tokens, full_scores = greedy_recomputing(model, src, src_mask, 8)
    assert torch.equal(cached_tokens, full_tokens)
    torch.testing.assert_close(cached_scores, full_scores, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length", [6, 40])
def test_lm_cached_steps_equal_forward(length):
    """Every step equals the forward; at 40 steps the time-major KV buffers (32 positions at first) have grown."""
    torch.manual_seed(0)
    lm = TransformerLM(tiny_config(), 24).eval()
    ids = torch.randint(3, 24, (2, length), generator=torch.Generator().manual_seed(4))
    full = torch.log_softmax(lm(ids), dim=-1)
    state = lm.init_state(2)
    with torch.no_grad():
        for t in range(length):
            log_probs, state = lm.step(ids[:, t], state)
            torch.testing.assert_close(log_probs, full[:, t], rtol=1e-4, atol=1e-5)
    assert state.self_cache[0].key_buffer.size(0) >= length and state.self_cache[0].length == length


def test_kv_cache_states_are_values():
    """Appending writes into the shared buffer in place, yet every state stays valid: stepping one state twice
    (two continuations) or stepping an older state gives what a fresh run of that prefix gives."""
    torch.manual_seed(0)
    lm = TransformerLM(tiny_config(), 24).eval()
    ids = torch.randint(3, 24, (2, 5), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        state = lm.init_state(2)
        for t in range(3):
            _, state = lm.step(ids[:, t], state)
        _, first = lm.step(ids[:, 3], state)  # writes position 3 in place
        _, second = lm.step(ids[:, 4], state)  # position 3 again, another token: must not touch ``first``
        after_first, _ = lm.step(ids[:, 4], first)
        after_second, _ = lm.step(ids[:, 3], second)
    fresh_first = torch.log_softmax(lm(ids[:, :5]), dim=-1)[:, 4]
    fresh_second = torch.log_softmax(lm(torch.cat([ids[:, :3], ids[:, 4:5], ids[:, 3:4]], 1)), dim=-1)[:, 4]
    torch.testing.assert_close(after_first, fresh_first, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(after_second, fresh_second, rtol=1e-4, atol=1e-5)


def test_reorder_recycles_buffers_only_once_no_cache_refers_to_them():
    """A reorder copies into buffers from the state's pool: those of a dead reordered cache are reused (no fresh
    pages), those of a live one never are, so every live cache keeps its keys and values."""
    from seqlab.nn.kv_cache import BufferPool, KVCache

    torch.manual_seed(0)
    pool = BufferPool()
    cache = KVCache.empty(4, 2, 3, torch.zeros(1), capacity=8, pool=pool)
    with torch.no_grad():
        for _ in range(5):
            cache = cache.append(torch.randn(4, 2, 1, 3), torch.randn(4, 2, 1, 3))
        index = torch.tensor([3, 3, 0, 1])
        first = cache.reorder(index)
        kept = first.keys.clone(), first.values.clone()
        second = first.reorder(index)  # ``first`` alive: fresh buffers
        assert second.key_buffer.data_ptr() != first.key_buffer.data_ptr() and not pool.free
        pointer = second.key_buffer.data_ptr()
        third = first.reorder(torch.tensor([0, 1, 2, 3]))
        del second  # its buffers go back to the pool ...
        assert len(pool.free) == 2
        fourth = third.reorder(index)  # ... and the next reorder of that shape copies into them
        assert pointer in (fourth.key_buffer.data_ptr(), fourth.value_buffer.data_ptr()) and not pool.free
    torch.testing.assert_close(first.keys, kept[0], rtol=0, atol=0)
    torch.testing.assert_close(first.values, kept[1], rtol=0, atol=0)
    torch.testing.assert_close(fourth.keys, cache.keys[[3, 3, 0, 1]][[3, 3, 0, 1]], rtol=0, atol=0)
    torch.testing.assert_close(third.values, first.values, rtol=0, atol=0)


def test_cached_steps_with_autograd_recording():
    """Steps under autograd (scheduled sampling trains through them) take the copying path: the gradients of
    the stepped log-probs equal those of the forward pass."""
    model = tiny_model()
    src, src_mask, tgt = padded_batch()
    state = model.init_state(model.encode(src, src_mask), src_mask)
    stepped = []
    for t in range(tgt.size(1)):
        log_probs, state = model.step(tgt[:, t], state)
        stepped.append(log_probs)
    model.zero_grad()
    torch.stack(stepped, 1).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.log_softmax(model(src, src_mask, tgt), dim=-1).sum().backward()
    for stepped_grad, full_grad in zip(grads, (p.grad for p in model.parameters())):
        torch.testing.assert_close(stepped_grad, full_grad, rtol=1e-4, atol=1e-5)


def test_lm_right_padding_mask_matches_unpadded_rows():
    torch.manual_seed(0)
    lm = TransformerLM(tiny_config(), 24).eval()
    ids = torch.randint(3, 24, (2, 6), generator=torch.Generator().manual_seed(5))
    ids[1, 4:] = 0
    logits = lm(ids, ids != 0)
    torch.testing.assert_close(logits[1, :4], lm(ids[1:, :4])[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits[0], lm(ids[:1])[0], rtol=1e-4, atol=1e-5)


def test_reorder_picks_and_expands_rows():
    """step(tokens[i], state.reorder(i)) == step(tokens, state)[i], also when reordering expands B -> B*K."""
    model = tiny_model()
    src, src_mask, tgt = padded_batch()
    state = model.init_state(model.encode(src, src_mask), src_mask)
    for t in range(3):  # a non-empty cache
        _, state = model.step(tgt[:, t], state)
    tokens = tgt[:, 3]
    reference, _ = model.step(tokens, state)
    for index in (torch.tensor([2, 0, 1]), torch.tensor([1, 1, 0, 2, 2, 2]), torch.arange(3).repeat_interleave(2)):
        reordered = state.reorder(index)
        assert reordered.position == state.position
        assert all(k.size(0) == len(index) for k, _ in reordered.self_cache + reordered.memory_kv)
        log_probs, _ = model.step(tokens[index], reordered)
        torch.testing.assert_close(log_probs, reference[index], rtol=1e-5, atol=1e-6)


def test_grouped_memory_steps_like_the_copying_reorder():
    """Beam expansion that shares each sentence's memory among its K rows (``expand_rows``) steps exactly like
    ``reorder``, which copies it per row: through aligned pruning, a sentence leaving the batch, and a
    non-aligned index (which spreads the memory back to one row per decoder row)."""
    model = tiny_model()
    src, src_mask, tgt = padded_batch()  # B = 3
    state = model.init_state(model.encode(src, src_mask), src_mask)
    k = 2
    expand = torch.arange(3).repeat_interleave(k)
    grouped, plain = state.expand_rows(expand, k), state.reorder(expand)
    assert grouped.rows_per_memory == k and grouped.memory_kv[0][0].size(0) == 3
    tokens = tgt[:, 0].repeat_interleave(k)
    steps = ((torch.tensor([1, 0, 2, 2, 5, 4]), k, 3),  # beams stay with their sentence: memory untouched
             (torch.tensor([4, 5, 0, 1]), k, 2),  # sentence 1 leaves, the others swap: memory rows picked
             (torch.tensor([0, 3, 1]), 1, 3))  # not in blocks of K: one memory row per decoder row
    for index, group, memory_rows in steps:
        grouped_log_probs, grouped = model.step(tokens, grouped)
        plain_log_probs, plain = model.step(tokens, plain)
        torch.testing.assert_close(grouped_log_probs, plain_log_probs, rtol=1e-5, atol=1e-6)
        grouped, plain = grouped.reorder(index), plain.reorder(index)
        assert grouped.rows_per_memory == group and grouped.memory_mask.size(0) == memory_rows
        tokens = grouped_log_probs.argmax(-1)[index]
    torch.testing.assert_close(model.step(tokens, grouped)[0], model.step(tokens, plain)[0], rtol=1e-5, atol=1e-6)


def test_beam_search_with_cache_equals_beam_recomputing():
    from seqlab.decoding import beam

    class Recomputing(torch.nn.Module):
        """The same model, but every step re-runs the whole prefix (the state is just the prefix)."""

        def __init__(self, model, memory_src, memory_mask):
            super().__init__()
            self.model, self.src, self.mask = model, memory_src, memory_mask

        def step(self, tokens, state):
            src_rows, prefix = state
            prefix = torch.cat([prefix, tokens[:, None]], dim=1)
            logits = self.model(self.src[src_rows], self.mask[src_rows], prefix)[:, -1]
            return torch.log_softmax(logits, dim=-1), RecomputeState(src_rows, prefix)

    class RecomputeState(tuple):
        def __new__(cls, rows, prefix):
            return super().__new__(cls, (rows, prefix))

        def reorder(self, index):
            return RecomputeState(self[0][index], self[1][index])

    from seqlab.decoding.config import DecodeConfig

    model = tiny_model()
    src, src_mask, _ = padded_batch()
    config = DecodeConfig(strategy="beam", beam_size=3, nbest=3)
    cached = beam.beam_search(model, model.init_state(model.encode(src, src_mask), src_mask), src.size(0),
                              BOS, EOS, config, 6)
    empty_prefix = torch.empty(src.size(0), 0, dtype=torch.long)
    slow = beam.beam_search(Recomputing(model, src, src_mask),
                            RecomputeState(torch.arange(src.size(0)), empty_prefix), src.size(0), BOS, EOS, config, 6)
    for fast_nbest, slow_nbest in zip(cached, slow, strict=True):
        assert [h.tokens for h in fast_nbest] == [h.tokens for h in slow_nbest]
        assert [h.log_prob for h in fast_nbest] == pytest.approx([h.log_prob for h in slow_nbest], abs=1e-4)


# ------------------------------------------------------------------------------------------------ weights
def test_tied_and_shared_weights_are_one_tensor():
    model = tiny_model(src_vocab=24, tgt_vocab=24, share_embeddings=True, tie_output=True)
    source = model.src_embedding.embedding.weight
    assert model.decoder.embedding.embedding.weight is source
    assert model.decoder.output.weight is source
    distinct = {p.data_ptr() for p in model.parameters()}
    assert len(distinct) == len(list(model.parameters()))  # parameters() lists the shared tensor once
    untied = tiny_model(tie_output=False)
    assert untied.decoder.output.weight is not untied.decoder.embedding.embedding.weight
    assert untied.src_embedding.embedding.weight is not untied.decoder.embedding.embedding.weight


def test_share_embeddings_needs_equal_vocabularies():
    with pytest.raises(ConfigError, match="share_embeddings: needs equal source and target vocabulary sizes"):
        TransformerSeq2Seq(tiny_config(share_embeddings=True), 20, 24)


def test_initialisation_scales():
    model = tiny_model()
    d_model = 32
    xavier_bound = math.sqrt(6 / (d_model + d_model))  # each D x D block of the fused Q|K|V
    for block in model.encoder_layers[0].attention.qkv.weight.chunk(3, dim=0):
        assert 0.8 * xavier_bound < block.abs().max().item() <= xavier_bound
    embedding = model.decoder.embedding.embedding.weight[1:]
    assert embedding.std().item() == pytest.approx(d_model ** -0.5, rel=0.15)
    assert model.src_embedding.embedding.weight[0].abs().sum().item() == 0.0  # the <pad> row


@pytest.mark.parametrize("overrides, key", [
    (dict(d_model=30, num_heads=4), "d_model"), (dict(dropout=1.0), "dropout"), (dict(activation="tanh"), "activation"),
    (dict(positions="rotary"), "positions"), (dict(num_decoder_layers=0), "num_decoder_layers")])
def test_config_validation(overrides, key):
    with pytest.raises(ConfigError, match=f"^{key}:"):
        TransformerConfig(**overrides)


# ------------------------------------------------------------------------------------------------ learning
@pytest.mark.parametrize("pre_norm", [False, True])
def test_overfits_one_batch(pre_norm):
    torch.manual_seed(0)
    model = TransformerSeq2Seq(tiny_config(pre_norm=pre_norm), 20, 20).train()
    src = torch.randint(3, 20, (4, 6), generator=torch.Generator().manual_seed(6))
    src_mask = torch.ones_like(src, dtype=torch.bool)
    tgt_in = torch.cat([torch.full((4, 1), BOS), src.flip(1)], dim=1)  # reverse the source
    tgt_out = torch.cat([src.flip(1), torch.full((4, 1), EOS)], dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(80):
        loss = F.cross_entropy(model(src, src_mask, tgt_in).flatten(0, 1), tgt_out.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1


def test_task_loss_on_real_positions_equals_the_padded_loss():
    from seqlab.contracts import Seq2SeqBatch
    from seqlab.tasks.translation import Seq2SeqObjective
    from seqlab.train.loss import token_nll_sum

    model = tiny_model(dropout=0.0).eval()
    src, src_mask, tgt_in = padded_batch()
    tgt_mask = tgt_in != 0
    tgt_out = torch.where(tgt_mask, torch.roll(tgt_in, -1, 1).clamp(min=3), torch.zeros_like(tgt_in))
    batch = Seq2SeqBatch(src, src_mask, tgt_in, tgt_out, tgt_mask, torch.arange(src.size(0)))
    packed, count = Seq2SeqObjective(0.1).loss(model, batch)  # real positions, projection fused with the loss
    padded = token_nll_sum(model(src, src_mask, tgt_in), tgt_out, 0.1)  # (B, T, V) logits, the readable twin
    assert count == int(tgt_mask.sum())
    assert torch.allclose(packed, padded, atol=1e-4)
    parameters = list(model.parameters())
    for fused, twin in zip(torch.autograd.grad(packed, parameters), torch.autograd.grad(padded, parameters)):
        torch.testing.assert_close(fused, twin, rtol=1e-4, atol=1e-5)


def test_step_log_probs_in_place_only_without_autograd():
    from seqlab.contracts import step_log_probs

    logits = torch.randn(4, 50) * 8
    expected = torch.log_softmax(logits, dim=-1)
    with torch.no_grad():
        work = logits.clone()
        result = step_log_probs(work)
    assert result.data_ptr() == work.data_ptr() and torch.equal(result, expected)
    leaf = logits.clone().requires_grad_()
    result = step_log_probs(leaf)
    assert result.data_ptr() != leaf.data_ptr() and torch.equal(result, expected)
    result[:, 0].sum().backward()
    torch.testing.assert_close(leaf.grad, (torch.arange(50) == 0).float() - torch.softmax(logits, -1))
