"""Greedy search, and the token-by-token loop that greedy search and sampling share.

Any ``StepModel`` (seq2seq decoder, language model, ensemble) is driven through ``step`` alone; the caller builds
the initial state.  Lengths count generated tokens with ``<eos>``: a row stops at ``<eos>`` or after
``max_len`` steps, and the loop stops when every row has stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from seqlab.decoding.config import row_budgets
from seqlab.decoding.penalties import force_tokens
from seqlab.decoding.select import row_argmax

# (B, V) log-probs -> (B,) chosen token ids: the only thing greedy search and sampling disagree on.
TokenChooser = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class SearchResult:
    """One output per input row, in input order.

    tokens: ids without <bos>/<eos> (forced prefix tokens included); scores: sum of the model's log-probs of the
    emitted tokens, <eos> included; attention: per row a (T, S) tensor, row t = the weights that produced token t.
    """

    tokens: list[list[int]]
    scores: list[float]
    attention: list[torch.Tensor] | None = None


def greedy_search(model: Any, state: Any, batch_size: int, bos_id: int, eos_id: int, max_len: int | torch.Tensor,
                  prefix: list[list[int]] | None = None, return_attention: bool = False) -> SearchResult:
    """At every step emit the most probable token (d2l seed 001, 贪心搜索).  max_len: int or (B,) step budgets."""
    return decode_loop(model, state, batch_size, bos_id, eos_id, max_len, row_argmax, prefix, return_attention)


# Stopped rows leave the batch once they are at least this fraction of it: each compaction copies the state of
# the rows that stay (for the Transformer, every layer's memory keys/values), so it is batched.
DROP_FRACTION = 0.125


def decode_loop(model: Any, state: Any, batch_size: int, bos_id: int, eos_id: int, max_len: int | torch.Tensor,
                choose: TokenChooser, prefix: list[list[int]] | None = None,
                return_attention: bool = False) -> SearchResult:
    """Feed each row's previous token, let ``choose`` pick the next one, until <eos> or the row's budget.

    Stopped rows leave the batch (``state.reorder`` to the rows still going) once they make up ``DROP_FRACTION``
    of it, so later steps cost only (about) the live rows: in a batch of translations most rows end well before
    the longest one (fairseq drops finished sentences too; Hugging Face's ``generate`` keeps them).  Until then a
    stopped row is stepped and ignored, so a row's result never depends on its batch mates.
    """
    device = model_device(model)
    budgets = row_budgets(max_len, batch_size, device)  # (B,)
    forced = prefix_table(prefix, batch_size, device)  # (B, P), -1 = not forced
    steps = int(budgets.max())
    rows = torch.arange(batch_size, device=device)  # (A,) the original row of each row in the state
    stopped = torch.zeros(batch_size, dtype=torch.bool, device=device)  # (A,)
    tokens = torch.full((batch_size,), bos_id, dtype=torch.long, device=device)
    emitted = torch.full((batch_size, steps), -1, dtype=torch.long, device=device)  # -1: after the row stopped
    scores = torch.zeros(batch_size, device=device)
    attention: list[tuple[torch.Tensor, torch.Tensor]] = []  # per step (rows, (A, S) weights)
    for step in range(steps):
        log_probs, state = model.step(tokens, state)
        log_probs = log_probs.float()
        if step < forced.size(1):
            log_probs = force_tokens(log_probs, forced[rows, step])
        tokens = choose(log_probs)  # (A,)
        live = ~stopped
        scores[rows] += torch.where(live, log_probs.gather(1, tokens[:, None])[:, 0], 0.0)
        emitted[rows, step] = torch.where(live, tokens, -1)
        if return_attention and getattr(state, "attention", None) is not None:
            attention.append((rows[live], state.attention.detach().float()[live]))
        stopped = stopped | (tokens == eos_id) | (budgets[rows] <= step + 1)  # (A,)
        count = int(stopped.sum())  # one host sync per step: the price of stopping early
        if count == rows.numel():
            break
        if count >= DROP_FRACTION * rows.numel():
            keep = (~stopped).nonzero()[:, 0]
            rows, tokens, stopped, state = rows[keep], tokens[keep], stopped[keep], state.reorder(keep)
    return _collect(emitted, attention, scores, eos_id)


def _collect(emitted: torch.Tensor, attention: list[tuple[torch.Tensor, torch.Tensor]], scores: torch.Tensor,
             eos_id: int) -> SearchResult:
    """(B, T) emitted ids (-1 once a row stopped) -> per-row lists without the final <eos>."""
    rows = [[tok for tok in ids if tok >= 0] for ids in emitted.tolist()]
    rows = [ids[:-1] if ids and ids[-1] == eos_id else ids for ids in rows]
    weights = None
    if attention:
        width = attention[0][1].size(-1)
        stacked = attention[0][1].new_zeros((emitted.size(0), len(attention), width))  # (B, T, S)
        for step, (live_rows, step_weights) in enumerate(attention):
            stacked[live_rows, step] = step_weights
        stacked = stacked.cpu()
        weights = [stacked[row, :len(ids)] for row, ids in enumerate(rows)]
    return SearchResult(rows, scores.tolist(), weights)


def prefix_table(prefix: list[list[int]] | None, batch_size: int, device: torch.device) -> torch.Tensor:
    """B lists of forced tokens -> (B, P) long, padded with -1 (free).  P = 0 without a prefix."""
    if prefix is None:
        return torch.full((batch_size, 0), -1, dtype=torch.long, device=device)
    if len(prefix) != batch_size:
        raise ValueError(f"prefix has {len(prefix)} rows for a batch of {batch_size}")
    table = torch.full((batch_size, max((len(p) for p in prefix), default=0)), -1, dtype=torch.long)
    for row, ids in enumerate(prefix):
        table[row, :len(ids)] = torch.as_tensor(ids, dtype=torch.long)
    return table.to(device)


def model_device(model: Any) -> torch.device:
    """Where the model's parameters live (CPU for parameter-free models such as scripted test models)."""
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for parameter in parameters():
            return parameter.device
    return torch.device("cpu")
