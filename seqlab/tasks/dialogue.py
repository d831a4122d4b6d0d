"""Multi-turn response generation (DailyDialog): the hierarchical encoder-decoder and its flat baselines.

    seqlab train configs/dailydialog_hred.yaml                  # HRED (seqlab.models.hred)
    seqlab train configs/dailydialog_flat_attn.yaml             # the same history, concatenated, attention seq2seq
    seqlab evaluate runs/dailydialog_hred --split test          # perplexity, BLEU-1/2, distinct-1/2, length
    seqlab chat runs/dailydialog_hred --history 3               # talk to it; the history is kept

One example per response turn (``seqlab.data.dialogue.dialogue_pairs``): the ``history`` turns before it are the
context.  How a model reads the context is fixed by its architecture:

* ``hred``: turn by turn, src_ids (B, N, S) — an utterance encoder per turn, a context RNN over the turns;
* ``rnn`` / ``transformer`` (the flat baselines): the turns joined by ``__eot__`` into one source sentence
  (B, S) for the seq2seq models translation uses, unchanged.

Each context turn keeps its last ``max_turn_len`` tokens, each response its first ``max_turn_len``.  One vocabulary
(the training turns') serves contexts and responses.  Validation is teacher-forced perplexity; ``evaluate`` adds
the response metrics of the dialogue literature on searched responses: corpus BLEU-1/2 (sacreBLEU on the tokens,
``tokenize="none"``, its default smoothing; one reference per context), distinct-1/2 (distinct n-grams over all
n-grams of all responses, Li et al. 2016) and the mean response length, on the whole split or on the test
dialogues that do not also occur in train (``drop_overlap``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import torch

from seqlab.config import RunConfig
from seqlab.contracts import PAD_ID, Seq2SeqBatch
from seqlab.data.dialogue import (DialoguePair, dialogue_pairs, normalise_turn, overlapping_dialogues,
                                  read_dailydialog, read_dialogue_file)
from seqlab.data.vocab import Vocab
from seqlab.decoding import DecodeConfig, search
from seqlab.decoding.config import beam_batch_size, check_decode_sizes
from seqlab.errors import ConfigError
from seqlab.metrics.bleu import corpus_bleu_tokens
from seqlab.models.build import MODEL_CONFIGS as SEQ2SEQ_CONFIGS, build_seq2seq
from seqlab.models.hred import HRED, HREDConfig
from seqlab.run_dir import LoadedModel, TrainingRun
from seqlab.tasks.batching import Batches, pad_ids
from seqlab.tasks.translation import Seq2SeqObjective, perplexity_of

# What the task table reads (seqlab.tasks): DataConfig, Preprocessing and these.
MODEL_CONFIGS = {"hred": HREDConfig, **SEQ2SEQ_CONFIGS}
DEFAULT_ARCHITECTURE = "hred"
DEFAULTS: dict[str, Any] = {"model_dir": "runs/dialogue", "decode": {"strategy": "beam", "beam_size": 5,
                                                                     "max_len": 40}}
GENERATES = True
SCHEDULED_SAMPLING = False
SEPARATOR = "__eot__"  # between turns in a flat model's source
DATASETS = ("dailydialog", "files")


@dataclass
class DataConfig:
    dataset: str = "dailydialog"  # dailydialog | files (train_file / valid_file / test_file in DailyDialog's format)
    data_dir: str = ""  # "" = seqlab.data.datasets.resolve_data_dir()
    train_file: str = ""
    valid_file: str = ""
    test_file: str = ""
    history: int = 3  # context turns before each response
    max_turn_len: int = 30  # tokens kept per turn
    lowercase: bool = True
    min_freq: int = 2
    max_vocab: int = 10000  # the most frequent training tokens; 0 = no cap
    batch_size: int = 64  # examples per update
    max_train_dialogues: int = 0  # 0 = all; N > 0 = the first N (quick runs, tests)
    max_valid_dialogues: int = 0  # 0 = all; N > 0 = validate on the first N (validation is teacher forcing)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset: must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.dataset == "files" and not (self.train_file and self.valid_file):
            raise ConfigError("train_file: dataset 'files' needs train_file and valid_file (DailyDialog format)")
        for name in ("history", "max_turn_len", "min_freq", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in ("max_vocab", "max_train_dialogues", "max_valid_dialogues"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")


@dataclass
class Preprocessing:
    """The shared vocabulary and how a history becomes model input (so ``chat`` reads turns as training did)."""

    vocab: Vocab
    hierarchical: bool
    history: int = 3
    max_turn_len: int = 30
    lowercase: bool = True

    def text_files(self) -> dict[str, Any]:
        return {"vocab.txt": self.vocab}

    def to_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_dict(), "hierarchical": self.hierarchical, "history": self.history,
                "max_turn_len": self.max_turn_len, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        return cls(Vocab.from_dict(data["vocab"]), bool(data["hierarchical"]), int(data["history"]),
                   int(data["max_turn_len"]), bool(data["lowercase"]))

    def encode_context(self, turns: Sequence[Sequence[str]]) -> list[list[int]]:
        """Tokenised turns (oldest first) -> the last ``history`` turns' ids, each its last ``max_turn_len``; a
        flat model's turns come back as one list joined by the separator."""
        turns = [self.vocab.encode(list(turn))[-self.max_turn_len:] for turn in turns[-self.history:]]
        if self.hierarchical:
            return turns
        separator = [self.vocab.encode([SEPARATOR])[0]]
        return [[token for index, turn in enumerate(turns) for token in (separator if index else []) + turn]]

    def encode_response(self, tokens: Sequence[str]) -> list[int]:
        return self.vocab.encode(list(tokens))[:self.max_turn_len]


