"""bfloat16: mixed-precision training (``train.precision: bf16``) and bf16 decoding, against their fp32 twins."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqlab.decoding.greedy import greedy_search
from seqlab.errors import ConfigError
from seqlab.contracts import Seq2SeqBatch
from seqlab.models.transformer import TransformerConfig, TransformerSeq2Seq
from seqlab.nn.kv_cache import KVCache
from seqlab.nn.transformer import attend, padding_to_attention_mask
from seqlab.precision import autocast, compute_dtype, parse_dtype
from seqlab.tasks.translation import Seq2SeqObjective
from seqlab.train.loss import linear_cross_entropy_sum, token_nll_sum
from seqlab.train.trainer import TrainConfig, Trainer

BOS, EOS = 1, 2
CPU = torch.device("cpu")


def copy_task_batch(seed: int = 0, rows: int = 12, length: int = 5, vocab: int = 16) -> Seq2SeqBatch:
    """Target = source: a task a tiny Transformer learns in a few hundred updates."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(3, vocab, (rows, length), generator=generator)
    tgt_in = torch.cat([torch.full((rows, 1), BOS), src], dim=1)
    tgt_out = torch.cat([src, torch.full((rows, 1), EOS)], dim=1)
    ones = torch.ones(rows, length, dtype=torch.bool)
    return Seq2SeqBatch(src, ones, tgt_in, tgt_out, torch.ones(rows, length + 1, dtype=torch.bool),
                        torch.arange(rows))


def tiny_transformer(seed: int = 0, vocab: int = 16) -> TransformerSeq2Seq:
    torch.manual_seed(seed)
    config = TransformerConfig(d_model=32, num_heads=4, ffn_size=64, num_encoder_layers=2, num_decoder_layers=2,
                               dropout=0.0, share_embeddings=True)
    return TransformerSeq2Seq(config, vocab, vocab)


class OneBatch:
    def __init__(self, batch, count):
        self.batch, self.count = batch, count

    def epoch_batches(self, epoch):
        return [self.batch] * self.count


def test_precision_names_are_checked():
    with pytest.raises(ConfigError, match="precision: must be one of"):
        TrainConfig(precision="fp16")
    with pytest.raises(ConfigError, match="dtype: must be one of"):
        parse_dtype("half")
    assert parse_dtype("bfloat16") is torch.bfloat16 and parse_dtype(None) is None


def test_compute_dtype_follows_autocast():
    x = torch.zeros(2)
    assert compute_dtype(x) is torch.float32
    with autocast(CPU, "bf16"):
        assert compute_dtype(x) is torch.bfloat16
    with autocast(CPU, "fp32"):
        assert compute_dtype(x) is torch.float32


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_fused_loss_under_autocast_matches_its_unfused_twin(label_smoothing):
    """Both run their products in bf16 and the log-softmax in fp32; gradients reach the fp32 weight as fp32."""
    torch.manual_seed(0)
    hidden = torch.randn(70, 32, requires_grad=True)
    weight = (0.3 * torch.randn(50, 32)).requires_grad_()
    bias = torch.randn(50, requires_grad=True)
    targets = torch.randint(1, 50, (70,))
    results = []
    for fused in (True, False):
        with autocast(CPU, "bf16"):
            if fused:
                loss = linear_cross_entropy_sum(hidden, weight, bias, targets, label_smoothing, chunk_rows=16)
            else:
                loss = token_nll_sum(F.linear(hidden, weight, bias), targets, label_smoothing)
        grads = torch.autograd.grad(loss, (hidden, weight, bias))
        results.append((loss, *grads))
    (fused_loss, *fused_grads), (twin_loss, *twin_grads) = results
    assert fused_loss.dtype is torch.float32
    torch.testing.assert_close(fused_loss, twin_loss, rtol=2e-3, atol=0.0)
    for fused_grad, twin_grad, tensor in zip(fused_grads, twin_grads, (hidden, weight, bias)):
        assert fused_grad.dtype is tensor.dtype
        torch.testing.assert_close(fused_grad, twin_grad, rtol=0.02, atol=0.02)
    # ... and both are the fp32 loss up to bf16 rounding (not some other function)
    reference = token_nll_sum(F.linear(hidden, weight, bias), targets, label_smoothing)
    torch.testing.assert_close(fused_loss, reference, rtol=0.01, atol=0.0)


