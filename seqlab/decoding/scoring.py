"""Forced decoding: the log-probability a model gives to known targets.

``score_targets`` uses the teacher-forced ``forward`` (one call for the whole batch); ``score_with_steps`` is its
step-by-step twin for models without ``forward`` (language models, ensembles of them) and the test oracle for
"``forward`` equals stepping".
"""

from __future__ import annotations

from typing import Any

import torch


def score_targets(model: Any, src_ids: torch.Tensor, src_mask: torch.Tensor, tgt_in_ids: torch.Tensor,
                  tgt_out_ids: torch.Tensor, tgt_mask: torch.Tensor) -> torch.Tensor:
    """Sum over real target tokens of log p(y_t | y_<t, x): (B,).  tgt_in/out/mask: (B, T), out ends with <eos>."""
    log_probs = torch.log_softmax(model(src_ids, src_mask, tgt_in_ids).float(), dim=-1)  # (B, T, V)
    return _sum_gathered(log_probs, tgt_out_ids, tgt_mask)


def score_with_steps(model: Any, state: Any, tgt_out_ids: torch.Tensor, tgt_mask: torch.Tensor,
                     bos_id: int) -> torch.Tensor:
    """The same sum by feeding <bos>, y_1, y_2, ... through ``model.step``: (B,).  ``state`` has B rows."""
    tokens = torch.full((tgt_out_ids.size(0),), bos_id, dtype=torch.long, device=tgt_out_ids.device)
    steps = []
    for t in range(tgt_out_ids.size(1)):
        log_probs, state = model.step(tokens, state)  # (B, V)
        steps.append(log_probs.float())
        tokens = tgt_out_ids[:, t]
    return _sum_gathered(torch.stack(steps, dim=1), tgt_out_ids, tgt_mask)  # stacked: (B, T, V)


def _sum_gathered(log_probs: torch.Tensor, tgt_out_ids: torch.Tensor, tgt_mask: torch.Tensor) -> torch.Tensor:
    picked = log_probs.gather(2, tgt_out_ids[:, :, None])[:, :, 0]  # (B, T)
    # where, not multiply: a padded position may hold -inf, and -inf * 0 is nan.
    return torch.where(tgt_mask, picked, torch.zeros_like(picked)).sum(dim=1)
