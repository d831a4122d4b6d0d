"""Neural language models through the CLI: train on a tiny text, generate from a prompt, score and rank."""

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
    ranking = result.stdout.split("# ranking, most likely first:")[1].strip().splitlines()
    assert ranking[0].startswith("1. to recognize speech is hard")


def test_lm_bad_input(lm_dir, tmp_path):
    assert_clean_error(seqlab("score", lm_dir, "--lm", "-i", tmp_path / "absent.txt"), "absent.txt")
    assert_clean_error(seqlab("generate", tmp_path / "nothing"), "nothing")
