"""Losses as sums plus counts (STYLE habit 12): normalised once per update, never averaged twice.

Training perplexity and evaluation perplexity both come from ``token_nll_sum``: the same sums, so they agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqlab.contracts import PAD_ID
from seqlab.precision import compute_dtype


class _LinearCrossEntropy(torch.autograd.Function):
    """Summed (label-smoothed) cross-entropy of ``hidden @ weight.T + bias`` without keeping the (N, V) logits.

    Rows are taken ``chunk_rows`` at a time: project, log-softmax, loss; and when a gradient is wanted, the chunk's
    softmax (the exponentiated log-probabilities) becomes its logits' gradient in place,
    ``softmax - (1 - eps) onehot(y) - eps / V``, and goes straight into the (N, D) hidden and (V, D) weight
    gradients.  Those are kept for ``backward``, which only scales them by
    the incoming scalar.  So no (N, V) tensor ever lives — neither the logits, nor their log-softmax, nor its
    gradient — and no matmul is recomputed (the approach of Liger-Kernel's fused linear cross-entropy).
    The readable twin is ``token_nll_sum(F.linear(hidden, weight, bias), targets, eps)``; the tests compare both.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, label_smoothing: float, chunk_rows: int, dtype: torch.dtype):
        want_hidden, want_weight, want_bias = ctx.needs_input_grad[:3]
        want_any = want_hidden or want_weight or want_bias
        vocab_size = weight.size(0)
        total = hidden.new_zeros((), dtype=torch.float32)
        grad_hidden = torch.empty_like(hidden) if want_hidden else None
        grad_weight = torch.zeros_like(weight) if want_weight else None
        grad_bias = torch.zeros_like(bias) if want_bias else None
        # Products in ``dtype`` (bfloat16 under autocast: the weight is cast once, not once per chunk); the
        # log-softmax in fp32; gradients accumulated in the weights' dtype.
        w, b = weight.to(dtype), None if bias is None else bias.to(dtype)
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, hidden.size(0), chunk_rows):
                rows = slice(start, start + chunk_rows)
                x, y = hidden[rows].to(dtype), targets[rows]  # (n, D), (n,)
                logits = F.linear(x, w, b).float()  # (n, V)
                log_probs = torch.log_softmax(logits, dim=-1, out=logits)  # in place: one (n, V) buffer per chunk
                loss = -(1.0 - label_smoothing) * log_probs.gather(1, y[:, None]).squeeze(1)
                if label_smoothing:
                    loss = loss - label_smoothing * log_probs.mean(dim=-1)
                total += loss.sum()
                if not want_any:
                    continue
                grad = log_probs.exp_()  # softmax, in place of the log-probabilities
                grad[torch.arange(y.numel(), device=y.device), y] -= 1.0 - label_smoothing
                if label_smoothing:
                    grad.sub_(label_smoothing / vocab_size)
                grad = grad.to(dtype)
                if want_hidden and hidden.dtype == dtype:
                    torch.mm(grad, w, out=grad_hidden[rows])
                elif want_hidden:
                    grad_hidden[rows] = grad @ w
                if want_weight and weight.dtype == dtype:
                    grad_weight.addmm_(grad.t(), x)
                elif want_weight:
                    grad_weight += grad.t() @ x  # a bfloat16 product, summed over chunks in fp32
                if want_bias:
                    grad_bias += grad.sum(0)
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors  # grad_total: the scalar d(objective)/d(sum)
        return (None if grad_hidden is None else grad_hidden * grad_total,
                None if grad_weight is None else grad_weight * grad_total,
                None if grad_bias is None else grad_bias * grad_total, None, None, None, None)


def fused_output_layer(model: torch.nn.Module) -> torch.nn.Linear | None:
    """The model's ``output_layer`` when a loss may fuse it (``linear_cross_entropy_sum`` reads its ``weight``
    and ``bias``); None when the model has none, or when it is not a plain ``nn.Linear`` (an int8 model's
    ``seqlab.quantize.Int8Linear``: the loss then takes the model's own logits)."""
    output = getattr(model, "output_layer", None)
    return output if isinstance(output, torch.nn.Linear) else None


def linear_cross_entropy_sum(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                             targets: torch.Tensor, label_smoothing: float = 0.0, chunk_rows: int = 512,
                             ignore_index: int | None = PAD_ID) -> torch.Tensor:
    """``token_nll_sum(F.linear(hidden, weight, bias), targets, label_smoothing)`` without the (N, V) logits.

    hidden (N, D) or (B, T, D), targets (N,) or (B, T); weight (V, D).  Targets equal to ``ignore_index``
    carry no loss (None: every target counts, as ``F.cross_entropy`` without ``ignore_index``).
    Fits training (gradients are computed during the forward pass, one scalar backward scales them); under
    ``torch.no_grad()`` only the sum is computed.  Under ``torch.autocast`` the products run in its dtype
    (bfloat16) as ``F.linear`` would; the log-softmax and the sum are fp32 either way.
    """
    hidden, targets = hidden.reshape(-1, hidden.size(-1)), targets.reshape(-1)
    if ignore_index is not None:
        real = targets != ignore_index
        if not bool(real.all()):
            hidden, targets = hidden[real], targets[real]
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, float(label_smoothing), chunk_rows,
                                     compute_dtype(hidden))


def token_nll_sum(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy summed over non-pad targets.  logits (B, T, V) or (N, V); targets (B, T) or (N,).

    With label smoothing (Szegedy et al. 2016) the result is the smoothed loss, not the NLL.
    """
    vocab_size = logits.size(-1)
    return F.cross_entropy(logits.reshape(-1, vocab_size).float(), targets.reshape(-1), ignore_index=PAD_ID,
                           reduction="sum", label_smoothing=label_smoothing)
