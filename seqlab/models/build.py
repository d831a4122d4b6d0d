"""Model construction by name: a plain table, no registries (STYLE habit 4).

``MODEL_CONFIGS[architecture]`` is the config dataclass of a family; ``build_seq2seq(architecture, options,
src_vocab_size, tgt_vocab_size)`` builds the module.  Adding a family = one line in each table.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from seqlab.models.rnn_lm import RNNLM, RNNLMConfig
from seqlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig
from seqlab.models.transformer import TransformerConfig, TransformerLM, TransformerSeq2Seq

MODEL_CONFIGS: dict[str, type] = {
    "rnn": RNNSeq2SeqConfig,
    "transformer": TransformerConfig,
}

SEQ2SEQ_BUILDERS: dict[str, Callable[[Any, int, int], torch.nn.Module]] = {
    "rnn": RNNSeq2Seq,
    "transformer": TransformerSeq2Seq,
}


def build_seq2seq(architecture: str, options: Any, src_vocab_size: int, tgt_vocab_size: int) -> torch.nn.Module:
    return SEQ2SEQ_BUILDERS[architecture](options, src_vocab_size, tgt_vocab_size)


# Language models: architecture -> (config class, builder(config, vocab_size)).
LM_CONFIGS: dict[str, type] = {
    "rnn": RNNLMConfig,
    "transformer": TransformerConfig,
}

LM_BUILDERS: dict[str, Callable[[Any, int], torch.nn.Module]] = {
    "rnn": RNNLM,
    "transformer": TransformerLM,
}


def build_lm(architecture: str, options: Any, vocab_size: int) -> torch.nn.Module:
    return LM_BUILDERS[architecture](options, vocab_size)
