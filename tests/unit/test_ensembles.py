"""Ensembles whose members disagree (seed 002: "average their probabilities, or take a majority vote").

Every member here is scripted: its distributions are fixed numbers, so each test's expected answer is worked out by
hand in a comment, and in each the mean of the probabilities and the majority vote pick different answers (an
ensemble of one model twice could not tell the two rules apart, nor either from the model alone).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seqlab.data.vocab import Vocab
from seqlab.decoding import DecodeConfig, search
from seqlab.decoding.ensemble import EnsembleModel, majority_vote, vote
from seqlab.ensemble import LabelEnsemble, check_members, combine, vote_log_probs, vote_outputs
from seqlab.errors import ConfigError
from seqlab.models.build import build_lm
from seqlab.models.rnn_lm import RNNLMConfig
from seqlab.models.transformer import TransformerConfig
from seqlab.run_dir import LoadedModel
from seqlab.tasks import build_config, classification, tagging
from seqlab.tasks.language_model import next_token_log_probs
from tests.unit.scripted import EOS, BOS, ScriptedModel


class ScriptedStepModule(nn.Module):
    """A ``ScriptedModel`` as an ``nn.Module`` (ensembles hold their members in an ``nn.ModuleList``)."""

    def __init__(self, table: dict, default: list[float]):
        super().__init__()
        self.scripted = ScriptedModel(table, default)

    def init_state(self, batch_size: int):
        return self.scripted.init_state(batch_size)

    def step(self, tokens, state):
        return self.scripted.step(tokens, state)


class FixedScores(nn.Module):
    """A classifier (``rows`` (C,) -> (B, C)) or tagger (``rows`` (S, C) -> (B, S, C)) whose probabilities are
    ``rows`` whatever the input; returns their logs as its logits."""

    def __init__(self, rows: list):
        super().__init__()
        self.log_probs = nn.Parameter(torch.tensor(rows).log(), requires_grad=False)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.log_probs if self.log_probs.dim() == 1 else self.log_probs[: ids.size(1)]
        return scores.expand(ids.size(0), *scores.shape)


# Tokens A, B, C, <eos> = 0..3 (scripted.py); every member ends after its first token.
A, B = 0, 1
AFTER_ANY = [0.0, 0.0, 0.0, 1.0, 0.0]
PREFERS_A = {(): [0.5, 0.4, 0.0, 0.1, 0.0], (A,): AFTER_ANY, (B,): AFTER_ANY}
PREFERS_B = {(): [0.0, 0.9, 0.0, 0.1, 0.0], (A,): AFTER_ANY, (B,): AFTER_ANY}


def greedy(model) -> list[int]:
    decode = DecodeConfig(strategy="greedy", max_len=4)
    return search(model, model.init_state(1), 1, BOS, EOS, decode, 4)[0][0].tokens


def test_step_ensemble_mean_and_vote_pick_different_outputs():
    # Two members say A (0.5 vs 0.4 for B), one says B (0.9, A 0.0): the vote is A, two to one.  The mean
    # probabilities are A (0.5 + 0.5 + 0.0) / 3 = 0.333 and B (0.4 + 0.4 + 0.9) / 3 = 0.567: the mean says B.
    members = [ScriptedStepModule(PREFERS_A, AFTER_ANY), ScriptedStepModule(PREFERS_A, AFTER_ANY),
               ScriptedStepModule(PREFERS_B, AFTER_ANY)]
    assert [greedy(m) for m in members] == [[A], [A], [B]]
    assert greedy(EnsembleModel(members)) == [B]
    assert majority_vote([[greedy(m)] for m in members]) == [[A]]
    log_probs, _ = EnsembleModel(members).step(torch.tensor([BOS]), EnsembleModel(members).init_state(1))
    assert log_probs.exp()[0, :4].tolist() == pytest.approx([1 / 3, 1.7 / 3, 0.0, 0.1])


def test_vote_counts_by_key_and_a_tie_goes_to_the_earliest_member():
    # "x" twice beats "y" once; in the second column each output is given once: the first member's ("p") wins.
    assert vote([["x", "p"], ["y", "q"], ["x", "r"]]) == ["x", "p"]
    # The key decides sameness: "A." and "a." are one answer by lower case, so two of three.
    assert vote([["b"], ["A."], ["a."]], key=str.lower) == ["A."]


# ------------------------------------------------------------------------------------------------ label ensembles
LABELS = ["neg", "neu", "pos"]
TWO_FOR_NEG = [0.5, 0.45, 0.05]
STRONG_NEU = [0.05, 0.85, 0.1]


def loaded(task: str, model: nn.Module, labels: list[str] = LABELS, words: list[str] = ("w",)) -> LoadedModel:
    vocab = Vocab.build([list(words)])
    if task == "classification":
        pre = classification.Preprocessing(vocab, list(labels))
    else:
        pre = tagging.Preprocessing(vocab, list(labels), "pos")
    return LoadedModel(model.eval(), pre, build_config({"task": task}), "scripted")


def test_classification_mean_of_softmax_and_vote_of_argmaxes_differ():
    # neg wins two members (0.5 > 0.45), neu the third (0.85): the vote is neg.  Mean probabilities: neg
    # (0.5 + 0.5 + 0.05) / 3 = 0.35, neu (0.45 + 0.45 + 0.85) / 3 = 0.583, pos 0.067: the mean says neu.
    members = [loaded("classification", FixedScores(p)) for p in (TWO_FOR_NEG, TWO_FOR_NEG, STRONG_NEU)]
    assert [classification.classify(m, [["w"]]) for m in members] == [["neg"], ["neg"], ["neu"]]
    assert classification.classify(combine(members, "mean"), [["w"]]) == ["neu"]
    assert classification.classify(combine(members, "vote"), [["w"]]) == ["neg"]


def test_classification_vote_tie_goes_to_the_higher_mean_probability():
    # One vote each for neg (0.6) and neu (0.8): tied.  Mean neg 0.35, neu 0.45: neu.  The earliest member's
    # answer (the translation vote's rule) would have been neg.  Shares (votes + mean) / (M + 1):
    # neg (1 + 0.35) / 3 = 0.45, neu (1 + 0.45) / 3 = 0.4833, pos (0 + 0.2) / 3 = 0.0667 -- a distribution.
    members = [loaded("classification", FixedScores(p)) for p in ([0.6, 0.1, 0.3], [0.1, 0.8, 0.1])]
    ensemble = combine(members, "vote")
    assert classification.classify(ensemble, [["w"]]) == ["neu"]
    shares = ensemble.model(torch.ones(1, 1, dtype=torch.long), torch.ones(1, 1, dtype=torch.bool)).exp()[0]
    assert shares.tolist() == pytest.approx([0.45, 1.45 / 3, 0.2 / 3])


def test_vote_shares_follow_the_votes_over_any_mean_probabilities():
    # Random members: wherever one class has more votes than another its share is larger, and shares sum to 1.
    torch.manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(5, 200, 4) * 3, -1)  # (M, B, C)
    votes = nn.functional.one_hot(log_probs.argmax(-1), 4).sum(0)  # (B, C)
    shares = vote_log_probs(log_probs).exp()
    assert torch.allclose(shares.sum(-1), torch.ones(200))
    more = votes[:, :, None] > votes[:, None, :]  # (B, C, C): class i has more votes than class j
    assert (shares[:, :, None] > shares[:, None, :])[more].all()


def test_tagging_mean_and_vote_per_token():
    # Token 1 as in the classification test (vote neg, mean neu); token 2: every member says pos.
    rows = {"a": [TWO_FOR_NEG, [0.1, 0.1, 0.8]], "b": [STRONG_NEU, [0.2, 0.1, 0.7]]}
    members = [loaded("tagging", FixedScores(rows[name]), words=["x", "y"]) for name in ("a", "a", "b")]
    assert tagging.tag(combine(members, "mean"), [["x", "y"]]) == [["neu", "pos"]]
    assert tagging.tag(combine(members, "vote"), [["x", "y"]]) == [["neg", "pos"]]


def test_tagging_ensemble_loss_is_the_mean_probability_of_the_gold_tags():
    # Gold tags neg, pos: -log((0.5 + 0.5 + 0.05) / 3) - log((0.8 + 0.8 + 0.7) / 3).
    rows = {"a": [TWO_FOR_NEG, [0.1, 0.1, 0.8]], "b": [STRONG_NEU, [0.2, 0.1, 0.7]]}
    ensemble = LabelEnsemble([FixedScores(rows[name]) for name in ("a", "a", "b")])
    ids, mask = torch.ones(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool)
    loss = ensemble.loss_sum(ids, mask, torch.tensor([[0, 2]]))
    assert float(loss) == pytest.approx(-math.log(1.05 / 3) - math.log(2.3 / 3), rel=1e-5)


# ------------------------------------------------------------------------------------------------ LM scoring
def test_lm_ensemble_score_of_an_rnn_and_a_transformer_equals_stepping_the_mean_model():
    # Teacher-forced scoring (one forward per member) against the StepModel path (one step per token): the same
    # log of the mean probability, members of two architectures.
    torch.manual_seed(0)
    rnn = build_lm("rnn", RNNLMConfig(embedding_size=8, hidden_size=8), 12).eval()
    transformer = build_lm("transformer", TransformerConfig(d_model=8, num_heads=2, ffn_size=16,
                                                            num_decoder_layers=1), 12).eval()
    ensemble = EnsembleModel([rnn, transformer]).eval()
    ids = torch.tensor([[2, 5, 7, 3, 9]])
    with torch.no_grad():
        forced = next_token_log_probs(ensemble, ids)[0]  # (T, V)
        state, stepped = ensemble.init_state(1), []
        for token in ids[0]:
            log_probs, state = ensemble.step(token.view(1), state)
            stepped.append(log_probs[0])
        by_hand = torch.log((next_token_log_probs(rnn, ids).exp() + next_token_log_probs(transformer, ids).exp()) / 2)
    assert torch.allclose(forced, torch.stack(stepped), atol=1e-5)
    assert torch.allclose(forced, by_hand[0], atol=1e-6)


# ------------------------------------------------------------------------------------------------ refusals
def test_members_with_other_labels_or_tasks_are_refused_naming_both_directories():
    first = loaded("classification", FixedScores(TWO_FOR_NEG))
    other_labels = loaded("classification", FixedScores(TWO_FOR_NEG), labels=["bad", "meh", "good"])
    with pytest.raises(ConfigError, match=r"runs/b and runs/a differ .*labels"):
        check_members(["runs/a", "runs/b"], [first, other_labels])
    other_vocab = loaded("classification", FixedScores(TWO_FOR_NEG), words=["v"])
    with pytest.raises(ConfigError, match=r"runs/b and runs/a differ .*vocab"):
        check_members(["runs/a", "runs/b"], [first, other_vocab])
    tagger = loaded("tagging", FixedScores([TWO_FOR_NEG]))
    with pytest.raises(ConfigError, match=r"runs/b is a tagging model, runs/a a classification one"):
        check_members(["runs/a", "runs/b"], [first, tagger])


def test_vote_of_step_models_and_the_mean_of_crf_taggers_are_refused():
    step_members = [LoadedModel(ScriptedStepModule(PREFERS_A, AFTER_ANY), None, build_config({"task": "lm"}), "s")] * 2
    with pytest.raises(ConfigError, match="vote on whole outputs"):
        combine(step_members, "vote")
    with pytest.raises(ConfigError, match="CRF.*--ensemble vote"):
        LabelEnsemble([FixedPathTagger([TWO_FOR_NEG], [0]), FixedScores([TWO_FOR_NEG])], "mean")


class FixedPathTagger(FixedScores):
    """A tagger with a (scripted) CRF: its emissions are ``rows``, its Viterbi path is always ``path``."""

    def __init__(self, rows: list, path: list[int]):
        super().__init__(rows)
        self.crf = ScriptedViterbi(path)


class ScriptedViterbi:
    def __init__(self, path: list[int]):
        self.path = path

    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        return [self.path[:length] for length in mask.sum(1).tolist()]


def test_crf_taggers_vote_with_their_viterbi_paths():
    # Two CRF members whose emissions favour neg at token 1 (0.5) but whose Viterbi paths say pos, pos; a plain
    # member says neu (0.85), pos.  Token 1: pos has two votes (the paths), neg none although it is the emissions'
    # argmax in two members: pos.  Token 2: three votes for pos.
    rows = [TWO_FOR_NEG, [0.1, 0.1, 0.8]]
    members = [FixedPathTagger(rows, [2, 2]), FixedPathTagger(rows, [2, 2]),
               FixedScores([STRONG_NEU, [0.2, 0.1, 0.7]])]
    ensemble = loaded("tagging", LabelEnsemble(members, "vote"), words=["x", "y"])
    assert tagging.tag(ensemble, [["x", "y"]]) == [["pos", "pos"]]
    argmax_vote = loaded("tagging", LabelEnsemble([FixedScores(rows), FixedScores(rows), members[2]], "vote"),
                         words=["x", "y"])
    assert tagging.tag(argmax_vote, [["x", "y"]]) == [["neg", "pos"]]


def test_vote_outputs_uses_every_member():
    # Three members answer "a", "b", "b" for one input: "b".
    members = [loaded("classification", FixedScores(p)) for p in (TWO_FOR_NEG, STRONG_NEU, STRONG_NEU)]
    assert vote_outputs(members, lambda m: classification.classify(m, [["w"]])) == ["neu"]
