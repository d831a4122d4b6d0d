"""The dialogue task end to end on tiny made-up dialogues: HRED and the flat baseline learn a reply that depends
on a turn before the last one, `seqlab chat` keeps the history (from a pipe: blank line = new dialogue), and
`seqlab evaluate` gives the response metrics; bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from seqlab import cli
from seqlab.decoding import DecodeConfig
from seqlab.tasks import load_config, load_model_dir, train
from seqlab.tasks.dialogue import Responder
from tests.conftest import check_one_line_error

# The answer to "which one ?" is in the turn two back, so a model must read more than the last turn.
DIALOGUES = ["I like red . __eou__ Really ? __eou__ Which one ? __eou__ Red ! __eou__",
             "I like blue . __eou__ Really ? __eou__ Which one ? __eou__ Blue ! __eou__"]


def write_config(tmp: Path, architecture: dict, history: int = 3, lr: float = 0.005) -> Path:
    data = tmp / "dialogues.txt"
    data.write_text("".join(line + "\n" for line in DIALOGUES * 8), encoding="utf-8")
    raw = {"task": "dialogue", "model_dir": str(tmp / "model"),
           "data": {"dataset": "files", "train_file": str(data), "valid_file": str(data), "test_file": str(data),
                    "history": history, "min_freq": 1, "batch_size": 8},
           "model": {"embedding_size": 16, "hidden_size": 16, "num_layers": 1, "dropout": 0.0, **architecture},
           "train": {"lr": lr, "max_epochs": 1000, "max_steps": 400, "num_threads": 1, "progress": False,
                     "log_every": 1000},
           "decode": {"strategy": "greedy", "max_len": 6}}
    path = tmp / "dialogue.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize("architecture, lr", [({"architecture": "hred", "cell": "gru"}, 0.005),
                                              ({"architecture": "rnn", "cell": "gru", "attention": "general",
                                                "bidirectional": True, "init_decoder": "bridge"}, 0.01)])
def test_the_reply_depends_on_a_turn_before_the_last(tmp_path, architecture, lr):
    train(load_config(write_config(tmp_path, architecture, lr=lr)))
    responder = Responder(load_model_dir(tmp_path / "model"), DecodeConfig(strategy="greedy", max_len=6))
    replies = responder.reply([["I like red .", "Really ?", "Which one ?"], ["I like blue .", "Really ?", "Which one ?"]])
    assert [reply.text for reply in replies] == ["red !", "blue !"]


@pytest.fixture(scope="module")
def hred_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("hred")
    train(load_config(write_config(tmp, {"architecture": "hred"})))
    return tmp / "model"


def test_chat_keeps_the_history_and_a_blank_line_starts_over(hred_dir, tmp_path, capsys):
    turns = tmp_path / "turns.txt"
    # model replies join the history: "I like red ." -> "really ?" (the model), then "Which one ?" -> "red !"
    turns.write_text("I like red .\nWhich one ?\n\nI like blue .\nWhich one ?\n", encoding="utf-8")
    assert cli.main(["chat", str(hred_dir), "-i", str(turns)]) == 0
    assert capsys.readouterr().out.splitlines() == ["really ?", "red !", "really ?", "blue !"]
    assert cli.main(["chat", str(hred_dir), "-i", str(turns), "--reset"]) == 0
    replies = capsys.readouterr().out.splitlines()
    assert replies[1] == replies[3]  # without its history "which one ?" cannot tell red from blue


def test_evaluate_gives_the_response_metrics(hred_dir, tmp_path, capsys):
    out = tmp_path / "replies.txt"
    assert cli.main(["evaluate", str(hred_dir), "--split", "test", "--beam", "2", "--out", str(out)]) == 0
    scores = yaml.safe_load(capsys.readouterr().out)
    assert scores["pairs"] == 16 * 3 and scores["search"] == "beam 2"
    assert scores["bleu_1"] > 90 and scores["ppl"] < 2.0  # it has learned the made-up dialogues by heart
    assert 0 < scores["distinct_1"] < 1 and scores["mean_length"] > 1
    assert len(out.read_text().splitlines()) == 16 * 3
    test = tmp_path / "test.txt"  # one training dialogue and one new one: --drop-overlap keeps the new one only
    test.write_text(DIALOGUES[0] + "\nI like green . __eou__ Really ? __eou__\n", encoding="utf-8")
    from seqlab.tasks.dialogue import evaluate

    loaded = load_model_dir(hred_dir)
    loaded.config.data.test_file = str(test)
    decode = DecodeConfig(strategy="greedy", max_len=6)
    assert evaluate(loaded, "test", decode)[0]["pairs"] == 3 + 1
    kept, pairs, _ = evaluate(loaded, "test", decode, drop_overlap=True)
    assert kept["pairs"] == 1 and pairs[0].response == ("really", "?")


def test_bad_input_is_one_line(tmp_path, capsys):
    train(load_config(write_config(tmp_path, {"architecture": "hred"})))
    capsys.readouterr()
    code = cli.main(["chat", str(tmp_path / "model"), "--history", "0", "-i", "/dev/null"])
    check_one_line_error(code, capsys.readouterr().err, "--history: must be >= 1")
    bad = tmp_path / "bad.txt"
    bad.write_text("hello __eou__ there\n", encoding="utf-8")
    config = write_config(tmp_path, {"architecture": "hred"})
    code = cli.main(["train", str(config), "--overwrite", "--set", f"data.train_file={bad}"])
    check_one_line_error(code, capsys.readouterr().err, "bad.txt:1", "__eou__")
    assert (tmp_path / "model" / "best.pt").is_file()  # unreadable data never costs the model it would replace
    code = cli.main(["chat", str(tmp_path / "model"), "--beam", "5000", "-i", "/dev/null"])
    check_one_line_error(code, capsys.readouterr().err, "beam_size")


def test_the_server_replies_as_chat_does(hred_dir, tmp_path, capsys):
    from fastapi.testclient import TestClient

    from seqlab.serve.app import ServeSettings, create_app
    from seqlab.serve.models import ServedModel

    served = [ServedModel("dialogue", hred_dir, load_model_dir(hred_dir))]
    with TestClient(create_app(served, ServeSettings())) as client:
        body = {"dialogues": [["I like red .", "really ?", "Which one ?"], ["I like blue ."]], "beam": 2, "nbest": 2}
        replies = client.post("/v1/chat", json=body).json()["replies"]
        assert [reply["text"] for reply in replies] == ["red !", "really ?"]
        assert len(replies[0]["nbest"]) == 2 and replies[0]["nbest"][0]["score"] >= replies[0]["nbest"][1]["score"]
        assert client.get("/v1/models").json()["models"][0]["task"] == "dialogue"
        empty = client.post("/v1/chat", json={"dialogues": [["hi", " "]]})
        assert empty.status_code == 422 and "dialogues" in empty.json()["error"]
        assert client.post("/v1/chat", json={"dialogues": ["hi"]}).status_code == 422  # a turn list, not a string
        assert client.post("/v1/translate", json={"texts": ["hi"]}).status_code in (404, 422)
    turns = tmp_path / "turns.txt"
    turns.write_text("I like red .\nWhich one ?\n", encoding="utf-8")
    assert cli.main(["chat", str(hred_dir), "-i", str(turns), "--beam", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "red !"


def test_dialogue_models_ensemble_and_a_flat_member_is_refused(hred_dir, tmp_path, capsys):
    other = tmp_path / "seed2"
    other.mkdir()
    train(load_config(write_config(other, {"architecture": "hred"}), ["train.seed=2", "train.max_steps=60"]))
    flat = tmp_path / "flat"
    flat.mkdir()
    train(load_config(write_config(flat, {"architecture": "rnn"}), ["train.max_steps=5"]))
    capsys.readouterr()
    members = [str(hred_dir), str(other / "model")]
    assert cli.main(["evaluate", members[0], "--models", *members, "--split", "test"]) == 0
    ensemble = yaml.safe_load(capsys.readouterr().out)
    assert cli.main(["evaluate", members[1], "--split", "test"]) == 0
    weaker = yaml.safe_load(capsys.readouterr().out)
    assert ensemble["pairs"] == weaker["pairs"] and ensemble["ppl"] != weaker["ppl"]
    code = cli.main(["evaluate", members[0], "--models", members[0], str(flat / "model")])
    check_one_line_error(code, capsys.readouterr().err, "--models", "hierarchical")
