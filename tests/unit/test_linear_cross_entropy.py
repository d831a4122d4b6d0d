"""The fused (chunked) linear + cross-entropy equals its readable twin: the loss and every gradient."""

import pytest
import torch
import torch.nn.functional as F

from seqlab.models.base import PAD_ID
from seqlab.train.loss import linear_cross_entropy_sum, token_nll_sum


def _inputs(rows=37, dim=16, vocab=50, bias=True, seed=0):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(rows, dim, generator=generator, requires_grad=True)
    weight = torch.randn(vocab, dim, generator=generator, requires_grad=True)
    b = torch.randn(vocab, generator=generator, requires_grad=True) if bias else None
    targets = torch.randint(4, vocab, (rows,), generator=generator)
    targets[::5] = PAD_ID  # some rows carry no loss
    return hidden, weight, b, targets


def _grads(loss, tensors):
    return torch.autograd.grad(loss, [t for t in tensors if t is not None])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_rows", [1, 8, 1000])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_equals_twin(label_smoothing, chunk_rows, bias):
    hidden, weight, b, targets = _inputs(bias=bias)
    twin = token_nll_sum(F.linear(hidden, weight, b), targets, label_smoothing)
    fused = linear_cross_entropy_sum(hidden, weight, b, targets, label_smoothing, chunk_rows=chunk_rows)
    torch.testing.assert_close(fused, twin, rtol=1e-5, atol=1e-4)
    scale = 0.37  # backward scales by the incoming gradient (the trainer divides by the token count)
    for g_twin, g_fused in zip(_grads(twin * scale, (hidden, weight, b)), _grads(fused * scale, (hidden, weight, b))):
        torch.testing.assert_close(g_fused, g_twin, rtol=1e-5, atol=1e-5)


def test_tied_weight_gradients_add_up():
    """The output weight is also the embedding: both uses' gradients land in the one tensor."""
    hidden, weight, _, targets = _inputs(bias=False)
    ids = torch.randint(0, weight.size(0), (5,))
    twin = token_nll_sum(F.linear(hidden, weight), targets) + F.embedding(ids, weight).sum()
    fused = linear_cross_entropy_sum(hidden, weight, None, targets) + F.embedding(ids, weight).sum()
    torch.testing.assert_close(_grads(fused, (weight,))[0], _grads(twin, (weight,))[0])


def test_batched_layout_and_no_grad():
    hidden, weight, b, targets = _inputs(rows=24)
    twin = token_nll_sum(F.linear(hidden, weight, b).reshape(4, 6, -1), targets.reshape(4, 6))
    with torch.no_grad():
        fused = linear_cross_entropy_sum(hidden.reshape(4, 6, -1), weight, b, targets.reshape(4, 6))
    assert not fused.requires_grad
    torch.testing.assert_close(fused, twin.detach(), rtol=1e-5, atol=1e-4)


def test_only_the_inputs_that_want_gradients_get_them():
    hidden, weight, b, targets = _inputs()
    weight.requires_grad_(False)
    fused = linear_cross_entropy_sum(hidden, weight, b, targets)
    g_hidden, g_bias = torch.autograd.grad(fused, [hidden, b])
    twin = token_nll_sum(F.linear(hidden, weight, b), targets)
    t_hidden, t_bias = torch.autograd.grad(twin, [hidden, b])
    torch.testing.assert_close(g_hidden, t_hidden)
    torch.testing.assert_close(g_bias, t_bias)
