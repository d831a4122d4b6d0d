"""Neural language models through the CLI: train on a tiny text, generate from a prompt, score and rank."""

import json

import pytest
import yaml

from tests.integration.test_cli import assert_clean_error, seqlab

TEXT = ["to recognize speech is hard", "it is easy to recognize speech", "we recognize speech today",
        "i think therefore i am", "you think therefore you are"] * 8


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    (root / "train.txt").write_text("\n".join(TEXT) + "\n", encoding="utf-8")
    (root / "valid.txt").write_text("\n".join(TEXT[:5]) + "\n", encoding="utf-8")
    config = {"task": "lm", "model_dir": str(root / "model"),
              "data": {"dataset": "files", "train_file": str(root / "train.txt"),
                       "valid_file": str(root / "valid.txt"), "batch_size": 4, "bptt": 8},
              "model": {"architecture": "rnn", "cell": "lstm", "embedding_size": 32, "hidden_size": 64,
                        "num_layers": 1, "dropout": 0.0},
              "train": {"lr": 0.01, "max_epochs": 60, "early_stopping_metric": "ppl", "progress": False}}
    (root / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = seqlab("train", root / "config.yaml")
    assert result.returncode == 0, result.stderr
    return root / "model"


def test_generate_forces_the_prompt_then_continues(lm_dir):
    result = seqlab("generate", lm_dir, "--prompt", "i think", "--max-tokens", "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("i think therefore")


def test_score_ranks_the_seen_sentence_above_the_beach(lm_dir):
    result = seqlab("score", lm_dir, "--lm", "--rank", stdin="to wreck a nice beach\nto recognize speech is hard\n")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["rank"] for r in records] == [1, 2] and records[0]["text"] == "to recognize speech is hard"
    assert records[0]["log_prob"] > records[1]["log_prob"] and {r["log_base"] for r in records} == {"e"}
    assert all(r["per_token"] == pytest.approx(r["log_prob"] / r["tokens"], abs=1e-3) for r in records)


def test_score_ranks_by_per_token_log_prob_on_request(lm_dir):
    lines = "to recognize speech is hard\nto recognize speech is hard to recognize speech is hard\n"
    by_total = [json.loads(line) for line in seqlab("score", lm_dir, "--lm", "--rank", stdin=lines).stdout.splitlines()]
    result = seqlab("score", lm_dir, "--lm", "--rank", "per-token", stdin=lines)
    assert result.returncode == 0, result.stderr
    by_token = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["per_token"] for r in by_token] == sorted((r["per_token"] for r in by_token), reverse=True)
    assert [r["log_prob"] for r in by_total] == sorted((r["log_prob"] for r in by_total), reverse=True)
    assert by_total[0]["text"] == "to recognize speech is hard"  # shorter: higher total log-probability


def test_generate_warns_about_words_it_cannot_read(lm_dir):
    result = seqlab("generate", lm_dir, "--prompt", "i think zyxwv", "--max-tokens", "2")
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "'zyxwv'" in result.stderr and "'think'" not in result.stderr


def test_lm_bad_input(lm_dir, tmp_path):
    assert_clean_error(seqlab("score", lm_dir, "--lm", "-i", tmp_path / "absent.txt"), "absent.txt")
    assert_clean_error(seqlab("generate", tmp_path / "nothing"), "nothing")
