"""``seqlab classify {train,predict,evaluate}``: sentence classification (MR polarity, TREC, your own TSV files).

    seqlab classify train configs/mr_bigru.yaml --model-dir runs/mr_fold0 [--set data.fold=3] [--set k=v ...]
    seqlab classify predict runs/mr_fold0 sentences.txt      # one label per input line (stdin by default)
    seqlab classify evaluate runs/mr_fold0 --split test      # {"accuracy", "macro_f1", "loss", "examples"}

A model directory is self-contained: ``best.pt`` / ``last.pt`` hold the weights plus, in ``extra``, the resolved
config, the vocabulary and the label names; ``config.json`` beside them is the same config for people.

Data (``data.dataset``):

* ``rt-polarity`` (MR): no official split, so fold ``data.fold`` of a seeded ``data.num_folds``-fold
  cross-validation is the test set (Kim 2014 reports the mean over the 10 folds);
* ``trec``: train_5500 / TREC_10, ``data.trec_labels`` coarse (6 classes) or fine (50);
* ``files``: TSV ``label<TAB>text`` files ``data.train_file`` / ``valid_file`` / ``test_file``.

Without a validation file, ``data.valid_fraction`` of the training examples (a seeded choice) is held out for
early stopping and the best checkpoint, as Kim (2014) held out 10 % of the training data.

The helpers marked "shared" are used by ``seqlab.commands.tag`` too.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch

from seqlab.config import from_dict, load_yaml, merge, parse_overrides, to_dict
from seqlab.data.corpora import read_lines
from seqlab.data.datasets import seeded_order
from seqlab.data.labelled import LabelledExample, cross_validation_folds, read_rt_polarity, read_trec
from seqlab.data.vocab import Vocab
from seqlab.errors import CheckpointError, ConfigError, DataError, SeqlabError
from seqlab.models.classifier import ClassifierConfig, build_classifier
from seqlab.tasks.batching import pad_ids
from seqlab.tasks.classification import ClassificationTask, classification_batches
from seqlab.train.checkpoint import find_checkpoint, load_checkpoint
from seqlab.train.trainer import TrainConfig, Trainer, resolve_device
from seqlab.utils import atomic_write

HELP = "sentence classification (MR, TREC, TSV files): train, predict, evaluate"
DATASETS = ("rt-polarity", "trec", "files")
SPLITS = ("train", "valid", "test")
Item = TypeVar("Item")


@dataclass
class ClassifyDataConfig:
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


def check_common_data_fields(data: Any) -> None:
    """Range checks shared by the classification and tagging data sections."""
    if not 0.0 <= data.valid_fraction < 1.0:
        raise ConfigError(f"valid_fraction: must be in [0, 1), got {data.valid_fraction}")
    for name in ("min_freq", "batch_size"):
        if getattr(data, name) <= 0:
            raise ConfigError(f"{name}: must be > 0, got {getattr(data, name)}")
    if getattr(data, "max_vocab", 0) < 0:
        raise ConfigError(f"max_vocab: must be >= 0, got {data.max_vocab}")


@dataclass
class ClassifyConfig:
    """The whole run; ``seqlab.config.from_dict`` fills it from YAML with key and type checks."""

    task: str = "classification"
    model_dir: str = "runs/classifier"
    data: ClassifyDataConfig = field(default_factory=ClassifyDataConfig)
    model: ClassifierConfig = field(default_factory=ClassifierConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.task != "classification":
            raise ConfigError(f"task: must be classification for `seqlab classify`, got {self.task!r}")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_train_arguments(actions.add_parser("train", help="train a classifier from a YAML config"))
    predict = actions.add_parser("predict", help="one label per input line")
    add_predict_arguments(predict)
    evaluate = actions.add_parser("evaluate", help="accuracy and macro F1 on a split or a TSV file, as JSON")
    add_model_arguments(evaluate)
    evaluate.add_argument("--dataset", choices=DATASETS, help="default: the dataset the model was trained on")
    evaluate.add_argument("--split", choices=SPLITS, default="test")
    evaluate.add_argument("--file", help="a TSV label<TAB>text file to score (implies --dataset files)")
    evaluate.add_argument("--output", help="also write the JSON here")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Shared: ``CONFIG [--set k=v] [--model-dir DIR] [--resume] [--overwrite]``."""
    parser.add_argument("config", help="YAML config (sections: model_dir, data, model, train)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set data.fold=3 (repeatable)")
    parser.add_argument("--model-dir", help="where checkpoints go (overrides model_dir in the config)")
    parser.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/last.pt")
    parser.add_argument("--overwrite", action="store_true", help="start afresh even if MODEL_DIR has checkpoints")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Shared: ``MODEL_DIR [--checkpoint best|last] [--batch-size N]``."""
    parser.add_argument("model_dir")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--batch-size", type=int, default=64)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Shared: ``MODEL_DIR [FILE|-] [--output FILE]``."""
    add_model_arguments(parser)
    parser.add_argument("input", nargs="?", default="-", help="one sentence per line, whitespace-tokenised "
                                                               "(default: stdin)")
    parser.add_argument("--output", help="write here (atomically) instead of stdout")


