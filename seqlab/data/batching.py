"""Batches: which examples go together (``BatchSampler``) and how a group of pairs becomes tensors
(``collate_pairs``).

Length bucketing (fairseq, JoeyNMT): examples of similar length share a batch, so little compute goes to padding.
Sorting the whole corpus would make every epoch's batches identical; sorting inside large shuffled chunks keeps
most of the saving while the batch contents still change from epoch to epoch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from seqlab.contracts import PAD_ID, Seq2SeqBatch

CHUNK_BATCHES = 100  # a bucketing chunk holds about this many batches' worth of examples


class BatchSampler:
    """Example indices grouped into batches, deterministic in ``(seed, epoch)``; every example once per epoch.

    ``lengths[i]`` is the cost of example i in tokens (for pairs: the longer side, <bos>/<eos> included).
    ``max_tokens > 0`` gives token-budget batches: B * (longest length in the batch) <= max_tokens, except that an
    example longer than the budget still forms a batch on its own.  Otherwise batches hold ``batch_size`` examples.

    ``shuffle``: a new example order every epoch, chunked, each chunk sorted by length when ``bucket``, and the
    batch order shuffled.  Without ``shuffle`` (evaluation) the order is fixed: by length when ``bucket``, else
    the corpus order.
    """

    def __init__(self, lengths: Sequence[int] | np.ndarray, batch_size: int = 64, max_tokens: int = 0,
                 bucket: bool = True, shuffle: bool = True, seed: int = 1):
        if batch_size <= 0 or max_tokens < 0:
            raise ValueError(f"batch_size must be > 0 and max_tokens >= 0, got {batch_size}, {max_tokens}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.bucket, self.shuffle, self.seed = bucket, shuffle, seed
        self._num_batches: int | None = None

    def __len__(self) -> int:
        """Batches per epoch.  Exact for sentence batches (ceil(N / batch_size)) and without shuffling; with
        shuffled token-budget batches it is epoch 0's count (other epochs may differ by a few batches)."""
        if self._num_batches is None:
            if self.max_tokens == 0:
                self._num_batches = -(-len(self.lengths) // self.batch_size)
            else:
                self._num_batches = len(self.epoch_batches(0))
        return self._num_batches

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        count = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable") if self.bucket else np.arange(count)
            return self._split(order)
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(count)
        if self.bucket:
            batches: list[np.ndarray] = []
            chunk = self._chunk_size()
            for start in range(0, count, chunk):
                piece = order[start:start + chunk]
                batches.extend(self._split(piece[np.argsort(self.lengths[piece], kind="stable")]))
        else:
            batches = self._split(order)
        return [batches[i] for i in rng.permutation(len(batches))]

    def _chunk_size(self) -> int:
        """About CHUNK_BATCHES batches' worth; a multiple of batch_size so that sentence batches stay full."""
        if self.max_tokens == 0:
            return CHUNK_BATCHES * self.batch_size
        mean_length = max(float(self.lengths.mean()), 1.0) if len(self.lengths) else 1.0
        return max(1, int(CHUNK_BATCHES * self.max_tokens / mean_length))

    def _split(self, order: np.ndarray) -> list[np.ndarray]:
        """Consecutive runs of ``order``: fixed-size, or greedy under the token budget."""
        if self.max_tokens == 0:
            return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches, start, longest = [], 0, 0
        for position, length in enumerate(self.lengths[order].tolist()):
            longest_with = max(longest, length)
            if position > start and (position - start + 1) * longest_with > self.max_tokens:
                batches.append(order[start:position])
                start, longest_with = position, length
            longest = longest_with
        if len(order):
            batches.append(order[start:])
        return batches


def collate_pairs(src: Sequence[np.ndarray], tgt: Sequence[np.ndarray], indices: Sequence[int] | np.ndarray,
                  bos_id: int = 2, eos_id: int = 3) -> Seq2SeqBatch:
    """Pad examples ``indices`` of a corpus into a ``Seq2SeqBatch``.

    ``src[i]`` / ``tgt[i]`` are id arrays without <bos>/<eos>.  The source gets a closing <eos> (as in d2l,
    fairseq and JoeyNMT): every source then has at least one real token, and attention has an "end of input"
    position to look at.  The target becomes tgt_in = <bos> y_1..y_n and tgt_out = y_1..y_n <eos>.
    """
    indices = np.asarray(indices, dtype=np.int64)
    targets = [tgt[i] for i in indices]
    src_ids, src_mask = _pad([np.append(src[i], eos_id) for i in indices])  # (B, S)
    tgt_in_ids, _ = _pad([np.concatenate(([bos_id], y)) for y in targets])  # (B, T)
    tgt_out_ids, tgt_mask = _pad([np.append(y, eos_id) for y in targets])  # (B, T)
    return Seq2SeqBatch(src_ids=src_ids, src_mask=src_mask, tgt_in_ids=tgt_in_ids, tgt_out_ids=tgt_out_ids,
                        tgt_mask=tgt_mask, indices=torch.from_numpy(indices))


def _pad(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ids -> ids (B, L) long, right-padded with PAD_ID, and mask (B, L) bool, True on real tokens.

    The mask comes from the lengths, not from ``ids != PAD_ID``: a literal "<pad>" in the text is still a token.
    """
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    width = max(int(lengths.max(initial=0)), 1)
    ids = np.full((len(rows), width), PAD_ID, dtype=np.int64)
    for r, row in enumerate(rows):
        ids[r, :len(row)] = row
    mask = np.arange(width)[None, :] < lengths[:, None]  # (B, L)
    return torch.from_numpy(ids), torch.from_numpy(mask)
