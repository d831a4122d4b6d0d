"""Losses as sums plus counts (STYLE habit 12): normalised once per update, never averaged twice.

Training perplexity and evaluation perplexity both come from ``token_nll_sum``: the same sums, so they agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqlab.models.base import PAD_ID, Seq2SeqBatch


def token_nll_sum(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy summed over non-pad targets.  logits (B, T, V) or (N, V); targets (B, T) or (N,).

    With label smoothing (Szegedy et al. 2016) the result is the smoothed loss, not the NLL.
    """
    vocab_size = logits.size(-1)
    return F.cross_entropy(logits.reshape(-1, vocab_size).float(), targets.reshape(-1), ignore_index=PAD_ID,
                           reduction="sum", label_smoothing=label_smoothing)


class Seq2SeqTask:
    """Teacher-forced cross-entropy for encoder-decoders: ``loss(model, batch) -> (loss_sum, num_tokens)``."""

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def loss(self, model: torch.nn.Module, batch: Seq2SeqBatch) -> tuple[torch.Tensor, int]:
        if getattr(model, "accepts_tgt_mask", False):
            # only the real positions' logits (N, V): no output projection or softmax spent on padding
            logits = model(batch.src_ids, batch.src_mask, batch.tgt_in_ids, tgt_mask=batch.tgt_mask)
            targets = batch.tgt_out_ids[batch.tgt_mask]
        else:
            logits, targets = model(batch.src_ids, batch.src_mask, batch.tgt_in_ids), batch.tgt_out_ids  # (B, T, V)
        return token_nll_sum(logits, targets, self.label_smoothing), batch.num_tgt_tokens


@torch.no_grad()
def corpus_nll(model: torch.nn.Module, batches, device: torch.device | str = "cpu") -> tuple[float, int]:
    """Summed NLL and token count of a seq2seq model over ``batches`` (teacher forcing, eval mode)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        logits = model(batch.src_ids, batch.src_mask, batch.tgt_in_ids)
        total += float(token_nll_sum(logits, batch.tgt_out_ids))
        count += batch.num_tgt_tokens
    model.train(was_training)
    return total, count


class ScheduledSamplingTask:
    """Scheduled sampling (Bengio et al. 2015; seed 002): at every decoder step feed the ground truth with
    probability ε_i, else the model's own previous prediction; ε_i decays with the number of updates i.

    ε = 1 is teacher forcing.  The per-step loop is slower than the teacher-forced ``forward``; the choice of the
    fed token carries no gradient.
    """

    def __init__(self, config):  # a TrainConfig
        self.config = config
        self.step = 0

    def set_step(self, step: int) -> None:
        self.step = step

    def epsilon(self) -> float:
        from seqlab.train.scheduled_sampling import epsilon

        c = self.config
        return epsilon(c.scheduled_sampling, self.step, c.scheduled_sampling_k, c.scheduled_sampling_c,
                       c.scheduled_sampling_min)

    def loss(self, model: torch.nn.Module, batch: Seq2SeqBatch) -> tuple[torch.Tensor, int]:
        from seqlab.train.scheduled_sampling import scheduled_sampling_log_probs

        log_probs = scheduled_sampling_log_probs(model, batch.src_ids, batch.src_mask, batch.tgt_in_ids,
                                                 self.epsilon(), None, self.config.scheduled_sampling_feed)
        vocab_size = log_probs.size(-1)
        loss = F.nll_loss(log_probs.reshape(-1, vocab_size), batch.tgt_out_ids.reshape(-1), ignore_index=PAD_ID,
                          reduction="sum")
        return loss, batch.num_tgt_tokens
