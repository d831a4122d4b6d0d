"""The continuous cache pointer (Grave et al. 2017): exact accounting, the fast paths against the per-token twin,
proper distributions, and the gain it exists for (copying from a repetitive stream)."""

import math

import numpy as np
import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.lm.cache import (block_cache_log_probs, cache_distribution_reference, cache_grid, cache_stream_nll,
                             cache_stream_nll_reference, mix_log_probs, stream_features)
from seqlab.tasks.language_model import stream_nll
from seqlab.models.rnn_lm import RNNLM, RNNLMConfig
from seqlab.models.transformer import TransformerConfig, TransformerLM

VOCAB = 24


def tiny_model(cell: str = "lstm", **options) -> RNNLM:
    # init_range 0.5: hidden states far enough apart that θ·h_t·h_i ranks the memory (not a flat cache).
    torch.manual_seed(0)
    options = {"embedding_size": 12, "hidden_size": 12, "num_layers": 2, "init_range": 0.5, **options}
    return RNNLM(RNNLMConfig(cell=cell, **options), VOCAB).eval()


def random_stream(length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, VOCAB, size=length).astype(np.int64)


def test_lambda_zero_equals_stream_nll():
    model, stream = tiny_model(), random_stream(120)
    expected, expected_count = stream_nll(model, stream, bptt=9)
    nll, count = cache_stream_nll(model, stream, bptt=9, window=20, theta=1.0, lambda_=0.0)
    assert count == expected_count == len(stream) - 1
    assert nll == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("cell, options", [("lstm", {}), ("gru", {}),
                                           ("lstm", {"tie_embeddings": True, "embedding_size": 8})])
def test_chunked_cache_equals_the_per_token_twin(cell, options):
    # bptt 7 and window 10 do not divide each other or the stream: the memory crosses chunk boundaries and drops
    # old entries part-way through a chunk.  The tied variant reads the projected hidden states.
    model, stream = tiny_model(cell, **options), random_stream(60, seed=1)
    expected, expected_count = cache_stream_nll_reference(model, stream, window=10, theta=2.0, lambda_=0.3)
    nll, count = cache_stream_nll(model, stream, bptt=7, window=10, theta=2.0, lambda_=0.3)
    assert count == expected_count
    assert nll == pytest.approx(expected, rel=1e-5)


def test_grid_equals_the_chunked_cache_at_every_point():
    model, stream = tiny_model(), random_stream(90, seed=2)
    features = stream_features(model, stream, bptt=8)
    assert features.hidden.shape == (len(stream) - 1, 12)
    rows = cache_grid(features, windows=[5, 30], thetas=[0.5, 3.0], lambdas=[0.0, 0.2], block=16)
    assert len(rows) == 8
    for row in rows:
        nll, _ = cache_stream_nll(model, stream, bptt=11, window=row["window"], theta=row["theta"],
                                  lambda_=row["lambda"])
        assert row["nll"] == pytest.approx(nll, rel=1e-5)


def test_cache_and_mixture_are_proper_distributions():
    # Score the last position against every possible target: the fast path's p_cache and p must each sum to 1.
    torch.manual_seed(3)
    hidden, next_ids = torch.randn(9, 5), torch.randint(0, 4, (9,))  # memory of 8 rows, then one query
    model_log_probs = torch.log_softmax(torch.randn(VOCAB), -1)
    cache = torch.stack([block_cache_log_probs(hidden, torch.cat([next_ids[:-1], torch.tensor([w])]), 1, 6,
                                               [0.7], model_log_probs[w:w + 1])[0, 0] for w in range(VOCAB)])
    assert cache.exp().sum() == pytest.approx(1.0, abs=1e-6)
    assert torch.isinf(cache[4:]).all()  # words that never followed a memory entry get no cache mass
    mixed = mix_log_probs(model_log_probs, cache, 0.25)
    assert mixed.exp().sum() == pytest.approx(1.0, abs=1e-6)
    reference = cache_distribution_reference(hidden[-1], list(zip(hidden[2:8], next_ids[2:8].tolist())), 0.7, VOCAB)
    assert torch.allclose(cache.exp().double(), reference, atol=1e-6)  # the window of 6 before the query


def test_cache_lowers_perplexity_on_a_repetitive_stream():
    # An untrained model cannot predict a random sequence, but its later copies are in the memory.  A one-layer
    # tanh RNN with large weights has states driven by the last token, so θ·h_t·h_i points at the previous
    # occurrence of the current word, and the word after it is the target: sharp θ must beat a flat cache
    # (which only knows which 20 words occur), and both must beat the model.
    torch.manual_seed(0)
    model = RNNLM(RNNLMConfig(cell="rnn", embedding_size=32, hidden_size=32, num_layers=1, init_range=1.0),
                  VOCAB).eval()
    words = np.random.default_rng(4).permutation(np.arange(1, VOCAB))[:20]
    stream = np.concatenate([[1], np.tile(words, 5)])
    base, count = stream_nll(model, stream, bptt=10)
    flat, _ = cache_stream_nll(model, stream, bptt=10, window=100, theta=0.01, lambda_=0.5)
    sharp, _ = cache_stream_nll(model, stream, bptt=10, window=100, theta=1.0, lambda_=0.5)
    base_ppl, flat_ppl, sharp_ppl = (math.exp(nll / count) for nll in (base, flat, sharp))
    assert sharp_ppl < 0.5 * flat_ppl and flat_ppl < 0.5 * base_ppl


def test_options_and_models_are_checked():
    model, stream = tiny_model(), random_stream(20)
    for window, theta, lambda_ in [(0, 1.0, 0.1), (10, 0.0, 0.1), (10, 1.0, 1.0)]:
        with pytest.raises(ConfigError):
            cache_stream_nll(model, stream, 5, window, theta, lambda_)
    transformer = TransformerLM(TransformerConfig(d_model=8, num_heads=2, ffn_size=16, num_encoder_layers=1,
                                                  num_decoder_layers=1), VOCAB)
    with pytest.raises(ConfigError, match="TransformerLM is not supported"):
        cache_stream_nll(transformer, stream, 5, 10, 1.0, 0.1)
