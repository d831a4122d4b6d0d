"""Language-model data: a split as one continuous token stream, and truncated-BPTT batches over it.

The stream of a split is ``<eos> s_1 <eos> s_2 <eos> ...`` (word level: every line ends with ``<eos>``, and one
``<eos>`` opens the stream so the first word is predicted too) or the d2l character stream (lines cleaned with
``[^A-Za-z]+ -> ' '``, lower-cased, joined by spaces, opened by a space).  Every token of a split is therefore a
prediction target exactly once, which is what makes the perplexity exact.

Training cuts the stream into B parallel columns and walks them in chunks of ``bptt`` tokens (``BPTTBatches``);
``seqlab.tasks.language_model`` carries the hidden state from one chunk to the next.

``dataset: digits`` streams scikit-learn's bundled 8x8 digits as word-level sentences of 64 pixel tokens, one per
image, optionally opened by the class token (``seqlab.data.pixels``; no data dir, no download).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from seqlab.data.corpora import read_lines
from seqlab.data.datasets import resolve_data_dir
from seqlab.data.pixels import digit_lines
from seqlab.errors import ConfigError, DataError

LM_DATASETS = {  # name -> (file of each split, relative to the data dir) ; timemachine has no official split
    "ptb": {"train": "ptb/ptb.train.txt.gz", "valid": "ptb/ptb.valid.txt.gz", "test": "ptb/ptb.test.txt.gz"},
    "timemachine": {"all": "timemachine/timemachine.txt.gz"},
}


@dataclass
class LMDataConfig:
    dataset: str = "ptb"  # ptb | timemachine | files | digits (8x8 images as 64 pixel tokens, seqlab.data.pixels)
    data_dir: str | None = None
    train_file: str | None = None  # dataset: files
    valid_file: str | None = None
    test_file: str | None = None
    level: str = "word"  # word | char
    min_freq: int = 1
    max_vocab_size: int | None = None
    batch_size: int = 20  # parallel columns of the training stream
    bptt: int = 35  # tokens per truncated-BPTT chunk
    class_conditional: bool = False  # digits: open every image with its class token <c0>..<c9>
    split_seed: int = 0  # digits: the image classifier's stratified 1,257 / 180 / 360 split
    max_images: int | None = None  # digits: the first N images of each split only (tiny runs)

    def __post_init__(self):
        if self.dataset not in (*LM_DATASETS, "files", "digits"):
            raise ConfigError(f"dataset: must be one of {[*LM_DATASETS, 'files', 'digits']}, got {self.dataset!r}")
        if self.dataset != "digits" and (self.class_conditional or self.max_images is not None):
            raise ConfigError("class_conditional, max_images: only for dataset digits")
        if self.dataset == "digits" and self.level != "word":
            raise ConfigError("level: digits are word level (one token per pixel)")
        if self.max_images is not None and self.max_images <= 0:
            raise ConfigError(f"max_images: must be > 0, got {self.max_images}")
        if self.level not in ("word", "char"):
            raise ConfigError(f"level: must be word or char, got {self.level!r}")
        for name in ("min_freq", "batch_size", "bptt"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.dataset == "files" and not self.train_file:
            raise ConfigError("train_file: required when dataset is 'files'")


def clean_d2l(line: str) -> str:
    """d2l's Time Machine cleaning: keep letters only, lower-case."""
    return re.sub("[^A-Za-z]+", " ", line).strip().lower()


def split_lines(config: LMDataConfig) -> dict[str, list[str]]:
    """The raw lines of train/valid/test.  The Time Machine is cut 90/5/5 by position (no official split)."""
    if config.dataset == "digits":
        return digit_lines(config.split_seed, config.class_conditional, config.max_images)
    if config.dataset == "files":
        files = {"train": config.train_file, "valid": config.valid_file, "test": config.test_file}
        return {split: read_lines(path) for split, path in files.items() if path}
    root = resolve_data_dir(config.data_dir)
    files = LM_DATASETS[config.dataset]
    missing = [name for name in files.values() if not (root / name).is_file()]
    if missing:
        raise DataError(f"dataset '{config.dataset}' not found under {root} (missing {missing[0]}; "
                        f"set --data-dir or SEQLAB_DATA)")
    if "all" not in files:
        return {split: read_lines(root / name) for split, name in files.items()}
    lines = [line for line in read_lines(root / files["all"]) if line.strip()]
    cut1, cut2 = int(len(lines) * 0.9), int(len(lines) * 0.95)
    return {"train": lines[:cut1], "valid": lines[cut1:cut2], "test": lines[cut2:]}


def tokenize_lines(lines: list[str], level: str) -> list[list[str]]:
    if level == "char":
        text = " ".join(clean for clean in map(clean_d2l, lines) if clean)
        return [list(text)]
    return [line.split() for line in lines]


def to_stream(token_lines: list[list[str]], vocab, level: str) -> np.ndarray:
    """Token lines -> one int64 id stream opened by a boundary token; word level closes every line with <eos>."""
    if level == "char":
        return np.asarray([vocab.token_to_id(" ")] + vocab.encode(token_lines[0]), dtype=np.int64)
    ids = [vocab.eos_id]
    for tokens in token_lines:
        ids.extend(vocab.encode(tokens))
        ids.append(vocab.eos_id)
    return np.asarray(ids, dtype=np.int64)


def boundary_id(vocab, level: str) -> int:
    return vocab.token_to_id(" ") if level == "char" else vocab.eos_id


# ------------------------------------------------------------------------------------------------ batches
@dataclass
class LMBatch:
    inputs: torch.Tensor  # (B, T)
    targets: torch.Tensor  # (B, T)
    first: bool  # the first chunk of an epoch: start from a fresh state

    def to(self, device: torch.device | str) -> "LMBatch":
        return LMBatch(self.inputs.to(device), self.targets.to(device), self.first)


class BPTTBatches:
    """The stream as B columns read in order, ``bptt`` tokens at a time (the same chunks every epoch)."""

    def __init__(self, stream: np.ndarray, batch_size: int, bptt: int):
        columns = (len(stream) - 1) // batch_size
        if columns < 1:
            raise ConfigError(f"data.batch_size: {batch_size} columns do not fit a stream of {len(stream)} tokens")
        # Column b holds stream[b*columns : (b+1)*columns + 1]: inputs and the targets shifted by one.
        data = torch.from_numpy(stream[: batch_size * columns + 1])
        self.inputs = data[:-1].view(batch_size, columns)  # (B, N)
        self.targets = data[1:].view(batch_size, columns)
        self.bptt = bptt

    def __len__(self) -> int:
        return math.ceil(self.inputs.size(1) / self.bptt)

    def epoch_batches(self, epoch: int) -> list[LMBatch]:
        return [LMBatch(self.inputs[:, i:i + self.bptt], self.targets[:, i:i + self.bptt], first=i == 0)
                for i in range(0, self.inputs.size(1), self.bptt)]
