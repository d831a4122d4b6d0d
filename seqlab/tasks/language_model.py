"""Language models (RNN/GRU/LSTM and decoder-only Transformer) on a continuous token stream: truncated BPTT,
exact perplexity, generation that continues a forced prompt, and sentence scoring.

Data: ``seqlab.data.streams`` (PTB, The Time Machine, your own files; word or character level; the 8x8 digits
as 64 pixel tokens per image, ``seqlab.data.pixels``, scored in bits/pixel and sampled as images).  Training walks
the stream in ``bptt``-token chunks, carrying the hidden state from one chunk to the next and detaching it so
gradients stop at the chunk boundary (Zaremba et al. 2014); the state is reset at the start of every epoch.
With ``train.scheduled_sampling`` an RNN LM reads each chunk token by token, fed its own predictions with a
decaying probability (``LMObjective.sampled_loss``).
Validation is the exact perplexity of the valid split.  Distributed: each worker reads every N-th of the
``batch_size`` stream columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seqlab.config import RunConfig
from seqlab.contracts import PAD_ID
from seqlab.data.streams import (BPTTBatches, LMBatch, clean_d2l, boundary_id, split_lines, to_stream,
                                 tokenize_lines)
from seqlab.data.streams import LMDataConfig as DataConfig
from seqlab.data.vocab import Vocab
from seqlab.decoding import DecodeConfig, search
from seqlab.decoding.config import MAX_GENERATE_TOKENS, check_size
from seqlab.decoding.ensemble import EnsembleModel, average_log_probs
from seqlab.data.corpora import read_lines
from seqlab.data.pixels import CLASS_TOKENS, IMAGE_SIZE, PIXEL_TOKENS, PIXELS
from seqlab.errors import ConfigError, DataError
from seqlab.models.build import LM_CONFIGS as MODEL_CONFIGS  # noqa: F401  (the task table reads it)
from seqlab.models.build import build_lm
from seqlab.models.rnn_lm import RNNLMState
from seqlab.run_dir import LoadedModel, TrainingRun
from seqlab.train.loss import fused_output_layer, linear_cross_entropy_sum
from seqlab.train.scheduled_sampling import ScheduledSamplingObjective

# What the task table reads (seqlab.tasks): DataConfig, MODEL_CONFIGS (imported above), Preprocessing and these.
DEFAULT_ARCHITECTURE = "rnn"
DEFAULTS: dict[str, Any] = {}
GENERATES = True
SCHEDULED_SAMPLING = True  # the RNN LMs; ``check`` refuses the Transformer LM


def check(config: RunConfig, world_size: int = 1) -> None:
    """What a run of this task cannot do: share fewer stream columns than there are workers."""
    if config.data.batch_size < world_size:
        raise ConfigError(f"data.batch_size: {config.data.batch_size} stream columns cannot be shared by "
                          f"{world_size} workers")
    if config.train.scheduled_sampling != "none" and config.model.architecture != "rnn":
        raise ConfigError("train.scheduled_sampling: needs model.architecture rnn (a Transformer LM reads each "
                          "chunk in parallel, so cannot feed itself its own predictions)")


def build_model(config: RunConfig, pre: "Preprocessing") -> torch.nn.Module:
    return build_lm(config.model.architecture, config.model.options, len(pre.vocab))


def prepare(config: RunConfig, device: torch.device) -> TrainingRun:
    pre, streams = prepare_lm(config.data)
    sampling = None if config.train.scheduled_sampling == "none" else ScheduledSamplingObjective(config.train)
    return TrainingRun(build_model(config, pre), LMObjective(sampling),
                       BPTTBatches(streams["train"], config.data.batch_size, config.data.bptt),
                       lm_validator(streams["valid"], config.data.bptt, device), pre,
                       {split: len(stream) for split, stream in streams.items()})


class LMObjective:
    """Truncated BPTT: the hidden state flows from chunk to chunk (detached); transformers see each chunk alone.

    With ``sampling`` (scheduled sampling, RNN LMs only) the chunk is read token by token and the input at t + 1
    is the true token with probability ε, else the model's own prediction at t; the state still carries on.
    """

    def __init__(self, sampling: ScheduledSamplingObjective | None = None):
        self.state = None
        self.sampling = sampling

    def set_step(self, step: int) -> None:
        if self.sampling is not None:  # scheduled sampling's decaying ε
            self.sampling.set_step(step)

    def state_dict(self) -> dict[str, Any]:
        """The carried hidden state, which the checkpoints keep: a run resumed mid-epoch continues with it."""
        if self.state is None:
            return {}
        return {"hidden": self.state.hidden, "cell": self.state.cell}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.state = RNNLMState(saved["hidden"], saved.get("cell")) if saved else None

    def loss(self, model: torch.nn.Module, batch: LMBatch) -> tuple[torch.Tensor, int]:
        if self.sampling is not None:
            return self.sampled_loss(model, batch)
        # With an ``output_layer`` the model yields the vectors it reads, (B, T, D), and the projection is fused
        # with the loss (no (B*T, V) logits kept); otherwise its forward yields the logits (B, T, V).
        output = fused_output_layer(model)
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

    def sampled_loss(self, model: torch.nn.Module, batch: LMBatch) -> tuple[torch.Tensor, int]:
        """Scheduled sampling over one chunk from the carried state (a fresh one at an epoch's start).  The
        chunk's first input is always the true token: the previous chunk's last prediction is not fed on."""
        state = None if batch.first else self.state
        state = state or model.init_state(batch.inputs.size(0), batch.inputs.device)
        loss, state = self.sampling.loss_from(model, state, batch.inputs, batch.targets)
        self.state = state.detach()
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
    objective, total, count = LMObjective(), 0.0, 0
    for batch in BPTTBatches(stream, batch_size, bptt).epoch_batches(0):
        loss, n = objective.loss(model, batch.to(device))
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

    def unreadable(self, text: str) -> list[str]:
        """What of ``text`` the model cannot read, in order of first appearance: characters that a char-level
        model's cleaning drops or that its vocabulary lacks ('Ü', '3', '☃'), words outside a word vocabulary."""
        if self.level == "char":
            pieces = [c for c in text if not c.isspace() and clean_d2l(c) not in self.vocab]
        else:
            pieces = [word for word in text.split() if word not in self.vocab]
        return list(dict.fromkeys(pieces))

    def text_files(self) -> dict[str, Vocab]:
        return {"vocab.txt": self.vocab}

    def to_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_dict(), "level": self.level}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
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
        log_probs = next_token_log_probs(model, stream[:, :-1])[0].gather(1, stream[0, 1:, None])[:, 0]  # (T,)
        total = float(log_probs.sum())
        results.append({"sentence": sentence, "log_prob": total, "tokens": len(log_probs),
                        "per_token": total / max(len(log_probs), 1),
                        "oov": sum(1 for t in tokens if t not in pre.vocab)})
    return results


