"""Vocab: id layout, ordering (frequency, then alphabetical), min_freq / max_size, PTB's literal <unk>, storage in
both formats and the DataErrors of a bad vocabulary file."""

import gzip
from collections import Counter

import pytest

from seqlab.data.datasets import resolve_data_dir
from seqlab.data.vocab import RESERVED, Vocab
from seqlab.errors import DataError

# counts: the 5, cat 3, a 2, mat 2, dog 1, sat 1 (a/mat and dog/sat tie)
SENTENCES = [["the", "cat", "sat"], ["the", "cat", "a", "mat"], ["the", "dog", "the", "a"], ["mat", "cat", "the"]]


def test_reserved_ids_then_frequency_descending_ties_alphabetical():
    vocab = Vocab.build(SENTENCES)
    assert vocab.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "the", "cat", "a", "mat", "dog", "sat"]
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3)
    assert [vocab.token_to_id(t) for t in RESERVED] == [0, 1, 2, 3]


def test_ties_are_alphabetical_by_code_point():
    vocab = Vocab.build([["bz", "c", "a", "B", "ay", "b", "é"], ["c", "é"]])
    assert vocab.tokens[4:] == ["c", "é", "B", "a", "ay", "b", "bz"]


def test_order_does_not_depend_on_the_order_of_the_corpus():
    assert Vocab.build(SENTENCES) == Vocab.build([list(reversed(s)) for s in reversed(SENTENCES)])


def test_min_freq_and_max_size():
    assert Vocab.build(SENTENCES, min_freq=2).tokens[4:] == ["the", "cat", "a", "mat"]
    assert Vocab.build(SENTENCES, max_size=3).tokens[4:] == ["the", "cat", "a"]  # the tie a/mat goes to "a"
    assert Vocab.build(SENTENCES, min_freq=3, max_size=10).tokens[4:] == ["the", "cat"]
    assert len(Vocab.build(SENTENCES, min_freq=99)) == 4


def test_user_specials_come_after_the_reserved_four_and_are_not_counted():
    vocab = Vocab.build(SENTENCES + [["<sep>"] * 9], specials=["<sep>", "<mask>", "<unk>"], max_size=1)
    assert vocab.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "<sep>", "<mask>", "the"]
    assert vocab.specials == ("<sep>", "<mask>")


def test_a_literal_unk_in_the_corpus_is_not_a_second_entry():
    vocab = Vocab.build([["the", "<unk>", "<unk>", "<unk>", "cat"], ["<unk>", "the"]])
    assert vocab.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "the", "cat"]
    assert vocab.encode(["<unk>", "the", "unseen"]) == [1, 4, 1]


def test_ptb_vocabulary_has_9999_words_and_one_unk():
    """shared/data README: PTB train has 9,999 distinct tokens (<unk> among them); + <eos> = 10,000."""
    path = resolve_data_dir() / "ptb" / "ptb.train.txt.gz"
    if not path.is_file():
        pytest.skip(f"PTB not found at {path} (set SEQLAB_DATA to the shared data directory)")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        sentences = [line.split() for line in handle]
    vocab = Vocab.build(sentences)
    assert len(vocab) == 4 + 9999 - 1  # <unk> is the reserved id 1, not a second entry
    assert vocab.tokens.count("<unk>") == 1
    counts = Counter(t for s in sentences for t in s)
    assert vocab.tokens[4] == "the" and counts["the"] == max(n for t, n in counts.items() if t != "<unk>")


def test_encode_and_decode():
    vocab = Vocab.build(SENTENCES)
    ids = vocab.encode(["the", "zebra", "<pad>", "<bos>", "<eos>"])
    assert ids == [4, 1, 1, 1, 1]  # control tokens in the text never become control ids
    assert vocab.decode([2, 4, 5, 0, 3, 6]) == ["the", "cat"]  # drops <bos>/<pad>, stops at <eos>
    assert vocab.decode([2, 4, 1, 3, 6], strip_special=False) == ["<bos>", "the", "<unk>", "<eos>", "a"]
    assert "cat" in vocab and "zebra" not in vocab
    assert vocab.id_to_token(5) == "cat"


@pytest.mark.parametrize("name", ["vocab.json", "vocab.txt"])
def test_save_load_round_trip(tmp_path, name):
    vocab = Vocab.build(SENTENCES + [["é", "ü", "日本", "a b"]], specials=["<sep>"])
    vocab.save(tmp_path / name)
    loaded = Vocab.load(tmp_path / name)
    assert loaded.tokens == vocab.tokens
    assert loaded.specials == (vocab.specials if name.endswith(".json") else ())
    assert Vocab.from_dict(vocab.to_dict()) == vocab


def test_a_token_with_a_newline_needs_json(tmp_path):
    vocab = Vocab.build([["a\nb"]])
    with pytest.raises(DataError, match="save as .json"):
        vocab.save(tmp_path / "vocab.txt")
    assert not (tmp_path / "vocab.txt").exists()
    vocab.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == vocab


@pytest.mark.parametrize("content, fragment", [
    ("<pad>\n<bos>\n<unk>\n<eos>\n", "vocab.txt:2: expected '<unk>'"),
    ("<pad>\n<unk>\n<bos>\n<eos>\ncat\ndog\ncat\n", "vocab.txt:7: duplicate token 'cat' (first on line 5)"),
    ("<pad>\n<unk>\n<bos>\n<eos>\ncat\n\ndog\n", "vocab.txt:6: empty token"),
    ("<pad>\n<unk>\n", "vocab.txt:2: too short"),
    ("", "vocab.txt: file is empty"),
])
def test_bad_line_vocab_files_name_file_and_line(tmp_path, content, fragment):
    (tmp_path / "vocab.txt").write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as error:
        Vocab.load(tmp_path / "vocab.txt")
    assert str(error.value).startswith(str(tmp_path / "vocab.txt"))
    assert fragment in str(error.value)


def test_bad_vocab_files_invalid_utf8_json_and_missing(tmp_path):
    (tmp_path / "vocab.txt").write_bytes(b"<pad>\n<unk>\n<bos>\n<eos>\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"vocab\.txt:5: invalid utf-8"):
        Vocab.load(tmp_path / "vocab.txt")
    (tmp_path / "vocab.json").write_text('{"tokens": ["<pad>", "<unk>",\n "<bos>" "<eos>"]}', encoding="utf-8")
    with pytest.raises(DataError, match=r"vocab\.json:2: invalid JSON"):
        Vocab.load(tmp_path / "vocab.json")
    (tmp_path / "vocab.json").write_text('{"words": []}', encoding="utf-8")
    with pytest.raises(DataError, match=r"vocab\.json:1: expected an object with a 'tokens' list"):
        Vocab.load(tmp_path / "vocab.json")
    (tmp_path / "vocab.json").write_text('{"tokens": ["<pad>", "<unk>", "<bos>", "<eos>", "a", "a"]}')
    with pytest.raises(DataError, match=r"vocab\.json:6: duplicate token 'a'"):
        Vocab.load(tmp_path / "vocab.json")
    with pytest.raises(DataError, match=r"missing\.txt: no such file"):
        Vocab.load(tmp_path / "missing.txt")


def test_constructor_refuses_a_bad_layout():
    with pytest.raises(ValueError, match="starts with"):
        Vocab(["<unk>", "<pad>", "<bos>", "<eos>"])
    with pytest.raises(ValueError, match="duplicate token 'a'"):
        Vocab([*RESERVED, "a", "a"])
