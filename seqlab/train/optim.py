"""Optimisers and learning-rate schedules, chosen by name from the train config.

Every schedule is a ``LambdaLR`` multiplier of the base ``lr`` applied per *update* (not per epoch), except
``plateau``, which reacts to a validation metric (``ReduceLROnPlateau``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from seqlab.errors import ConfigError


def build_optimizer(params, name: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.0,
                    betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"optimizer: must be adam, adamw or sgd, got {name!r}")


def lr_multiplier(schedule: str, step: int, warmup_steps: int = 0, decay_every: int = 1, gamma: float = 1.0,
                  d_model: int = 512, decay_start: int = 0) -> float:
    """Multiplier of the base lr after ``step`` updates.

    constant; step (× gamma every ``decay_every`` updates after the first ``decay_start``); exponential
    (× gamma^((step - decay_start)/decay_every));
    warmup_linear (linear ramp over warmup_steps, then constant); inverse_sqrt (fairseq: linear warmup, then
    ∝ 1/√step); noam (Vaswani et al. 2017: d^-0.5 · min(step^-0.5, step · warmup^-1.5); use lr=1 for the paper's
    values).
    """
    step = max(step, 1)
    decayed = max(step - decay_start, 0)
    warm = min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0
    if schedule == "constant":
        return 1.0
    if schedule == "warmup_linear":
        return warm
    if schedule == "step":
        return warm * gamma ** (decayed // max(decay_every, 1))
    if schedule == "exponential":
        return warm * gamma ** (decayed / max(decay_every, 1))
    if schedule == "inverse_sqrt":
        return warm if step < warmup_steps else math.sqrt(max(warmup_steps, 1) / step)
    if schedule == "noam":
        return d_model ** -0.5 * min(step ** -0.5, step * max(warmup_steps, 1) ** -1.5)
    raise ConfigError(f"schedule: unknown schedule {schedule!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, config: Any) -> Any:
    """``config`` is a ``TrainConfig``; returns a scheduler with ``state_dict``/``load_state_dict``."""
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if config.early_stopping_mode == "max" else "min",
            factor=config.gamma, patience=config.plateau_patience, min_lr=config.min_lr)

    def multiplier(step: int) -> float:
        return lr_multiplier(config.schedule, step, config.warmup_steps, config.decay_every, config.gamma,
                             config.noam_d_model, config.decay_start)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
