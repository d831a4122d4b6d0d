"""Scheduled sampling: ε = 1 is teacher forcing, ε = 0 feeds only the model's own predictions; for translation,
captioning (several captions per image row) and the RNN LMs (the state carried across BPTT chunks)."""

import math

import pytest
import torch

from types import SimpleNamespace

from seqlab.data.streams import LMBatch
from seqlab.models.captioner import Captioner, CaptionerConfig
from seqlab.models.rnn_lm import RNNLM, RNNLMConfig
from seqlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig
from seqlab.nn.cnn import CNNConfig
from seqlab.tasks.captioning import CaptionBatch, CaptioningObjective, caption_start
from seqlab.tasks.language_model import LMObjective
from seqlab.train.scheduled_sampling import ScheduledSamplingObjective, epsilon, scheduled_sampling_log_probs


def tiny_model(attention="additive"):
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(cell="gru", embedding_size=8, hidden_size=12, num_layers=1, dropout=0.0,
                              attention=attention)
    return RNNSeq2Seq(config, 11, 13).eval()


def batch():
    src = torch.tensor([[4, 5, 6, 3], [7, 8, 3, 0]])
    tgt_in = torch.tensor([[2, 9, 10, 11, 4], [2, 5, 6, 0, 0]])
    return src, src != 0, tgt_in


def start_state(model, src, mask):
    return model.init_state(model.encode(src, mask), mask)


@pytest.mark.parametrize("attention", ["none", "additive"])
def test_epsilon_one_equals_teacher_forcing(attention):
    model = tiny_model(attention)
    src, mask, tgt_in = batch()
    forced = torch.log_softmax(model(src, mask, tgt_in), -1)
    scheduled = scheduled_sampling_log_probs(model, start_state(model, src, mask), tgt_in, eps=1.0)[0]
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
    log_probs = scheduled_sampling_log_probs(recorder, start_state(recorder, src, mask), tgt_in, eps=0.0,
                                                feed="argmax")[0]
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
        scheduled_sampling_log_probs(recorder, start_state(recorder, src, mask), tgt_in, eps=0.5)
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


# ------------------------------------------------------------------------------------------------ captioning and LMs
def sampling_config(schedule="none", feed="sample", c=1e-4):
    """The TrainConfig fields scheduled sampling reads; "none" keeps ε = 1 (teacher forcing, step by step)."""
    return SimpleNamespace(scheduled_sampling=schedule, scheduled_sampling_k=1000.0, scheduled_sampling_c=c,
                           scheduled_sampling_min=0.0, scheduled_sampling_feed=feed, label_smoothing=0.0)


def tiny_captioner(attention=False):
    torch.manual_seed(0)
    config = CaptionerConfig(cnn=CNNConfig(architecture="vgg", channels=[4, 8]), cell="lstm", embedding_size=8,
                             hidden_size=12, attention=attention, dropout=0.0)
    return Captioner(config, 14).eval()


def caption_batch():
    """Two images, three caption rows: image 0 carries two captions (a grouped batch)."""
    torch.manual_seed(1)
    tgt_in = torch.tensor([[2, 5, 6, 7], [2, 8, 9, 0], [2, 10, 0, 0]])
    tgt_out = torch.tensor([[5, 6, 7, 3], [8, 9, 3, 0], [10, 3, 0, 0]])
    return CaptionBatch(torch.randn(2, 3, 16, 16), tgt_in, tgt_out, tgt_out != 0, torch.tensor([0, 0, 1]),
                        torch.tensor([0, 0, 1]))


def tiny_lm(cell="gru"):
    torch.manual_seed(0)
    return RNNLM(RNNLMConfig(cell=cell, embedding_size=8, hidden_size=12, num_layers=2), 11).eval()


def lm_chunks():
    torch.manual_seed(2)
    stream = torch.randint(1, 11, (2, 9))  # two columns, two chunks of 4
    return [LMBatch(stream[:, t:t + 4], stream[:, t + 1:t + 5], t == 0) for t in (0, 4)]


@pytest.mark.parametrize("attention", [False, True])
def test_captioning_at_epsilon_one_is_the_teacher_forced_loss(attention):
    model, batch = tiny_captioner(attention), caption_batch()
    forced, count = CaptioningObjective().loss(model, batch)
    sampled, sampled_count = ScheduledSamplingObjective(sampling_config(), caption_start).loss(model, batch)
    assert sampled_count == count == 9
    assert abs(float(sampled.detach()) - float(forced.detach())) / count < 1e-6


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_lm_at_epsilon_one_is_the_teacher_forced_loss_and_carries_the_state(cell):
    model = tiny_lm(cell)
    forced, sampled = LMObjective(), LMObjective(ScheduledSamplingObjective(sampling_config()))
    for batch in lm_chunks():  # the second chunk starts from the state the first left
        (forced_loss, count), (sampled_loss, sampled_count) = forced.loss(model, batch), sampled.loss(model, batch)
        assert sampled_count == count == batch.targets.numel()
        assert abs(float(sampled_loss.detach()) - float(forced_loss.detach())) / count < 1e-6
        assert torch.allclose(sampled.state.hidden, forced.state.hidden, atol=1e-6)


def greedy_log_probs(model, state, first_tokens, steps):
    """The readable twin of ε = 0 with argmax feeding: read the first tokens, then always the model's argmax."""
    tokens, outputs = first_tokens, []
    for _ in range(steps):
        log_probs, state = model.step(tokens, state)
        outputs.append(log_probs)
        tokens = log_probs.argmax(-1)
    return torch.stack(outputs, 1)


def test_epsilon_zero_with_argmax_feeds_the_greedy_predictions():
    captioner, batch = tiny_captioner(), caption_batch()
    lm, chunk = tiny_lm(), lm_chunks()[0]
    cases = [(captioner, lambda: caption_start(captioner, batch)[0], batch.tgt_in_ids),
             (lm, lambda: lm.init_state(2), chunk.inputs)]
    for model, state, tgt_in in cases:
        fed, _ = scheduled_sampling_log_probs(model, state(), tgt_in, eps=0.0, feed="argmax")
        assert torch.allclose(fed, greedy_log_probs(model, state(), tgt_in[:, 0], tgt_in.size(1)), atol=1e-6)