def build_model(config: RunConfig, pre: Preprocessing) -> torch.nn.Module:
    if config.model.architecture == "hred":
        return HRED(config.model.options, len(pre.vocab))
    return build_seq2seq(config.model.architecture, config.model.options, len(pre.vocab), len(pre.vocab))


def read_raw_split(data: DataConfig, split: str) -> list[list[str]]:
    """A split's dialogues as the source's turns, untouched."""
    if data.dataset == "dailydialog":
        return read_dailydialog(split, data.data_dir or None)
    path = {"train": data.train_file, "valid": data.valid_file, "test": data.test_file}[split]
    if not path:
        raise ConfigError(f"{split}_file: not set (dataset: files)")
    return read_dialogue_file(path)


def read_split(data: DataConfig, split: str) -> list[list[list[str]]]:
    """A split's dialogues as tokenised turns."""
    return [[normalise_turn(turn, data.lowercase) for turn in turns] for turns in read_raw_split(data, split)]


def prepare(config: RunConfig, device: torch.device) -> TrainingRun:
    """Read train and valid, build the vocabulary from the training turns, batch the (context, response) pairs."""
    data = config.data
    train = read_split(data, "train")[:data.max_train_dialogues or None]
    valid = read_split(data, "valid")[:data.max_valid_dialogues or None]
    vocab = Vocab.build((turn for turns in train for turn in turns), min_freq=data.min_freq,
                        max_size=data.max_vocab or None, specials=[SEPARATOR])
    pre = Preprocessing(vocab, config.model.architecture == "hred", data.history, data.max_turn_len, data.lowercase)
    train_pairs, valid_pairs = dialogue_pairs(train, data.history), dialogue_pairs(valid, data.history)
    valid_batches = pair_batches(valid_pairs, pre, data.batch_size, shuffle=False).epoch_batches(0)
    return TrainingRun(build_model(config, pre), Seq2SeqObjective(config.train.label_smoothing),
                       pair_batches(train_pairs, pre, data.batch_size, seed=config.train.seed),
                       lambda model: perplexity_of(model, valid_batches, device), pre,
                       {"train": len(train_pairs), "valid": len(valid_pairs)})


