"""Ensembles for every task that predicts (seed 002: "average their probabilities, or take a majority vote").

    members = load_members(["runs/a", "runs/b", "runs/c"])     # one task, one vocabulary and label set
    loaded = combine(members, "mean")                            # a LoadedModel: the task's own functions use it
    classification.evaluate(loaded, test)                        # ... exactly as they use one model

What the ensemble is depends only on what the task's model yields, not on the task's name:

* per-example (classification) or per-token (tagging) class scores: ``LabelEnsemble``, whose forward is the log of
  the members' mean probabilities ("mean") or of their vote shares ("vote", ties to the higher mean probability; a
  CRF tagger votes with its Viterbi path and cannot join a mean);
* next-token distributions (translation, LM, captioning): ``EnsembleModel``, a ``StepModel`` every search drives
  unchanged, the mean of the members' probabilities at every step.  A vote over whole outputs cannot be one model:
  decode with every member and call ``vote_outputs`` (``seqlab.decoding.ensemble.vote``).

Members may differ in architecture (a GRU and a CNN classifier, an RNN and a Transformer translator) as long as they
read and write the same symbols: their preprocessing (vocabularies, tokenizers, label names) must be equal, else a
one-line ``ConfigError`` names the two directories and the first field that differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import torch
from torch import nn

from seqlab.config import first_difference
from seqlab.decoding.ensemble import EnsembleModel, average_log_probs, vote
from seqlab.errors import ConfigError
from seqlab.run_dir import LoadedModel

HOWS = ("mean", "vote")
LABEL_TASKS = ("classification", "tagging")  # class scores per example / per token
STEP_TASKS = ("translation", "lm", "captioning", "dialogue")  # next-token distributions
Output = TypeVar("Output")


def load_members(model_dirs: Sequence[str | Path], which: str = "best", device: str | torch.device = "cpu",
                 dtype: str | torch.dtype | None = None, task: str | None = None,
                 quantize: str | None = None) -> list[LoadedModel]:
    """Every directory loaded (``seqlab.tasks.load_model_dir``'s options), checked to be one ensemble."""
    from seqlab.tasks import load_model_dir

    if not model_dirs:
        raise ConfigError("--models: an ensemble needs at least one model directory")
    members = [load_model_dir(d, which, device, dtype, task, quantize) for d in model_dirs]
    check_members(list(map(str, model_dirs)), members)
    return members


def check_members(model_dirs: list[str], members: list[LoadedModel]) -> None:
    """One task, and preprocessing equal to the first member's: the members read and write the same ids."""
    first = members[0]
    for directory, member in zip(model_dirs[1:], members[1:]):
        if member.task != first.task:
            raise ConfigError(f"--models: {directory} is a {member.task} model, {model_dirs[0]} a {first.task} one")
        difference = first_difference(first.preprocessing.to_dict(), member.preprocessing.to_dict())
        if difference:
            raise ConfigError(f"--models: {directory} and {model_dirs[0]} differ in their vocabularies or labels "
                              f"(at {difference.split(' (')[0]}); an ensemble needs one vocabulary and label set")


def check_how(how: str, task: str) -> None:
    if how not in HOWS:
        raise ConfigError(f"--ensemble: must be mean or vote, got {how!r}")
    if task not in LABEL_TASKS + STEP_TASKS:
        raise ConfigError(f"--models: a {task} model cannot be ensembled here "
                          f"(tasks: {', '.join(LABEL_TASKS + STEP_TASKS)})")


def combine(members: list[LoadedModel], how: str = "mean") -> LoadedModel:
    """One ``LoadedModel`` standing for all the members (one member: itself), in eval mode."""
    task = members[0].task
    if len(members) == 1:  # any task's model alone, whatever ``how`` says
        return members[0]
    check_how(how, task)
    if task in STEP_TASKS and how == "vote":
        # A vote over whole outputs is no model to decode with: callers decode every member and vote_outputs.
        raise ConfigError(f"--ensemble vote: {task} members vote on whole outputs, which only translate, generate "
                          "and caption predict do; use --ensemble mean here")
    models = [m.model for m in members]
    model = LabelEnsemble(models, how) if task in LABEL_TASKS else EnsembleModel(models)
    first = members[0]
    return LoadedModel(model.eval(), first.preprocessing, first.config, first.checkpoint)


def vote_outputs(members: list[LoadedModel], use: Callable[[LoadedModel], list[Output]],
                 key: Callable[[Output], Any] = lambda output: output) -> list[Output]:
    """``use`` each member (e.g. translate, caption, generate) -> per input the output most members gave; a tie
    goes to the earliest member's.  ``key``: what makes two outputs the same (their text, their tokens)."""
    return vote([use(member) for member in members], key)


class LabelEnsemble(nn.Module):
    """Classifiers (``forward(ids, mask) -> (B, C)``) or taggers (``-> (B, S, C)``) as one model.

    ``forward`` returns log-probabilities, where a member returns logits: every caller that takes the argmax,
    ``log_softmax`` or cross-entropy of the logits works unchanged (log_softmax of a log-distribution is itself).
    ``loss_sum`` and ``decode`` are the tagger's interface (``seqlab.models.tagger.Tagger``).  A tagger with a CRF
    votes with its Viterbi path; its softmaxed emissions only break ties.
    """

    def __init__(self, models: list[nn.Module], how: str = "mean"):
        super().__init__()
        if how not in HOWS:
            raise ConfigError(f"--ensemble: must be mean or vote, got {how!r}")
        if how == "mean" and any(getattr(m, "crf", None) is not None for m in models):
            # A CRF's probabilities are over whole tag sequences, so there is no per-token distribution to average.
            raise ConfigError("--ensemble mean: a tagger with a CRF has no per-token tag probabilities to average; "
                              "use --ensemble vote")
        self.members, self.how = nn.ModuleList(models), how

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The members' inputs -> log of the mean probabilities, or of the vote shares, (..., C).  Trailing None
        inputs (a tagger's optional ones that no member reads) are not passed on."""
        while inputs and inputs[-1] is None:
            inputs = inputs[:-1]
        scores = [m(*inputs).float() for m in self.members]
        log_probs = torch.stack([torch.log_softmax(s, -1) for s in scores])  # (M, ..., C)
        if self.how == "mean":
            return average_log_probs(log_probs)
        choices = torch.stack([self._choice(m, s, inputs) for m, s in zip(self.members, scores)])  # (M, ...)
        return vote_log_probs(log_probs, choices)

    @staticmethod
    def _choice(member: nn.Module, scores: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """A member's answer, (...): the argmax of its scores, or with a CRF its Viterbi path (B, S), 0 past the
        real tokens."""
        crf = getattr(member, "crf", None)
        if crf is None:
            return scores.argmax(-1)
        paths = crf.viterbi(scores, inputs[1])
        padded = torch.zeros(scores.shape[:-1], dtype=torch.long, device=scores.device)  # (B, S)
        for row, path in enumerate(paths):
            padded[row, :len(path)] = torch.tensor(path, dtype=torch.long)
        return padded

    def loss_sum(self, ids: torch.Tensor, mask: torch.Tensor, tags: torch.Tensor,
                 *extra: torch.Tensor | None) -> torch.Tensor:
        """Summed negative log of the ensemble's probability of every real token's gold tag."""
        picked = self.forward(ids, mask, *extra).gather(-1, tags.unsqueeze(-1)).squeeze(-1)  # (B, S)
        return -picked.masked_select(mask).sum()

    @torch.no_grad()
    def decode(self, ids: torch.Tensor, mask: torch.Tensor, *extra: torch.Tensor | None) -> list[list[int]]:
        """The ensemble's tag of every real token (per-token argmax), one list per sentence."""
        best = self.forward(ids, mask, *extra).argmax(-1).tolist()
        return [row[:length] for row, length in zip(best, mask.sum(1).tolist())]


def vote_log_probs(log_probs: torch.Tensor, choices: torch.Tensor | None = None) -> torch.Tensor:
    """(M, ..., C) members' log-probs -> log of (votes + mean probability) / (M + 1), (..., C).

    Each member's answer (``choices`` (M, ...), by default its argmax) is one vote.  The mean probability sums to 1
    over the classes, so it breaks ties between classes with equally many votes but never outweighs a whole vote:
    the argmax is the majority class, a tie going to the class the members find likelier on average.  The shares
    sum to 1: a distribution a loss can read.
    """
    members, classes = log_probs.size(0), log_probs.size(-1)
    choices = log_probs.argmax(-1) if choices is None else choices
    votes = nn.functional.one_hot(choices, classes).sum(0).float()  # (..., C)
    return torch.log((votes + log_probs.exp().mean(0)) / (members + 1))