def run(args: argparse.Namespace) -> int:
    if args.action == "train":
        config = load_run_config(ClassifyConfig, args.config, args.overrides, args.model_dir)
        print(json.dumps(train_classifier(config, resume=args.resume, overwrite=args.overwrite)))
    elif args.action == "predict":
        model, extra = load_classifier(args.model_dir, args.checkpoint)
        lines = read_input_lines(args.input)
        labels = predict_labels(model, extra, [line.split() for line in lines], args.batch_size)
        write_output_lines(labels, args.output)
    else:
        print_json(evaluate_command(args), args.output)
    return 0


def evaluate_command(args: argparse.Namespace) -> dict[str, Any]:
    model, extra = load_classifier(args.model_dir, args.checkpoint)
    saved = from_dict(ClassifyDataConfig, extra["config"]["data"], "data.")
    if args.file:  # score a file of one's own: the split and dataset options do not apply
        examples, source = read_labelled_tsv(args.file), args.file
        if saved.lowercase:
            examples = [LabelledExample(lowercase(e.tokens), e.label) for e in examples]
    else:
        # rt-polarity keeps the trained fold: any other fold's test set overlaps the training data.
        data = from_dict(ClassifyDataConfig, {**to_dict(saved), "dataset": args.dataset or saved.dataset}, "data.")
        examples, source = load_classification_splits(data)[args.split], f"{data.dataset} {args.split}"
    if not examples:
        raise DataError(f"{source}: no examples (the config has no {args.split} split; give --file)")
    return {"source": source, "examples": len(examples),
            **score_examples(model, extra, examples, args.batch_size)}


def score_examples(model: torch.nn.Module, extra: dict[str, Any], examples: Sequence[LabelledExample],
                   batch_size: int = 64) -> dict[str, float]:
    """Mean cross-entropy, accuracy and macro F1 of a trained classifier on ``examples``."""
    label_ids = {name: i for i, name in enumerate(extra["labels"])}
    batches = classification_batches(examples, Vocab.from_dict(extra["vocab"]), label_ids, batch_size, shuffle=False)
    return ClassificationTask().evaluate(model, batches.epoch_batches(0))


# ------------------------------------------------------------------------------------------------ config (shared)
def load_run_config(cls: type, path: str, overrides: Sequence[str], model_dir: str | None) -> Any:
    """YAML + ``--set`` overrides -> a typed config of ``cls``; ``--model-dir`` wins over the file."""
    config = from_dict(cls, merge(load_yaml(path), parse_overrides(list(overrides))))
    if model_dir:
        config.model_dir = model_dir
    return config


# ------------------------------------------------------------------------------------------------ data
def read_labelled_tsv(path: str | Path) -> list[LabelledExample]:
    """``label<TAB>text`` lines (text whitespace-tokenised); blank lines are skipped, anything else malformed
    is a DataError naming ``path:line``."""
    examples = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        if not tab or not label.strip() or not text.split():
            raise DataError(f"{path}:{number}: expected 'label<TAB>text', got {line[:60]!r}")
        examples.append(LabelledExample(text.split(), label.strip()))
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples


