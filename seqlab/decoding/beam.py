"""Fully batched beam search (d2l seed 001 束搜索; fairseq's 2K-candidate scheme).

The search rule is the pure ``beam_step``: of the K*V one-token extensions of a sentence's K beams, keep the 2K
best by summed log-prob.  Everything else is bookkeeping in ``_Beams``:

* an extension ending in <eos> among the K best candidates is set aside as a finished ``Hypothesis``; the K best
  non-<eos> candidates live on (2K candidates always hold K of them, since at most K end in <eos>);
* hypotheses are ranked by  log p(y_1..y_L) / lp(L)  (``penalties.length_normaliser``), L counting <eos>;
* a sentence is done when it has K finished hypotheses and its best live beam can no longer beat the K-th of
  them (``config.beam_stopping``: even at the full step budget, the exact rule; or at its current length, HF's
  default; or at once, fairseq's), or when its step budget is spent (live beams are then finished as they are).
  Done sentences leave the batch (``state.reorder`` to fewer rows), so a sentence's result never depends on its
  batch mates.

Rows are laid out sentence-major: row a*K + k is beam k of active sentence a.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from seqlab.decoding.config import DecodeConfig, row_budgets
from seqlab.decoding.greedy import model_device, prefix_table
from seqlab.decoding.penalties import (NEG_INF, block_repeated_ngrams, forbid_eos, force_tokens, length_normaliser,
                                       normalised_score, penalise_repetitions)
from seqlab.decoding.select import row_topk
from seqlab.contracts import expand_rows


@dataclass
class Hypothesis:
    tokens: list[int]  # without <bos>/<eos>
    score: float  # normalised: log_prob / lp(L)
    log_prob: float  # raw sum of log-probs, <eos> included
    attention: torch.Tensor | None = None  # (T, S), row t = the weights that produced token t


def beam_step(log_probs: torch.Tensor, beam_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The search rule.  log_probs (B, K, V), beam_scores (B, K) summed log-probs so far ->
    the best min(2K, K*V) extensions of every sentence, best first: (scores, beam indices, token ids), each (B, 2K).
    """
    batch_size, beam_size, vocab_size = log_probs.shape
    wanted = min(2 * beam_size, beam_size * vocab_size)
    # Each of the 2K best extensions is among its own beam's 2K best tokens, so rank those K*2K instead of all
    # K*V: the beam scores are added to (B, K, 2K) values, not to a (B, K, V) copy (7 % of a beam step).
    per_beam = min(wanted, vocab_size)
    beam_best, beam_tokens = row_topk(log_probs.reshape(-1, vocab_size), per_beam)  # (B*K, 2K) each
    totals = (beam_scores[:, :, None] + beam_best.view(batch_size, beam_size, per_beam))  # (B, K, 2K)
    scores, flat = totals.view(batch_size, -1).topk(wanted, dim=-1)  # flat = beam * 2K + rank within the beam
    return scores, flat // per_beam, beam_tokens.view(batch_size, -1).gather(1, flat)


@torch.no_grad()
def beam_search(model: Any, state: Any, batch_size: int, bos_id: int, eos_id: int, config: DecodeConfig,
                max_len: int | torch.Tensor, prefix: list[list[int]] | None = None,
                return_attention: bool = False) -> list[list[Hypothesis]]:
    """Per sentence, the ``config.nbest`` best hypotheses, best first.  ``state`` has B rows; max_len: int or (B,)."""
    device = model_device(model)
    beam_size = config.beam_size
    # (B rows) -> (B*K rows): every sentence's state copied (or shared, where the state can) to its K beams.
    state = expand_rows(state, torch.arange(batch_size, device=device).repeat_interleave(beam_size), beam_size)
    beams = _Beams(batch_size, eos_id, config, row_budgets(max_len, batch_size, device),
                   prefix_table(prefix, batch_size, device))
    tokens = torch.full((batch_size * beam_size,), bos_id, dtype=torch.long, device=device)
    for step in range(int(beams.budgets.max())):
        log_probs, state = model.step(tokens, state)
        attention = getattr(state, "attention", None) if return_attention else None
        rows, tokens = beams.advance(beams.penalise(log_probs.float(), step), step, attention)
        if beams.all_done():
            break
        state = state.reorder(rows)
    return beams.results(config.nbest)


