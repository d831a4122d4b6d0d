"""The packed vocabulary projection (seqlab.nn.packed_linear) against ``linear(x)``: the same numbers, the
reference path wherever packing does not apply, and a fresh packing after the weight changes."""

import pytest
import torch
from torch import nn

from seqlab.nn import packed_linear
from seqlab.nn.packed_linear import project

pytestmark = pytest.mark.skipif(not packed_linear.AVAILABLE, reason="this PyTorch build has no oneDNN")


def eval_linear(bias: bool = True) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(32, 101, bias=bias).eval()


@pytest.mark.parametrize("rows, bias", [(1, True), (5, False), (250, True)])
def test_packed_projection_matches_the_linear_layer(rows, bias):
    linear, x = eval_linear(bias), torch.randn(rows, 32)
    with torch.no_grad():
        expected, packed = linear(x), project(linear, x)
    torch.testing.assert_close(packed, expected, rtol=1e-5, atol=1e-5)
    assert hasattr(linear, "_seqlab_packed")  # the fast path ran


def test_gradients_and_training_mode_take_the_reference_path():
    linear, x = eval_linear(), torch.randn(4, 32)
    out = project(linear, x)  # gradients on: the layer itself, differentiable
    out.sum().backward()
    assert linear.weight.grad is not None and not hasattr(linear, "_seqlab_packed")
    linear.train()
    with torch.no_grad():
        project(linear, x)
    assert not hasattr(linear, "_seqlab_packed")


def test_a_changed_weight_is_packed_again():
    linear, x = eval_linear(), torch.randn(3, 32)
    with torch.no_grad():
        project(linear, x)
        linear.weight.mul_(2.0)  # in place, as an optimiser step or load_state_dict does
        torch.testing.assert_close(project(linear, x), linear(x), rtol=1e-5, atol=1e-5)


def test_a_transformer_decodes_the_same_with_and_without_packing(monkeypatch):
    from seqlab.models.transformer import TransformerConfig, TransformerSeq2Seq

    torch.manual_seed(0)
    model = TransformerSeq2Seq(TransformerConfig(d_model=32, num_heads=4, ffn_size=64, num_encoder_layers=1,
                                                 num_decoder_layers=2), 40, 57).eval()
    src = torch.randint(4, 40, (3, 7))
    with torch.no_grad():
        def run():
            mask = torch.ones_like(src, dtype=torch.bool)
            state = model.init_state(model.encode(src, mask), mask)
            tokens, steps = torch.full((3,), 2), []
            for _ in range(5):
                log_probs, state = model.step(tokens, state)
                steps.append(log_probs)
                tokens = log_probs.argmax(-1)
            return torch.stack(steps)

        packed = run()
        layer = model.decoder.layers[0]  # the step took the packed path for these, F.linear for 256 -> 256 ones
        packed_layers = [model.decoder.output, layer.self_attention.qkv, *layer.feed_forward.net[::2]]
        assert all(hasattr(linear, "_seqlab_packed") for linear in packed_layers)
        assert not hasattr(layer.cross_attention.query, "_seqlab_packed")
        monkeypatch.setattr(packed_linear, "AVAILABLE", False)
        reference = run()
    torch.testing.assert_close(packed, reference, rtol=1e-5, atol=1e-5)


def test_a_traced_graph_holds_the_plain_product():
    """ONNX export and tracing record the plain linear map, which every runtime has (seqlab export --format onnx)."""
    class Projection(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = eval_linear()

        def forward(self, inputs):
            return project(self.linear, inputs)

    module, x = Projection().eval(), torch.randn(2, 32)
    linear = module.linear
    with torch.no_grad():
        traced = torch.jit.trace(module, x)
    kinds = {node.kind() for node in traced.inlined_graph.nodes()}
    assert "aten::linear" in kinds and not any("mkldnn" in kind for kind in kinds)
    torch.testing.assert_close(traced(x), linear(x))
