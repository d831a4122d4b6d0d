"""seqlab.nn.rnn and seqlab.nn.init: the fused RNNs against the seed's gate equations, packing against running
each sentence alone, and every initialisation scheme against its definition."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.nn.init import init_weights
from seqlab.nn.rnn import (cell_weights, encode_packed, gru_cell_reference, lstm_cell_reference, make_rnn,
                           rnn_reference)


def _inputs(batch: int = 3, length: int = 5, size: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, length, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------ make_rnn
@pytest.mark.parametrize("cell, module_type, mode", [("rnn", nn.RNN, "RNN_TANH"), ("rnn_relu", nn.RNN, "RNN_RELU"),
                                                     ("gru", nn.GRU, "GRU"), ("lstm", nn.LSTM, "LSTM")])
def test_make_rnn_builds_the_fused_module(cell, module_type, mode):
    rnn = make_rnn(cell, 4, 6, num_layers=2, dropout=0.3, bidirectional=True)
    assert type(rnn) is module_type and rnn.mode == mode
    assert rnn.batch_first and rnn.bidirectional and rnn.num_layers == 2 and rnn.dropout == 0.3
    outputs, _ = rnn(_inputs())
    assert outputs.shape == (3, 5, 12)


def test_make_rnn_drops_dropout_for_one_layer_and_rejects_unknown_cells():
    assert make_rnn("gru", 4, 6, num_layers=1, dropout=0.5).dropout == 0.0
    with pytest.raises(ConfigError, match="cell: must be one of"):
        make_rnn("transformer", 4, 6)


# ------------------------------------------------------------------------------- twins: the seed's equations
@pytest.mark.parametrize("cell", ["rnn", "rnn_relu", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_unrolled_equations_equal_the_fused_module(cell, bidirectional):
    torch.manual_seed(0)
    rnn = make_rnn(cell, 4, 6, num_layers=2, bidirectional=bidirectional).eval()
    inputs = _inputs()
    outputs, final = rnn(inputs)
    reference_outputs, reference_final = rnn_reference(rnn, inputs)
    torch.testing.assert_close(reference_outputs, outputs, atol=1e-6, rtol=0)
    if cell == "lstm":
        torch.testing.assert_close(reference_final[0], final[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(reference_final[1], final[1], atol=1e-6, rtol=0)
    else:
        torch.testing.assert_close(reference_final, final, atol=1e-6, rtol=0)


def test_lstm_cell_reference_one_step_by_hand():
    """All weights 0 and b_ih = 1 for every gate: gates σ(1), candidate tanh(1); c' = σ(1) c + σ(1) tanh(1)."""
    lstm = nn.LSTM(2, 3)
    weights = tuple(torch.zeros_like(w) for w in cell_weights(lstm))
    weights[2].fill_(1.0)
    c = torch.full((1, 3), 0.5)
    h_next, c_next = lstm_cell_reference(torch.ones(1, 2), (torch.zeros(1, 3), c), weights)
    sigma, tanh_1 = 1 / (1 + math.exp(-1)), math.tanh(1)
    expected_c = sigma * 0.5 + sigma * tanh_1
    torch.testing.assert_close(c_next, torch.full((1, 3), expected_c))
    torch.testing.assert_close(h_next, torch.full((1, 3), sigma * math.tanh(expected_c)))


