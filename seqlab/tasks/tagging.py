"""Sequence tagging, synchronised many-to-many: one tag per token (CoNLL-2000 chunking or part-of-speech
tagging) with the (bi)RNN tagger of ``seqlab.models.tagger`` (optionally a linear-chain CRF).

    seqlab train configs/conll2000_chunk.yaml                       # or configs/conll2000_pos.yaml
    echo "He reckons the current account deficit will narrow ." | seqlab tag runs/conll2000_chunk
        -> He/B-NP reckons/B-VP the/B-NP current/I-NP account/I-NP deficit/I-NP will/B-VP narrow/I-VP ./O
    seqlab evaluate runs/conll2000_chunk [--split test | --file my.conll]  # token accuracy; chunk P/R/F1

``data.column`` picks the tags to learn: ``chunk`` (the fixed 23 IOB2 tags of ``seqlab.data.tagged.CHUNK_TAGS``,
scored by conlleval's chunk-level F1) or ``pos`` (the training file's tags, scored by token accuracy).  Only the
words are model inputs.  Data: ``conll2000`` (train / test; ``data.valid_fraction`` of train held out for early
stopping, there being no official dev set) or ``files``: CoNLL-2000-style ``word POS chunk`` files.  The loss is a
sum over sentences of -log p(tags | words) (a sum over tokens without a CRF) and the count is the number of
tokens, so the logged loss is a per-token figure either way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import torch

from seqlab.config import RunConfig
from seqlab.data.corpora import read_lines
from seqlab.data.datasets import hold_out
from seqlab.data.tagged import CHUNK_TAGS, TaggedSentence, parse_conll, read_conll2000
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.metrics.classification import accuracy, chunk_f1, chunk_scores
from seqlab.models.tagger import Tagger, TaggerConfig
from seqlab.run_dir import LoadedModel, TrainingRun
from seqlab.tasks.batching import (Batches, check_batch_size, check_common_data_fields, evaluating, length_batches,
                                   lowercase, pad_ids, pad_spellings, spell)

DATASETS = ("conll2000", "files")
COLUMNS = ("chunk", "pos")
# What the task table reads (seqlab.tasks): DataConfig, Preprocessing and these.
MODEL_CONFIGS = {"tagger": TaggerConfig}
DEFAULT_ARCHITECTURE = "tagger"
DEFAULTS: dict[str, Any] = {"model_dir": "runs/tagger"}
GENERATES = False
SCHEDULED_SAMPLING = False


@dataclass
class DataConfig:
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
class Preprocessing:
    """The word vocabulary, the tag names (id order), which column they come from, lower-casing, and the vocabularies
    of the optional inputs: characters (``model.char_embedding_size > 0``) and POS tags (``model.pos_embedding_size
    > 0``)."""

    vocab: Vocab
    labels: list[str]
    column: str = "chunk"
    lowercase: bool = False
    chars: Vocab | None = None
    pos: Vocab | None = None

    def words(self, words: Sequence[str]) -> list[str]:
        return lowercase(list(words)) if self.lowercase else list(words)

    def encode(self, words: Sequence[str]) -> list[int]:
        return self.vocab.encode(self.words(words))

    def inputs(self, words: Sequence[str], pos_tags: Sequence[str] | None) -> TokenInputs:
        """What the model reads of one sentence: word ids, and character ids / POS ids when it reads them."""
        if self.pos is not None and pos_tags is None:
            raise DataError("this tagger reads POS tags as input: give each token as word/POS")
        return TokenInputs(self.encode(words), spell(self.chars, self.words(words)) if self.chars else None,
                           self.pos.encode(list(pos_tags)) if self.pos is not None else None)

    def text_files(self) -> dict[str, Any]:
        optional = {"chars.txt": self.chars, "pos.txt": self.pos}
        return {"vocab.txt": self.vocab, "labels.txt": self.labels,
                **{name: vocab for name, vocab in optional.items() if vocab is not None}}

    def to_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_dict(), "labels": self.labels, "column": self.column,
                "lowercase": self.lowercase, **{name: getattr(self, name).to_dict() for name in ("chars", "pos")
                                                if getattr(self, name) is not None}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        optional = {name: Vocab.from_dict(data[name]) if data.get(name) else None for name in ("chars", "pos")}
        return cls(Vocab.from_dict(data["vocab"]), list(data["labels"]), data["column"], bool(data["lowercase"]),
                   **optional)


@dataclass
class TokenInputs:
    """One sentence as the model reads it: word ids (S,), character ids per word, POS ids (S,) (None: not read)."""

    ids: list[int]
    chars: list[list[int]] | None = None
    pos: list[int] | None = None


def build_model(config: RunConfig, pre: Preprocessing) -> torch.nn.Module:
    return Tagger(config.model.options, len(pre.vocab), len(pre.labels), len(pre.chars) if pre.chars else 0,
                  len(pre.pos) if pre.pos else 0)


def build_preprocessing(config: RunConfig, train: Sequence[TaggedSentence]) -> Preprocessing:
    """Vocabularies from the training split only: words (``min_freq``, ``max_vocab``), and when the model reads them
    every character of every training word (so unseen test words still get a spelling) and the POS tags."""
    data, options = config.data, config.model.options
    if options.pos_embedding_size and data.column == "pos":
        raise ConfigError("model.pos_embedding_size: POS tags as input are for data.column: chunk (a POS tagger "
                          "cannot read the tags it predicts)")
    words = [lowercase(s.words) if data.lowercase else s.words for s in train]
    chars = Vocab.build(list(word) for sentence in words for word in sentence) if options.uses_chars else None
    pos = Vocab.build(s.pos_tags for s in train) if options.pos_embedding_size else None
    return Preprocessing(Vocab.build(words, data.min_freq, data.max_vocab or None), tag_names(data, train),
                         data.column, data.lowercase, chars, pos)


def prepare(config: RunConfig, device: torch.device) -> TrainingRun:
    splits, data = load_splits(config.data), config.data
    pre = build_preprocessing(config, splits["train"])
    objective, validate = TaggingObjective(pre.labels), None
    if splits["valid"]:
        valid_batches = tagging_batches(splits["valid"], pre, data.batch_size, shuffle=False).epoch_batches(0)

        def validate(model: torch.nn.Module) -> dict[str, float]:
            return objective.evaluate(model, valid_batches)

    batches = tagging_batches(splits["train"], pre, data.batch_size, shuffle=True, seed=config.train.seed)
    return TrainingRun(build_model(config, pre), objective, batches, validate, pre,
                       {name: len(sentences) for name, sentences in splits.items()})


def read_conll_file(path: str | Path) -> list[TaggedSentence]:
    """A CoNLL-2000-style file (plain or .gz); a bad line -> DataError ``path:line``."""
    sentences = parse_conll(read_lines(path), str(path))
    if not sentences:
        raise DataError(f"{path}: no sentences")
    return sentences


read_labelled_file = read_conll_file  # what `seqlab evaluate --file` reads for this task


def load_splits(data: DataConfig) -> dict[str, list[TaggedSentence]]:
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


def tag_names(data: DataConfig, train: Sequence[TaggedSentence]) -> list[str]:
    """Chunking: the fixed 23 tags (``I-LST`` is test-only).  POS: the training tags, sorted."""
    if data.column == "chunk":
        return list(CHUNK_TAGS)
    return sorted({tag for sentence in train for tag in sentence.pos_tags})


def score_tags(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], column: str) -> dict[str, float]:
    """Token accuracy, and for chunk tags conlleval's chunk precision, recall and FB1 (fractions)."""
    scores = {"accuracy": accuracy([t for s in gold for t in s], [t for s in predicted for t in s])}
    return {**scores, **chunk_scores(gold, predicted)} if column == "chunk" else scores


