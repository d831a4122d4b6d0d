"""The fused (chunked) linear + cross-entropy equals its readable twin: the loss and every gradient."""

import pytest
import torch
import torch.nn.functional as F

from seqlab.contracts import PAD_ID
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


@pytest.mark.parametrize("model_name", ["lstm_tied", "gru_untied", "transformer"])
def test_lm_task_loss_equals_the_logits_twin(model_name):
    """``LMObjective.loss`` (fused) against the cross-entropy of ``forward``'s logits: the loss, every parameter's
    gradient, and the state carried to the next BPTT chunk."""
    from seqlab.data.streams import BPTTBatches
    from seqlab.tasks.language_model import LMObjective
    from seqlab.models.rnn_lm import RNNLM, RNNLMConfig
    from seqlab.models.transformer import TransformerConfig, TransformerLM

    torch.manual_seed(0)
    vocab = 30
    if model_name == "transformer":
        model = TransformerLM(TransformerConfig(d_model=8, num_heads=2, ffn_size=16, num_encoder_layers=1,
                                                num_decoder_layers=2, dropout=0.0), vocab)
    else:
        cell, tied = model_name.split("_")
        model = RNNLM(RNNLMConfig(cell=cell, embedding_size=8, hidden_size=12, num_layers=2, dropout=0.0,
                                  tie_embeddings=tied == "tied"), vocab)
    stream = torch.randint(4, vocab, (200,)).numpy()
    first, second = BPTTBatches(stream, 4, 7).epoch_batches(0)[:2]
    task = LMObjective()
    fused, count = task.loss(model, first)
    if getattr(model, "stateful", False):
        logits, state = model(first.inputs)
    else:
        logits, state = model(first.inputs, first.inputs != PAD_ID), None
    twin = F.cross_entropy(logits.reshape(-1, vocab), first.targets.reshape(-1), reduction="sum")
    assert count == first.targets.numel()
    torch.testing.assert_close(fused, twin, rtol=1e-5, atol=1e-4)
    parameters = [p for p in model.parameters() if p.requires_grad]
    for g_fused, g_twin in zip(torch.autograd.grad(fused, parameters), torch.autograd.grad(twin, parameters)):
        torch.testing.assert_close(g_fused, g_twin, rtol=1e-4, atol=1e-5)
    if state is not None:  # the next chunk starts from the state the fused pass carried
        torch.testing.assert_close(task.state.hidden, state.hidden.detach())
        task.loss(model, second)


@pytest.mark.parametrize("options", [dict(attention="additive", tie_embeddings=True),
                                     dict(attention="dot", attention_use="input_feeding"),
                                     dict(attention="none", cell="lstm")])
def test_rnn_seq2seq_task_loss_equals_the_logits_twin(options):
    """``Seq2SeqObjective.loss`` on an RNN encoder-decoder (fused, real positions) against the padded logits'
    cross-entropy: the loss and every parameter's gradient."""
    from seqlab.contracts import Seq2SeqBatch
    from seqlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig
    from seqlab.tasks.translation import Seq2SeqObjective

    torch.manual_seed(0)
    config = {**dict(cell="gru", embedding_size=8, hidden_size=12, num_layers=2, dropout=0.0), **options}
    model = RNNSeq2Seq(RNNSeq2SeqConfig(**config), 17, 19)
    src = torch.randint(4, 17, (3, 5))
    src_mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0]], dtype=torch.bool)
    src = src.masked_fill(~src_mask, PAD_ID)
    tgt = torch.randint(4, 19, (3, 6))
    tgt_mask = torch.tensor([[1] * 6, [1] * 2 + [0] * 4, [1] * 5 + [0]], dtype=torch.bool)
    tgt_in, tgt_out = tgt.masked_fill(~tgt_mask, PAD_ID), torch.roll(tgt, -1, 1).masked_fill(~tgt_mask, PAD_ID)
    batch = Seq2SeqBatch(src, src_mask, tgt_in, tgt_out, tgt_mask, torch.arange(3))
    fused, count = Seq2SeqObjective(0.1).loss(model, batch)
    twin = token_nll_sum(model(src, src_mask, tgt_in), tgt_out, 0.1)
    assert count == int(tgt_mask.sum())
    torch.testing.assert_close(fused, twin, rtol=1e-5, atol=1e-5)
    parameters = list(model.parameters())
    for g_fused, g_twin in zip(torch.autograd.grad(fused, parameters, allow_unused=True),
                               torch.autograd.grad(twin, parameters, allow_unused=True)):
        if g_twin is None:
            assert g_fused is None
        else:
            torch.testing.assert_close(g_fused, g_twin, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("attention", [False, True])
def test_captioning_task_loss_equals_the_logits_twin(attention):
    """``CaptioningObjective.loss`` (fused) against the cross-entropy of ``forward``'s logits, with shared images."""
    from seqlab.models.captioner import Captioner, CaptionerConfig
    from seqlab.nn.cnn import CNNConfig
    from seqlab.tasks.captioning import CaptionBatch, CaptioningObjective

    torch.manual_seed(0)
    config = CaptionerConfig(cnn=CNNConfig(architecture="vgg", channels=(4, 8)), embedding_size=6, hidden_size=8,
                             attention_size=4, dropout=0.0, attention=attention)
    model = Captioner(config, 13)
    images, image_index = torch.randn(2, 3, 16, 16), torch.tensor([0, 0, 1])
    tgt_mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0]], dtype=torch.bool)
    tgt = torch.randint(4, 13, (3, 5))
    tgt_in, tgt_out = tgt.masked_fill(~tgt_mask, PAD_ID), torch.roll(tgt, -1, 1).masked_fill(~tgt_mask, PAD_ID)
    batch = CaptionBatch(images, tgt_in, tgt_out, tgt_mask, torch.arange(2), image_index)
    fused, count = CaptioningObjective(0.1).loss(model, batch)
    twin = token_nll_sum(model(images, tgt_in, image_index), tgt_out, 0.1)
    assert count == int(tgt_mask.sum())
    torch.testing.assert_close(fused, twin, rtol=1e-5, atol=1e-5)
    parameters = list(model.parameters())
    for g_fused, g_twin in zip(torch.autograd.grad(fused, parameters), torch.autograd.grad(twin, parameters)):
        torch.testing.assert_close(g_fused, g_twin, rtol=1e-4, atol=1e-6)
