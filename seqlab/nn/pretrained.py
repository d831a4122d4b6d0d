"""Word vectors, and recurrent layers, handed over from a trained LM to a new model (Dai & Le 2015; ULMFiT).

    copied = copy_rows(classifier.embedding, classifier_vocab, lm_embedding.weight, lm_vocab)
    layers = copy_recurrent(classifier.rnn, lm.rnn)      # the LM's stack into the encoder's forward direction

The two vocabularies differ (each is built from its own training data), so rows are matched by the word, not by
the id: every word of the target vocabulary that the source vocabulary has takes the source's row; a word the
source lacks keeps its fresh initialisation, as do the special tokens (``<pad>`` stays the zero row).  A word
is looked up as it is, then lower-cased, so a cased classifier still finds a lower-cased LM's vectors.

A left-to-right LM's recurrent layers fit the forward direction of an encoder of the same cell and sizes; a
bidirectional encoder's backward direction keeps its fresh start (ULMFiT trains a second, backward LM for it).
"""

from __future__ import annotations

import torch
from torch import nn

from seqlab.data.vocab import RESERVED, Vocab
from seqlab.errors import ConfigError


@torch.no_grad()
def copy_rows(target: nn.Embedding, target_vocab: Vocab, source: torch.Tensor, source_vocab: Vocab) -> int:
    """``target``'s row of each word that ``source_vocab`` holds := ``source``'s row (V', E); -> rows copied."""
    if source.size(1) != target.embedding_dim:
        raise ConfigError(f"model.pretrained: the source has {source.size(1)}-d word vectors, the model "
                          f"{target.embedding_dim}-d; set the embedding size to {source.size(1)}")
    if source.size(0) != len(source_vocab) or target.num_embeddings != len(target_vocab):
        raise ConfigError("model.pretrained: an embedding table and its vocabulary differ in size")
    pairs = []
    for index, word in enumerate(target_vocab.tokens):
        if word in RESERVED:
            continue
        for form in (word, word.lower()):
            if form in source_vocab and form not in RESERVED:
                pairs.append((index, source_vocab.token_to_id(form)))
                break
    if pairs:
        rows, source_rows = map(torch.tensor, zip(*pairs))
        target.weight[rows] = source[source_rows].to(target.weight)
    return len(pairs)


@torch.no_grad()
def copy_recurrent(target: nn.RNNBase, source: nn.Module) -> int:
    """``source``'s layers (a fused ``nn.LSTM``/``GRU``/``RNN`` or a ``WeightDropRNN``) into the forward direction
    of ``target``'s first layers, as many as both have -> layers copied.  Cell and sizes must agree."""
    layers = source_layers(source)
    for index, (module, suffix) in enumerate(layers[:target.num_layers]):
        if (type(module) is not type(target) or module.hidden_size != target.hidden_size
                or getattr(module, "nonlinearity", None) != getattr(target, "nonlinearity", None)):
            raise ConfigError(f"model.pretrained_encoder: the LM has a {type(module).__name__} of "
                              f"{module.hidden_size} units, the encoder a {type(target).__name__} of "
                              f"{target.hidden_size}")
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            mine, theirs = getattr(target, f"{name}_l{index}"), getattr(module, f"{name}_{suffix}")
            if mine.shape != theirs.shape:
                raise ConfigError(f"model.pretrained_encoder: layer {index}'s {name} is {tuple(theirs.shape)} in "
                                  f"the LM, {tuple(mine.shape)} in the encoder (input sizes differ)")
            mine.copy_(theirs)
    return min(len(layers), target.num_layers)


def source_layers(rnn: nn.Module) -> list[tuple[nn.RNNBase, str]]:
    """(module, parameter suffix) of each layer of a fused stack ("l0", "l1", ...) or of a WeightDropRNN."""
    from seqlab.nn.awd import WeightDropRNN

    if isinstance(rnn, WeightDropRNN):
        return [(layer, "l0") for layer in rnn.layers]
    if isinstance(rnn, nn.RNNBase):
        return [(rnn, f"l{index}") for index in range(rnn.num_layers)]
    raise ConfigError(f"model.pretrained_encoder: the LM's recurrent stack ({type(rnn).__name__}) cannot be "
                      "handed over")


def word_embedding(model: nn.Module, vocab_size: int) -> nn.Embedding:
    """The model's word-embedding table: its first ``nn.Embedding`` with one row per vocabulary entry."""
    for module in model.modules():
        if isinstance(module, nn.Embedding) and module.num_embeddings == vocab_size:
            return module
    raise ConfigError(f"model.pretrained: the model has no embedding table of {vocab_size} rows to hand over")
