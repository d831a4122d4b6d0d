"""seqlab.nn.dropout against F.dropout's definition: one mask gives one output, the drop rate is p in every 16-bit
lane of the random words, kept units are scaled so the expectation is unchanged, and the gradient is the mask."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqlab.nn.dropout import Dropout, dropout16, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drop_rate_in_every_lane(p):
    generator = torch.Generator().manual_seed(0)
    keep, p_used = keep_mask((250_000, 4), p, generator=generator)  # column j = lane j of the 64-bit words
    assert abs(p_used - p) <= 2 ** -17
    rates = 1 - keep.float().mean(0)  # per lane; standard error ~ 0.001
    assert torch.all((rates - p_used).abs() < 0.004), rates


def test_output_is_f_dropouts_formula_for_the_same_mask():
    x = torch.randn(64, 33)
    generator = torch.Generator().manual_seed(3)
    out = dropout16(x, 0.2, generator)
    keep, p_used = keep_mask(x.shape, 0.2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, x * keep.float() / (1 - p_used))  # F.dropout: x * noise / (1 - p)
    assert torch.equal(out == 0, ~keep | (x == 0))


def test_expectation_and_gradient():
    x = torch.full((400_000,), 2.0, requires_grad=True)
    torch.manual_seed(0)
    out = dropout16(x, 0.1)
    assert out.mean().item() == pytest.approx(2.0, rel=0.005)
    out.sum().backward()
    torch.testing.assert_close(x.grad, out.detach() / 2.0)  # d out / d x = mask / (1 - p)


def test_module_is_identity_in_eval_and_matches_nn_dropout_in_shape():
    module = Dropout(0.25)
    x = torch.randn(5, 7)
    assert module.eval()(x) is x
    module.train()
    y = module(x)
    assert y.shape == x.shape and torch.all((y == 0) | torch.isclose(y, x / 0.75))
    assert torch.equal(Dropout(1.0).train()(x), F.dropout(x, 1.0, True))  # p = 1 falls back: all zeros
    assert Dropout(0.0).train()(x) is x