# ------------------------------------------------------------------------------------------------ batches
def source_tensors(contexts: list[list[list[int]]], hierarchical: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoded contexts -> src_ids, src_mask: (B, N, S) turn by turn, or (B, S) for a flat model."""
    if not hierarchical:
        return pad_ids([context[0] for context in contexts])
    turns = max(len(context) for context in contexts)
    longest = max((len(turn) for context in contexts for turn in context), default=1)
    src_ids = torch.full((len(contexts), turns, max(longest, 1)), PAD_ID, dtype=torch.long)
    for row, context in enumerate(contexts):
        for column, turn in enumerate(context):
            src_ids[row, column, :len(turn)] = torch.tensor(turn, dtype=torch.long)
    return src_ids, src_ids != PAD_ID


def pair_batches(pairs: list[DialoguePair], pre: Preprocessing, batch_size: int, shuffle: bool = True,
                 seed: int = 0) -> Batches:
    """Seq2SeqBatches of (context, response) pairs, numericalised once, bucketed by length."""
    examples = [(pre.encode_context(pair.context), pre.encode_response(pair.response)) for pair in pairs]
    vocab = pre.vocab

    def collate(items: list[tuple[list[list[int]], list[int]]], indices: list[int]) -> Seq2SeqBatch:
        src_ids, src_mask = source_tensors([context for context, _ in items], pre.hierarchical)
        tgt_in_ids, tgt_mask = pad_ids([[vocab.bos_id, *response] for _, response in items])
        tgt_out_ids, _ = pad_ids([[*response, vocab.eos_id] for _, response in items])
        return Seq2SeqBatch(src_ids, src_mask, tgt_in_ids, tgt_out_ids, tgt_mask, torch.tensor(indices))

    def length(example: tuple[list[list[int]], list[int]]) -> int:
        return sum(map(len, example[0])) + len(example[1])

    return Batches(examples, collate, batch_size, shuffle, seed, sort_key=length)


# ------------------------------------------------------------------------------------------------ using a model
@dataclass
class Reply:
    text: str
    tokens: list[str]
    score: float
    nbest: list[tuple[str, float]]


class Responder:
    """Replies to dialogue histories (each a list of raw or tokenised turns, oldest first) by the decode config's
    search; histories are length-sorted into batches and the replies put back in input order."""

    def __init__(self, loaded: LoadedModel, decode: DecodeConfig, batch_size: int = 64):
        check_decode_sizes(decode, len(loaded.preprocessing.vocab), batch_size)
        self.model, self.pre, self.decode = loaded.model, loaded.preprocessing, decode
        self.batch_size = beam_batch_size(decode, batch_size)
        self.generator = torch.Generator().manual_seed(decode.seed if decode.seed is not None else 0)

    def tokenise(self, turn: str) -> list[str]:
        return normalise_turn(turn, self.pre.lowercase)

    def reply(self, histories: Sequence[Sequence[str]]) -> list[Reply]:
        """Raw text turns -> one reply per history."""
        return self.reply_tokens([[self.tokenise(turn) for turn in history] for history in histories])

    def reply_tokens(self, histories: Sequence[Sequence[Sequence[str]]]) -> list[Reply]:
        contexts = [self.pre.encode_context(history) for history in histories]
        order = sorted(range(len(contexts)), key=lambda i: sum(map(len, contexts[i])))
        replies: list[Reply] = [Reply("", [], 0.0, []) for _ in contexts]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            for index, reply in zip(chunk, self._reply_batch([contexts[i] for i in chunk])):
                replies[index] = reply
        return replies

    @torch.no_grad()
    def _reply_batch(self, contexts: list[list[list[int]]]) -> list[Reply]:
        device = next(self.model.parameters()).device
        src_ids, src_mask = (tensor.to(device) for tensor in source_tensors(contexts, self.pre.hierarchical))
        state = self.model.init_state(self.model.encode(src_ids, src_mask), src_mask)
        vocab = self.pre.vocab
        rows = search(self.model, state, len(contexts), vocab.bos_id, vocab.eos_id, self.decode, self.decode.max_len,
                      generator=self.generator)
        return [Reply(" ".join(vocab.decode(hyps[0].tokens)), vocab.decode(hyps[0].tokens), hyps[0].score,
                      [(" ".join(vocab.decode(h.tokens)), h.score) for h in hyps]) for hyps in rows]


def distinct_n(responses: Sequence[Sequence[str]], n: int) -> float:
    """Distinct-n (Li et al. 2016): distinct n-grams over all n-grams, counted over every response together."""
    grams = [tuple(tokens[i:i + n]) for tokens in responses for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def response_metrics(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU-1/2 (one reference each), distinct-1/2 and mean length of searched responses (tokens)."""
    scores = corpus_bleu_tokens(hypotheses, [[reference] for reference in references], max_n=2)
    scores.update(distinct_1=distinct_n(hypotheses, 1), distinct_2=distinct_n(hypotheses, 2),
                  mean_length=sum(map(len, hypotheses)) / max(len(hypotheses), 1))
    return scores


def evaluate(loaded: LoadedModel, split: str, decode: DecodeConfig, data_dir: str | None = None,
             drop_overlap: bool = False, max_pairs: int = 0) -> tuple[dict[str, Any], list[DialoguePair], list[Reply]]:
    """Perplexity and the response metrics of a split -> (scores, its pairs, the replies).  ``drop_overlap``: leave
    out the dialogues that also occur in train; ``max_pairs``: only the first N pairs (0 = all)."""
    data = loaded.config.data
    if data_dir:
        data = replace(data, data_dir=data_dir)
    dialogues = read_split(data, split)
    pairs = dialogue_pairs(dialogues, data.history)
    if drop_overlap:  # verbatim copies of training dialogues, compared as the source wrote them
        overlap = overlapping_dialogues(read_raw_split(data, split), read_raw_split(data, "train"))
        pairs = [pair for pair in pairs if pair.dialogue not in overlap]
    pairs = pairs[:max_pairs or None]
    batches = pair_batches(pairs, loaded.preprocessing, data.batch_size, shuffle=False).epoch_batches(0)
    scores: dict[str, Any] = perplexity_of(loaded.model, batches, next(loaded.model.parameters()).device)
    replies = Responder(loaded, decode).reply_tokens([pair.context for pair in pairs])
    scores.update(response_metrics([reply.tokens for reply in replies], [list(pair.response) for pair in pairs]))
    scores.update(split=split, pairs=len(pairs), drop_overlap=drop_overlap,
                  search=decode.strategy if decode.strategy != "beam" else f"beam {decode.beam_size}")
    return scores, pairs, replies
