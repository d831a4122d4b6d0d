"""The data pipeline end to end: files -> tokenizers/vocab fit on train -> cached ids -> batches."""

import numpy as np
import pytest

from seqlab.data.config import DataConfig, TokenizerConfig
from seqlab.data.pipeline import ParallelCorpus, load_split, make_batches, prepare_parallel
from seqlab.errors import ConfigError, DataError

TRAIN = [("a b c", "x y"), ("b c", "y z z"), ("c", "z"), ("a a a a a a a a", "x"), ("d e", "w")]
VALID = [("a q", "x q"), ("e", "w")]


def write_files(tmp_path, pairs, name):
    (tmp_path / f"{name}.src").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    (tmp_path / f"{name}.tgt").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    return str(tmp_path / f"{name}.src"), str(tmp_path / f"{name}.tgt")


def files_config(tmp_path, **overrides):
    train_src, train_tgt = write_files(tmp_path, TRAIN, "train")
    valid_src, valid_tgt = write_files(tmp_path, VALID, "valid")
    options = dict(dataset="files", train_src=train_src, train_tgt=train_tgt, valid_src=valid_src,
                   valid_tgt=valid_tgt, batch_size=2, max_src_len=5)
    return DataConfig(**{**options, **overrides})


def test_vocab_is_fit_on_train_only_and_long_pairs_are_filtered(tmp_path):
    pre, corpora = prepare_parallel(files_config(tmp_path), splits=("train", "valid"))
    assert "q" not in pre.src_vocab and "a" in pre.src_vocab
    assert len(corpora["train"]) == 4  # the 8-token source is over max_src_len=5
    assert len(corpora["valid"]) == 2  # evaluation splits are never filtered
    unk = pre.src_vocab.unk_id
    assert corpora["valid"].src[0].tolist() == [pre.src_vocab.token_to_id("a"), unk]
    assert corpora["valid"].raw == VALID


def test_encode_src_matches_what_batches_feed_the_model(tmp_path):
    pre, corpora = prepare_parallel(files_config(tmp_path), splits=("train",))
    batch = make_batches(corpora["train"], files_config(tmp_path), shuffle=False).epoch_batches(0)[0]
    index = int(batch.indices[0])
    length = int(batch.src_mask[0].sum())
    assert batch.src_ids[0, :length].tolist() == pre.encode_src(corpora["train"].raw[index][0]).tolist()
    assert pre.decode_tgt(batch.tgt_out_ids[0].tolist()) == corpora["train"].raw[index][1]


def test_every_pair_once_per_epoch(tmp_path):
    config = files_config(tmp_path)
    _, corpora = prepare_parallel(config, splits=("train",))
    batches = make_batches(corpora["train"], config, shuffle=True)
    for epoch in range(3):
        seen = sorted(i for batch in batches.epoch_batches(epoch) for i in batch.indices.tolist())
        assert seen == list(range(len(corpora["train"])))


def test_cache_round_trip_gives_the_same_ids_and_preprocessing(tmp_path):
    config = files_config(tmp_path, cache_dir=str(tmp_path / "cache"))
    pre1, first = prepare_parallel(config, splits=("train", "valid"))
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    pre2, second = prepare_parallel(config, splits=("train", "valid"))
    assert pre2.to_dict() == pre1.to_dict()
    for split in first:
        assert [a.tolist() for a in first[split].src] == [a.tolist() for a in second[split].src]
        assert [a.tolist() for a in first[split].tgt] == [a.tolist() for a in second[split].tgt]


def test_joint_sentencepiece_shares_one_vocabulary(tmp_path):
    config = files_config(tmp_path, joint_vocab=True, tokenizer=TokenizerConfig(type="sentencepiece", vocab_size=20))
    pre, _ = prepare_parallel(config, splits=("train",))
    assert pre.src_vocab is pre.tgt_vocab
    assert pre.decode_tgt(pre.tgt_ids("x y z").tolist()) == "x y z"


def test_bad_inputs_are_one_line_errors(tmp_path):
    config = files_config(tmp_path)
    with pytest.raises(ConfigError, match="test_src"):
        load_split(config, "test")
    with pytest.raises(ConfigError, match="split"):
        load_split(config, "dev")
    with pytest.raises(DataError, match="no sentence pairs"):
        make_batches(ParallelCorpus([], []), config, shuffle=False)
    (tmp_path / "train.tgt").write_text("only one line\n", encoding="utf-8")
    with pytest.raises(DataError, match="train.src"):
        load_split(config, "train")


def test_bundled_sample_loads_without_a_data_directory():
    pairs = load_split(DataConfig(dataset="tatoeba-sample", max_train_examples=100), "train")
    assert len(pairs) == 100 and all(s and t for s, t in pairs)
    assert np.mean([len(s.split()) for s, _ in pairs]) < 10
