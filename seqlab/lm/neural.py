"""Neural language models on a continuous token stream: data, truncated BPTT, exact perplexity, generation, scoring.

The stream of a split is ``<eos> s_1 <eos> s_2 <eos> ...`` (word level: every line ends with ``<eos>``, and one
``<eos>`` opens the stream so the first word is predicted too) or the d2l character stream (lines cleaned with
``[^A-Za-z]+ -> ' '``, lower-cased, joined by spaces, opened by a space).  Every token of a split is therefore a
prediction target exactly once, which is what makes the perplexity exact.

Training cuts the stream into B parallel columns and walks them in chunks of ``bptt`` tokens, carrying the
hidden state from one chunk to the next and detaching it so gradients stop at the chunk boundary (Zaremba et al.
2014).  The state is reset at the start of every epoch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seqlab.errors import ConfigError
from seqlab.contracts import PAD_ID
from seqlab.train.loss import linear_cross_entropy_sum

LM_DATASETS = {  # name -> (file of each split, relative to the data dir) ; timemachine has no official split
    "ptb": {"train": "ptb/ptb.train.txt.gz", "valid": "ptb/ptb.valid.txt.gz", "test": "ptb/ptb.test.txt.gz"},
    "timemachine": {"all": "timemachine/timemachine.txt.gz"},
}


@dataclass
class LMDataConfig:
    dataset: str = "ptb"  # ptb | timemachine | files
    data_dir: str | None = None
    train_file: str | None = None  # dataset: files
    valid_file: str | None = None
    test_file: str | None = None
    level: str = "word"  # word | char
    min_freq: int = 1
    max_vocab_size: int | None = None
    batch_size: int = 20  # parallel columns of the training stream
    bptt: int = 35  # tokens per truncated-BPTT chunk

    def __post_init__(self):
        if self.dataset not in (*LM_DATASETS, "files"):
            raise ConfigError(f"dataset: must be one of {[*LM_DATASETS, 'files']}, got {self.dataset!r}")
        if self.level not in ("word", "char"):
            raise ConfigError(f"level: must be word or char, got {self.level!r}")
        for name in ("min_freq", "batch_size", "bptt"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.dataset == "files" and not self.train_file:
            raise ConfigError("train_file: required when dataset is 'files'")


# ------------------------------------------------------------------------------------------------ the stream
def clean_d2l(line: str) -> str:
    """d2l's Time Machine cleaning: keep letters only, lower-case."""
    return re.sub("[^A-Za-z]+", " ", line).strip().lower()


def split_lines(config: LMDataConfig) -> dict[str, list[str]]:
    """The raw lines of train/valid/test.  The Time Machine is cut 90/5/5 by position (no official split)."""
    from seqlab.data.corpora import read_lines
    from seqlab.data.datasets import resolve_data_dir

    if config.dataset == "files":
        files = {"train": config.train_file, "valid": config.valid_file, "test": config.test_file}
        return {split: read_lines(path) for split, path in files.items() if path}
    root = resolve_data_dir(config.data_dir)
    files = LM_DATASETS[config.dataset]
    missing = [name for name in files.values() if not (root / name).is_file()]
    if missing:
        from seqlab.errors import DataError

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


class LMTask:
    """Truncated BPTT: the hidden state flows from chunk to chunk (detached); transformers see each chunk alone."""

    def __init__(self):
        self.state = None

    def loss(self, model: torch.nn.Module, batch: LMBatch) -> tuple[torch.Tensor, int]:
        # With an ``output_layer`` the model yields the vectors it reads, (B, T, D), and the projection is fused
        # with the loss (no (B*T, V) logits kept); otherwise its forward yields the logits (B, T, V).
        output = getattr(model, "output_layer", None)
        run = model if output is None else model.hidden_states
        if getattr(model, "stateful", False):
            state = None if batch.first or self.state is None else self.state
            out, state = run(batch.inputs, state)
            self.state = state.detach()
        else:
            out = run(batch.inputs, batch.inputs != PAD_ID)
        if output is not None:
            loss = linear_cross_entropy_sum(out, output.weight, output.bias, batch.targets, ignore_index=None)
        else:
            loss = F.cross_entropy(out.reshape(-1, out.size(-1)).float(), batch.targets.reshape(-1), reduction="sum")
        return loss, batch.targets.numel()


