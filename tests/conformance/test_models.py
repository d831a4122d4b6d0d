"""The contract every seq2seq model keeps (seqlab/contracts.py), run over every model builder.

Shapes, step-by-step decoding == teacher forcing, padding invariance, reorder, a state_dict round trip through a
file loaded with ``weights_only=True``, and learning (overfit one batch).  A model family joins by adding a
builder to ``BUILDERS``.  The language models and the captioner: test_decoders.py.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from seqlab.contracts import Seq2SeqModel

SRC_VOCAB, TGT_VOCAB, BOS, EOS = 19, 23, 1, 2


def transformer(pre_norm: bool) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        from seqlab.models.transformer import TransformerConfig, TransformerSeq2Seq

        config = TransformerConfig(d_model=32, num_heads=4, ffn_size=64, num_encoder_layers=2,
                                   num_decoder_layers=2, dropout=0.0, pre_norm=pre_norm)
        return TransformerSeq2Seq(config, SRC_VOCAB, TGT_VOCAB)
    return build


def rnn(cell: str, attention: str) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        from seqlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig

        config = RNNSeq2SeqConfig(cell=cell, attention=attention, embedding_size=16, hidden_size=32, num_layers=2,
                                  dropout=0.0)
        return RNNSeq2Seq(config, SRC_VOCAB, TGT_VOCAB)
    return build


BUILDERS = {
    "transformer-post-ln": transformer(pre_norm=False),
    "transformer-pre-ln": transformer(pre_norm=True),
    "rnn-gru-no-attention": rnn("gru", "none"),
    "rnn-lstm-additive": rnn("lstm", "additive"),
    "rnn-gru-multihead": rnn("gru", "multihead"),
}


@pytest.fixture(params=list(BUILDERS))
def build(request) -> Callable[[], torch.nn.Module]:
    return BUILDERS[request.param]


def make_model(build, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build().eval()


def batch() -> tuple[torch.Tensor, ...]:
    """Right-padded src (3, 6) with lengths 6, 3, 1 and tgt_in (3, 5) with lengths 5, 2, 4; <bos> first."""
    generator = torch.Generator().manual_seed(0)
    src = torch.randint(3, SRC_VOCAB, (3, 6), generator=generator)
    src_mask = torch.arange(6)[None, :] < torch.tensor([6, 3, 1])[:, None]
    tgt = torch.randint(3, TGT_VOCAB, (3, 5), generator=generator)
    tgt[:, 0] = BOS
    tgt_mask = torch.arange(5)[None, :] < torch.tensor([5, 2, 4])[:, None]
    return src.masked_fill(~src_mask, 0), src_mask, tgt.masked_fill(~tgt_mask, 0), tgt_mask


def stepped_log_probs(model, src, src_mask, tgt) -> torch.Tensor:
    """Feed tgt one token at a time through the decoding interface -> (B, T, V)."""
    state = model.init_state(model.encode(src, src_mask), src_mask)
    outputs = []
    for t in range(tgt.size(1)):
        log_probs, state = model.step(tgt[:, t], state)
        outputs.append(log_probs)
    return torch.stack(outputs, dim=1)


@torch.no_grad()
def test_shapes_and_protocol(build):
    model = make_model(build)
    src, src_mask, tgt, _ = batch()
    assert isinstance(model, Seq2SeqModel)
    assert model(src, src_mask, tgt).shape == (3, 5, TGT_VOCAB)
    log_probs, state = model.step(torch.full((3,), BOS), model.init_state(model.encode(src, src_mask), src_mask))
    assert log_probs.shape == (3, TGT_VOCAB)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3))
    assert hasattr(state, "reorder")


@torch.no_grad()
def test_step_equals_forward(build):
    model = make_model(build)
    src, src_mask, tgt, tgt_mask = batch()
    forward = torch.log_softmax(model(src, src_mask, tgt).float(), dim=-1)
    stepped = stepped_log_probs(model, src, src_mask, tgt)
    torch.testing.assert_close(stepped[tgt_mask], forward[tgt_mask], rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_padding_invariance(build):
    model = make_model(build)
    src, src_mask, tgt, tgt_mask = batch()
    logits = model(src, src_mask, tgt)
    for row in range(3):
        src_len, tgt_len = int(src_mask[row].sum()), int(tgt_mask[row].sum())
        alone = model(src[row:row + 1, :src_len], src_mask[row:row + 1, :src_len], tgt[row:row + 1, :tgt_len])
        torch.testing.assert_close(logits[row, :tgt_len], alone[0], rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_reorder(build):
    model = make_model(build)
    src, src_mask, tgt, _ = batch()
    state = model.init_state(model.encode(src, src_mask), src_mask)
    _, state = model.step(tgt[:, 0], state)
    reference, _ = model.step(tgt[:, 1], state)
    index = torch.tensor([2, 2, 0, 1, 0])  # permute, duplicate and expand 3 -> 5 rows
    log_probs, _ = model.step(tgt[index, 1], state.reorder(index))
    torch.testing.assert_close(log_probs, reference[index], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_state_dict_round_trip(build, tmp_path):
    model = make_model(build, seed=0)
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    restored = make_model(build, seed=1)  # different initial weights
    src, src_mask, tgt, _ = batch()
    assert not torch.allclose(restored(src, src_mask, tgt), model(src, src_mask, tgt))
    restored.load_state_dict(torch.load(path, weights_only=True))
    assert torch.equal(restored(src, src_mask, tgt), model(src, src_mask, tgt))


def test_overfits_one_batch(build):
    model = make_model(build).train()
    src, src_mask, tgt_in, tgt_mask = batch()
    tgt_out = torch.cat([tgt_in[:, 1:], torch.zeros(3, 1, dtype=torch.long)], dim=1)
    tgt_out[torch.arange(3), tgt_mask.sum(1) - 1] = EOS  # y_1 .. y_n <eos>, aligned with tgt_in
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        logits = model(src, src_mask, tgt_in)
        loss = F.cross_entropy(logits[tgt_mask], tgt_out[tgt_mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
