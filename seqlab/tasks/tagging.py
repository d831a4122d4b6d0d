"""Synchronised many-to-many: chunking / tagging (CoNLL-2000) with ``seqlab.models.tagger.Tagger``.

    tag_ids = {tag: i for i, tag in enumerate(CHUNK_TAGS)}     # the fixed 23: I-LST is test-only
    batches = tagging_batches(train_sentences, vocab, tag_ids, batch_size=32)
    task = TaggingTask(CHUNK_TAGS)
    task.evaluate(model, test_batches)          # {"loss", "accuracy", "chunk_f1"}

The loss is a sum over sentences of -log p(tags | words) (a sum over tokens without a CRF) and the count is the
number of tokens, so the logged loss is a per-token figure either way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import torch

from seqlab.data.tagged import TaggedSentence
from seqlab.errors import DataError
from seqlab.tasks.batching import Batches, TokenEncoder, evaluating, pad_ids
from seqlab.metrics.classification import accuracy, chunk_f1


@dataclass
class TaggingBatch:
    """ids (B, S), mask (B, S) bool, tags (B, S) (0 at padding, masked out of the loss), indices (B,)."""

    ids: torch.Tensor
    mask: torch.Tensor
    tags: torch.Tensor
    indices: torch.Tensor

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum())

    def to(self, device: torch.device | str) -> "TaggingBatch":
        return TaggingBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def tagging_batches(sentences: Sequence[TaggedSentence], vocab: TokenEncoder, tag_ids: dict[str, int],
                    batch_size: int, shuffle: bool = True, seed: int = 0, lowercase: bool = False,
                    column: str = "chunk") -> Batches:
    """Numericalise words and the tags of ``column`` ("chunk" or "pos") once, then batch sentences of similar
    length together."""
    encoded = []
    for number, sentence in enumerate(sentences):
        tags = getattr(sentence, f"{column}_tags")
        unknown = [tag for tag in tags if tag not in tag_ids]
        if unknown:
            raise DataError(f"sentence {number}: {column} tag {unknown[0]!r} is not in the tag set")
        words = [w.lower() for w in sentence.words] if lowercase else sentence.words
        encoded.append((vocab.encode(words), [tag_ids[tag] for tag in tags]))

    def collate(items: list[tuple[list[int], list[int]]], indices: list[int]) -> TaggingBatch:
        ids, mask = pad_ids([word_ids for word_ids, _ in items])
        tags, _ = pad_ids([tag_seq for _, tag_seq in items])
        return TaggingBatch(ids, mask, tags, torch.tensor(indices))

    return Batches(encoded, collate, batch_size, shuffle, seed, sort_key=lambda item: len(item[0]))


class TaggingTask:
    """``tag_names[i]`` is the name of tag id i (needed to read chunks for the F1)."""

    def __init__(self, tag_names: Sequence[str]):
        self.tag_names = list(tag_names)

    def loss(self, model: torch.nn.Module, batch: TaggingBatch) -> tuple[torch.Tensor, int]:
        return model.loss_sum(batch.ids, batch.mask, batch.tags), batch.num_tokens

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, batches: Sequence[TaggingBatch]) -> dict[str, float]:
        """Per-token loss, token accuracy and conlleval chunk F1 (a fraction, not a percentage)."""
        with evaluating(model) as device:
            total, count, gold, predicted = 0.0, 0, [], []
            for batch in batches:
                batch = batch.to(device)
                total += float(model.loss_sum(batch.ids, batch.mask, batch.tags))
                count += batch.num_tokens
                predicted += model.decode(batch.ids, batch.mask)
                gold += [row[:length] for row, length in zip(batch.tags.tolist(), batch.mask.sum(1).tolist())]
        flat_gold = [tag for sentence in gold for tag in sentence]
        flat_predicted = [tag for sentence in predicted for tag in sentence]
        return {"loss": total / max(count, 1), "accuracy": accuracy(flat_gold, flat_predicted),
                "chunk_f1": chunk_f1(self.tag_strings(gold), self.tag_strings(predicted))}

    def tag_strings(self, sentences: list[list[int]]) -> list[list[str]]:
        return [[self.tag_names[tag] for tag in sentence] for sentence in sentences]