def load_classification_splits(data: ClassifyDataConfig) -> dict[str, list[LabelledExample]]:
    """{"train", "valid", "test"} examples (a split may be empty), lowercased when ``data.lowercase``."""
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
    splits = {"train": train, "valid": valid, "test": test}
    if data.lowercase:
        splits = {name: [LabelledExample(lowercase(e.tokens), e.label) for e in examples]
                  for name, examples in splits.items()}
    return splits


def hold_out(examples: Sequence[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Shared: (kept, held out), ``fraction`` of the examples chosen by a seeded hash order; both keep file order."""
    count = round(len(examples) * fraction)
    held = set(seeded_order(len(examples), seed)[:count])
    return ([e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held])


def lowercase(tokens: list[str]) -> list[str]:
    return [token.lower() for token in tokens]


# ------------------------------------------------------------------------------------------------ training
def train_classifier(config: ClassifyConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train on ``config``; returns a summary with the best validation metric and, when there is a test split,
    the test scores of the best checkpoint."""
    from seqlab.commands.train import check_model_dir, seed_everything

    check_model_dir(config, resume, overwrite)
    seed_everything(config.train.seed, config.train.num_threads)
    splits, data = load_classification_splits(config.data), config.data
    vocab = Vocab.build((e.tokens for e in splits["train"]), data.min_freq, data.max_vocab or None)
    labels = sorted({e.label for e in splits["train"]})
    label_ids = {name: i for i, name in enumerate(labels)}
    model = build_classifier(config.model, len(vocab), len(labels))
    task = ClassificationTask()
    validate = None
    if splits["valid"]:
        valid_batches = classification_batches(splits["valid"], vocab, label_ids, data.batch_size,
                                               shuffle=False).epoch_batches(0)

        def validate(model: torch.nn.Module) -> dict[str, float]:
            return task.evaluate(model, valid_batches)

    extra = {"config": config.to_dict(), "vocab": vocab.to_dict(), "labels": labels}
    device = resolve_device(config.train.device)
    trainer = Trainer(model, task, config.train, config.model_dir, extra, validate, device)
    write_run_files(config.model_dir, config.to_dict(), model, {k: len(v) for k, v in splits.items()}, vocab, labels)
    if resume:
        trainer.resume()
    progress = trainer.fit(classification_batches(splits["train"], vocab, label_ids, data.batch_size,
                                                  shuffle=True, seed=config.train.seed))
    summary = training_summary(config, progress)
    if splits["test"]:
        best, saved = load_classifier(config.model_dir, "best", device)
        summary["test"] = score_examples(best, saved, splits["test"], data.batch_size)
    return summary


def training_summary(config: Any, progress: Any) -> dict[str, Any]:
    """Shared: what ``train`` prints as JSON."""
    return {"model_dir": config.model_dir, "steps": progress.step, "epochs": progress.epoch,
            "best_" + config.train.early_stopping_metric: progress.best_metric,
            "stop_reason": progress.stop_reason, "wall_seconds": round(progress.elapsed_seconds, 1)}


def write_run_files(model_dir: str | Path, config: dict[str, Any], model: torch.nn.Module,
                    split_sizes: dict[str, int], vocab: Vocab, labels: Sequence[str]) -> None:
    """Shared: the human-readable companions of the checkpoints (config.json, vocab.txt, labels.txt) and the
    start record of train_log.jsonl (versions, sizes)."""
    import seqlab

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(model_dir / "config.json") as handle:
        json.dump(config, handle, indent=2)
    vocab.save(model_dir / "vocab.txt")
    with atomic_write(model_dir / "labels.txt") as handle:
        handle.write("".join(label + "\n" for label in labels))
    info = {"event": "start", "seqlab": seqlab.__version__, "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.platform(), "argv": sys.argv,
            "seed": config["train"]["seed"], "examples": split_sizes, "vocab_size": len(vocab),
            "labels": len(labels), "parameters": sum(p.numel() for p in model.parameters())}
    with open(model_dir / "train_log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(info) + "\n")


# ------------------------------------------------------------------------------------------------ using a model
def load_checkpoint_extra(model_dir: str | Path, which: str, task: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Shared: (weights, extra) of a model directory trained by ``seqlab <task>``."""
    path = find_checkpoint(model_dir, which)
    payload = load_checkpoint(path)
    extra = payload.get("extra") or {}
    if not all(key in extra for key in ("config", "vocab", "labels")):
        raise CheckpointError(f"{path}: checkpoint lacks its config, vocabulary or labels")
    if extra["config"].get("task") != task:
        raise CheckpointError(f"{path}: a {extra['config'].get('task', 'translation')!r} model, not a {task} one")
    return payload["model"], extra


def load_weights(model: torch.nn.Module, weights: dict[str, Any], model_dir: str | Path,
                 device: str | torch.device) -> torch.nn.Module:
    """Shared: load ``weights`` into ``model``; a mismatch is a CheckpointError, not a traceback."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"{model_dir}: weights do not fit the saved config "
                              f"({str(error).splitlines()[0]})") from None
    return model.to(device).eval()


def load_classifier(model_dir: str | Path, which: str = "best",
                    device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained classifier of ``model_dir`` and its checkpoint ``extra`` (config, vocab, labels)."""
    weights, extra = load_checkpoint_extra(model_dir, which, "classification")
    config = from_dict(ClassifierConfig, extra["config"]["model"], "model.")
    model = build_classifier(config, len(extra["vocab"]["tokens"]), len(extra["labels"]))
    return load_weights(model, weights, model_dir, device), extra


def length_batches(sequences: Sequence[Sequence[int]], batch_size: int) -> Iterator[list[int]]:
    """Shared: indices of ``sequences`` in batches of similar length (less padding); every index once."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def run_batched(sequences: Sequence[list[int]], batch_size: int,
                apply: Callable[[torch.Tensor, torch.Tensor], list[Any]]) -> list[Any]:
    """Shared: ``apply(ids (B, S), mask (B, S)) -> one output per row`` over length-sorted batches, returned in
    input order."""
    if batch_size <= 0:
        raise SeqlabError(f"--batch-size: must be > 0, got {batch_size}")
    outputs: list[Any] = [None] * len(sequences)
    for chunk in length_batches(sequences, batch_size):
        ids, mask = pad_ids([sequences[i] for i in chunk])
        for index, output in zip(chunk, apply(ids, mask)):
            outputs[index] = output
    return outputs


@torch.no_grad()
def predict_labels(model: torch.nn.Module, extra: dict[str, Any], sentences: list[list[str]],
                   batch_size: int = 64) -> list[str]:
    """The predicted label name of every tokenised sentence, in input order."""
    vocab, labels = Vocab.from_dict(extra["vocab"]), extra["labels"]
    if extra["config"]["data"]["lowercase"]:
        sentences = [lowercase(tokens) for tokens in sentences]
    device = next(model.parameters()).device

    def apply(ids: torch.Tensor, mask: torch.Tensor) -> list[int]:
        return model(ids.to(device), mask.to(device)).argmax(-1).tolist()

    return [labels[i] for i in run_batched([vocab.encode(s) for s in sentences], batch_size, apply)]


# ------------------------------------------------------------------------------------------------ I/O (shared)
def read_input_lines(source: str) -> list[str]:
    """The lines of ``source`` (a file, or ``-`` for stdin), without line ends."""
    if source == "-":
        return [line.rstrip("\r\n") for line in sys.stdin]
    return read_lines(source)


def write_output_lines(lines: Sequence[str], output: str | None) -> None:
    text = "".join(line + "\n" for line in lines)
    if output:
        with atomic_write(output) as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)


def print_json(record: dict[str, Any], output: str | None) -> None:
    text = json.dumps(record, indent=2)
    if output:
        with atomic_write(output) as handle:
            handle.write(text + "\n")
    print(text)
