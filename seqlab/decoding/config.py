"""The typed ``decode`` section: which search strategy, and its knobs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqlab.errors import ConfigError

STRATEGIES = ("greedy", "beam", "sample")
LENGTH_PENALTIES = ("average", "gnmt", "none")
# When beam search may stop a sentence that has K finished hypotheses (seqlab.decoding.beam._Beams._can_improve):
# bound: no live beam can still beat the K-th, even at the full step budget (exact; HF early_stopping="never");
# current_length: ... judged at its current length (HF's default early_stopping=False; exact without a length
# penalty); k_finished: at once (fairseq; HF early_stopping=True).
BEAM_STOPPING = ("bound", "current_length", "k_finished")

# Memory guards for the sizes a user types.  Beam search holds K hypotheses x V next-token scores per sentence at
# every step (and top-2K over them), so memory grows with beam x vocabulary x sentences per batch: --beam 100000
# reached 13.8 GB.  Sizes past these limits are refused with the limit named, never silently run.
MAX_BEAM_SIZE = 1000  # research on the "beam search curse" goes to 500-1000; nothing useful lies beyond
MAX_DECODE_LEN = 1024  # tokens per output sentence (a translation, a caption); not a sentence past that
MAX_BATCH_SIZE = 4096  # sentences decoded together
MAX_BEAM_ROWS = 4096  # sentences x beam per search call: Translator splits a batch to stay under it
MAX_GENERATE_TOKENS = 10_000  # tokens a language model continues a prompt by


def check_size(name: str, value: int, limit: int, low: int = 1, why: str = "") -> None:
    """``ConfigError`` naming ``name``, the bound and (past the upper one) the reason, unless low <= value <= limit."""
    if value < low:
        raise ConfigError(f"{name}: must be >= {low}, got {value}")
    if value > limit:
        raise ConfigError(f"{name}: {value} is above the limit of {limit}{f' ({why})' if why else ''}")


@dataclass
class DecodeConfig:
    """How to turn a model's next-token distributions into output sentences.

    Lengths count generated tokens, ``<eos>`` included: ``max_len`` = the most decoding steps per sentence.
    """

    strategy: str = "greedy"  # greedy | beam | sample
    beam_size: int = 5
    alpha: float = 0.75  # length normalisation exponent (d2l seed 001: "通常 alpha = 0.75")
    length_penalty: str = "average"  # average: logp / L^alpha | gnmt: logp / ((5+L)/6)^alpha | none
    nbest: int = 1
    beam_stopping: str = "bound"  # bound | current_length | k_finished (BEAM_STOPPING above)
    max_len: int = 100
    max_len_ratio: float = 0.0  # > 0: max length per sentence = ceil(ratio * source length) + 5, capped by max_len
    min_len: int = 0  # <eos> is forbidden before this many tokens
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    seed: int | None = None
    no_repeat_ngram: int = 0  # 0 = off; n > 0 forbids repeating any n-gram within a hypothesis
    repetition_penalty: float = 1.0  # 1.0 = off; CTRL-style penalty on already generated tokens

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy: must be one of {list(STRATEGIES)}, got {self.strategy!r}")
        if self.length_penalty not in LENGTH_PENALTIES:
            raise ConfigError(f"length_penalty: must be one of {list(LENGTH_PENALTIES)}, got {self.length_penalty!r}")
        if self.beam_stopping not in BEAM_STOPPING:
            raise ConfigError(f"beam_stopping: must be one of {list(BEAM_STOPPING)}, got {self.beam_stopping!r}")
        check_size("beam_size", self.beam_size, MAX_BEAM_SIZE, why="memory grows with beam x vocabulary")
        check_size("nbest", self.nbest, MAX_BEAM_SIZE, why="n-best lists come from the beam")
        check_size("max_len", self.max_len, MAX_DECODE_LEN, why="tokens per output sentence")
        for name in ("alpha", "max_len_ratio", "min_len", "top_k", "no_repeat_ngram"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.nbest > self.beam_size and self.strategy == "beam":
            raise ConfigError(f"nbest: must be <= beam_size ({self.beam_size}), got {self.nbest}")
        if self.min_len >= self.max_len:
            raise ConfigError(f"min_len: must be < max_len ({self.max_len}), got {self.min_len}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature: must be > 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p: must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty < 1.0:
            raise ConfigError(f"repetition_penalty: must be >= 1, got {self.repetition_penalty}")


def check_decode_sizes(config: DecodeConfig, vocab_size: int, batch_size: int) -> None:
    """What a decoding entry point checks beyond the config itself: the beam against the output vocabulary
    (a beam wider than the vocabulary only multiplies the work: --beam 5000 took 47 s and 2 GB) and the batch."""
    check_size("batch_size", batch_size, MAX_BATCH_SIZE, why="sentences decoded together")
    if config.strategy == "beam" and config.beam_size > vocab_size:
        raise ConfigError(f"decode.beam_size: {config.beam_size} is above the limit of {vocab_size}, the size of the "
                          f"output vocabulary")


def beam_batch_size(config: DecodeConfig, batch_size: int) -> int:
    """Sentences per search call so that sentences x beam stays under ``MAX_BEAM_ROWS`` (results do not depend on
    the batching: each sentence's beam is searched apart from the others')."""
    if config.strategy != "beam":
        return batch_size
    return max(1, min(batch_size, MAX_BEAM_ROWS // config.beam_size))


def resolve_max_len(config: DecodeConfig, src_lengths: torch.Tensor | None = None) -> int | torch.Tensor:
    """The step budget: ``config.max_len``, or per sentence ceil(ratio * src_len) + 5 (capped) when
    ``max_len_ratio`` > 0 and the source lengths (B,) are known."""
    if config.max_len_ratio <= 0 or src_lengths is None:
        return config.max_len
    budget = torch.ceil(src_lengths.float() * config.max_len_ratio).long() + 5
    return torch.clamp(budget, max=config.max_len)


def row_budgets(max_len: int | torch.Tensor, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``max_len`` as an int or (B,) tensor -> (B,) long tensor of step budgets, each >= 1."""
    if isinstance(max_len, torch.Tensor):
        budgets = max_len.to(device=device, dtype=torch.long).reshape(-1)
        if budgets.numel() != batch_size:
            raise ValueError(f"max_len has {budgets.numel()} rows for a batch of {batch_size}")
    else:
        budgets = torch.full((batch_size,), int(max_len), dtype=torch.long, device=device)
    return budgets.clamp(min=1)
