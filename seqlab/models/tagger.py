"""Synchronised many-to-many: one tag per token (d2l "more RNN applications": tagging; CoNLL-2000 chunking).

``Tagger``: embeddings -> bidirectional RNN/GRU/LSTM on packed sequences -> dropout -> linear: per-token tag scores
("emissions").  Without a CRF each tag is predicted on its own (softmax per token); with ``crf=True`` a linear-chain
CRF (Lafferty et al. 2001; Huang, Xu & Yu 2015 "BiLSTM-CRF") scores whole tag sequences,

    score(x, y) = start[y_1] + Σ_t emit[t, y_t] + Σ_{t>1} trans[y_{t-1}, y_t] + end[y_n]
    log p(y | x) = score(x, y) - log Σ_y' exp score(x, y')

so it can learn that ``I-NP`` never follows ``O``.  The partition sum uses the forward algorithm and decoding the
Viterbi algorithm, both O(n T²); the tests compare them with enumeration of all T^n sequences.

Beside the word embedding a token can be read two more ways (both off by default): its spelling, through the
character CNN of ``seqlab.nn.char_cnn`` (Ma & Hovy 2016: a word unseen in training still gets a vector, which is
most of a words-only tagger's errors: 7 % of CoNLL-2000 test tokens are not in its training words), and for
chunking the POS column of the input (the CoNLL-2000 shared task gives the Brill tagger's POS tags as input to
every system).  ``word_dropout`` replaces words by ``<unk>`` while training, so that ``<unk>`` has a trained
embedding at all (with ``min_freq: 1`` it never occurs in the training data otherwise).

Shapes: B batch, S sentence length, E embedding size, H hidden size, T number of tags (not target length here),
W characters per word.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.contracts import PAD_ID
from seqlab.data.vocab import RESERVED, UNK
from seqlab.models.classifier import run_packed
from seqlab.nn.char_cnn import make_char_cnn
from seqlab.nn.init import INIT_SCHEMES, init_weights
from seqlab.nn.rnn import CELL_NAMES, make_rnn


@dataclass
class TaggerConfig:
    cell: str = "lstm"  # rnn | rnn_relu | gru | gru_seed | lstm
    embedding_size: int = 100
    hidden_size: int = 128  # per direction
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    crf: bool = False
    init: str = "default"  # a scheme of seqlab.nn.init
    init_bias: float = 0.0  # biases' start (not uniform/default); 0.1: the seed's ReLU advice
    # character-CNN features of each word's spelling (seqlab.nn.char_cnn); 0 = words only
    char_embedding_size: int = 0  # size of a character embedding
    char_filters: int = 50  # character features per word
    char_width: int = 3  # characters per char-CNN window
    pos_embedding_size: int = 0  # > 0: also read the input's POS column (chunking only), embedded this wide
    word_dropout: float = 0.0  # training only: each word becomes <unk> with this probability

    @property
    def uses_chars(self) -> bool:
        return self.char_embedding_size > 0

    def __post_init__(self) -> None:
        if self.cell not in CELL_NAMES:
            raise ConfigError(f"cell: must be one of {', '.join(CELL_NAMES)}, got {self.cell!r}")
        if self.init not in INIT_SCHEMES:
            raise ConfigError(f"init: must be one of {', '.join(INIT_SCHEMES)}, got {self.init!r}")
        for name in ("embedding_size", "hidden_size", "num_layers", "char_filters", "char_width"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in ("char_embedding_size", "pos_embedding_size"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0 (0 = off), got {getattr(self, name)}")
        for name in ("dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name}: must be in [0, 1), got {getattr(self, name)}")


class CRF(nn.Module):
    """Linear-chain CRF over T tags.  Every mask must be left-aligned with at least one real token per row."""

    def __init__(self, num_tags: int):
        super().__init__()
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))  # [from, to]
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        nn.init.uniform_(self.transitions, -0.1, 0.1)

    def score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """score(x, y) of the given tag sequences: emissions (B, S, T), tags (B, S), mask (B, S) -> (B,)."""
        real = mask.float()
        emitted = emissions.gather(-1, tags.unsqueeze(-1)).squeeze(-1)  # (B, S)
        moved = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, S-1): trans[y_{t-1}, y_t]
        last_tag = tags.gather(1, (mask.sum(1, keepdim=True) - 1).clamp_min(0)).squeeze(1)  # (B,)
        return (self.start[tags[:, 0]] + (emitted * real).sum(1) + (moved * real[:, 1:]).sum(1)
                + self.end[last_tag])

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Forward algorithm: alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + trans[i, j]) + emit[t, j] -> log Z (B,)."""
        alpha = self.start + emissions[:, 0]  # (B, T)
        for t in range(1, emissions.size(1)):
            candidates = alpha.unsqueeze(2) + self.transitions.unsqueeze(0)  # (B, T_from, T_to)
            updated = torch.logsumexp(candidates, dim=1) + emissions[:, t]  # (B, T)
            alpha = torch.where(mask[:, t].unsqueeze(1), updated, alpha)  # padding: carry alpha unchanged
        return torch.logsumexp(alpha + self.end, dim=1)

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log p(tags | x) per sentence -> (B,)."""
        return self.score(emissions, tags, mask) - self.log_partition(emissions, mask)

    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The highest-scoring tag sequence of every row, each as long as the row's real tokens."""
        delta = self.start + emissions[:, 0]  # (B, T): best score of a path ending in each tag
        backpointers = []
        for t in range(1, emissions.size(1)):
            candidates = delta.unsqueeze(2) + self.transitions.unsqueeze(0)  # (B, T_from, T_to)
            best, previous = candidates.max(dim=1)  # (B, T_to)
            keep = mask[:, t].unsqueeze(1)
            delta = torch.where(keep, best + emissions[:, t], delta)
            # At padding, point every tag to itself so backtracking walks through unchanged.
            identity = torch.arange(delta.size(1), device=delta.device).expand_as(previous)
            backpointers.append(torch.where(keep, previous, identity))
        last = (delta + self.end).argmax(1)  # (B,)
        path = [last]
        for pointers in reversed(backpointers):
            path.append(pointers.gather(1, path[-1].unsqueeze(1)).squeeze(1))
        tags = torch.stack(path[::-1], dim=1)  # (B, S)
        lengths = mask.sum(1).tolist()
        return [row[:length] for row, length in zip(tags.tolist(), lengths)]


