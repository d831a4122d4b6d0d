"""The continuous cache pointer (Grave, Joulin & Usunier 2017, "Improving Neural Language Models with a Continuous
Cache", ICLR): an evaluation-time memory that lets a trained RNN LM copy words from its recent past.

Read the stream x_0 x_1 ... x_N with the state carried (batch 1, as ``stream_nll``).  Position t reads x_t, has the
final hidden state h_t (the vector the output layer reads) and predicts x_{t+1}.  The memory at t holds the pairs
(h_i, x_{i+1}) of the ``window`` positions before it, W_t = {i : t - window <= i < t}; x_{i+1} is already known at t.

    p_cache(w | h_t) = Σ_{i ∈ W_t, x_{i+1} = w} exp(θ h_t·h_i) / Σ_{i ∈ W_t} exp(θ h_t·h_i)        (paper, eq. 2)
    p(w | h_t)       = (1 - λ) p_model(w | h_t) + λ p_cache(w | h_t)                              (linear interpolation)

At t = 0 the memory is empty and p = p_model.  θ, λ and the window are tuned on the validation split and then
applied to test; nothing is trained.  Every token after the opening one is predicted exactly once, so the summed
NLL and the token count are those of ``stream_nll`` and λ = 0 gives its figure.

Only the target's probability is needed for perplexity, so the fast paths never build the (T, V) cache
distribution: p_cache(x_{t+1}) is a masked softmax over the window (the weights of the keys whose next token is the
target, over all weights).  ``cache_stream_nll`` does this per BPTT chunk with memory O(window); ``cache_grid``
tunes the hyper-parameters on features computed once by ``stream_features``.  ``cache_stream_nll_reference`` is
the readable twin: one token at a time, the full distributions of eqs. (2)-(3), compared in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from seqlab.errors import ConfigError
from seqlab.data.streams import BPTTBatches


def check_cache_model(model: torch.nn.Module) -> None:
    """The cache needs a state carried across chunks and the hidden states the output layer reads."""
    if not getattr(model, "stateful", False) or not hasattr(model, "hidden_states"):
        raise ConfigError(f"continuous cache: needs a recurrent LM (RNNLM, which carries its state and exposes "
                          f"hidden_states); {type(model).__name__} is not supported")


def check_cache_options(window: int, thetas: Sequence[float], lambdas: Sequence[float]) -> None:
    if window < 1:
        raise ConfigError(f"cache window: must be >= 1, got {window}")
    # θ = 0 (a uniform, unigram cache) would make θ·(-inf) NaN at the masked keys; the paper's θ are positive.
    if any(theta <= 0 for theta in thetas):
        raise ConfigError(f"cache theta: must be > 0, got {list(thetas)}")
    if any(not 0.0 <= lambda_ < 1.0 for lambda_ in lambdas):
        raise ConfigError(f"cache lambda: must be in [0, 1), got {list(lambdas)}")


# ------------------------------------------------------------------------------------------------ the fast path
def block_cache_log_probs(hidden: torch.Tensor, next_ids: torch.Tensor, num_queries: int, window: int,
                          thetas: Sequence[float], empty_log_probs: torch.Tensor) -> torch.Tensor:
    """log p_cache(x_{t+1} | h_t) of eq. (2) for the last ``num_queries`` rows, for every θ: (len(thetas), T).

    hidden (K, D) and next_ids (K,) are consecutive positions of the stream: a memory of M = K - T earlier rows,
    then the T queries.  Row t of the queries sees the up-to-``window`` rows strictly before it; where it sees none
    (t = 0 of the stream) the result is ``empty_log_probs`` (T,), so that p = p_model there.

        keys    0 ........ M-1 | M ........ K-1
        query t                  ^ at M + t: keys [M + t - window, M + t)
    """
    size, first = hidden.size(0), hidden.size(0) - num_queries
    targets = next_ids[first:]  # (T,)
    dots = hidden[first:].float() @ hidden.float().T  # (T, K)
    query_pos = torch.arange(first, size, device=hidden.device)[:, None]
    key_pos = torch.arange(size, device=hidden.device)[None, :]
    in_window = (key_pos < query_pos) & (key_pos >= query_pos - window)  # (T, K), the causal band
    matches = in_window & (next_ids[None, :] == targets[:, None])  # (T, K), keys followed by the target
    dots = dots.masked_fill(~in_window, -math.inf)
    has_memory = in_window.any(1)  # (T,)
    # θ > 0, so the row max of θ·dots is θ·(row max of dots): one max serves every θ (a stable softmax).
    shifted = dots - torch.where(has_memory, dots.amax(1), 0.0)[:, None]  # (T, K), <= 0, -inf outside the band
    matches = matches.to(shifted.dtype)
    rows = []
    for theta in thetas:  # in place: the grid's hot loop, a few passes over (T, K) per θ
        weights = shifted.mul(theta).exp_()  # (T, K), 0 outside the band
        total = weights.sum(1)
        matched = weights.mul_(matches).sum(1)  # may underflow to 0: log p_cache = -inf, fine
        log_cache = matched.log() - total.log()  # NaN on rows without memory, replaced next
        rows.append(torch.where(has_memory, log_cache, empty_log_probs))
    return torch.stack(rows)


def mix_log_probs(model_log_probs: torch.Tensor, cache_log_probs: torch.Tensor, lambda_: float) -> torch.Tensor:
    """log((1 - λ) p_model + λ p_cache), staying in log space (p_cache is often 0: its log is -inf)."""
    if lambda_ == 0.0:
        return model_log_probs  # log λ = -inf; return the model's figure untouched
    return torch.logaddexp(model_log_probs + math.log1p(-lambda_), cache_log_probs + math.log(lambda_))


def _target_log_probs(model: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """hidden (T, D), targets (T,) -> log p_model(target) (T,)."""
    log_probs = torch.log_softmax(model.output(hidden).float(), -1)  # (T, V)
    return log_probs.gather(1, targets[:, None])[:, 0]


def model_chunks(model: torch.nn.Module, stream: np.ndarray, bptt: int, device: torch.device | str = "cpu"):
    """Run the model over ``stream`` (batch 1, state carried, eval mode): per BPTT chunk yield its hidden states
    (T, D), targets x_{t+1} (T,) and log p_model(x_{t+1} | h_t) (T,).  The model's mode is restored after."""
    check_cache_model(model)
    was_training = model.training
    model.eval()
    state = None
    try:
        for batch in BPTTBatches(stream, 1, bptt).epoch_batches(0):
            batch = batch.to(device)
            hidden, state = model.hidden_states(batch.inputs, state)  # (1, T, D)
            hidden, targets = hidden[0], batch.targets[0]  # (T, D), (T,)
            yield hidden, targets, _target_log_probs(model, hidden, targets)
    finally:
        model.train(was_training)


