"""Memory guards and negative sizes in the library, so the CLI and the Python API refuse the same things."""

from types import SimpleNamespace

import pytest

from seqlab.config import from_dict
from seqlab.decoding.config import (MAX_BEAM_ROWS, MAX_BEAM_SIZE, DecodeConfig, beam_batch_size,
                                    check_decode_sizes)
from seqlab.errors import ConfigError
from seqlab.tasks.translation import Translator


@pytest.mark.parametrize("values, fragment", [
    ({"beam_size": 100_000}, "beam_size: 100000 is above the limit of 1000"),
    ({"max_len": 1_000_000}, "max_len: 1000000 is above the limit of 1024"),
    ({"nbest": 5000, "beam_size": 5000}, "beam_size: 5000 is above the limit"),
    ({"beam_size": -3}, "beam_size: must be >= 1, got -3"),
    ({"nbest": -1}, "nbest: must be >= 1"),
    ({"max_len": -5}, "max_len: must be >= 1"),
    ({"top_k": -1}, "top_k: must be >= 0"),
])
def test_decode_config_refuses_sizes_past_their_limits(values, fragment):
    with pytest.raises(ConfigError, match=fragment):
        DecodeConfig(**values)
    with pytest.raises(ConfigError, match="decode." + fragment.split(":")[0]):  # the YAML / --set path names the key
        from_dict(DecodeConfig, values, "decode.")


def test_the_largest_allowed_sizes_are_accepted():
    config = DecodeConfig(strategy="beam", beam_size=MAX_BEAM_SIZE, nbest=MAX_BEAM_SIZE, max_len=1024)
    assert config.beam_size == MAX_BEAM_SIZE


def test_a_beam_wider_than_the_output_vocabulary_is_refused_by_the_translator():
    tiny = SimpleNamespace(tgt_vocab=list(range(30)))  # only len() is asked before decoding starts
    with pytest.raises(ConfigError, match="above the limit of 30, the size of the output vocabulary"):
        Translator(None, tiny, DecodeConfig(strategy="beam", beam_size=31))
    Translator(None, tiny, DecodeConfig(strategy="beam", beam_size=30))  # the vocabulary itself is fine
    Translator(None, tiny, DecodeConfig(strategy="greedy", beam_size=500))  # the beam is unused: no check


@pytest.mark.parametrize("batch_size, fragment", [(0, "must be >= 1"), (-4, "must be >= 1, got -4"),
                                                  (100_000, "100000 is above the limit of 4096")])
def test_the_translator_refuses_bad_batch_sizes(batch_size, fragment):
    tiny = SimpleNamespace(tgt_vocab=list(range(30)))
    with pytest.raises(ConfigError, match=f"batch_size: {fragment}"):
        Translator(None, tiny, DecodeConfig(), batch_size=batch_size)


def test_a_wide_beam_gets_fewer_sentences_per_search_call():
    assert beam_batch_size(DecodeConfig(strategy="beam", beam_size=5), 64) == 64
    wide = DecodeConfig(strategy="beam", beam_size=1000)
    assert beam_batch_size(wide, 64) == MAX_BEAM_ROWS // 1000
    assert beam_batch_size(DecodeConfig(strategy="greedy"), 64) == 64
    check_decode_sizes(wide, vocab_size=5000, batch_size=64)  # allowed: the batch is split instead
