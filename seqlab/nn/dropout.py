"""Dropout whose keep-mask is drawn from 16-bit random numbers: four masks per 64-bit draw.

``torch.nn.functional.dropout`` on the CPU draws one Bernoulli variate per element (``bernoulli_``) into a float
noise tensor, then multiplies: 7 % of a Transformer training step here (docs/PERFORMANCE.md).  Here one 64-bit
random integer gives four independent 16-bit uniforms; an element is kept when its uniform is at or above the
threshold that leaves a fraction ``p_used`` = round(p * 2^16) / 2^16 below it (|p_used - p| <= 2^-17), and kept
elements are scaled by 1 / (1 - p_used), so the expectation is exactly the input's.  The mask is boolean (1 byte
per element kept for backward instead of a 4-byte float).  The twin is F.dropout's formula, ``x * mask / (1 - p)``
(tests/unit/test_dropout.py compares them given one mask, and checks the drop rate of every 16-bit lane).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str | None = None,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """-> (bool mask of ``shape``, True = keep, with P(keep) = 1 - p_used; p_used, the drop probability used)."""
    numel = math.prod(shape)
    threshold = round(p * _LEVELS)  # uniforms in [0, threshold) drop: P = threshold / 2^16
    words = torch.empty((numel + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(1 << 63), None, generator=generator)  # all 64 bits uniform
    uniforms = words.view(torch.int16)[:numel].view(shape)  # in [-2^15, 2^15)
    return uniforms >= threshold - (1 << 15), threshold / _LEVELS


def dropout16(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training-mode dropout of ``x`` with drop probability ``p`` (0 <= p < 1)."""
    if round(p * _LEVELS) == 0:  # nothing would be dropped: draw no mask
        return x
    keep, p_used = keep_mask(x.shape, p, x.device, generator)
    return (x * keep).mul_(1.0 / (1.0 - p_used))


class Dropout(nn.Dropout):
    """``nn.Dropout`` drawing its mask with ``dropout16``; the same module otherwise (no state, same repr
    fields), so it replaces ``nn.Dropout`` anywhere.  Falls back to F.dropout for p >= 1 and in-place use."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p >= 1.0 or self.inplace or not x.is_floating_point():
            return F.dropout(x, self.p, True, self.inplace)
        return dropout16(x, self.p)