def evaluate(loaded: LoadedModel, sentences: Sequence[TaggedSentence], batch_size: int = 64) -> dict[str, Any]:
    """Token accuracy (and chunk P/R/F1) of the predicted tags against the gold ones of ``sentences``."""
    column = loaded.preprocessing.column
    predicted = tag(loaded, [s.words for s in sentences], batch_size, [s.pos_tags for s in sentences])
    gold = [getattr(s, f"{column}_tags") for s in sentences]
    return {"column": column, "sentences": len(sentences), "tokens": sum(len(tags) for tags in gold),
            **score_tags(gold, predicted, column)}


def test_scores(loaded: LoadedModel, config: RunConfig) -> dict[str, Any] | None:
    test = load_splits(config.data)["test"]
    return evaluate(loaded, test, config.data.batch_size) if test else None


@torch.no_grad()
def tag(loaded: LoadedModel, sentences: Sequence[Sequence[str]], batch_size: int = 64,
        pos_tags: Sequence[Sequence[str]] | None = None) -> list[list[str]]:
    """The predicted tag names of every tokenised sentence (Viterbi with a CRF), in input order.

    A model that reads POS tags takes them from ``pos_tags``, or else from tokens written ``word/POS`` (split at
    the last ``/``), which is how the CLI and the server pass them."""
    pre, model = loaded.preprocessing, loaded.model
    device = next(model.parameters()).device
    if pre.pos is not None and pos_tags is None:
        sentences, pos_tags = split_pos_tokens(sentences)
    items = [pre.inputs(words, pos_tags[i] if pos_tags is not None else None) for i, words in enumerate(sentences)]
    check_batch_size(batch_size)
    outputs: list[list[str]] = [[] for _ in items]
    for chunk in length_batches([item.ids for item in items], batch_size):
        batch = collate_inputs([items[i] for i in chunk]).to(device)
        for index, tags in zip(chunk, model.decode(batch.ids, batch.mask, *batch.extra())):
            outputs[index] = [pre.labels[i] for i in tags]
    return outputs