@torch.no_grad()
def stream_nll(model: torch.nn.Module, stream: np.ndarray, bptt: int, device: torch.device | str = "cpu",
               batch_size: int = 1) -> tuple[float, int]:
    """Summed NLL of every token of ``stream`` after the opening one: each is predicted exactly once.

    batch_size 1 reads the split as one sequence (exact, the state carried all the way); more columns are faster
    but each column starts from a fresh state.
    """
    was_training = model.training
    model.eval()
    task, total, count = LMTask(), 0.0, 0
    for batch in BPTTBatches(stream, batch_size, bptt).epoch_batches(0):
        loss, n = task.loss(model, batch.to(device))
        total, count = total + float(loss), count + n
    model.train(was_training)
    return total, count


def lm_validator(valid_stream: np.ndarray, bptt: int, device: torch.device | str):
    def validate(model: torch.nn.Module) -> dict[str, Any]:
        nll, count = stream_nll(model, valid_stream, bptt, device, batch_size=10)
        return {"loss": nll / count, "ppl": math.exp(min(nll / count, 50.0)), "tokens": count}

    return validate


# ------------------------------------------------------------------------------------------------ using an LM
@dataclass
class Preprocessing:
    """What an LM model directory needs to read text: the vocabulary and the tokenization level."""

    vocab: Any
    level: str

    def tokenize(self, text: str) -> list[str]:
        return list(clean_d2l(text)) if self.level == "char" else text.split()

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens) if self.level == "char" else " ".join(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_dict(), "level": self.level}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        from seqlab.data.vocab import Vocab

        return cls(Vocab.from_dict(data["vocab"]), data["level"])


@torch.no_grad()
def score_sentences(model: torch.nn.Module, pre: Preprocessing, sentences: list[str],
                    device: torch.device | str = "cpu") -> list[dict[str, Any]]:
    """log p(sentence) = Σ log p(w_t | <boundary> w_<t), with the closing <eos> at word level (natural log)."""
    model.eval()
    results = []
    for sentence in sentences:
        tokens = pre.tokenize(sentence)
        ids = [boundary_id(pre.vocab, pre.level)] + pre.vocab.encode(tokens)
        if pre.level == "word":
            ids.append(pre.vocab.eos_id)
        stream = torch.tensor(ids, device=device).unsqueeze(0)  # (1, T+1)
        if getattr(model, "stateful", False):
            logits, _ = model(stream[:, :-1])
        else:
            logits = model(stream[:, :-1], stream[:, :-1] != PAD_ID)
        log_probs = torch.log_softmax(logits.float(), -1)[0].gather(1, stream[0, 1:, None])[:, 0]  # (T,)
        total = float(log_probs.sum())
        results.append({"sentence": sentence, "log_prob": total, "tokens": len(log_probs),
                        "per_token": total / max(len(log_probs), 1),
                        "oov": sum(1 for t in tokens if t not in pre.vocab)})
    return results


def generate(model: torch.nn.Module, pre: Preprocessing, prompt: str, max_tokens: int, decode,
             device: torch.device | str = "cpu") -> str:
    """Force the prompt's tokens, then continue with the decode config's strategy (greedy or sampling)."""
    from seqlab.decoding.greedy import greedy_search
    from seqlab.decoding.sampling import sample

    model.eval()
    prefix = [pre.vocab.encode(pre.tokenize(prompt))]
    state = model.init_state(1, device) if getattr(model, "stateful", False) else model.init_state(1)
    bos, eos = boundary_id(pre.vocab, pre.level), pre.vocab.eos_id
    max_len = len(prefix[0]) + max_tokens
    with torch.no_grad():
        if decode.strategy == "sample":
            generator = torch.Generator().manual_seed(decode.seed if decode.seed is not None else 0)
            result = sample(model, state, 1, bos, eos, max_len, decode.temperature, decode.top_k, decode.top_p,
                            generator, prefix=prefix)
        else:
            result = greedy_search(model, state, 1, bos, eos, max_len, prefix=prefix)
    return pre.detokenize(pre.vocab.decode(result.tokens[0]))


def prepare_lm(config: LMDataConfig) -> tuple[Preprocessing, dict[str, np.ndarray]]:
    """Read the splits, build the vocabulary on train, and turn every split into an id stream."""
    from seqlab.data.vocab import Vocab

    lines = split_lines(config)
    token_lines = {split: tokenize_lines(split_lines_, config.level) for split, split_lines_ in lines.items()}
    specials = (" ",) if config.level == "char" else ()
    vocab = Vocab.build(token_lines["train"], min_freq=config.min_freq, max_size=config.max_vocab_size,
                        specials=specials)
    streams = {split: to_stream(tl, vocab, config.level) for split, tl in token_lines.items()}
    return Preprocessing(vocab, config.level), streams
