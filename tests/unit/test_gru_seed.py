"""``cell: gru_seed``: the trainable GRU of the seed's equations (reset gate before the matrix product) against a
hand-written step, its packed path against each sentence alone, its gradients, and a config through ``seqlab train``."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

from seqlab.models.rnn_lm import RNNLM, RNNLMConfig
from seqlab.nn.rnn import SeedGRU, cell_weights, encode_packed, gru_cell_reference, make_rnn
from tests.integration.test_cli import seqlab


def _inputs(batch: int = 3, length: int = 5, size: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, length, size, generator=torch.Generator().manual_seed(seed))


def test_one_step_equals_the_seed_equations_written_by_hand():
    torch.manual_seed(0)
    rnn = make_rnn("gru_seed", 4, 6)
    assert type(rnn) is SeedGRU
    x, h = _inputs(3, 1, 4)[:, 0], torch.randn(3, 6)
    w_ih, w_hh, b_ih, b_hh = cell_weights(rnn)
    # the seed's step, gate by gate, with its one candidate bias b_h = b_xh + b_hh
    w_xr, w_xz, w_xh = w_ih.chunk(3)
    w_hr, w_hz, w_hc = w_hh.chunk(3)
    (b_xr, b_xz, b_xh), (b_hr, b_hz, b_hc) = b_ih.chunk(3), b_hh.chunk(3)
    reset = torch.sigmoid(x @ w_xr.T + h @ w_hr.T + b_xr + b_hr)
    update = torch.sigmoid(x @ w_xz.T + h @ w_hz.T + b_xz + b_hz)
    candidate = torch.tanh(x @ w_xh.T + (reset * h) @ w_hc.T + b_xh + b_hc)
    expected = update * h + (1 - update) * candidate
    output, final = rnn(x[:, None], h[None])
    torch.testing.assert_close(output[:, 0], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(final[0], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(expected, gru_cell_reference(x, h, cell_weights(rnn), reset_after=False))
    assert not torch.allclose(expected, gru_cell_reference(x, h, cell_weights(rnn), reset_after=True))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_unrolled_stack_equals_the_reference_step_by_step(bidirectional):
    torch.manual_seed(0)
    rnn = make_rnn("gru_seed", 4, 6, num_layers=2, bidirectional=bidirectional).eval()
    inputs = _inputs()
    outputs, final = rnn(inputs)
    directions = 2 if bidirectional else 1
    layer_input, finals = inputs, []
    for layer in range(2):
        per_direction = []
        for direction in range(directions):
            h, steps = torch.zeros(3, 6), [None] * 5
            for t in (range(4, -1, -1) if direction else range(5)):
                h = gru_cell_reference(layer_input[:, t], h, cell_weights(rnn, layer, direction), reset_after=False)
                steps[t] = h
            per_direction.append(torch.stack(steps, dim=1))
            finals.append(h)
        layer_input = torch.cat(per_direction, dim=-1)
    torch.testing.assert_close(outputs, layer_input, atol=1e-6, rtol=0)
    torch.testing.assert_close(final, torch.stack(finals), atol=1e-6, rtol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_path_equals_each_sentence_alone(bidirectional):
    torch.manual_seed(0)
    rnn = make_rnn("gru_seed", 4, 6, num_layers=2, bidirectional=bidirectional).eval()
    lengths = torch.tensor([3, 5, 1])
    inputs = _inputs().masked_fill(torch.arange(5)[None, :, None] >= lengths[:, None, None], 123.0)
    outputs, final = encode_packed(rnn, inputs, lengths)
    for row, length in enumerate(lengths.tolist()):
        alone_outputs, alone_final = rnn(inputs[row:row + 1, :length])
        torch.testing.assert_close(outputs[row, :length], alone_outputs[0], atol=1e-6, rtol=0)
        assert torch.all(outputs[row, length:] == 0)
        torch.testing.assert_close(final[:, row], alone_final[:, 0], atol=1e-6, rtol=0)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = RNNLM(RNNLMConfig(cell="gru_seed", embedding_size=8, hidden_size=8, num_layers=2), vocab_size=11)
    ids = torch.randint(1, 11, (2, 6))
    logits, _ = model(ids)
    nn.functional.cross_entropy(logits.reshape(-1, 11), ids.reshape(-1)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_a_gru_seed_config_trains_through_seqlab_train(tmp_path):
    text = ["we recognize speech today", "i think therefore i am"] * 10
    (tmp_path / "train.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_text("\n".join(text[:2]) + "\n", encoding="utf-8")
    config = {"task": "lm", "model_dir": str(tmp_path / "model"),
              "data": {"dataset": "files", "train_file": str(tmp_path / "train.txt"),
                       "valid_file": str(tmp_path / "valid.txt"), "batch_size": 4, "bptt": 8},
              "model": {"architecture": "rnn", "cell": "gru_seed", "embedding_size": 16, "hidden_size": 16,
                        "num_layers": 1},
              "train": {"lr": 0.01, "max_epochs": 2, "progress": False}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = seqlab("train", tmp_path / "config.yaml")
    assert result.returncode == 0, result.stderr
    assert any((tmp_path / "model").iterdir())


def test_gru_seed_builds_and_backpropagates_in_every_rnn_model():
    from seqlab.models.classifier import ClassifierConfig, TextClassifier
    from seqlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig
    from seqlab.models.tagger import Tagger, TaggerConfig

    torch.manual_seed(0)
    ids = torch.randint(1, 9, (2, 5))
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    seq2seq = RNNSeq2Seq(RNNSeq2SeqConfig(cell="gru_seed", embedding_size=8, hidden_size=8, num_layers=1,
                                          bidirectional=True, attention="additive"), 9, 9)
    outputs = [seq2seq(ids, mask, ids),
               Tagger(TaggerConfig(cell="gru_seed", embedding_size=8, hidden_size=8), 9, 4)(ids, mask),
               TextClassifier(ClassifierConfig(encoder="gru_seed", embedding_size=8, hidden_size=8), 9, 3)(ids, mask)]
    for model, output in zip(("seq2seq", "tagger", "classifier"), outputs):
        assert torch.isfinite(output).all(), model
        output.float().sum().backward()
    assert any(type(m) is SeedGRU for m in seq2seq.modules())
