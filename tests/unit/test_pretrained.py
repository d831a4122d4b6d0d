"""Word vectors handed from a trained LM to a classifier (seqlab.nn.pretrained, ``model.pretrained``): rows matched
by the word, not the id; specials and unknown words keep their start; frozen stays frozen through training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError
from seqlab.nn.awd import WeightDropRNN
from seqlab.nn.pretrained import copy_recurrent, copy_rows, word_embedding
from seqlab.tasks import build_config, load_model_dir, train

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]


def test_rows_are_matched_by_the_word_not_the_id():
    source_vocab = Vocab(SPECIALS + ["film", "good", "bad"])
    source = torch.arange(7 * 3, dtype=torch.float32).view(7, 3)  # row i = (3i, 3i+1, 3i+2)
    target_vocab = Vocab(SPECIALS + ["Bad", "plot", "film"])  # other order; "Bad" only lower-cased in the source
    target = nn.Embedding(7, 3, padding_idx=0)
    before = target.weight.detach().clone()
    assert copy_rows(target, target_vocab, source, source_vocab) == 2
    weight = target.weight.detach()
    torch.testing.assert_close(weight[4], source[6])  # Bad <- bad
    torch.testing.assert_close(weight[6], source[4])  # film <- film
    torch.testing.assert_close(weight[5], before[5])  # plot: not in the source, untouched
    torch.testing.assert_close(weight[:4], before[:4])  # specials untouched; <pad> stays the zero row
    assert weight[0].abs().sum() == 0


def test_a_different_vector_size_is_a_config_error():
    vocab = Vocab(SPECIALS + ["film"])
    with pytest.raises(ConfigError, match="5-d word vectors, the model 3-d"):
        copy_rows(nn.Embedding(5, 3), vocab, torch.zeros(5, 5), vocab)
    with pytest.raises(ConfigError, match="no embedding table of 9 rows"):
        word_embedding(nn.Linear(2, 2), 9)


def test_an_lms_layers_go_into_the_encoders_forward_direction():
    torch.manual_seed(0)
    lm = nn.LSTM(6, 5, 2, batch_first=True)
    encoder = nn.LSTM(6, 5, 1, batch_first=True, bidirectional=True)
    backward = encoder.weight_hh_l0_reverse.detach().clone()
    assert copy_recurrent(encoder, lm) == 1  # one layer in the encoder
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        torch.testing.assert_close(getattr(encoder, f"{name}_l0"), getattr(lm, f"{name}_l0"))
    torch.testing.assert_close(encoder.weight_hh_l0_reverse, backward)  # the backward direction keeps its start
    stack = WeightDropRNN(nn.LSTM, 6, 5, 2, weight_drop=0.5)  # an AWD LM's per-layer stack hands over the same way
    two = nn.LSTM(6, 5, 2, batch_first=True)
    assert copy_recurrent(two, stack) == 2
    torch.testing.assert_close(two.weight_hh_l1, stack.layers[1].weight_hh_l0)


@pytest.mark.parametrize("encoder, message", [
    (nn.GRU(6, 5, batch_first=True), "the LM has a LSTM of 5 units, the encoder a GRU of 5"),
    (nn.LSTM(6, 7, batch_first=True), "the LM has a LSTM of 5 units, the encoder a LSTM of 7"),
    (nn.LSTM(4, 5, batch_first=True), "input sizes differ"),
])
def test_an_encoder_of_another_shape_is_refused(encoder, message):
    with pytest.raises(ConfigError, match=message):
        copy_recurrent(encoder, nn.LSTM(6, 5, batch_first=True))


def write_lines(path: Path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def word_lm(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lm")
    text = write_lines(root / "lm.txt", ["the film was good", "the film was bad", "a plot and a story"] * 8)
    config = build_config({"task": "lm", "model_dir": str(root / "lm"),
                           "data": {"dataset": "files", "train_file": text, "valid_file": text, "test_file": text,
                                    "batch_size": 2, "bptt": 4},
                           "model": {"architecture": "rnn", "cell": "lstm", "embedding_size": 8, "hidden_size": 8},
                           "train": {"max_epochs": 2, "progress": False, "num_threads": 1}})
    train(config)
    return root / "lm"


def classifier_config(root: Path, lm_dir: Path, freeze: bool, encoder: str = "cnn", size: int = 8) -> dict:
    rows = [f"{'pos' if i % 2 else 'neg'}\t{'good' if i % 2 else 'bad'} film number{i}" for i in range(24)]
    path = write_lines(root / "labelled.tsv", rows)
    return {"task": "classification", "model_dir": str(root / f"clf_{freeze}"),
            "data": {"dataset": "files", "train_file": path, "valid_file": path, "test_file": path, "batch_size": 4},
            "model": {"encoder": encoder, "embedding_size": size, "hidden_size": 8, "num_filters": 4,
                      "kernel_sizes": [1, 2], "pretrained": str(lm_dir), "freeze_pretrained": freeze},
            "train": {"max_epochs": 3, "lr": 0.05, "progress": False, "num_threads": 1}}


@pytest.mark.parametrize("freeze", [True, False])
def test_a_classifier_starts_from_the_lms_vectors(word_lm, tmp_path, freeze):
    config = build_config(classifier_config(tmp_path, word_lm, freeze))
    train(config)
    lm, clf = load_model_dir(word_lm), load_model_dir(config.model_dir)
    lm_rows = dict(zip(lm.preprocessing.vocab.tokens, lm.model.embedding.weight.detach()))
    clf_vocab = clf.preprocessing.vocab
    shared = [w for w in ("good", "bad", "film") if w in clf_vocab]
    assert len(shared) == 3
    start = json.loads((Path(config.model_dir) / "train_log.jsonl").read_text().splitlines()[0])
    assert start["pretrained"] == {"model_dir": str(word_lm), "rows_copied": 3, "vocab": len(clf_vocab),
                                   "frozen": freeze}
    for word in shared:  # frozen: still the LM's row after training; fine-tuned: moved away from it
        row = clf.model.embedding.weight[clf_vocab.token_to_id(word)].detach()
        assert torch.allclose(row, lm_rows[word]) == freeze, word


def test_an_lstm_classifier_can_start_from_the_lms_layers_too(word_lm, tmp_path):
    raw = classifier_config(tmp_path, word_lm, False, encoder="lstm")
    raw["model"].update(pretrained_encoder=True, bidirectional=True)
    raw["train"]["max_steps"] = 1
    config = build_config(raw)
    train(config)
    start = json.loads((Path(config.model_dir) / "train_log.jsonl").read_text().splitlines()[0])
    assert start["pretrained"]["encoder_layers_copied"] == 1 and start["pretrained"]["rows_copied"] == 3


def test_bad_hand_overs_are_one_line_config_errors(word_lm, tmp_path):
    with pytest.raises(ConfigError, match="8-d word vectors, the model 6-d"):
        train(build_config(classifier_config(tmp_path, word_lm, False, size=6)))
    with pytest.raises(ConfigError, match="RNN and CNN encoders only"):
        build_config(classifier_config(tmp_path, word_lm, False, encoder="transformer"))
    missing = classifier_config(tmp_path, tmp_path / "no_lm", False)
    with pytest.raises(ConfigError, match="model.pretrained: .*no_lm: no such model directory"):
        train(build_config(missing))
    with pytest.raises(ConfigError, match="pretrained_encoder: needs an rnn, gru or lstm encoder, got cnn"):
        build_config({**classifier_config(tmp_path, word_lm, False), "model": {
            **classifier_config(tmp_path, word_lm, False)["model"], "pretrained_encoder": True}})
    bad = classifier_config(tmp_path, word_lm, True)
    bad["model"]["pretrained"] = ""
    with pytest.raises(ConfigError, match="freeze_pretrained: needs model.pretrained"):
        build_config(bad)
