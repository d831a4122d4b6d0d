"""Scheduled sampling: ε = 1 is teacher forcing, ε = 0 feeds only the model's own predictions."""

import math

import pytest
import torch

from seqlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig
from seqlab.train.scheduled_sampling import epsilon, scheduled_sampling_log_probs


def tiny_model(attention="additive"):
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(cell="gru", embedding_size=8, hidden_size=12, num_layers=1, dropout=0.0,
                              attention=attention)
    return RNNSeq2Seq(config, 11, 13).eval()


def batch():
    src = torch.tensor([[4, 5, 6, 3], [7, 8, 3, 0]])
    tgt_in = torch.tensor([[2, 9, 10, 11, 4], [2, 5, 6, 0, 0]])
    return src, src != 0, tgt_in


@pytest.mark.parametrize("attention", ["none", "additive"])
def test_epsilon_one_equals_teacher_forcing(attention):
    model = tiny_model(attention)
    src, mask, tgt_in = batch()
    forced = torch.log_softmax(model(src, mask, tgt_in), -1)
    scheduled = scheduled_sampling_log_probs(model, src, mask, tgt_in, eps=1.0)
    assert torch.allclose(scheduled, forced, atol=1e-5)


class Recorder(torch.nn.Module):
    """Wraps a model and remembers the tokens fed to every decoder step."""

    def __init__(self, model):
        super().__init__()
        self.model, self.fed = model, []

    def encode(self, *args):
        return self.model.encode(*args)

    def init_state(self, *args):
        return self.model.init_state(*args)

    def step(self, tokens, state):
        self.fed.append(tokens.clone())
        return self.model.step(tokens, state)


def test_epsilon_zero_feeds_only_the_models_predictions():
    recorder = Recorder(tiny_model())
    src, mask, tgt_in = batch()
    log_probs = scheduled_sampling_log_probs(recorder, src, mask, tgt_in, eps=0.0, feed="argmax")
    assert recorder.fed[0].tolist() == [2, 2]
    for t in range(1, tgt_in.size(1)):
        assert recorder.fed[t].tolist() == log_probs[:, t - 1].argmax(-1).tolist()
    # the fed tokens are the model's, not the references
    assert not torch.equal(torch.stack(recorder.fed, 1), tgt_in)


def test_sampled_feeding_is_reproducible_from_the_global_seed():
    src, mask, tgt_in = batch()
    runs = []
    for _ in range(2):
        recorder = Recorder(tiny_model())
        torch.manual_seed(5)
        scheduled_sampling_log_probs(recorder, src, mask, tgt_in, eps=0.5)
        runs.append(torch.stack(recorder.fed, 1))
    assert torch.equal(runs[0], runs[1])


def test_schedules_decay_from_one():
    assert epsilon("none", 10 ** 6) == 1.0
    assert epsilon("linear", 0, c=1e-3) == 1.0 and epsilon("linear", 500, c=1e-3) == pytest.approx(0.5)
    assert epsilon("linear", 5000, c=1e-3, minimum=0.1) == 0.1
    assert epsilon("exponential", 100, k=0.99) == pytest.approx(0.99 ** 100)
    assert epsilon("inverse_sigmoid", 0, k=10) == pytest.approx(10 / 11)
    assert epsilon("inverse_sigmoid", 100, k=10) == pytest.approx(10 / (10 + math.exp(10)))
    values = [epsilon("inverse_sigmoid", i, k=50) for i in range(0, 1000, 50)]
    assert values == sorted(values, reverse=True)
    with pytest.raises(ValueError, match="unknown"):
        epsilon("cosine", 1)