@torch.no_grad()
def cache_stream_nll(model: torch.nn.Module, stream: np.ndarray, bptt: int, window: int, theta: float,
                     lambda_: float, device: torch.device | str = "cpu") -> tuple[float, int]:
    """Summed NLL of every token of ``stream`` after the opening one under the cache mixture, and the count.

    Batch 1, the state carried from chunk to chunk as in ``stream_nll``; each chunk of ``bptt`` queries is scored
    against [the last ``window`` positions before it + its own earlier positions] in one masked matrix product.
    """
    check_cache_options(window, [theta], [lambda_])
    memory_hidden, memory_next = None, None  # (M <= window, D), (M,): the positions before the chunk
    total, count = 0.0, 0
    for hidden, targets, model_log_probs in model_chunks(model, stream, bptt, device):
        keys, key_next = (hidden, targets) if memory_hidden is None else (
            torch.cat([memory_hidden, hidden]), torch.cat([memory_next, targets]))  # (M + T, D), (M + T,)
        cache_log_probs = block_cache_log_probs(keys, key_next, len(targets), window, [theta], model_log_probs)
        total -= float(mix_log_probs(model_log_probs, cache_log_probs[0], lambda_).double().sum())
        count += len(targets)
        memory_hidden, memory_next = keys[-window:], key_next[-window:]
    return total, count