class _Beams:
    """The live beams of the active sentences, and the finished hypotheses of every sentence."""

    def __init__(self, batch_size: int, eos_id: int, config: DecodeConfig, budgets: torch.Tensor,
                 forced: torch.Tensor):
        self.k, self.eos_id, self.config = config.beam_size, eos_id, config
        device = budgets.device
        self.sentences = torch.arange(batch_size, device=device)  # (A,) original index of each active sentence
        self.budgets, self.forced = budgets, forced  # (A,), (A, P)
        # Only beam 0 starts alive: K identical beams would fill the beam with K copies of each extension.
        self.scores = torch.full((batch_size, self.k), NEG_INF, device=device)  # (A, K)
        self.scores[:, 0] = 0.0
        self.history = torch.zeros((batch_size * self.k, 0), dtype=torch.long, device=device)  # (A*K, t)
        self.attention: torch.Tensor | None = None  # (A*K, t, S)
        self.finished: list[list[Hypothesis]] = [[] for _ in range(batch_size)]

    def penalise(self, log_probs: torch.Tensor, step: int) -> torch.Tensor:
        """The decode config's constraints on this step's (A*K, V) log-probs."""
        cfg = self.config
        log_probs = penalise_repetitions(log_probs, self.history, cfg.repetition_penalty)
        log_probs = block_repeated_ngrams(log_probs, self.history, cfg.no_repeat_ngram)
        lengths = torch.full((log_probs.size(0),), step, device=log_probs.device)
        # in place: every step returns fresh log-probs, which are the search's to change
        log_probs = forbid_eos(log_probs, self.eos_id, lengths, cfg.min_len, inplace=True)
        if step < self.forced.size(1):
            log_probs = force_tokens(log_probs, self.forced[:, step].repeat_interleave(self.k))
        return log_probs

    def advance(self, log_probs: torch.Tensor, step: int,
                attention: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Extend every beam by one token.  Returns the rows of the current state the next step continues
        (A'*K,) and their new last tokens (A'*K,), A' = sentences still active."""
        active = self.scores.size(0)
        cand_scores, cand_beams, cand_tokens = beam_step(log_probs.view(active, self.k, -1), self.scores)
        cand_rows = torch.arange(active, device=cand_beams.device)[:, None] * self.k + cand_beams  # (A, 2K)
        self._set_aside_eos(cand_scores, cand_rows, cand_tokens, step, attention)
        # The K best non-<eos> candidates live on: sort positions with every <eos> pushed behind.
        is_eos = cand_tokens == self.eos_id
        position = torch.arange(cand_tokens.size(1), device=is_eos.device)
        live = (position + is_eos * cand_tokens.size(1)).argsort(dim=-1)[:, :self.k]  # (A, K)
        rows, tokens = cand_rows.gather(1, live).reshape(-1), cand_tokens.gather(1, live).reshape(-1)  # (A*K,)
        self.scores = cand_scores.gather(1, live)
        self.history = torch.cat([self.history[rows], tokens[:, None]], dim=1)  # (A*K, t+1)
        if attention is not None:
            previous = self.attention[rows] if self.attention is not None else attention.new_zeros(
                (rows.numel(), 0, attention.size(-1)))
            self.attention = torch.cat([previous, attention[rows, None].float()], dim=1)  # (A*K, t+1, S)
        keep = self._retire_done(step)  # (A,) bool
        flat_keep = keep.repeat_interleave(self.k)
        self._drop(keep, flat_keep)
        return rows[flat_keep], tokens[flat_keep]

    def _set_aside_eos(self, cand_scores: torch.Tensor, cand_rows: torch.Tensor, cand_tokens: torch.Tensor,
                       step: int, attention: torch.Tensor | None) -> None:
        """Finish the <eos> extensions ranked among the K best candidates of their sentence."""
        top = slice(0, self.k)
        ends = (cand_tokens[:, top] == self.eos_id) & torch.isfinite(cand_scores[:, top])  # (A, K)
        for sentence, position in ends.nonzero().tolist():  # few per step: a host loop is fine
            row = int(cand_rows[sentence, position])
            weights = None
            if attention is not None:
                past = (self.attention[row] if self.attention is not None
                        else attention.new_zeros((0, attention.size(-1))))
                weights = past.cpu()  # rows for the tokens before <eos>
            self._add(sentence, self.history[row].tolist(), float(cand_scores[sentence, position]), step + 1,
                      weights)

    def _retire_done(self, step: int) -> torch.Tensor:
        """Mark sentences done (budget spent, or no live beam can still enter the top K); returns keep (A,)."""
        keep = torch.ones(self.scores.size(0), dtype=torch.bool)
        live_scores = self.scores.tolist()  # (A, K), one host copy
        originals = self.sentences.tolist()
        for sentence, budget in enumerate(self.budgets.tolist()):
            original = originals[sentence]
            if budget <= step + 1:  # out of steps: the live beams end here, without <eos>
                for beam, score in enumerate(live_scores[sentence]):
                    row = sentence * self.k + beam
                    if score > NEG_INF:
                        weights = None if self.attention is None else self.attention[row].cpu()
                        self._add(sentence, self.history[row].tolist(), score, step + 1, weights)
                keep[sentence] = False
            elif not self._can_improve(original, max(live_scores[sentence]), budget, step + 1):
                keep[sentence] = False
        return keep.to(self.scores.device)

    def _can_improve(self, original: int, best_live: float, budget: int, length: int) -> bool:
        """Could a live beam with summed log-prob ``best_live`` and ``length`` tokens still beat the K-th
        finished hypothesis?  Its log-prob can only fall and lp(L) only grow with L, so its best reachable score
        is best_live / lp(budget) ("bound"); "current_length" takes best_live / lp(length) instead, which is
        exact without a length penalty and otherwise a guess; "k_finished" says no at once."""
        finished = self.finished[original]
        if best_live == NEG_INF:
            return False
        if len(finished) < self.k:
            return True
        cfg = self.config
        if cfg.beam_stopping == "k_finished":
            return False
        kth = sorted((h.score for h in finished), reverse=True)[self.k - 1]
        reachable = budget if cfg.beam_stopping == "bound" else length
        return best_live / length_normaliser(reachable, cfg.alpha, cfg.length_penalty) > kth

    def _add(self, sentence: int, tokens: list[int], log_prob: float, length: int,
             attention: torch.Tensor | None) -> None:
        score = normalised_score(log_prob, length, self.config.alpha, self.config.length_penalty)
        self.finished[int(self.sentences[sentence])].append(Hypothesis(tokens, score, log_prob, attention))

    def _drop(self, keep: torch.Tensor, flat_keep: torch.Tensor) -> None:
        """Forget the sentences that are done (keep (A,) False) so they cost no more model steps."""
        self.sentences, self.budgets, self.forced = self.sentences[keep], self.budgets[keep], self.forced[keep]
        self.scores, self.history = self.scores[keep], self.history[flat_keep]
        if self.attention is not None:
            self.attention = self.attention[flat_keep]

    def all_done(self) -> bool:
        return self.sentences.numel() == 0

    def results(self, nbest: int) -> list[list[Hypothesis]]:
        # sorted() is stable: among equal scores the hypothesis finished first (the shorter one) wins.
        return [sorted(hyps, key=lambda h: -h.score)[:nbest] for hyps in self.finished]
