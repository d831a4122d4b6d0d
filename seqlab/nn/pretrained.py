"""Word vectors handed over from a trained model to a new one, word by word (Dai & Le 2015; ULMFiT's first step).

    copied = copy_rows(classifier.embedding, classifier_vocab, lm_embedding.weight, lm_vocab)

The two vocabularies differ (each is built from its own training data), so rows are matched by the word, not by
the id: every word of the target vocabulary that the source vocabulary has takes the source's row; a word the
source lacks keeps its fresh initialisation, as do the special tokens (``<pad>`` stays the zero row).  A word
is looked up as it is, then lower-cased, so a cased classifier still finds a lower-cased LM's vectors.
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
        raise ConfigError(f"pretrained: the source has {source.size(1)}-d word vectors, the model "
                          f"{target.embedding_dim}-d; set the embedding size to {source.size(1)}")
    if source.size(0) != len(source_vocab) or target.num_embeddings != len(target_vocab):
        raise ConfigError("pretrained: an embedding table and its vocabulary differ in size")
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


def word_embedding(model: nn.Module, vocab_size: int) -> nn.Embedding:
    """The model's word-embedding table: its first ``nn.Embedding`` with one row per vocabulary entry."""
    for module in model.modules():
        if isinstance(module, nn.Embedding) and module.num_embeddings == vocab_size:
            return module
    raise ConfigError(f"pretrained: the model has no embedding table of {vocab_size} rows to hand over")
