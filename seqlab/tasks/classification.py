"""Many-to-one: sentence classification (MR polarity, TREC question types) with ``seqlab.models.classifier``.

    label_ids = label_index(train_examples)
    batches = classification_batches(train_examples, vocab, label_ids, batch_size=50, seed=1)
    task = ClassificationTask()
    loss_sum, count = task.loss(model, batches.epoch_batches(0)[0])   # summed cross-entropy, B
    task.evaluate(model, test_batches)                               # {"loss", "accuracy", "macro_f1"}
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import torch
import torch.nn.functional as F

from seqlab.data.labelled import LabelledExample
from seqlab.errors import DataError
from seqlab.tasks.batching import Batches, TokenEncoder, evaluating, pad_ids
from seqlab.metrics.classification import accuracy, macro_f1


@dataclass
class ClassificationBatch:
    """ids (B, S), mask (B, S) bool, labels (B,), indices (B,): positions of the examples in their list."""

    ids: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor

    def to(self, device: torch.device | str) -> "ClassificationBatch":
        return ClassificationBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def label_index(examples: Sequence[LabelledExample]) -> dict[str, int]:
    """Class name -> id, sorted by name so the mapping does not depend on example order."""
    return {label: i for i, label in enumerate(sorted({e.label for e in examples}))}


def classification_batches(examples: Sequence[LabelledExample], vocab: TokenEncoder, label_ids: dict[str, int],
                           batch_size: int, shuffle: bool = True, seed: int = 0) -> Batches:
    """Numericalise once, then batch; a label outside ``label_ids`` is a DataError (e.g. a test-only class)."""
    unknown = sorted({e.label for e in examples} - set(label_ids))
    if unknown:
        raise DataError(f"labels {unknown} are not among the {len(label_ids)} training labels")
    encoded = [(vocab.encode(e.tokens), label_ids[e.label]) for e in examples]

    def collate(items: list[tuple[list[int], int]], indices: list[int]) -> ClassificationBatch:
        ids, mask = pad_ids([token_ids for token_ids, _ in items])
        return ClassificationBatch(ids, mask, torch.tensor([label for _, label in items]), torch.tensor(indices))

    return Batches(encoded, collate, batch_size, shuffle, seed, sort_key=lambda item: len(item[0]))


class ClassificationTask:
    """Cross-entropy summed over the examples of a batch; the count is the number of examples."""

    def loss(self, model: torch.nn.Module, batch: ClassificationBatch) -> tuple[torch.Tensor, int]:
        logits = model(batch.ids, batch.mask)  # (B, C)
        return F.cross_entropy(logits.float(), batch.labels, reduction="sum"), batch.labels.numel()

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, batches: Sequence[ClassificationBatch]) -> list[int]:
        """Predicted class ids in example order (batches may be shuffled or length-sorted)."""
        by_index = {}
        with evaluating(model) as device:
            for batch in batches:
                batch = batch.to(device)
                for index, label in zip(batch.indices.tolist(), model(batch.ids, batch.mask).argmax(-1).tolist()):
                    by_index[index] = label
        return [by_index[i] for i in sorted(by_index)]

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, batches: Sequence[ClassificationBatch]) -> dict[str, float]:
        """Mean cross-entropy, accuracy and macro F1 over every example of ``batches``."""
        with evaluating(model) as device:
            total, count, gold, predicted = 0.0, 0, [], []
            for batch in batches:
                batch = batch.to(device)
                logits = model(batch.ids, batch.mask)
                total += float(F.cross_entropy(logits.float(), batch.labels, reduction="sum"))
                count += batch.labels.numel()
                gold += batch.labels.tolist()
                predicted += logits.argmax(-1).tolist()
        return {"loss": total / max(count, 1), "accuracy": accuracy(gold, predicted),
                "macro_f1": macro_f1(gold, predicted)}