# ------------------------------------------------------------------------------------------------ tuning
@dataclass
class StreamFeatures:
    """What the cache needs of a split, computed once: the model is the expensive part, the grid is matrix work."""

    hidden: torch.Tensor  # (N, D) h_t, the vector the output layer reads at position t
    next_ids: torch.Tensor  # (N,) x_{t+1}, the target of position t
    model_log_probs: torch.Tensor  # (N,) log p_model(x_{t+1} | h_t)


@torch.no_grad()
def stream_features(model: torch.nn.Module, stream: np.ndarray, bptt: int,
                    device: torch.device | str = "cpu") -> StreamFeatures:
    """Run the model over the split once (batch 1, state carried): N = len(stream) - 1 positions."""
    hidden, next_ids, log_probs = zip(*model_chunks(model, stream, bptt, device))
    return StreamFeatures(torch.cat(hidden), torch.cat(next_ids), torch.cat(log_probs))


def cache_grid(features: StreamFeatures, windows: Sequence[int], thetas: Sequence[float],
               lambdas: Sequence[float], block: int = 128) -> list[dict[str, float]]:
    """Summed NLL of every (window, θ, λ), each row {"window", "theta", "lambda", "nll"}; the count is N.

    Queries go ``block`` at a time against the ``window`` rows before the block; one matrix product per block
    and window serves every θ, and the λ mixture is elementwise on the (N,) target log-probabilities.  A block
    computes (block, window + block) scores of which (block, window) are used: small blocks waste less (128 was
    the fastest of 32..1024 on one CPU thread for windows 100..2000).
    """
    for window in windows:
        check_cache_options(window, thetas, lambdas)
    hidden, next_ids, model_log_probs = features.hidden, features.next_ids, features.model_log_probs
    results = []
    for window in windows:
        blocks = []
        for start in range(0, hidden.size(0), block):
            end, low = min(start + block, hidden.size(0)), max(0, start - window)
            blocks.append(block_cache_log_probs(hidden[low:end], next_ids[low:end], end - start, window, thetas,
                                                model_log_probs[start:end]))
        cache_log_probs = torch.cat(blocks, dim=1)  # (len(thetas), N)
        for theta, theta_log_probs in zip(thetas, cache_log_probs):
            for lambda_ in lambdas:
                nll = -float(mix_log_probs(model_log_probs, theta_log_probs, lambda_).double().sum())
                results.append({"window": window, "theta": theta, "lambda": lambda_, "nll": nll})
    return results


# ------------------------------------------------------------------------------------------------ readable twin
def cache_distribution_reference(hidden: torch.Tensor, memory: list[tuple[torch.Tensor, int]], theta: float,
                                 vocab_size: int) -> torch.Tensor:
    """Eq. (2) over the whole vocabulary (V,), in float64, from a list of (h_i, x_{i+1}) pairs."""
    scores = torch.zeros(vocab_size, dtype=torch.float64)
    for key, next_id in memory:
        scores[next_id] += math.exp(theta * float(hidden.double() @ key.double()))
    return scores / scores.sum()


@torch.no_grad()
def cache_stream_nll_reference(model: torch.nn.Module, stream: np.ndarray, window: int, theta: float,
                               lambda_: float) -> tuple[float, int]:
    """The readable twin of ``cache_stream_nll``: one token at a time, the full distributions of eqs. (2)-(3).

    Slow (a Python loop per token and per memory entry); the tests compare it with the fast paths.
    """
    model.eval()
    memory: list[tuple[torch.Tensor, int]] = []  # the last `window` pairs (h_i, x_{i+1})
    state, total = None, 0.0
    for position in range(len(stream) - 1):
        hidden, state = model.hidden_states(torch.tensor([[int(stream[position])]]), state)  # (1, 1, D)
        hidden = hidden[0, 0]
        p_model = torch.softmax(model.output(hidden).double(), -1)  # (V,)
        if memory:
            p_cache = cache_distribution_reference(hidden, memory, theta, p_model.numel())
            p_model = (1 - lambda_) * p_model + lambda_ * p_cache
        next_id = int(stream[position + 1])
        total -= math.log(float(p_model[next_id]))
        memory = (memory + [(hidden, next_id)])[-window:]
    return total, len(stream) - 1
