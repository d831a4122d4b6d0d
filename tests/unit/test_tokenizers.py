"""Tokenizers: d2l's preprocess_nmt (against a transcription of d2l's function), round trips on the bundled
Tatoeba sample, sentencepiece BPE / unigram training, serialisation and its errors."""

import unicodedata

import pytest

from seqlab.data.config import TokenizerConfig
from seqlab.data.datasets import _read_tatoeba_sample
from seqlab.data.tokenizers import (SPACE_SYMBOL, CharTokenizer, SentencePieceTokenizer, WordTokenizer,
                                    build_tokenizer, tokenizer_from_dict)
from seqlab.errors import CheckpointError, DataError


@pytest.fixture(scope="module")
def sample_lines():
    """Both sides of every 25th pair of the bundled sample: 1,600 real lines with U+202F, accents, apostrophes."""
    pairs = _read_tatoeba_sample()
    return [side for pair in pairs[::25] for side in pair]


def d2l_preprocess_nmt(text: str) -> str:
    """d2l's ``preprocess_nmt`` (book section "Machine Translation and the Dataset"), the readable twin."""
    def no_space(char, prev_char):
        return char in set(",.!?") and prev_char != " "

    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    out = [" " + char if i > 0 and no_space(char, text[i - 1]) else char for i, char in enumerate(text)]
    return "".join(out)


# ------------------------------------------------------------------------------------------------ word
def test_word_tokenizer_preprocess_nmt_on_no_break_spaces():
    tokenizer = WordTokenizer()
    assert tokenizer.encode("Go.\u202fNow!") == ["go", ".", "now", "!"]
    assert tokenizer.encode("J'ai froid\xa0!") == ["j'ai", "froid", "!"]
    assert tokenizer.encode("Wait...") == ["wait", ".", ".", "."]
    assert tokenizer.encode(". Hi") == [".", "hi"]  # d2l never adds a space at position 0


def test_word_tokenizer_equals_d2l_preprocess_nmt_on_real_lines(sample_lines):
    tokenizer = WordTokenizer()
    for line in sample_lines:
        assert tokenizer.encode(line) == d2l_preprocess_nmt(line).split(), line


def test_word_tokenizer_decode_attaches_punctuation_and_round_trips(sample_lines):
    tokenizer = WordTokenizer()
    assert tokenizer.decode(["j'ai", "froid", "."]) == "j'ai froid."
    assert tokenizer.decode(["wait", ".", ".", "."]) == "wait..."
    assert WordTokenizer(attach_punctuation=False).decode(["j'ai", "froid", "."]) == "j'ai froid ."
    for line in sample_lines:
        tokens = tokenizer.encode(line)
        assert tokenizer.encode(tokenizer.decode(tokens)) == tokens, line


def test_word_tokenizer_options():
    assert WordTokenizer(lowercase=False).encode("Go.") == ["Go", "."]
    assert WordTokenizer(split_punctuation=False).encode("Go. Now!") == ["go.", "now!"]


# ------------------------------------------------------------------------------------------------ char
def test_char_tokenizer_round_trip_and_space_symbol(sample_lines):
    tokenizer = CharTokenizer()
    assert tokenizer.encode("Va !") == ["V", "a", SPACE_SYMBOL, "!"]
    assert tokenizer.encode("a\u202fb") == ["a", SPACE_SYMBOL, "b"]  # no-break spaces are spaces
    assert CharTokenizer(lowercase=True).encode("AB") == ["a", "b"]
    for line in sample_lines:
        expected = line.replace("\u202f", " ").replace("\xa0", " ")
        assert tokenizer.decode(tokenizer.encode(line)) == expected


# ------------------------------------------------------------------------------------------------ sentencepiece
@pytest.fixture(scope="module", params=["bpe", "unigram"])
def trained(request, sample_lines):
    return SentencePieceTokenizer.train(sample_lines[:400], vocab_size=300, model_type=request.param)


