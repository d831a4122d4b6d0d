"""seqlab.nn.attention: every kind against a one-sentence, one-query twin written from its equation, with
padding masked exactly, steps batched, keys reordered with the beam."""

from __future__ import annotations

import math

import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.nn.attention import ATTENTION_KINDS, Attention, masked_softmax

QUERY_SIZE, KEY_SIZE, HIDDEN = 8, 8, 12
LENGTHS = [5, 2, 3]


def _attention(kind: str) -> Attention:
    torch.manual_seed(0)
    return Attention(kind, QUERY_SIZE, KEY_SIZE, hidden_size=HIDDEN, num_heads=3 if kind == "multihead" else 1)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """query (3, Dq), memory (3, 5, Dk) with garbage in the padding, memory_mask (3, 5)."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.arange(5)[None, :] < torch.tensor(LENGTHS)[:, None]
    memory = torch.randn(3, 5, KEY_SIZE, generator=generator).masked_fill(~mask[..., None], 50.0)
    return torch.randn(3, QUERY_SIZE, generator=generator), memory, mask


def _reference(attention: Attention, query: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """One query (Dq,) over one sentence's real positions (S, Dk), straight from the equations."""
    kind = attention.kind
    if kind in ("dot", "scaled_dot"):  # e_s = q·h_s (/ sqrt(D))
        scores = memory @ query / (math.sqrt(KEY_SIZE) if kind == "scaled_dot" else 1.0)
        weights = torch.softmax(scores, dim=0)
        return weights @ memory, weights
    if kind == "general":  # e_s = qᵀ W h_s
        scores = torch.stack([query @ attention.key_projection.weight @ h for h in memory])
        weights = torch.softmax(scores, dim=0)
        return weights @ memory, weights
    if kind == "additive":  # e_s = vᵀ tanh(W_q q + b + W_k h_s)
        v = attention.score_vector.weight[0]
        projected_query = attention.query_projection(query)
        scores = torch.stack([v @ torch.tanh(projected_query + attention.key_projection.weight @ h) for h in memory])
        weights = torch.softmax(scores, dim=0)
        return weights @ memory, weights
    keys, values = attention.key_projection(memory), attention.value_projection(memory)  # k(h), v(h)
    projected_query = attention.query_projection(query)  # q(s)
    if kind == "key_value":  # e_s = q(s)·k(h_s)
        weights = torch.softmax(keys @ projected_query, dim=0)
        return weights @ values, weights
    head_size = HIDDEN // attention.num_heads  # multihead: each head a scaled dot over its slice
    contexts, head_weights = [], []
    for head in range(attention.num_heads):
        part = slice(head * head_size, (head + 1) * head_size)
        weights = torch.softmax(keys[:, part] @ projected_query[part] / math.sqrt(head_size), dim=0)
        contexts.append(weights @ values[:, part])
        head_weights.append(weights)
    return attention.output_projection(torch.cat(contexts)), torch.stack(head_weights).mean(0)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
@torch.no_grad()
def test_each_kind_equals_its_equation_and_masks_padding(kind):
    attention = _attention(kind)
    query, memory, mask = _batch()
    context, weights = attention(query, attention.project_keys(memory), mask)
    assert context.shape == (3, attention.value_size) and weights.shape == (3, 5)
    assert torch.all(weights[~mask] == 0)  # exactly 0, not merely small
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    for row, length in enumerate(LENGTHS):
        expected_context, expected_weights = _reference(attention, query[row], memory[row, :length])
        torch.testing.assert_close(weights[row, :length], expected_weights, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(context[row], expected_context, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
@torch.no_grad()
def test_many_queries_at_once_equal_one_at_a_time(kind):
    attention = _attention(kind)
    _, memory, mask = _batch()
    queries = torch.randn(3, 4, QUERY_SIZE, generator=torch.Generator().manual_seed(1))  # (B, T, Dq)
    keys = attention.project_keys(memory)
    contexts, weights = attention(queries, keys, mask)
    assert contexts.shape == (3, 4, attention.value_size) and weights.shape == (3, 4, 5)
    for t in range(4):
        context_t, weights_t = attention(queries[:, t], keys, mask)
        torch.testing.assert_close(contexts[:, t], context_t, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(weights[:, t], weights_t, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", ["additive", "multihead"])
@torch.no_grad()
def test_projected_keys_reorder_with_the_beam(kind):
    attention = _attention(kind)
    query, memory, mask = _batch()
    keys = attention.project_keys(memory)
    index = torch.tensor([2, 0, 0, 1])
    context, weights = attention(query[index], keys.reorder(index), mask[index])
    reference_context, reference_weights = attention(query, keys, mask)
    torch.testing.assert_close(context, reference_context[index])
    torch.testing.assert_close(weights, reference_weights[index])


def test_a_row_without_real_positions_gives_zeros_and_finite_gradients():
    scores = torch.randn(2, 4, requires_grad=True)
    mask = torch.tensor([[True, True, False, False], [False, False, False, False]])
    weights = masked_softmax(scores, mask)
    assert torch.all(weights[1] == 0)
    weights[:, 0].sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_padding_scores_cannot_leak_however_large():
    scores = torch.tensor([[0.0, 1e30, 1.0]])
    weights = masked_softmax(scores, torch.tensor([[True, False, True]]))
    torch.testing.assert_close(weights, torch.tensor([[1 / (1 + math.e), 0.0, math.e / (1 + math.e)]]))


def test_attention_rejects_bad_configurations():
    with pytest.raises(ConfigError, match="attention: 'dot' needs query size == key size"):
        Attention("dot", 8, 16)
    with pytest.raises(ConfigError, match="attention_heads"):
        Attention("multihead", 8, 8, hidden_size=12, num_heads=5)
    with pytest.raises(ConfigError, match="attention: must be one of"):
        Attention("cosine", 8, 8)
    assert Attention("general", 8, 16).value_size == 16  # context = weighted encoder outputs
    assert Attention("key_value", 8, 16, hidden_size=6).value_size == 6  # context = weighted v(h)
