"""Blocked row argmax / top-k equal torch.argmax / torch.topk (the twins), ties and -inf rows included."""

import pytest
import torch

from seqlab.decoding.select import BLOCK, row_argmax, row_topk


def _rows(seed=0, rows=7, width=BLOCK * 100):  # 100 blocks: k up to 12 takes the blocked path
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, width, generator=generator)
    x[1] = torch.randint(0, 3, (width,), generator=generator).float()  # many ties
    x[2] = float("-inf")  # every token forbidden
    x[3, :] = float("-inf")
    x[3, width - 1] = 0.0  # one allowed token, in the last block
    x[4, 5] = x[4, BLOCK * 7 + 3] = x[4].max() + 1  # the maximum twice, in two blocks
    return x


@pytest.mark.parametrize("seed", range(5))
def test_row_argmax_equals_argmax(seed):
    x = _rows(seed)
    assert torch.equal(row_argmax(x), x.argmax(-1))


@pytest.mark.parametrize("k", [1, 2, 5, 10])
@pytest.mark.parametrize("seed", range(5))
def test_row_topk_equals_topk(k, seed):
    x = _rows(seed)
    values, indices = row_topk(x, k)
    twin_values, _ = x.topk(k, dim=-1)
    assert torch.equal(values, twin_values)  # the same k largest values, largest first
    assert torch.equal(x.gather(1, indices), values)  # each index points at its value
    finite = torch.isfinite(values).all(-1)
    for row in range(x.size(0)):  # and the indices are distinct (no element counted twice)
        if finite[row]:
            assert len(set(indices[row].tolist())) == k


def test_other_shapes_take_the_twins():
    x = torch.randn(3, BLOCK * 40 + 1)  # not a multiple of the block
    assert torch.equal(row_argmax(x), x.argmax(-1))
    assert torch.equal(row_topk(x, 3)[1], x.topk(3, dim=-1)[1])
    transposed = torch.randn(BLOCK * 40, 3).t()  # not contiguous
    assert torch.equal(row_argmax(transposed), transposed.argmax(-1))


def test_searches_over_a_large_vocabulary_match_the_twins(monkeypatch):
    """Greedy and beam search with the blocked selection (a vocabulary of 80 blocks, so beam 5's 2K = 10 takes the
    blocked path) give the outputs and scores of the same searches with torch.argmax / torch.topk."""
    import seqlab.decoding.beam as beam_module
    import seqlab.decoding.greedy as greedy_module
    from seqlab.decoding.beam import beam_search
    from seqlab.decoding.config import DecodeConfig
    from seqlab.decoding.greedy import greedy_search
    from seqlab.models.transformer import TransformerConfig, TransformerSeq2Seq

    torch.manual_seed(0)
    vocab = BLOCK * 80
    model = TransformerSeq2Seq(TransformerConfig(d_model=16, num_heads=2, ffn_size=32, num_encoder_layers=1,
                                                 num_decoder_layers=1, dropout=0.0), vocab, vocab).eval()
    src = torch.randint(4, vocab, (3, 6))
    src_mask = torch.ones_like(src, dtype=torch.bool)
    config = DecodeConfig(strategy="beam", beam_size=5, max_len=8)

    def run():
        with torch.no_grad():
            state = model.init_state(model.encode(src, src_mask), src_mask)
            greedy = greedy_search(model, state, 3, 1, 2, 8)
            beams = beam_search(model, state, 3, 1, 2, config, 8)
        return greedy, [[(h.tokens, round(h.score, 5)) for h in hyps] for hyps in beams]

    blocked = run()
    monkeypatch.setattr(greedy_module, "row_argmax", lambda x: x.argmax(-1))
    monkeypatch.setattr(beam_module, "row_topk", lambda x, k: x.topk(k, dim=-1))
    twin = run()
    assert blocked[0].tokens == twin[0].tokens and blocked[0].scores == pytest.approx(twin[0].scores)
    assert blocked[1] == twin[1]
