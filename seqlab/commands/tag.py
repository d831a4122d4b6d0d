"""``seqlab tag {train,predict,evaluate}``: one tag per token (CoNLL-2000 chunking or part-of-speech tagging).

    seqlab tag train configs/conll2000_chunk.yaml --model-dir runs/chunk      # or configs/conll2000_pos.yaml
    echo "He reckons the current account deficit will narrow ." | seqlab tag predict runs/chunk
        -> He/B-NP reckons/B-VP the/B-NP current/I-NP account/I-NP deficit/I-NP will/B-VP narrow/I-VP ./O
    seqlab tag evaluate runs/chunk [--split test | --file my.conll]  # token accuracy; chunk precision/recall/F1

``data.column`` picks the tags to learn: ``chunk`` (the fixed 23 IOB2 tags of ``seqlab.data.tagged.CHUNK_TAGS``,
scored by conlleval's chunk-level F1) or ``pos`` (the training file's tags, scored by token accuracy).  Only the
words are model inputs.  Data: ``conll2000`` (train / test; ``data.valid_fraction`` of train held out for early
stopping, there being no official dev set) or ``files``: CoNLL-2000-style ``word POS chunk`` files.

The model directory is self-contained as for ``seqlab classify``: weights, resolved config, vocabulary and tag
names in every checkpoint, ``config.json`` beside them.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from seqlab.commands.classify import (add_model_arguments, add_predict_arguments, add_train_arguments,
                                      check_common_data_fields, hold_out, load_checkpoint_extra, load_run_config,
                                      load_weights, print_json, read_input_lines, run_batched, training_summary,
                                      write_output_lines, write_run_files)
from seqlab.config import from_dict, to_dict
from seqlab.data.corpora import read_lines
from seqlab.data.tagged import CHUNK_TAGS, TaggedSentence, parse_conll, read_conll2000
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.models.tagger import Tagger, TaggerConfig
from seqlab.metrics.classification import accuracy, chunks
from seqlab.tasks.tagging import TaggingTask, tagging_batches
from seqlab.train.trainer import TrainConfig, Trainer, resolve_device

HELP = "sequence tagging (CoNLL-2000 chunking or POS): train, predict, evaluate"
DATASETS = ("conll2000", "files")
COLUMNS = ("chunk", "pos")


@dataclass
class TagDataConfig:
    dataset: str = "conll2000"  # conll2000 | files
    column: str = "chunk"  # chunk | pos: which tags to learn
    train_file: str = ""  # files: CoNLL-2000 'word POS chunk' lines, a blank line after each sentence
    valid_file: str = ""
    test_file: str = ""
    split_seed: int = 0  # seeds the validation hold-out
    valid_fraction: float = 0.1  # held out of train when there is no valid_file; 0 = no validation
    lowercase: bool = False
    min_freq: int = 1
    max_vocab: int = 0  # 0 = no limit
    batch_size: int = 32
    data_dir: str = ""  # "" = found by resolve_data_dir

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset: must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.column not in COLUMNS:
            raise ConfigError(f"column: must be chunk or pos, got {self.column!r}")
        if self.dataset == "files" and not self.train_file:
            raise ConfigError("train_file: required when dataset is files")
        check_common_data_fields(self)


@dataclass
class TagConfig:
    task: str = "tagging"
    model_dir: str = "runs/tagger"
    data: TagDataConfig = field(default_factory=TagDataConfig)
    model: TaggerConfig = field(default_factory=TaggerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.task != "tagging":
            raise ConfigError(f"task: must be tagging for `seqlab tag`, got {self.task!r}")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_train_arguments(actions.add_parser("train", help="train a tagger from a YAML config"))
    add_predict_arguments(actions.add_parser("predict", help="tag one whitespace-tokenised sentence per line"))
    evaluate = actions.add_parser("evaluate", help="token accuracy and chunk F1 on a split or a file, as JSON")
    add_model_arguments(evaluate)
    evaluate.add_argument("--split", choices=("train", "valid", "test"), default="test")
    evaluate.add_argument("--file", help="a CoNLL-2000-style 'word POS chunk' file to score instead of a split")
    evaluate.add_argument("--output", help="also write the JSON here")


def run(args: argparse.Namespace) -> int:
    if args.action == "train":
        config = load_run_config(TagConfig, args.config, args.overrides, args.model_dir)
        print(json.dumps(train_tagger(config, resume=args.resume, overwrite=args.overwrite)))
    elif args.action == "predict":
        model, extra = load_tagger(args.model_dir, args.checkpoint)
        sentences = [line.split() for line in read_input_lines(args.input)]
        tagged = tag_sentences(model, extra, sentences, args.batch_size)
        write_output_lines([" ".join(f"{w}/{t}" for w, t in zip(words, tags))
                            for words, tags in zip(sentences, tagged)], args.output)
    else:
        print_json(evaluate_command(args), args.output)
    return 0


def evaluate_command(args: argparse.Namespace) -> dict[str, Any]:
    model, extra = load_tagger(args.model_dir, args.checkpoint)
    data = from_dict(TagDataConfig, extra["config"]["data"], "data.")
    if args.file:
        sentences, source = read_conll_file(args.file), args.file
    else:
        sentences, source = load_tagging_splits(data)[args.split], f"{data.dataset} {args.split}"
    if not sentences:
        raise DataError(f"{source}: no sentences (the config has no {args.split} split; give --file)")
    predicted = tag_sentences(model, extra, [s.words for s in sentences], args.batch_size)
    gold = [getattr(s, f"{data.column}_tags") for s in sentences]
    return {"source": source, "column": data.column, "sentences": len(sentences),
            "tokens": sum(len(tags) for tags in gold), **score_tags(gold, predicted, data.column)}


# ------------------------------------------------------------------------------------------------ data and scores
def read_conll_file(path: str | Path) -> list[TaggedSentence]:
    """A CoNLL-2000-style file (plain or .gz); a bad line -> DataError ``path:line``."""
    sentences = parse_conll(read_lines(path), str(path))
    if not sentences:
        raise DataError(f"{path}: no sentences")
    return sentences


def load_tagging_splits(data: TagDataConfig) -> dict[str, list[TaggedSentence]]:
    """{"train", "valid", "test"} sentences (a split may be empty)."""
    if data.dataset == "conll2000":
        train, test = read_conll2000("train", data.data_dir or None), read_conll2000("test", data.data_dir or None)
    else:
        train = read_conll_file(data.train_file)
        test = read_conll_file(data.test_file) if data.test_file else []
    if data.dataset == "files" and data.valid_file:
        valid = read_conll_file(data.valid_file)
    else:
        train, valid = hold_out(train, data.valid_fraction, data.split_seed)
    return {"train": train, "valid": valid, "test": test}


def tag_names(data: TagDataConfig, train: Sequence[TaggedSentence]) -> list[str]:
    """Chunking: the fixed 23 tags (``I-LST`` is test-only).  POS: the training tags, sorted."""
    if data.column == "chunk":
        return list(CHUNK_TAGS)
    return sorted({tag for sentence in train for tag in sentence.pos_tags})


def score_tags(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], column: str) -> dict[str, float]:
    """Token accuracy, and for chunk tags conlleval's chunk precision, recall and FB1 (fractions): a predicted
    chunk counts only when its type, start and end all match a gold chunk."""
    scores = {"accuracy": accuracy([t for s in gold for t in s], [t for s in predicted for t in s])}
    if column != "chunk":
        return scores
    correct = found_gold = found_predicted = 0
    for gold_tags, predicted_tags in zip(gold, predicted, strict=True):
        gold_chunks, predicted_chunks = chunks(gold_tags), chunks(predicted_tags)
        correct += len(gold_chunks & predicted_chunks)
        found_gold += len(gold_chunks)
        found_predicted += len(predicted_chunks)
    precision, recall = correct / max(found_predicted, 1), correct / max(found_gold, 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {**scores, "chunk_precision": precision, "chunk_recall": recall, "chunk_f1": f1}


# ------------------------------------------------------------------------------------------------ training
def train_tagger(config: TagConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train on ``config``; returns a summary with the best validation metric and the test scores of the best
    checkpoint when there is a test split."""
    from seqlab.commands.train import check_model_dir, seed_everything

    check_model_dir(config, resume, overwrite)
    seed_everything(config.train.seed, config.train.num_threads)
    splits, data = load_tagging_splits(config.data), config.data
    words = ([w.lower() for w in s.words] if data.lowercase else s.words for s in splits["train"])
    vocab = Vocab.build(words, data.min_freq, data.max_vocab or None)
    labels = tag_names(data, splits["train"])
    tag_ids = {tag: i for i, tag in enumerate(labels)}
    model = Tagger(config.model, len(vocab), len(labels))
    task = TaggingTask(labels)

    def batches(sentences: Sequence[TaggedSentence], shuffle: bool):
        return tagging_batches(sentences, vocab, tag_ids, data.batch_size, shuffle, config.train.seed,
                               data.lowercase, data.column)

    validate = None
    if splits["valid"]:
        valid_batches = batches(splits["valid"], False).epoch_batches(0)

        def validate(model: torch.nn.Module) -> dict[str, float]:
            return task.evaluate(model, valid_batches)

    extra = {"config": config.to_dict(), "vocab": vocab.to_dict(), "labels": labels}
    trainer = Trainer(model, task, config.train, config.model_dir, extra, validate, resolve_device(config.train.device))
    write_run_files(config.model_dir, config.to_dict(), model, {k: len(v) for k, v in splits.items()}, vocab, labels)
    if resume:
        trainer.resume()
    progress = trainer.fit(batches(splits["train"], True))
    summary = training_summary(config, progress)
    if splits["test"]:
        best, saved = load_tagger(config.model_dir, "best")
        predicted = tag_sentences(best, saved, [s.words for s in splits["test"]], data.batch_size)
        gold = [getattr(s, f"{data.column}_tags") for s in splits["test"]]
        summary["test"] = score_tags(gold, predicted, data.column)
    return summary