def split_pos_tokens(sentences: Sequence[Sequence[str]]) -> tuple[list[list[str]], list[list[str]]]:
    """``word/POS`` tokens -> (words, POS tags); a token without ``/POS`` -> DataError naming it."""
    words, tags = [], []
    for number, sentence in enumerate(sentences, 1):
        pairs = [token.rpartition("/") for token in sentence]
        bad = [token for token, (word, slash, _) in zip(sentence, pairs) if not (word and slash)]
        if bad:
            raise DataError(f"sentence {number}: token {bad[0]!r} is not word/POS (this tagger reads POS tags)")
        words.append([word for word, _, _ in pairs])
        tags.append([pos for _, _, pos in pairs])
    return words, tags


# ------------------------------------------------------------------------------------------------ batches and loss
@dataclass
class TaggingBatch:
    """ids (B, S), mask (B, S) bool, tags (B, S) (0 at padding, masked out of the loss), indices (B,); char_ids
    (B, S, W) and pos_ids (B, S) when the model reads them."""

    ids: torch.Tensor
    mask: torch.Tensor
    tags: torch.Tensor
    indices: torch.Tensor
    char_ids: torch.Tensor | None = None
    pos_ids: torch.Tensor | None = None

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum())

    def extra(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The optional inputs, in the order the tagger's ``forward`` / ``loss_sum`` / ``decode`` take them."""
        return self.char_ids, self.pos_ids

    def to(self, device: torch.device | str) -> "TaggingBatch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return TaggingBatch(**{k: v.to(device) if v is not None else None for k, v in moved.items()})


def collate_inputs(items: Sequence[TokenInputs], tags: Sequence[list[int]] | None = None,
                   indices: Sequence[int] = ()) -> TaggingBatch:
    """Pad sentences into one batch (tags all 0 when not given: prediction)."""
    ids, mask = pad_ids([item.ids for item in items])
    tag_ids = pad_ids(list(tags))[0] if tags is not None else torch.zeros_like(ids)
    char_ids = pad_spellings([item.chars for item in items], ids.size(1)) if items[0].chars is not None else None
    pos_ids = pad_ids([item.pos for item in items])[0] if items[0].pos is not None else None
    return TaggingBatch(ids, mask, tag_ids, torch.tensor(list(indices), dtype=torch.long), char_ids, pos_ids)


def tagging_batches(sentences: Sequence[TaggedSentence], pre: Preprocessing, batch_size: int,
                    shuffle: bool = True, seed: int = 0) -> Batches:
    """Numericalise words (and characters, POS tags) and the tags of the model's column ("chunk" or "pos") once,
    then batch sentences of similar length together."""
    tag_ids, column, encoded = {tag: i for i, tag in enumerate(pre.labels)}, pre.column, []
    for number, sentence in enumerate(sentences):
        tags = getattr(sentence, f"{column}_tags")
        unknown = [tag for tag in tags if tag not in tag_ids]
        if unknown:
            raise DataError(f"sentence {number}: {column} tag {unknown[0]!r} is not in the tag set")
        encoded.append((pre.inputs(sentence.words, sentence.pos_tags), [tag_ids[tag] for tag in tags]))

    def collate(items: list[tuple[TokenInputs, list[int]]], indices: list[int]) -> TaggingBatch:
        return collate_inputs([inputs for inputs, _ in items], [tags for _, tags in items], indices)

    return Batches(encoded, collate, batch_size, shuffle, seed, sort_key=lambda item: len(item[0].ids))


class TaggingObjective:
    """``tag_names[i]`` is the name of tag id i (needed to read chunks for the F1)."""

    def __init__(self, tag_names: Sequence[str]):
        self.tag_names = list(tag_names)

    def loss(self, model: torch.nn.Module, batch: TaggingBatch) -> tuple[torch.Tensor, int]:
        return model.loss_sum(batch.ids, batch.mask, batch.tags, *batch.extra()), batch.num_tokens

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, batches: Sequence[TaggingBatch]) -> dict[str, float]:
        """Per-token loss, token accuracy and conlleval chunk F1 (a fraction, not a percentage)."""
        with evaluating(model) as device:
            total, count, gold, predicted = 0.0, 0, [], []
            for batch in batches:
                batch = batch.to(device)
                total += float(model.loss_sum(batch.ids, batch.mask, batch.tags, *batch.extra()))
                count += batch.num_tokens
                predicted += model.decode(batch.ids, batch.mask, *batch.extra())
                gold += [row[:length] for row, length in zip(batch.tags.tolist(), batch.mask.sum(1).tolist())]
        flat_gold = [tag for sentence in gold for tag in sentence]
        flat_predicted = [tag for sentence in predicted for tag in sentence]
        return {"loss": total / max(count, 1), "accuracy": accuracy(flat_gold, flat_predicted),
                "chunk_f1": chunk_f1(self.tag_strings(gold), self.tag_strings(predicted))}

    def tag_strings(self, sentences: list[list[int]]) -> list[list[str]]:
        return [[self.tag_names[tag] for tag in sentence] for sentence in sentences]