def next_token_log_probs(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """ids (B, T) -> log p(next token | ids up to t) (B, T, V), from a fresh state.  An ensemble
    (``EnsembleModel``) gives the log of its members' mean probabilities, each member read its own way (an RNN LM
    carries a state, a Transformer LM takes a mask)."""
    if isinstance(model, EnsembleModel):
        return average_log_probs(torch.stack([next_token_log_probs(m, ids) for m in model.members]))
    if getattr(model, "stateful", False):
        logits, _ = model(ids)
    else:
        logits = model(ids, ids != PAD_ID)
    return torch.log_softmax(logits.float(), -1)


def split_perplexity(loaded: LoadedModel, file: str | None = None, split: str = "test",
                     device: torch.device | str = "cpu") -> dict[str, Any]:
    """Exact perplexity of a split of the trained dataset, or of a text file read the same way."""
    pre, data = loaded.preprocessing, loaded.config.data
    if file:
        lines, source = read_lines(file), file
    else:
        splits = split_lines(data)
        if split not in splits:
            raise DataError(f"--split: {data.dataset} has the splits {', '.join(splits)}, not {split!r}")
        lines, source = splits[split], f"{data.dataset} {split}"
    stream = to_stream(tokenize_lines(lines, pre.level), pre.vocab, pre.level)
    nll, count = stream_nll(loaded.model, stream, data.bptt, device)
    return {"source": source, "tokens": count, "loss": nll / max(count, 1),
            "perplexity": math.exp(min(nll / max(count, 1), 50.0))}


def generate(model: torch.nn.Module, pre: Preprocessing, prompt: str, max_tokens: int, decode: DecodeConfig,
             device: torch.device | str = "cpu") -> str:
    """Force the prompt's tokens, then continue with the decode config's strategy (greedy, sampling or beam) for
    at most ``max_tokens`` tokens (0 <= max_tokens <= MAX_GENERATE_TOKENS)."""
    check_size("max_tokens", max_tokens, MAX_GENERATE_TOKENS, low=0, why="tokens generated after the prompt")
    model.eval()
    prefix = [pre.vocab.encode(pre.tokenize(prompt))]
    state = model.init_state(1, device) if getattr(model, "stateful", False) else model.init_state(1)
    generator = torch.Generator().manual_seed(decode.seed if decode.seed is not None else 0)
    with torch.no_grad():
        best = search(model, state, 1, boundary_id(pre.vocab, pre.level), pre.vocab.eos_id, decode,
                      len(prefix[0]) + max_tokens, prefix, generator)[0][0]
    return pre.detokenize(pre.vocab.decode(best.tokens))


def prepare_lm(config: DataConfig) -> tuple[Preprocessing, dict[str, np.ndarray]]:
    """Read the splits, build the vocabulary on train, and turn every split into an id stream."""
    lines = split_lines(config)
    token_lines = {split: tokenize_lines(split_lines_, config.level) for split, split_lines_ in lines.items()}
    specials = (" ",) if config.level == "char" else ()
    if config.dataset == "digits":  # every grey level has an id, even one the training images never show
        specials = PIXEL_TOKENS + (CLASS_TOKENS if config.class_conditional else ())
    vocab = Vocab.build(token_lines["train"], min_freq=config.min_freq, max_size=config.max_vocab_size,
                        specials=specials)
    streams = {split: to_stream(tl, vocab, config.level) for split, tl in token_lines.items()}
    return Preprocessing(vocab, config.level), streams


# ------------------------------------------------------------------------------------------------ pixel LMs (digits)
@torch.no_grad()
def bits_per_pixel(model: torch.nn.Module, pre: Preprocessing, images: list[list[str]],
                   device: torch.device | str = "cpu", batch_size: int = 256) -> dict[str, Any]:
    """Mean over the 64 pixel positions of -log2 p(pixel | everything before it in the image).

    ``images`` are token sentences (``seqlab.data.pixels.image_to_tokens``); each is read from a fresh state,
    opened by the stream's boundary token.  The class token (given) and the closing <eos> are not averaged.
    """
    model.eval()
    pixel_ids = torch.tensor(pre.vocab.encode(list(PIXEL_TOKENS)), device=device)
    total, count = 0.0, 0
    for start in range(0, len(images), batch_size):
        rows = [[pre.vocab.eos_id, *pre.vocab.encode(tokens)] for tokens in images[start:start + batch_size]]
        ids = torch.tensor(rows, device=device)  # (B, T+1): every image has the same length, no padding
        log_probs = next_token_log_probs(model, ids[:, :-1]).gather(2, ids[:, 1:, None])[..., 0]  # (B, T)
        is_pixel = torch.isin(ids[:, 1:], pixel_ids)
        total, count = total - float(log_probs[is_pixel].sum()), count + int(is_pixel.sum())
    return {"bits_per_pixel": total / max(count, 1) / math.log(2), "pixels": count, "images": len(images)}


@torch.no_grad()
def sample_images(model: torch.nn.Module, pre: Preprocessing, labels: list[int | None], seed: int = 0,
                  temperature: float = 1.0, device: torch.device | str = "cpu") -> np.ndarray:
    """Ancestral sampling of one image per entry of ``labels`` -> (N, 8, 8) grey levels.

    The boundary token and, for a class-conditional model, the class token are forced; then 64 pixels are drawn
    one at a time from p(pixel | the image so far) renormalised over the 17 grey levels (the LM could also put
    mass on <eos> or a class token, which no pixel may be).  All of ``labels`` are None or all are classes.
    """
    if len({label is None for label in labels}) != 1:
        raise ConfigError("sample_images: labels must be all None (unconditional) or all classes, not mixed")
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    pixel_ids = torch.tensor(pre.vocab.encode(list(PIXEL_TOKENS)), device=device)  # (17,)
    state = model.init_state(len(labels), device)
    tokens = torch.full((len(labels),), pre.vocab.eos_id, device=device)
    if labels[0] is not None:
        _, state = model.step(tokens, state)
        tokens = torch.tensor(pre.vocab.encode([CLASS_TOKENS[label] for label in labels]), device=device)
    levels = []
    for _ in range(PIXELS):
        log_probs, state = model.step(tokens, state)  # (N, V)
        pixel_probs = torch.softmax(log_probs[:, pixel_ids].float().cpu() / temperature, -1)  # (N, 17)
        level = torch.multinomial(pixel_probs, 1, generator=generator)[:, 0]  # (N,)
        levels.append(level)
        tokens = pixel_ids[level.to(device)]
    return torch.stack(levels, 1).view(-1, IMAGE_SIZE, IMAGE_SIZE).numpy()


def test_scores(loaded: LoadedModel, config: RunConfig) -> dict[str, Any] | None:
    """Digits: bits/pixel of the best model on the test images (other datasets: ``seqlab evaluate``)."""
    if config.data.dataset != "digits":
        return None
    test = [line.split() for line in split_lines(config.data)["test"]]
    device = next(loaded.model.parameters()).device
    return bits_per_pixel(loaded.model, loaded.preprocessing, test, device)
