"""Forced decoding: the log-probability a model gives to known targets.

``score_targets`` uses the teacher-forced ``forward``: one call for the whole batch.
"""

from __future__ import annotations

from typing import Any

import torch


def score_targets(model: Any, src_ids: torch.Tensor, src_mask: torch.Tensor, tgt_in_ids: torch.Tensor,
                  tgt_out_ids: torch.Tensor, tgt_mask: torch.Tensor) -> torch.Tensor:
    """Sum over real target tokens of log p(y_t | y_<t, x): (B,).  tgt_in/out/mask: (B, T), out ends with <eos>."""
    log_probs = torch.log_softmax(model(src_ids, src_mask, tgt_in_ids).float(), dim=-1)  # (B, T, V)
    return _sum_gathered(log_probs, tgt_out_ids, tgt_mask)


def _sum_gathered(log_probs: torch.Tensor, tgt_out_ids: torch.Tensor, tgt_mask: torch.Tensor) -> torch.Tensor:
    picked = log_probs.gather(2, tgt_out_ids[:, :, None])[:, :, 0]  # (B, T)
    # where, not multiply: a padded position may hold -inf, and -inf * 0 is nan.
    return torch.where(tgt_mask, picked, torch.zeros_like(picked)).sum(dim=1)
