"""Beam search against its oracles: the d2l seed's hand-worked table, greedy search (K = 1), exhaustive search
(K covering the space), itself with other batch sizes, and the penalties' definitions."""

from __future__ import annotations

import math

import pytest
import torch

from tests.unit.scripted import A, B, BOS, C, EOS, TinyGRU, d2l_model, random_hidden
from seqlab.decoding.beam import beam_search, beam_step
from seqlab.decoding.config import DecodeConfig
from seqlab.decoding.exhaustive import enumerate_hypotheses, exhaustive_search
from seqlab.decoding.greedy import greedy_search
from seqlab.decoding.penalties import (block_repeated_ngrams, force_tokens, length_normaliser,
                                       penalise_repetitions)


def beam_config(**overrides) -> DecodeConfig:
    return DecodeConfig(**{"strategy": "beam", "beam_size": 2, "max_len": 6, **overrides})


def test_d2l_table_greedy_finds_0048_and_beam_finds_0054():
    """Seed 001: greedy 0.5*0.4*0.4*0.6 = 0.048 (A B C); beam with K = 2 finds 0.5*0.3*0.6*0.6 = 0.054 (A C B)."""
    model = d2l_model()
    greedy = greedy_search(model, model.init_state(1), 1, BOS, EOS, max_len=6)
    assert greedy.tokens == [[A, B, C]]
    assert greedy.scores[0] == pytest.approx(math.log(0.048), rel=1e-5)
    for penalty in ("none", "average", "gnmt"):
        best = beam_search(model, model.init_state(1), 1, BOS, EOS, beam_config(length_penalty=penalty), 6)[0][0]
        assert best.tokens == [A, C, B]
        assert best.log_prob == pytest.approx(math.log(0.054), rel=1e-5)
    average = beam_search(model, model.init_state(1), 1, BOS, EOS, beam_config(), 6)[0][0]
    assert average.score == pytest.approx(math.log(0.054) / 4 ** 0.75, rel=1e-5)  # L = 4 with <eos>


def test_beam_step_keeps_the_2k_best_extensions():
    log_probs = torch.log(torch.tensor([[[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]]]))  # (B=1, K=2, V=3)
    beam_scores = torch.log(torch.tensor([[0.5, 0.4]]))
    scores, beams, tokens = beam_step(log_probs, beam_scores)
    # extensions: beam0 -> .05 .30 .15, beam1 -> .20 .10 .10; the 4 best: .30 .20 .15 .10
    assert beams[0, :3].tolist() == [0, 1, 0] and tokens[0, :3].tolist() == [1, 0, 2]
    assert torch.exp(scores)[0].tolist() == pytest.approx([0.30, 0.20, 0.15, 0.10])


