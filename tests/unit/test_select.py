"""Blocked row argmax / top-k equal torch.argmax / torch.topk (the twins), ties and -inf rows included."""

import pytest
import torch

from seqlab.decoding.select import BLOCK, row_argmax, row_topk


# 100 whole blocks (k up to 12 takes the blocked path), with and without a shorter last block: a vocabulary of
# 7794 (the Multi30k joint sentencepiece model) is 243 blocks and 18 more.
WIDTHS = [BLOCK * 100, BLOCK * 100 + 1, BLOCK * 100 + 18]


def _rows(seed=0, rows=9, width=BLOCK * 100):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, width, generator=generator)
    x[1] = torch.randint(0, 3, (width,), generator=generator).float()  # many ties
    x[2] = float("-inf")  # every token forbidden
    x[3, :] = float("-inf")
    x[3, width - 1] = 0.0  # one allowed token, in the last block
    x[4, 5] = x[4, BLOCK * 7 + 3] = x[4].max() + 1  # the maximum twice, in two blocks
    x[5, width - 1] = x[5].max() + 1  # the maximum in the last element (in the tail, if there is one)
    x[6, 0] = x[6, width - 1] = x[6].max() + 1  # the maximum first and last
    return x


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("seed", range(5))
def test_row_argmax_equals_argmax(seed, width):
    x = _rows(seed, width=width)
    assert torch.equal(row_argmax(x), x.argmax(-1))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("k", [1, 2, 5, 10])
@pytest.mark.parametrize("seed", range(5))
def test_row_topk_equals_topk(k, seed, width):
    x = _rows(seed, width=width)
    values, indices = row_topk(x, k)
    twin_values, _ = x.topk(k, dim=-1)
    assert torch.equal(values, twin_values)  # the same k largest values, largest first
    assert torch.equal(x.gather(1, indices), values)  # each index points at its value
    finite = torch.isfinite(values).all(-1)
    for row in range(x.size(0)):  # and the indices are distinct (no element counted twice)
        if finite[row]:
            assert len(set(indices[row].tolist())) == k


def test_tail_elements_are_found():
    x = torch.zeros(4, BLOCK * 100 + 5)
    x[0, -1] = x[1, -5] = 1.0  # the tail's last and first elements
    x[2, -3] = x[2, 10] = 1.0  # a tie between a whole block and the tail: the first index wins
    x[3, -2:] = torch.tensor([3.0, 2.0])  # the two largest, both in the tail
    assert row_argmax(x).tolist() == [x.size(1) - 1, x.size(1) - 5, 10, x.size(1) - 2]
    values, indices = row_topk(x, 2)
    assert values[3].tolist() == [3.0, 2.0] and indices[3].tolist() == [x.size(1) - 2, x.size(1) - 1]


def test_other_shapes_take_the_twins():
    x = torch.randn(3, BLOCK * 6 + 1)  # too few blocks
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
