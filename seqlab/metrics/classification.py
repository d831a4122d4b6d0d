"""Accuracy, macro F1 and conlleval's chunk precision / recall / F1 (written here: a few lines each, and
conlleval itself is a Perl script)."""

from __future__ import annotations

from typing import Sequence


def accuracy(gold: Sequence, predicted: Sequence) -> float:
    """Fraction of positions where the prediction equals the gold label."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    return sum(g == p for g, p in zip(gold, predicted)) / max(len(gold), 1)


def macro_f1(gold: Sequence, predicted: Sequence) -> float:
    """Unweighted mean over the gold classes of F1 = 2·TP / (2·TP + FP + FN)."""
    classes = sorted(set(gold))
    scores = []
    for label in classes:
        true_pos = sum(g == label and p == label for g, p in zip(gold, predicted))
        false_pos = sum(g != label and p == label for g, p in zip(gold, predicted))
        false_neg = sum(g == label and p != label for g, p in zip(gold, predicted))
        scores.append(2 * true_pos / max(2 * true_pos + false_pos + false_neg, 1))
    return sum(scores) / max(len(scores), 1)


def chunks(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """IOB tags -> {(type, start, end)} with end exclusive, as conlleval reads them: a chunk starts at B-X or at an
    I-X that does not continue a chunk of type X, and ends before O, B-, or a tag of another type."""
    spans, kind, start = set(), None, 0
    for position, tag in enumerate([*tags, "O"]):
        prefix, _, tag_kind = tag.partition("-")
        continues = prefix == "I" and tag_kind == kind
        if kind is not None and not continues:
            spans.add((kind, start, position))
            kind = None
        if prefix in ("B", "I") and not continues:
            kind, start = tag_kind, position
    return spans


def chunk_scores(gold_sequences: Sequence[Sequence[str]],
                 predicted_sequences: Sequence[Sequence[str]]) -> dict[str, float]:
    """conlleval's chunk precision, recall and FB1 (fractions): micro counts over exactly matching chunks (type,
    start and end) of all sentences."""
    correct = found_gold = found_predicted = 0
    for gold, predicted in zip(gold_sequences, predicted_sequences, strict=True):
        gold_spans, predicted_spans = chunks(gold), chunks(predicted)
        correct += len(gold_spans & predicted_spans)
        found_gold += len(gold_spans)
        found_predicted += len(predicted_spans)
    return {"chunk_precision": correct / max(found_predicted, 1), "chunk_recall": correct / max(found_gold, 1),
            "chunk_f1": 2 * correct / max(found_gold + found_predicted, 1)}


def chunk_f1(gold_sequences: Sequence[Sequence[str]], predicted_sequences: Sequence[Sequence[str]]) -> float:
    """conlleval's FB1 (as a fraction)."""
    return chunk_scores(gold_sequences, predicted_sequences)["chunk_f1"]