def test_beam_of_one_equals_greedy():
    model = TinyGRU(vocab_size=6, seed=3)
    hidden = random_hidden(5)
    greedy = greedy_search(model, model.init_state(hidden), 5, 0, 1, max_len=8)
    beams = beam_search(model, model.init_state(hidden), 5, 0, 1,
                        beam_config(beam_size=1, length_penalty="none"), 8)
    assert [h[0].tokens for h in beams] == greedy.tokens
    assert [h[0].log_prob for h in beams] == pytest.approx(greedy.scores, abs=1e-5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("penalty", ["none", "average", "gnmt"])
def test_beam_covering_the_space_equals_exhaustive_search(seed, penalty):
    vocab_size, eos, max_len = 4, 3, 4
    model = TinyGRU(vocab_size=vocab_size, seed=seed)
    state = model.init_state(random_hidden(1, seed=seed + 100))
    config = beam_config(beam_size=vocab_size ** max_len, length_penalty=penalty, nbest=3)
    with torch.no_grad():
        beams = beam_search(model, state, 1, 0, eos, config, max_len)[0]
        every = enumerate_hypotheses(model, state, vocab_size, 0, eos, max_len, penalty, 0.75)
        best = exhaustive_search(model, state, vocab_size, 0, eos, max_len, penalty, 0.75)
    assert len(every) == sum(3 ** t for t in range(max_len)) + 3 ** (max_len - 1) * 3  # ended by <eos> or cut
    assert best.tokens == every[0].tokens
    assert [h.tokens for h in beams] == [h.tokens for h in every[:3]]
    assert [h.score for h in beams] == pytest.approx([h.score for h in every[:3]], abs=1e-5)


def test_small_beam_never_beats_exhaustive():
    for seed in range(5):
        model = TinyGRU(vocab_size=5, seed=seed)
        state = model.init_state(random_hidden(1, seed=seed))
        with torch.no_grad():
            best = exhaustive_search(model, state, 5, 0, 4, 4)
            beam = beam_search(model, state, 1, 0, 4, beam_config(beam_size=2), 4)[0][0]
        assert beam.score <= best.score + 1e-6


def test_beam_output_does_not_depend_on_batch_size():
    model = TinyGRU(vocab_size=7, seed=11)
    hidden = random_hidden(6, seed=5)
    config = beam_config(beam_size=3, nbest=3, max_len=9)
    max_len = torch.tensor([9, 3, 9, 5, 9, 1])
    with torch.no_grad():
        together = beam_search(model, model.init_state(hidden), 6, 0, 1, config, max_len)
        alone = [beam_search(model, model.init_state(hidden[i:i + 1]), 1, 0, 1, config, max_len[i:i + 1])[0]
                 for i in range(6)]
    for batched, single in zip(together, alone):
        assert [h.tokens for h in batched] == [h.tokens for h in single]
        assert [h.score for h in batched] == pytest.approx([h.score for h in single], abs=1e-5)
    assert all(len(h.tokens) <= 3 for h in together[1]) and all(len(h.tokens) <= 1 for h in together[5])


def test_prefix_tokens_are_forced_and_scored():
    model = d2l_model()
    hyps = beam_search(model, model.init_state(2), 2, BOS, EOS, beam_config(), 6, prefix=[[B], [A, B]])
    assert hyps[0][0].tokens[:1] == [B]
    assert hyps[1][0].tokens == [A, B, C]  # the best continuation of A B is C <eos>
    assert hyps[1][0].log_prob == pytest.approx(math.log(0.048), rel=1e-5)
    greedy = greedy_search(model, model.init_state(1), 1, BOS, EOS, 6, prefix=[[A, C]])
    assert greedy.tokens == [[A, C, B]] and greedy.scores[0] == pytest.approx(math.log(0.054), rel=1e-5)


def test_min_len_forbids_early_eos_and_max_len_cuts():
    model = d2l_model()
    best = beam_search(model, model.init_state(1), 1, BOS, EOS, beam_config(min_len=4), 8)[0][0]
    assert len(best.tokens) >= 4
    cut = beam_search(model, model.init_state(1), 1, BOS, EOS, beam_config(length_penalty="none"), 2)[0][0]
    assert cut.tokens == [A, B] and cut.log_prob == pytest.approx(math.log(0.5 * 0.4), rel=1e-5)  # no <eos>


def test_nbest_is_sorted_and_distinct():
    model = TinyGRU(vocab_size=6, seed=2)
    hyps = beam_search(model, model.init_state(random_hidden(1)), 1, 0, 1, beam_config(beam_size=4, nbest=4), 7)[0]
    assert len(hyps) == 4
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    assert len({tuple(h.tokens) for h in hyps}) == 4


def test_beam_attention_has_one_row_per_token():
    model = d2l_model()  # attention row t is one-hot on position t mod 3
    best = beam_search(model, model.init_state(1), 1, BOS, EOS, beam_config(), 6, return_attention=True)[0][0]
    assert best.attention.shape == (3, 3)
    assert best.attention.argmax(-1).tolist() == [0, 1, 2]


def test_no_repeat_ngram_and_repetition_penalty():
    log_probs = torch.zeros(1, 5)
    history = torch.tensor([[1, 2, 3, 1, 2]])  # bigram context "2": 2 was followed by 3 -> 3 banned for n=2
    assert torch.isinf(block_repeated_ngrams(log_probs, history, 2)).nonzero()[:, 1].tolist() == [3]
    assert torch.isinf(block_repeated_ngrams(log_probs, history, 3)).nonzero()[:, 1].tolist() == [3]  # "1 2" -> 3
    assert torch.isinf(block_repeated_ngrams(log_probs, history, 1)).nonzero()[:, 1].tolist() == [1, 2, 3]
    uniform = torch.log(torch.full((1, 4), 0.25))
    penalised = penalise_repetitions(uniform, torch.tensor([[0]]), 2.0)
    assert torch.exp(penalised).sum().item() == pytest.approx(1.0)
    # token 0: 0.25^2 before renormalising, so 0.0625 / (0.0625 + 0.75)
    assert torch.exp(penalised[0, 0]).item() == pytest.approx(0.0625 / 0.8125)
    forced = force_tokens(torch.log(torch.full((2, 3), 1 / 3)), torch.tensor([2, -1]))
    assert torch.isinf(forced[0, :2]).all() and torch.isfinite(forced[1]).all()


def test_no_repeat_ngram_in_beam_search():
    model = TinyGRU(vocab_size=4, seed=7, sharpness=6.0)
    hyps = beam_search(model, model.init_state(random_hidden(3)), 3, 0, 3,
                       beam_config(beam_size=3, no_repeat_ngram=2, min_len=6, max_len=8), 8)
    for sentence in hyps:
        tokens = sentence[0].tokens
        bigrams = list(zip(tokens, tokens[1:]))
        assert len(bigrams) == len(set(bigrams))


def test_length_normalisers():
    assert length_normaliser(16, 0.5, "average") == pytest.approx(4.0)
    assert length_normaliser(7, 1.0, "gnmt") == pytest.approx(2.0)
    assert length_normaliser(7, 1.0, "none") == 1.0


class RowCounter(torch.nn.Module):
    """Wraps a step model and records how many rows every step was given."""

    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, []

    def step(self, tokens, state):
        self.rows.append(tokens.numel())
        return self.model.step(tokens, state)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 1.0])
