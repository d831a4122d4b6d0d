"""Sentence classification, many-to-one (MR polarity, TREC question types, your own TSV files), with the
(bi)RNN / CNN / Transformer encoders + pooling of ``seqlab.models.classifier``.

    seqlab train configs/mr_bigru.yaml --set data.fold=3        # -> runs/mr_bigru, test accuracy of the best model
    seqlab classify runs/mr_bigru sentences.txt                  # one label per input line
    seqlab evaluate runs/mr_bigru --split test                   # {"accuracy", "macro_f1", "loss", "examples"}

Data (``data.dataset``):

* ``rt-polarity`` (MR): no official split, so fold ``data.fold`` of a seeded ``data.num_folds``-fold
  cross-validation is the test set (Kim 2014 reports the mean over the 10 folds);
* ``trec``: train_5500 / TREC_10, ``data.trec_labels`` coarse (6 classes) or fine (50);
* ``files``: TSV ``label<TAB>text`` files ``data.train_file`` / ``valid_file`` / ``test_file``.

Without a validation file, ``data.valid_fraction`` of the training examples (a seeded choice) is held out for
early stopping and the best checkpoint, as Kim (2014) held out 10 % of the training data.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from seqlab.config import RunConfig
from seqlab.data.datasets import hold_out
from seqlab.data.labelled import LabelledExample, cross_validation_folds, read_labelled_tsv, read_rt_polarity, read_trec
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError, SeqlabError
from seqlab.metrics.classification import accuracy, macro_f1
from seqlab.models.classifier import ClassifierConfig, build_classifier
from seqlab.run_dir import LoadedModel, TrainingRun
from seqlab.tasks.batching import (Batches, check_batch_size, check_common_data_fields, evaluating, lowercase, pad_ids,
                                   pad_spellings, spell)

DATASETS = ("rt-polarity", "trec", "files")
# What the task table reads (seqlab.tasks): DataConfig, Preprocessing and these.
MODEL_CONFIGS = {"classifier": ClassifierConfig}
DEFAULT_ARCHITECTURE = "classifier"
DEFAULTS: dict[str, Any] = {"model_dir": "runs/classifier"}
GENERATES = False
SCHEDULED_SAMPLING = False


@dataclass
class DataConfig:
    dataset: str = "rt-polarity"  # rt-polarity | trec | files
    fold: int = 0  # rt-polarity: the cross-validation fold used as the test set
    num_folds: int = 10
    split_seed: int = 0  # seeds the CV folds and the validation hold-out
    trec_labels: str = "coarse"  # coarse (6 classes) | fine (50)
    train_file: str = ""  # files: TSV label<TAB>text
    valid_file: str = ""
    test_file: str = ""
    valid_fraction: float = 0.1  # held out of train when there is no valid_file; 0 = no validation
    lowercase: bool = False
    min_freq: int = 1
    max_vocab: int = 0  # 0 = no limit
    batch_size: int = 50
    data_dir: str = ""  # "" = found by resolve_data_dir ($SEQLAB_DATA, ../shared/data, ...)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset: must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.trec_labels not in ("coarse", "fine"):
            raise ConfigError(f"trec_labels: must be coarse or fine, got {self.trec_labels!r}")
        if self.num_folds < 2 or not 0 <= self.fold < self.num_folds:
            raise ConfigError(f"fold: must be in [0, num_folds={self.num_folds}), got {self.fold}")
        if self.dataset == "files" and not self.train_file:
            raise ConfigError("train_file: required when dataset is files")
        check_common_data_fields(self)


@dataclass
class Preprocessing:
    """The vocabulary, the label names (id order), whether inputs are lower-cased, and the character vocabulary
    when the model spells its words (``model.char_embedding_size > 0``)."""

    vocab: Vocab
    labels: list[str]
    lowercase: bool = False
    chars: Vocab | None = None

    def words(self, tokens: list[str]) -> list[str]:
        return lowercase(tokens) if self.lowercase else tokens

    def encode(self, tokens: list[str]) -> list[int]:
        return self.vocab.encode(self.words(tokens))

    def spell(self, tokens: list[str]) -> list[list[int]]:
        """Character ids of every word (the same casing the word vocabulary sees); an unseen character is <unk>,
        a word is never empty (a token always has a character), so only padding is all zeros."""
        assert self.chars is not None, "spell() needs a character vocabulary"
        return spell(self.chars, self.words(tokens))

    def text_files(self) -> dict[str, Any]:
        files = {"vocab.txt": self.vocab, "labels.txt": self.labels}
        return {**files, "chars.txt": self.chars} if self.chars is not None else files

    def to_dict(self) -> dict[str, Any]:
        data = {"vocab": self.vocab.to_dict(), "labels": self.labels, "lowercase": self.lowercase}
        return {**data, "chars": self.chars.to_dict()} if self.chars is not None else data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        chars = Vocab.from_dict(data["chars"]) if data.get("chars") else None  # older model dirs have none
        return cls(Vocab.from_dict(data["vocab"]), list(data["labels"]), bool(data["lowercase"]), chars)


read_labelled_file = read_labelled_tsv  # what `seqlab evaluate --file` reads for this task


def build_model(config: RunConfig, pre: Preprocessing) -> torch.nn.Module:
    char_vocab_size = len(pre.chars) if pre.chars is not None else 0
    return build_classifier(config.model.options, len(pre.vocab), len(pre.labels), char_vocab_size)


def build_preprocessing(config: RunConfig, train: Sequence[LabelledExample]) -> Preprocessing:
    """Vocabularies from the training split only: words (``min_freq``, ``max_vocab``) and, for a model that spells
    its words, every character of every training word (so test words unseen as words still get a spelling)."""
    data = config.data
    words = [lowercase(e.tokens) if data.lowercase else e.tokens for e in train]
    vocab = Vocab.build(words, data.min_freq, data.max_vocab or None)
    chars = Vocab.build(list(word) for sentence in words for word in sentence) if config.model.options.uses_chars \
        else None
    return Preprocessing(vocab, sorted({e.label for e in train}), data.lowercase, chars)


def prepare(config: RunConfig, device: torch.device) -> TrainingRun:
    splits, data = load_splits(config.data), config.data
    pre = build_preprocessing(config, splits["train"])
    objective, validate = ClassificationObjective(), None
    if splits["valid"]:
        valid_batches = classification_batches(splits["valid"], pre, data.batch_size, shuffle=False).epoch_batches(0)

        def validate(model: torch.nn.Module) -> dict[str, float]:
            return objective.evaluate(model, valid_batches)

    batches = classification_batches(splits["train"], pre, data.batch_size, shuffle=True, seed=config.train.seed)
    model = build_model(config, pre)
    notes = {"pretrained": hand_over(model, pre, config.model.options)} if config.model.options.pretrained else {}
    return TrainingRun(model, objective, batches, validate, pre,
                       {name: len(examples) for name, examples in splits.items()}, notes)


def hand_over(model: torch.nn.Module, pre: Preprocessing, options: ClassifierConfig) -> dict[str, Any]:
    """Start ``model``'s word embedding from the LM in ``options.pretrained`` (rows matched by the word; frozen
    with ``freeze_pretrained``), and with ``pretrained_encoder`` its recurrent layers -> what was copied, for the
    start record.  It runs whenever a training run is prepared: a resumed run then loads its checkpoint over these
    weights (so the LM directory must still exist), and the frozen flag holds again; ``load_model_dir`` never
    reads the LM."""
    from seqlab.nn.pretrained import copy_recurrent, copy_rows, word_embedding
    from seqlab.tasks import load_model_dir

    try:
        lm = load_model_dir(options.pretrained, task="lm")
    except SeqlabError as error:  # a missing directory or another task's model: say which key pointed there
        raise ConfigError(f"model.pretrained: {error}") from None
    if lm.preprocessing.level != "word":
        raise ConfigError(f"model.pretrained: {options.pretrained} is a {lm.preprocessing.level}-level LM; "
                          "word vectors need a word-level one")
    source = word_embedding(lm.model, len(lm.preprocessing.vocab)).weight
    target = model.embedding
    copied = copy_rows(target, pre.vocab, source, lm.preprocessing.vocab)
    if options.freeze_pretrained:
        target.weight.requires_grad_(False)
    notes = {"model_dir": options.pretrained, "rows_copied": copied, "vocab": len(pre.vocab),
             "frozen": options.freeze_pretrained}
    if options.pretrained_encoder:
        notes["encoder_layers_copied"] = copy_recurrent(model.rnn, lm.model.rnn)
    return notes


def load_splits(data: DataConfig) -> dict[str, list[LabelledExample]]:
    """{"train", "valid", "test"} examples (a split may be empty)."""
    data_dir = data.data_dir or None
    if data.dataset == "rt-polarity":
        everything = read_rt_polarity(data_dir)
        train_ids, test_ids = cross_validation_folds(len(everything), data.num_folds, data.split_seed)[data.fold]
        train, test = [everything[i] for i in train_ids], [everything[i] for i in test_ids]
    elif data.dataset == "trec":
        fine = data.trec_labels == "fine"
        train, test = read_trec("train", data_dir, fine), read_trec("test", data_dir, fine)
    else:
        train = read_labelled_tsv(data.train_file)
        test = read_labelled_tsv(data.test_file) if data.test_file else []
    valid = read_labelled_tsv(data.valid_file) if data.dataset == "files" and data.valid_file else None
    if valid is None:
        train, valid = hold_out(train, data.valid_fraction, data.split_seed)
    return {"train": train, "valid": valid, "test": test}


def evaluate(loaded: LoadedModel, examples: Sequence[LabelledExample], batch_size: int = 64) -> dict[str, float]:
    """Mean cross-entropy, accuracy and macro F1 of a trained classifier on ``examples``."""
    batches = classification_batches(examples, loaded.preprocessing, batch_size, shuffle=False)
    return ClassificationObjective().evaluate(loaded.model, batches.epoch_batches(0))


def test_scores(loaded: LoadedModel, config: RunConfig) -> dict[str, float] | None:
    test = load_splits(config.data)["test"]
    return evaluate(loaded, test, config.data.batch_size) if test else None


@torch.no_grad()
def classify(loaded: LoadedModel, sentences: list[list[str]], batch_size: int = 64) -> list[str]:
    """The predicted label name of every tokenised sentence, in input order."""
    pre = loaded.preprocessing
    check_batch_size(batch_size)
    # unlabelled: any training label stands in; predict() reads only the inputs and gives example order back
    examples = [LabelledExample(tokens, pre.labels[0]) for tokens in sentences]
    batches = classification_batches(examples, pre, batch_size, shuffle=False).epoch_batches(0)
    return [pre.labels[i] for i in ClassificationObjective().predict(loaded.model, batches)]


# ------------------------------------------------------------------------------------------------ batches and loss
@dataclass
class ClassificationBatch:
    """ids (B, S), mask (B, S) bool, labels (B,), indices (B,): positions of the examples in their list;
    char_ids (B, S, W) when the model spells its words (0 = padding, both past a word's end and at padding words)."""

    ids: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    char_ids: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "ClassificationBatch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return ClassificationBatch(**{k: v.to(device) if v is not None else None for k, v in moved.items()})

    def inputs(self) -> tuple[torch.Tensor, ...]:
        """What the model's forward takes: (ids, mask) or (ids, mask, char_ids)."""
        return (self.ids, self.mask) if self.char_ids is None else (self.ids, self.mask, self.char_ids)


def classification_batches(examples: Sequence[LabelledExample], pre: Preprocessing, batch_size: int,
                           shuffle: bool = True, seed: int = 0) -> Batches:
    """Numericalise once, then batch; a label outside the training labels is a DataError (a test-only class)."""
    label_ids = {name: i for i, name in enumerate(pre.labels)}
    unknown = sorted({e.label for e in examples} - set(label_ids))
    if unknown:
        raise DataError(f"labels {unknown} are not among the {len(label_ids)} training labels")
    # (word ids, label, character ids per word or None)
    encoded = [(pre.encode(e.tokens), label_ids[e.label], pre.spell(e.tokens) if pre.chars else None)
               for e in examples]

    def collate(items: list[tuple[list[int], int, Any]], indices: list[int]) -> ClassificationBatch:
        ids, mask = pad_ids([token_ids for token_ids, _, _ in items])
        char_ids = pad_spellings([chars for _, _, chars in items], ids.size(1)) if pre.chars else None
        return ClassificationBatch(ids, mask, torch.tensor([label for _, label, _ in items]), torch.tensor(indices),
                                   char_ids)

    return Batches(encoded, collate, batch_size, shuffle, seed, sort_key=lambda item: len(item[0]))


class ClassificationObjective:
    """Cross-entropy summed over the examples of a batch; the count is the number of examples."""

    def loss(self, model: torch.nn.Module, batch: ClassificationBatch) -> tuple[torch.Tensor, int]:
        logits = model(*batch.inputs())  # (B, C)
        return F.cross_entropy(logits.float(), batch.labels, reduction="sum"), batch.labels.numel()

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, batches: Sequence[ClassificationBatch]) -> list[int]:
        """Predicted class ids in example order (batches may be shuffled or length-sorted)."""
        by_index = {}
        with evaluating(model) as device:
            for batch in batches:
                batch = batch.to(device)
                for index, label in zip(batch.indices.tolist(), model(*batch.inputs()).argmax(-1).tolist()):
                    by_index[index] = label
        return [by_index[i] for i in sorted(by_index)]

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, batches: Sequence[ClassificationBatch]) -> dict[str, float]:
        """Mean cross-entropy, accuracy and macro F1 over every example of ``batches``."""
        with evaluating(model) as device:
            total, count, gold, predicted = 0.0, 0, [], []
            for batch in batches:
                batch = batch.to(device)
                logits = model(*batch.inputs())
                total += float(F.cross_entropy(logits.float(), batch.labels, reduction="sum"))
                count += batch.labels.numel()
                gold += batch.labels.tolist()
                predicted += logits.argmax(-1).tolist()
        return {"loss": total / max(count, 1), "accuracy": accuracy(gold, predicted),
                "macro_f1": macro_f1(gold, predicted)}
