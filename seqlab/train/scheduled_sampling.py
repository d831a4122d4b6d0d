"""Scheduled sampling (Bengio et al. 2015; seed 002 "scheduled sampling"): decay how often the decoder is fed the
ground truth, so that training looks more like decoding, where it only ever sees its own predictions.

ε_i is the probability of feeding the ground-truth token at update i:

* linear:           ε_i = max(ε_min, 1 - c·i)
* exponential:      ε_i = max(ε_min, k^i)            (k < 1, e.g. 0.9999)
* inverse_sigmoid:  ε_i = max(ε_min, k / (k + exp(i / k)))   (k ≥ 1, e.g. 1000)
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from seqlab.contracts import PAD_ID
from seqlab.train.loss import token_nll_sum

SCHEDULES = ("none", "linear", "exponential", "inverse_sigmoid")


def epsilon(schedule: str, step: int, k: float = 1000.0, c: float = 1e-4, minimum: float = 0.0) -> float:
    """Probability of feeding the ground truth at update ``step``."""
    if schedule == "none":
        return 1.0
    if schedule == "linear":
        value = 1.0 - c * step
    elif schedule == "exponential":
        value = k ** step
    elif schedule == "inverse_sigmoid":
        value = k / (k + math.exp(min(step / k, 700.0)))
    else:
        raise ValueError(f"unknown scheduled sampling schedule {schedule!r}; expected one of {SCHEDULES}")
    return max(minimum, min(1.0, value))


def scheduled_sampling_log_probs(model: Any, state: Any, tgt_in_ids: torch.Tensor, eps: float,
                                 generator: torch.Generator | None = None,
                                 feed: str = "sample") -> tuple[torch.Tensor, Any]:
    """Decoder log-probs (B, T, V) where input t > 0 is the ground truth with probability ``eps`` (per token),
    else the model's own prediction at t - 1: sampled from it (``feed="sample"``, Bengio et al.) or its argmax;
    and the state after the last step (a language model carries it into the next BPTT chunk).

    ``state`` is the decoder state before ``tgt_in_ids[:, 0]`` (a seq2seq model's ``init_state(encode(...))``,
    a language model's carried state), and step 0 always reads that true token (<bos>, or a chunk's first
    token).  The choice carries no gradient (it is a discrete decision).  ``generator`` None draws from
    PyTorch's global RNG, which the trainer checkpoints, so a resumed run makes the same choices.
    """
    steps = tgt_in_ids.size(1)
    tokens = tgt_in_ids[:, 0]
    outputs = []
    for t in range(steps):
        log_probs, state = model.step(tokens, state)  # (B, V)
        outputs.append(log_probs)
        if t + 1 == steps:
            break
        truth = tgt_in_ids[:, t + 1]
        if eps >= 1.0:
            tokens = truth
            continue
        with torch.no_grad():
            if feed == "sample":
                predicted = torch.multinomial(log_probs.float().exp(), 1, generator=generator).squeeze(1)
            else:
                predicted = log_probs.argmax(-1)
            use_truth = torch.rand(truth.shape, generator=generator, device=truth.device) < eps
            tokens = torch.where(use_truth, truth, predicted)
    return torch.stack(outputs, dim=1), state


# (model, batch) -> (the decoder state before the first target token, tgt_in_ids (B, T), tgt_out_ids (B, T))
StartFn = Callable[[Any, Any], tuple[Any, torch.Tensor, torch.Tensor]]


class ScheduledSamplingObjective:
    """Scheduled sampling (Bengio et al. 2015; seed 002) for any model of the decoding interface: at every step
    feed the ground truth with probability ε_i, else the model's own previous prediction; ε_i decays with the
    number of updates i.  ``start`` says where a task's batch keeps the decoder's start state and targets.

    ε = 1 is teacher forcing.  The per-step loop is slower than the teacher-forced ``forward``; the choice of the
    fed token carries no gradient.  The loss is ``token_nll_sum`` (label smoothing honoured, <pad> ignored).
    """

    def __init__(self, config: Any, start: StartFn | None = None):  # config: a TrainConfig
        self.config = config
        self.start = start
        self.step = 0

    def set_step(self, step: int) -> None:
        self.step = step

    def epsilon(self) -> float:
        c = self.config
        return epsilon(c.scheduled_sampling, self.step, c.scheduled_sampling_k, c.scheduled_sampling_c,
                       c.scheduled_sampling_min)

    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        state, tgt_in_ids, tgt_out_ids = self.start(model, batch)
        loss, _ = self.loss_from(model, state, tgt_in_ids, tgt_out_ids)
        return loss, int((tgt_out_ids != PAD_ID).sum())

    def loss_from(self, model: torch.nn.Module, state: Any, tgt_in_ids: torch.Tensor,
                  tgt_out_ids: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """The summed loss of one sequence batch decoded from ``state``, and the state after its last step."""
        log_probs, state = scheduled_sampling_log_probs(model, state, tgt_in_ids, self.epsilon(), None,
                                                        self.config.scheduled_sampling_feed)
        # cross-entropy of log-probs: its log-softmax changes nothing (they are normalised) but allows smoothing
        return token_nll_sum(log_probs, tgt_out_ids, self.config.label_smoothing), state
