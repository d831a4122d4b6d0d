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
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, SeqlabError

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


def length_batches(sequences: Sequence[Sequence[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``sequences`` in batches of similar length (less padding); every index once."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def run_batched(sequences: Sequence[list[int]], batch_size: int,
                apply: Callable[[torch.Tensor, torch.Tensor], list[Any]]) -> list[Any]:
    """``apply(ids (B, S), mask (B, S)) -> one output per row`` over length-sorted batches, returned in input
    order."""
    check_batch_size(batch_size)
    outputs: list[Any] = [None] * len(sequences)
    for chunk in length_batches(sequences, batch_size):
        ids, mask = pad_ids([sequences[i] for i in chunk])
        for index, output in zip(chunk, apply(ids, mask)):
            outputs[index] = output
    return outputs


def check_batch_size(batch_size: int) -> None:
    if batch_size <= 0:
        raise SeqlabError(f"batch_size: must be > 0, got {batch_size}")


def check_common_data_fields(data: Any) -> None:
    """Range checks shared by the classification and tagging data sections."""
    if not 0.0 <= data.valid_fraction < 1.0:
        raise ConfigError(f"valid_fraction: must be in [0, 1), got {data.valid_fraction}")
    for name in ("min_freq", "batch_size"):
        if getattr(data, name) <= 0:
            raise ConfigError(f"{name}: must be > 0, got {getattr(data, name)}")
    if getattr(data, "max_vocab", 0) < 0:
        raise ConfigError(f"max_vocab: must be >= 0, got {data.max_vocab}")


def lowercase(tokens: list[str]) -> list[str]:
    return [token.lower() for token in tokens]


# Characters kept per word for the character CNN: longer tokens (URLs, "-------") are cut; 99.9 % of MR and TREC
# tokens are shorter.  Fixed, so that a trained model spells words at prediction time as it did in training.
MAX_WORD_CHARS = 20


def spell(chars: Vocab, words: Sequence[str]) -> list[list[int]]:
    """Character ids of every word, cut at MAX_WORD_CHARS; an unseen character is <unk>.  A word is never empty (a
    token always has a character), so only padding is all zeros."""
    return [chars.encode(list(word[:MAX_WORD_CHARS])) for word in words]


def pad_spellings(spellings: list[list[list[int]]], width: int) -> torch.Tensor:
    """Per sentence, per word, character ids -> (B, width, W) long, zero-padded on both axes."""
    longest = max((len(chars) for words in spellings for chars in words), default=1)
    char_ids = torch.zeros(len(spellings), width, longest, dtype=torch.long)
    for row, words in enumerate(spellings):
        for column, chars in enumerate(words):
            char_ids[row, column, :len(chars)] = torch.tensor(chars, dtype=torch.long)
    return char_ids
