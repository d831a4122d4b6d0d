"""Scheduled sampling (Bengio et al. 2015; seed 002 "scheduled sampling"): decay how often the decoder is fed the
ground truth, so that training looks more like decoding, where it only ever sees its own predictions.

ε_i is the probability of feeding the ground-truth token at update i:

* linear:           ε_i = max(ε_min, 1 - c·i)
* exponential:      ε_i = max(ε_min, k^i)            (k < 1, e.g. 0.9999)
* inverse_sigmoid:  ε_i = max(ε_min, k / (k + exp(i / k)))   (k ≥ 1, e.g. 1000)
"""

from __future__ import annotations

import math
from typing import Any

import torch

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


def scheduled_sampling_log_probs(model: Any, src_ids: torch.Tensor, src_mask: torch.Tensor,
                                 tgt_in_ids: torch.Tensor, eps: float, generator: torch.Generator | None = None,
                                 feed: str = "sample") -> torch.Tensor:
    """Decoder log-probs (B, T, V) where input t > 0 is the ground truth with probability ``eps`` (per token),
    else the model's own prediction at t - 1: sampled from it (``feed="sample"``, Bengio et al.) or its argmax.

    Step 0 always reads <bos>.  The choice carries no gradient (it is a discrete decision).  ``generator`` None
    draws from PyTorch's global RNG, which the trainer checkpoints, so a resumed run makes the same choices.
    """
    memory = model.encode(src_ids, src_mask)
    state = model.init_state(memory, src_mask)
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
    return torch.stack(outputs, dim=1)