class Tagger(nn.Module):
    """Embeddings [+ spelling] [+ POS] -> (bi)RNN (packed) -> per-token emissions; optional CRF on top.

    The optional inputs ride along as keywords: ``char_ids`` (B, S, W) when the config spells words,
    ``pos_ids`` (B, S) when it reads the POS column.  Vocabulary sizes of 0 mean "not read".
    """

    def __init__(self, config: TaggerConfig, vocab_size: int, num_tags: int, char_vocab_size: int = 0,
                 pos_vocab_size: int = 0):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.chars = make_char_cnn(config, char_vocab_size)
        self.pos_embedding = (nn.Embedding(pos_vocab_size, config.pos_embedding_size, padding_idx=PAD_ID)
                              if config.pos_embedding_size else None)
        input_size = (config.embedding_size + (self.chars.output_size if self.chars is not None else 0)
                      + config.pos_embedding_size)
        self.rnn = make_rnn(config.cell, input_size, config.hidden_size, config.num_layers, config.dropout,
                            config.bidirectional)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_size * (2 if config.bidirectional else 1), num_tags)
        self.crf = CRF(num_tags) if config.crf else None
        init_weights(self, config.init, bias=config.init_bias)

    def embed(self, ids: torch.Tensor, mask: torch.Tensor, char_ids: torch.Tensor | None = None,
              pos_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) ids [+ (B, S, W) characters] [+ (B, S) POS ids] -> (B, S, input size) token vectors."""
        if self.training and self.config.word_dropout:
            dropped = (torch.rand(ids.shape, device=ids.device) < self.config.word_dropout) & mask
            ids = ids.masked_fill(dropped, RESERVED.index(UNK))
        parts = [self.embedding(ids)]
        for module, extra, name in ((self.chars, char_ids, "char_ids"), (self.pos_embedding, pos_ids, "pos_ids")):
            if module is not None:
                if extra is None:
                    raise ValueError(f"this tagger reads {name}: pass them")
                parts.append(module(extra))
        return torch.cat(parts, dim=-1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, char_ids: torch.Tensor | None = None,
                pos_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, S), mask (B, S) [, char_ids, pos_ids] -> emissions (B, S, T) (per-token logits without a CRF)."""
        embedded = self.dropout(self.embed(ids, mask, char_ids, pos_ids))
        states, _ = run_packed(self.rnn, embedded, mask)  # (B, S, dirs * H)
        return self.output(self.dropout(states))

    def loss_sum(self, ids: torch.Tensor, mask: torch.Tensor, tags: torch.Tensor,
                 *extra: torch.Tensor | None) -> torch.Tensor:
        """Summed negative log-likelihood of the gold tags: per token (softmax) or per sentence (CRF).
        ``extra``: (char_ids, pos_ids), as ``forward`` takes them."""
        emissions = self.forward(ids, mask, *extra)
        if self.crf is not None:
            return -self.crf.log_likelihood(emissions, tags, mask).sum()
        token_nll = nn.functional.cross_entropy(emissions.transpose(1, 2), tags, reduction="none")  # (B, S)
        return token_nll.masked_select(mask).sum()

    @torch.no_grad()
    def decode(self, ids: torch.Tensor, mask: torch.Tensor, *extra: torch.Tensor | None) -> list[list[int]]:
        """The predicted tag ids of every sentence (Viterbi with a CRF, per-token argmax without)."""
        emissions = self.forward(ids, mask, *extra)
        if self.crf is not None:
            return self.crf.viterbi(emissions, mask)
        best = emissions.argmax(-1).tolist()
        return [row[:length] for row, length in zip(best, mask.sum(1).tolist())]
