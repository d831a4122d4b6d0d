"""Deterministic mini-batches over an in-memory list of examples, shared by the task modules.

``Batches.epoch_batches(epoch)`` gives the same batches for the same (seed, epoch) — which is what lets the Trainer
resume mid-epoch — and visits every example exactly once.  Batches are collated lazily on indexing, so an epoch of
images is not decoded all at once.
"""

from __future__ import annotations

from contextlib import contextmanager

from typing import Any, Callable, Generic, Iterator, Protocol, Sequence, TypeVar

import torch

from seqlab.data.batching import BatchSampler
from seqlab.contracts import PAD_ID

Example = TypeVar("Example")


class TokenEncoder(Protocol):
    """What the tasks need of ``seqlab.data.vocab.Vocab``."""

    def encode(self, tokens: list[str]) -> list[int]: ...


class EpochBatches(Sequence[Any]):
    """One epoch: ``len`` batches, batch i collated from the i-th chunk of the epoch's example order."""

    def __init__(self, chunks: list[list[int]], examples: Sequence[Any], collate: Callable[[list[Any], list[int]], Any]):
        self.chunks, self.examples, self.collate = chunks, examples, collate

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        chunk = self.chunks[index]
        return self.collate([self.examples[i] for i in chunk], chunk)


class Batches(Generic[Example]):
    """Batches of ``examples``, ``collate(examples, indices) -> batch``; the grouping is ``seqlab.data.batching``'s
    ``BatchSampler`` (deterministic in (seed, epoch), every example once per epoch).

    ``sort_key`` (e.g. sentence length) turns on length bucketing, and with ``max_tokens`` token-budget batches;
    without it batches are plain runs of the (shuffled) example order.
    """

    def __init__(self, examples: Sequence[Example], collate: Callable[[list[Example], list[int]], Any],
                 batch_size: int, shuffle: bool = True, seed: int = 0,
                 sort_key: Callable[[Example], int] | None = None, max_tokens: int = 0):
        self.examples, self.collate = examples, collate
        lengths = [1] * len(examples) if sort_key is None else [sort_key(example) for example in examples]
        self.sampler = BatchSampler(lengths, batch_size, max_tokens, bucket=sort_key is not None, shuffle=shuffle,
                                    seed=seed)

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch_batches(self, epoch: int = 0) -> EpochBatches:
        chunks = [batch.tolist() for batch in self.sampler.epoch_batches(epoch)]
        return EpochBatches(chunks, self.examples, self.collate)


def pad_ids(sequences: list[list[int]], pad_id: int = PAD_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists -> ids (B, S) long and mask (B, S) bool (True = real token)."""
    longest = max((len(s) for s in sequences), default=0)
    ids = torch.full((len(sequences), max(longest, 1)), pad_id, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    mask = torch.arange(ids.size(1)).unsqueeze(0) < torch.tensor([len(s) for s in sequences]).unsqueeze(1)
    return ids, mask


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[torch.device]:
    """Eval mode for the block (dropout off), the previous mode restored after; yields the model's device."""
    was_training = model.training
    model.eval()
    try:
        yield model_device(model)
    finally:
        model.train(was_training)