@pytest.mark.parametrize("masking", ["padding", "causal"])
def test_bf16_attention_path_agrees_with_fp32_sdpa(masking):
    """On the CPU, bf16 attention takes the explicit path (the flash kernel is slow in bf16): the same function."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 6, 16) for _ in range(3))
    mask = padding_to_attention_mask(torch.arange(6)[None, :] < torch.tensor([6, 3])[:, None])
    is_causal = masking == "causal"
    mask = None if is_causal else mask
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    got = attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask, is_causal, 0.0)
    assert got.dtype is torch.bfloat16
    torch.testing.assert_close(got.float(), expected, rtol=0.03, atol=0.03)
    # causal: a query never sees a later key, in bf16 too
    if is_causal:
        changed = v.clone()
        changed[:, :, -1] += 10.0
        again = attend(q.bfloat16(), k.bfloat16(), changed.bfloat16(), None, True, 0.0)
        torch.testing.assert_close(again[:, :, :-1], got[:, :, :-1], rtol=0, atol=0)
        assert not torch.equal(again[:, :, -1], got[:, :, -1])


def test_bf16_training_learns_and_keeps_fp32_weights(tmp_path):
    batch = copy_task_batch()
    model = tiny_transformer()
    config = TrainConfig(lr=3e-3, max_epochs=1, log_every=10, progress=False, precision="bf16", device="cpu")
    trainer = Trainer(model, Seq2SeqObjective(), config, tmp_path)
    first = trainer.train_step(batch)
    trainer.fit(OneBatch(batch, 150))
    with torch.no_grad():
        final = float(Seq2SeqObjective().loss(model, batch)[0]) / batch.num_tgt_tokens  # an fp32 evaluation
    assert final < 0.3 * first, (first, final)
    assert all(p.dtype is torch.float32 for p in model.parameters())
    saved = torch.load(tmp_path / "last.pt", weights_only=False)["model"]
    assert all(t.dtype is torch.float32 for t in saved.values() if t.is_floating_point())


def test_bf16_decoding_matches_fp32_on_a_trained_model(tmp_path):
    """The weights cast to bf16 (``load_model_dir(dtype=)``): the same outputs as fp32 on a learned task, fp32
    scores, and bf16 KV caches."""
    batch = copy_task_batch(rows=12)
    model = tiny_transformer()
    config = TrainConfig(lr=3e-3, max_epochs=1, progress=False, device="cpu")
    Trainer(model, Seq2SeqObjective(), config, tmp_path).fit(OneBatch(batch, 250))
    model.eval()
    bf16 = tiny_transformer().eval()
    bf16.load_state_dict(model.state_dict())
    bf16.to(torch.bfloat16)
    outputs = {}
    with torch.no_grad():
        for name, m in (("fp32", model), ("bf16", bf16)):
            state = m.init_state(m.encode(batch.src_ids, batch.src_mask), batch.src_mask)
            if name == "bf16":
                assert all(isinstance(c, KVCache) and c.key_buffer.dtype is torch.bfloat16
                           for c in state.self_cache)
            log_probs, _ = m.step(torch.full((12,), BOS), state)
            assert log_probs.dtype is torch.float32
            outputs[name] = greedy_search(m, state, 12, BOS, EOS, 8)
    assert outputs["fp32"].tokens == outputs["bf16"].tokens
    assert outputs["fp32"].tokens == batch.src_ids.tolist()  # it did learn to copy
    torch.testing.assert_close(torch.as_tensor(outputs["bf16"].scores), torch.as_tensor(outputs["fp32"].scores),
                               rtol=0, atol=0.05)