# ------------------------------------------------------------------------------------------------ using a model
def load_tagger(model_dir: str | Path, which: str = "best",
                device: str | torch.device = "cpu") -> tuple[Tagger, dict[str, Any]]:
    """The trained tagger of ``model_dir`` and its checkpoint ``extra`` (config, vocab, tag names)."""
    weights, extra = load_checkpoint_extra(model_dir, which, "tagging")
    config = from_dict(TaggerConfig, extra["config"]["model"], "model.")
    model = Tagger(config, len(extra["vocab"]["tokens"]), len(extra["labels"]))
    return load_weights(model, weights, model_dir, device), extra


@torch.no_grad()
def tag_sentences(model: Tagger, extra: dict[str, Any], sentences: Sequence[Sequence[str]],
                  batch_size: int = 64) -> list[list[str]]:
    """The predicted tag names of every tokenised sentence (Viterbi with a CRF), in input order."""
    vocab, labels = Vocab.from_dict(extra["vocab"]), extra["labels"]
    lower = extra["config"]["data"]["lowercase"]
    encoded = [vocab.encode([w.lower() for w in words] if lower else words) for words in sentences]
    device = next(model.parameters()).device

    def apply(ids: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        return model.decode(ids.to(device), mask.to(device))

    return [[labels[i] for i in tags] for tags in run_batched(encoded, batch_size, apply)]
