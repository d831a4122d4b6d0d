"""The initialisations the seed names beyond xavier/kaiming: LeCun normal, small positive biases for ReLU layers,
and orthogonal for every weight matrix - each checked against its distribution's defining statistic."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.models.captioner import Captioner, CaptionerConfig
from seqlab.models.classifier import ClassifierConfig, build_classifier
from seqlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig
from seqlab.models.tagger import Tagger, TaggerConfig
from seqlab.nn.cnn import CNNConfig
from seqlab.nn.init import init_weights
from seqlab.tasks.image_classification import ImageClassifier, ImageClassifierConfig


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.ModuleDict({"big": nn.Linear(400, 1000), "wide": nn.Linear(64, 32), "gru": nn.GRU(40, 64),
                          "norm": nn.LayerNorm(64)})


def test_lecun_variance_is_one_over_fan_in():
    net = _net()
    init_weights(net, "lecun")
    weight = net["big"].weight  # (1000, 400): 400 000 draws, fan_in 400
    assert abs(weight.mean().item()) < 1e-3
    assert weight.var().item() == pytest.approx(1 / 400, rel=0.02)
    gate = net["gru"].weight_ih_l0.chunk(3)[0]  # one gate (64, 40): fan_in 40
    assert gate.var().item() == pytest.approx(1 / 40, rel=0.15)
    assert torch.all(net["big"].bias == 0) and torch.all(net["norm"].weight == 1)


@pytest.mark.parametrize("scheme", ["kaiming", "lecun", "xavier"])
def test_bias_option_starts_every_bias_at_the_value(scheme):
    net = _net()
    init_weights(net, scheme, bias=0.1)
    for name, parameter in net.named_parameters():
        if "bias" in name:
            assert torch.all(parameter == 0.1), name
    assert torch.all(net["norm"].weight == 1)  # LayerNorm gain is not a bias


def test_bias_defaults_to_zero_and_a_scheme_with_its_own_biases_refuses_a_start_value():
    net = _net()
    init_weights(net, "kaiming")
    assert torch.all(net["big"].bias == 0)
    init_weights(net, "uniform", uniform_range=0.05)
    assert net["big"].bias.abs().max() <= 0.05
    for scheme in ("uniform", "default"):  # they set biases themselves: a start value would be silently lost
        with pytest.raises(ConfigError, match="^init_bias: init '" + scheme):
            init_weights(net, scheme, bias=0.1)


def _family(name: str) -> nn.Module:
    """One model of the family ``name`` (each has an ``init`` / ``init_bias`` option), asking for kaiming + 0.1."""
    chosen = {"init": "kaiming", "init_bias": 0.1}
    builders = {
        "seq2seq": lambda: RNNSeq2Seq(RNNSeq2SeqConfig(embedding_size=8, hidden_size=8, **chosen), 12, 12),
        "tagger": lambda: Tagger(TaggerConfig(embedding_size=8, hidden_size=8, char_embedding_size=4, **chosen),
                                 12, 5, 9),
        "classifier": lambda: build_classifier(
            ClassifierConfig(encoder="gru", embedding_size=8, hidden_size=8, **chosen), 12, 3),
        "kim_cnn": lambda: build_classifier(ClassifierConfig(encoder="cnn", embedding_size=8, **chosen), 12, 3),
        "image_cnn": lambda: ImageClassifier(
            ImageClassifierConfig(cnn=CNNConfig(in_channels=1, channels=(4, 8)), **chosen), 10),
        "captioner": lambda: Captioner(
            CaptionerConfig(cnn=CNNConfig(channels=(4, 8)), embedding_size=8, hidden_size=8, **chosen), 12),
    }
    return builders[name]()


@pytest.mark.parametrize("family", ["seq2seq", "tagger", "classifier", "kim_cnn", "image_cnn", "captioner"])
def test_every_model_family_starts_its_biases_at_init_bias(family):
    torch.manual_seed(0)
    model = _family(family)
    skip = ("encoder.",) if family == "captioner" else ()  # the captioner's CNN keeps PyTorch's init (documented)
    biases = {name: p for name, p in model.named_parameters()
              if (name.endswith("bias") or ".bias_" in name) and not name.startswith(skip)}
    assert biases, "the family has no biases to check"
    for name, parameter in biases.items():
        lstm = next((m for n, m in model.named_modules() if name.startswith(n + ".") and isinstance(m, nn.LSTM)), None)
        if lstm is not None:  # an LSTM's forget-gate slice is forget_bias's (0 here), the rest init_bias's
            hidden = lstm.hidden_size
            parameter = torch.cat([parameter[:hidden], parameter[2 * hidden:]])
        assert torch.all(parameter == 0.1), name


def test_orthogonal_all_makes_every_matrix_orthogonal():
    net = _net()
    init_weights(net, "orthogonal_all")
    wide = net["wide"].weight  # (32, 64): orthonormal rows
    torch.testing.assert_close(wide @ wide.T, torch.eye(32), atol=1e-5, rtol=0)
    big = net["big"].weight  # (1000, 400): orthonormal columns
    torch.testing.assert_close(big.T @ big, torch.eye(400), atol=1e-4, rtol=0)
    for gate in net["gru"].weight_hh_l0.chunk(3):  # (64, 64) each
        torch.testing.assert_close(gate @ gate.T, torch.eye(64), atol=1e-5, rtol=0)
    for gate in net["gru"].weight_ih_l0.chunk(3):  # (64, 40): input matrices too, unlike "orthogonal"
        torch.testing.assert_close(gate.T @ gate, torch.eye(40), atol=1e-5, rtol=0)


def test_plain_orthogonal_keeps_xavier_input_matrices():
    net = _net()
    init_weights(net, "orthogonal")
    wide = net["wide"].weight
    assert not torch.allclose(wide @ wide.T, torch.eye(32), atol=1e-2)


def test_seq2seq_config_accepts_the_new_schemes():
    assert RNNSeq2SeqConfig(init="lecun", init_bias=0.1).init_bias == 0.1
    assert RNNSeq2SeqConfig(init="orthogonal_all").init == "orthogonal_all"