def test_greedy_drops_stopped_rows_and_matches_each_row_alone(monkeypatch, fraction):
    """Stopped rows leave the batch once they are ``DROP_FRACTION`` of it (0.1: at every stop here; 1.0: never,
    every step has all 8 rows); either way each row's output is its output alone."""
    import seqlab.decoding.greedy as greedy_module

    monkeypatch.setattr(greedy_module, "DROP_FRACTION", fraction)
    model = TinyGRU(vocab_size=5, seed=4, sharpness=1.0)  # eos = 1 is likely enough that rows end at different steps
    hidden = random_hidden(8, seed=2)
    max_len = torch.tensor([12, 2, 12, 5, 12, 12, 1, 12])
    counter = RowCounter(model)
    with torch.no_grad():
        together = greedy_search(counter, model.init_state(hidden), 8, 0, 1, max_len, return_attention=True)
        alone = [greedy_search(model, model.init_state(hidden[i:i + 1]), 1, 0, 1, max_len[i:i + 1],
                               return_attention=True) for i in range(8)]
    assert together.tokens == [result.tokens[0] for result in alone]
    assert together.scores == pytest.approx([result.scores[0] for result in alone], abs=1e-5)
    for batched, single in zip(together.attention, alone):
        assert torch.allclose(batched, single.attention[0], atol=1e-6)
    # a row's step count is its output length (+1 for <eos> unless its budget cut it)
    steps = [min(len(ids) + 1, int(budget)) for ids, budget in zip(together.tokens, max_len)]
    live = [sum(s > t for s in steps) for t in range(max(steps))]
    assert len(counter.rows) == len(live) and all(n >= alive for n, alive in zip(counter.rows, live))
    assert counter.rows == sorted(counter.rows, reverse=True)
    if fraction == 0.1:
        assert counter.rows == live  # dropped at every stop
    elif fraction == 1.0:
        assert counter.rows == [8] * len(live)  # never dropped
    else:
        assert live < counter.rows and counter.rows[-1] < 8  # dropped in batches


def test_greedy_prefix_follows_its_row_after_others_stop():
    model = d2l_model()  # row 0 is cut after one step; row 1's forced A C must still reach it at steps 0 and 1
    result = greedy_search(model, model.init_state(2), 2, BOS, EOS, torch.tensor([1, 6]), prefix=[[B], [A, C]])
    assert result.tokens == [[B], [A, C, B]]
    assert result.scores[1] == pytest.approx(math.log(0.054), rel=1e-5)


def test_beam_stopping_rules():
    """Without a length penalty "current_length" is exact, so it equals "bound"; with one, the looser rules stop
    sentences sooner (fewer rows stepped) and every rule still returns K finished or budget-cut hypotheses."""
    model = TinyGRU(vocab_size=6, seed=7, sharpness=1.5)
    hidden = random_hidden(6, seed=3)

    def run(penalty, stopping):
        counter = RowCounter(model)
        config = beam_config(beam_size=3, nbest=3, max_len=12, length_penalty=penalty, alpha=1.0,
                             beam_stopping=stopping)
        with torch.no_grad():
            hyps = beam_search(counter, model.init_state(hidden), 6, 0, 1, config, 12)
        return hyps, sum(counter.rows)

    exact, exact_rows = run("none", "bound")
    current, current_rows = run("none", "current_length")
    assert [[h.tokens for h in s] for s in exact] == [[h.tokens for h in s] for s in current]
    assert exact_rows == current_rows
    rows = {stopping: run("average", stopping)[1] for stopping in ("bound", "current_length", "k_finished")}
    assert rows["k_finished"] <= rows["current_length"] <= rows["bound"]
    assert rows["k_finished"] < rows["bound"]
    with pytest.raises(Exception, match="beam_stopping"):
        beam_config(beam_stopping="sometimes")


def test_forbid_eos_copies_unless_in_place():
    from seqlab.decoding.penalties import forbid_eos

    log_probs = torch.zeros(3, 4)
    copied = forbid_eos(log_probs, 2, torch.tensor([0, 5, 1]), 2)
    assert torch.isinf(copied[:, 2]).tolist() == [True, False, True] and not torch.isinf(log_probs).any()
    same = forbid_eos(log_probs, 2, torch.tensor([0, 5, 1]), 2, inplace=True)
    assert same is log_probs and torch.equal(same, copied)