def test_sentencepiece_round_trip(trained, sample_lines):
    """Decoding gives the text back up to sentencepiece's nmt_nfkc normalisation (NFKC, whitespace collapsed)."""
    assert trained.processor.get_piece_size() == 300
    for line in sample_lines:  # the 1,200 lines not trained on too
        pieces = trained.encode(line)
        assert pieces and all(isinstance(piece, str) for piece in pieces)
        assert trained.decode(pieces) == " ".join(unicodedata.normalize("NFKC", line).split())


def test_sentencepiece_to_dict_from_dict_gives_identical_encodings(trained, sample_lines, tmp_path):
    data = trained.to_dict()
    assert data["type"] == "sentencepiece" and isinstance(data["model_proto"], bytes)
    restored = tokenizer_from_dict(data)
    assert all(restored.encode(line) == trained.encode(line) for line in sample_lines)
    trained.save_model(tmp_path / "spm.model")  # the file spm_encode reads: the same proto bytes
    assert (tmp_path / "spm.model").read_bytes() == trained.model_proto


def test_sentencepiece_training_is_deterministic(sample_lines):
    first = SentencePieceTokenizer.train(sample_lines[:200], vocab_size=150, model_type="unigram", seed=3)
    second = SentencePieceTokenizer.train(sample_lines[:200], vocab_size=150, model_type="unigram", seed=3)
    assert first.model_proto == second.model_proto


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_sentencepiece_too_large_vocab_size_gives_fewer_pieces(model_type, sample_lines):
    tokenizer = SentencePieceTokenizer.train(sample_lines[:300], vocab_size=100_000, model_type=model_type)
    size = tokenizer.processor.get_piece_size()
    assert 50 < size < 100_000
    assert tokenizer.decode(tokenizer.encode(sample_lines[0])) == " ".join(sample_lines[0].split())


def test_sentencepiece_lowercase_and_build_tokenizer(sample_lines):
    config = TokenizerConfig(type="sentencepiece", vocab_size=200, lowercase=True)
    tokenizer = build_tokenizer(config, sample_lines[:300])
    assert isinstance(tokenizer, SentencePieceTokenizer)
    assert tokenizer.encode("GO HOME.") == tokenizer.encode("go home.")
    assert tokenizer_from_dict(tokenizer.to_dict()).encode("GO HOME.") == tokenizer.encode("go home.")


def test_sentencepiece_user_errors(sample_lines):
    with pytest.raises(DataError, match="no training text"):
        SentencePieceTokenizer.train(["", "  "], vocab_size=100)
    with pytest.raises(DataError, match="vocab_size") as error:  # fewer pieces than the text has characters
        SentencePieceTokenizer.train(sample_lines[:300], vocab_size=10)
    assert "\n" not in str(error.value)
    with pytest.raises(CheckpointError, match="sentencepiece model: cannot load"):
        SentencePieceTokenizer(b"not a model proto")


# ------------------------------------------------------------------------------------------------ serialisation
@pytest.mark.parametrize("tokenizer", [WordTokenizer(lowercase=False, attach_punctuation=False),
                                       WordTokenizer(split_punctuation=False), CharTokenizer(lowercase=True)])
def test_word_and_char_to_dict_round_trip(tokenizer):
    restored = tokenizer_from_dict(tokenizer.to_dict())
    assert type(restored) is type(tokenizer) and restored.to_dict() == tokenizer.to_dict()
    text = "Wait... J'ai FROID\u202f!"
    assert restored.encode(text) == tokenizer.encode(text)
    assert restored.decode(tokenizer.encode(text)) == tokenizer.decode(tokenizer.encode(text))


def test_build_tokenizer_word_and_char():
    assert build_tokenizer(TokenizerConfig(type="word"), []).encode("Hi!") == ["hi", "!"]
    assert build_tokenizer(TokenizerConfig(type="char", lowercase=False), []).encode("Hi") == ["H", "i"]


def test_unknown_tokenizer_type_in_a_checkpoint():
    with pytest.raises(CheckpointError, match="unknown type 'bytes'"):
        tokenizer_from_dict({"type": "bytes"})