def test_seed_gru_differs_from_pytorch_only_in_where_the_reset_gate_applies():
    torch.manual_seed(0)
    gru = nn.GRU(4, 6)
    x, h = torch.randn(3, 4), torch.randn(3, 6)
    weights = tuple(w.detach().clone() for w in cell_weights(gru))
    pytorch_form = gru_cell_reference(x, h, weights)
    seed_form = gru_cell_reference(x, h, weights, reset_after=False)
    _, fused = gru(x[None], h[None])
    torch.testing.assert_close(pytorch_form, fused[0], atol=1e-6, rtol=0)
    assert (seed_form - pytorch_form).abs().max() > 1e-3  # R ⊙ (H W) != (R ⊙ H) W in general
    weights[2][:6].fill_(100.0)  # b_xr large: R_t = σ(100) = 1 exactly in float32, so both forms agree
    torch.testing.assert_close(gru_cell_reference(x, h, weights, reset_after=False),
                               gru_cell_reference(x, h, weights), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- packed path: padding invariance
@pytest.mark.parametrize("cell, bidirectional", [("gru", False), ("gru", True), ("lstm", True), ("rnn", False)])
def test_encode_packed_equals_each_sentence_alone(cell, bidirectional):
    torch.manual_seed(0)
    rnn = make_rnn(cell, 4, 6, num_layers=2, bidirectional=bidirectional).eval()
    lengths = torch.tensor([3, 5, 1])  # unsorted on purpose: enforce_sorted=False must restore the order
    inputs = _inputs()
    inputs = inputs.masked_fill(torch.arange(5)[None, :, None] >= lengths[:, None, None], 123.0)  # loud padding
    outputs, final = encode_packed(rnn, inputs, lengths)
    finals = final if cell == "lstm" else (final,)
    assert outputs.shape == (3, 5, 12 if bidirectional else 6)
    for row, length in enumerate(lengths.tolist()):
        alone_outputs, alone_final = rnn(inputs[row:row + 1, :length])
        torch.testing.assert_close(outputs[row, :length], alone_outputs[0], atol=1e-6, rtol=0)
        assert torch.all(outputs[row, length:] == 0)
        for packed_state, alone_state in zip(finals, alone_final if cell == "lstm" else (alone_final,)):
            torch.testing.assert_close(packed_state[:, row], alone_state[:, 0], atol=1e-6, rtol=0)


# -------------------------------------------------------------------------------------------------- init
class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(50, 40, padding_idx=0)
        self.lstm = nn.LSTM(40, 64, num_layers=2)
        self.gru = nn.GRU(40, 64)
        self.linear = nn.Linear(64, 200)
        self.norm = nn.LayerNorm(64)


def _tiny() -> _Tiny:
    torch.manual_seed(0)
    return _Tiny()


def test_xavier_matrices_fill_their_glorot_range_and_biases_are_zero():
    model = _tiny()
    init_weights(model, "xavier")
    bound = math.sqrt(6 / (64 + 200))  # nn.Linear(64, 200): fan_in 64, fan_out 200
    weight = model.linear.weight
    assert weight.abs().max() <= bound and weight.abs().max() > 0.95 * bound
    gate_bound = math.sqrt(6 / (40 + 64))  # one LSTM gate of weight_ih_l0: (64, 40), not the stacked (256, 40)
    assert model.lstm.weight_ih_l0.abs().max() <= gate_bound
    assert model.lstm.weight_ih_l0.abs().max() > 0.95 * gate_bound
    assert torch.all(model.linear.bias == 0) and torch.all(model.gru.bias_hh_l0 == 0)
    assert torch.all(model.norm.weight == 1)  # LayerNorm gains keep their value
    assert torch.all(model.embedding.weight[0] == 0) and model.embedding.weight[1:].abs().sum() > 0


def test_kaiming_has_he_standard_deviation():
    model = _tiny()
    init_weights(model, "kaiming")
    expected_std = math.sqrt(2 / 64)  # He et al.: Var = 2 / fan_in
    assert abs(model.linear.weight.std().item() - expected_std) < 0.05 * expected_std
    assert torch.all(model.linear.bias == 0)


def test_orthogonal_makes_each_recurrent_gate_orthogonal():
    model = _tiny()
    init_weights(model, "orthogonal")
    for gate in model.gru.weight_hh_l0.chunk(3):  # (64, 64) each
        torch.testing.assert_close(gate @ gate.T, torch.eye(64), atol=1e-5, rtol=0)
    for gate in model.lstm.weight_hh_l1.chunk(4):
        torch.testing.assert_close(gate @ gate.T, torch.eye(64), atol=1e-5, rtol=0)
    assert model.lstm.weight_ih_l0.abs().max() <= math.sqrt(6 / (40 + 64))  # input matrices: xavier


def test_uniform_puts_every_parameter_in_range_biases_included():
    model = _tiny()
    init_weights(model, "uniform", uniform_range=0.05)
    for name, parameter in model.named_parameters():
        if name.startswith("embedding"):
            parameter = parameter[1:]  # the padding row is zero
        assert parameter.abs().max() <= 0.05, name
        assert parameter.abs().max() > 0.04, name  # spread over the range, not left at 0 or 1


def test_default_keeps_pytorch_init_and_forget_bias_sets_the_forget_gate():
    model = _tiny()
    before = copy.deepcopy(model.state_dict())
    init_weights(model, "default")
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    init_weights(model, "xavier", forget_bias=1.0)
    hidden = 64
    for layer in range(2):
        bias_ih, bias_hh = getattr(model.lstm, f"bias_ih_l{layer}"), getattr(model.lstm, f"bias_hh_l{layer}")
        total = bias_ih + bias_hh  # PyTorch adds the two
        assert torch.all(total[hidden:2 * hidden] == 1.0)  # gate order i, f, g, o
        assert torch.all(total[:hidden] == 0) and torch.all(total[2 * hidden:] == 0)


def test_forget_bias_gives_the_lstm_a_remembering_start():
    """With b_f = 5 and tiny weights, F_t ≈ 1: the cell keeps most of c_{t-1} (the point of the trick)."""
    lstm = nn.LSTM(2, 3)
    init_weights(lstm, "uniform", uniform_range=1e-3, forget_bias=5.0)
    weights = cell_weights(lstm)
    c = torch.ones(1, 3)
    _, c_next = lstm_cell_reference(torch.zeros(1, 2), (torch.zeros(1, 3), c), weights)
    assert torch.all(c_next > 0.99)


def test_init_rejects_unknown_schemes():
    with pytest.raises(ConfigError, match="init: must be one of"):
        init_weights(_tiny(), "he")
