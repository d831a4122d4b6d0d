"""The CLI end to end on a tiny parallel corpus, and every bad input the issue lists.

Each bad input must give exit code 2 and exactly one line on stderr (``seqlab: error: ...``) naming the file,
line or key — never a traceback — and must not leave a half-written output behind.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
import yaml

from tests.conftest import check_one_line_error

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [("i am cold .", "j'ai froid ."), ("i am tired .", "je suis fatigué ."), ("he is calm .", "il est calme ."),
         ("she is tall .", "elle est grande ."), ("we are home .", "nous sommes chez nous ."),
         ("i lost .", "j'ai perdu ."), ("go .", "va !"), ("he is tired .", "il est fatigué ."),
         ("she is calm .", "elle est calme ."), ("i am home .", "je suis chez moi .")]


def seqlab(*args, stdin=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "seqlab", *map(str, args)], input=stdin, capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def assert_clean_error(result, *fragments):
    check_one_line_error(result.returncode, result.stderr, *fragments)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for split, repeat in (("train", 6), ("valid", 1)):
        (root / f"{split}.en").write_text("".join(s + "\n" for s, _ in PAIRS * repeat), encoding="utf-8")
        (root / f"{split}.fr").write_text("".join(t + "\n" for _, t in PAIRS * repeat), encoding="utf-8")
    config = {
        "model_dir": str(root / "model"),
        "data": {"dataset": "files", "train_src": str(root / "train.en"), "train_tgt": str(root / "train.fr"),
                 "valid_src": str(root / "valid.en"), "valid_tgt": str(root / "valid.fr"),
                 "test_src": str(root / "valid.en"), "test_tgt": str(root / "valid.fr"), "batch_size": 10},
        "model": {"architecture": "rnn", "cell": "gru", "embedding_size": 32, "hidden_size": 64, "num_layers": 1,
                  "dropout": 0.0, "attention": "dot"},
        "train": {"lr": 0.01, "max_epochs": 40, "validate_every": 60, "early_stopping_metric": "bleu",
                  "progress": False},
        "decode": {"max_len": 10},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def trained(corpus):
    result = seqlab("train", corpus / "config.yaml")
    assert result.returncode == 0, result.stderr
    return corpus / "model"


def test_train_writes_a_self_contained_model_dir(trained):
    for name in ("best.pt", "last.pt", "config.yaml", "train_log.jsonl", "vocab.src.txt", "vocab.tgt.txt"):
        assert (trained / name).is_file(), name


def test_translate_keeps_one_line_per_input_line(trained, tmp_path):
    source = tmp_path / "in.en"
    source.write_text("i am cold .\n\nhe is calm .\n", encoding="utf-8")
    result = seqlab("translate", trained, "-i", source)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert lines[0] == "j'ai froid." and lines[2] == "il est calme."  # memorised pairs, detokenized
    beam = seqlab("translate", trained, "--beam", "3", "--nbest", "2", stdin="go .\n")
    assert beam.returncode == 0 and len(beam.stdout.strip().split("\t")) == 4
    bf16 = seqlab("translate", trained, "-i", source, "--dtype", "bfloat16")  # weights cast for decoding
    assert bf16.returncode == 0 and bf16.stdout == result.stdout, bf16.stderr


def test_evaluate_reports_bleu_with_signature_and_perplexity(trained):
    result = seqlab("evaluate", trained, "--split", "test")
    assert result.returncode == 0, result.stderr
    assert "BLEU = 100.00" in result.stdout and "nrefs:1|case:mixed" in result.stdout
    assert "perplexity = " in result.stdout


def test_bleu_command_equals_sacrebleu(tmp_path):
    refs = ["the cat is on the mat .", "there is a cat on the mat", "a quick brown fox jumps"]
    hyps = ["the cat the cat on the mat .", "there is cat on a mat", "quick brown foxes jump"]
    (tmp_path / "ref").write_text("\n".join(refs) + "\n", encoding="utf-8")
    (tmp_path / "hyp").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    result = seqlab("bleu", "--ref", tmp_path / "ref", "--hyp", tmp_path / "hyp")
    assert result.returncode == 0, result.stderr
    expected = sacrebleu.corpus_bleu(hyps, [refs]).score
    assert f"{expected:.2f}" in result.stdout


def test_bleu_sentence_d2l_reproduces_the_seed_example(tmp_path):
    # Seed example: label A B C D E F, prediction A B B C D -> p1..p4 = 4/5, 3/4, 1/3, 0; with k=2 only p1, p2 count.
    (tmp_path / "ref").write_text("A B C D E F\nthe cat sat\n", encoding="utf-8")
    (tmp_path / "hyp").write_text("A B B C D\nthe cat sat\n", encoding="utf-8")
    result = seqlab("bleu", tmp_path / "hyp", tmp_path / "ref", "--sentence-d2l", "--k", "2")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:]
    expected = math.exp(1 - 6 / 5) * (4 / 5) ** 0.5 * (3 / 4) ** 0.25
    assert rows == [f"1\t{expected:.4f}", "2\t1.0000"]
    result = seqlab("bleu", tmp_path / "hyp", tmp_path / "ref", "--sentence-d2l")  # k=4: p4 = 0
    assert result.stdout.splitlines()[1] == "1\t0.0000"


def test_resume_against_a_different_config_is_refused(trained, corpus):
    result = seqlab("train", corpus / "config.yaml", "--resume", "--set", "train.lr=0.5")
    assert_clean_error(result, "train.lr")
    result = seqlab("train", corpus / "config.yaml")
    assert_clean_error(result, "already holds a trained model")


@pytest.mark.parametrize("setting, fragment", [
    ("model.hiden_size=8", "model.hiden_size: unknown key (did you mean 'hidden_size'?)"),
    ("train.lr=-1", "train.lr: must be > 0"),
    ("data.batch_size=abc", "data.batch_size"),
    ("model.cell=banana", "model.cell"),
])
def test_bad_config_values(corpus, setting, fragment):
    assert_clean_error(seqlab("train", corpus / "config.yaml", "--set", setting,
                              "--set", f"model_dir={corpus / 'never'}"), fragment)
    assert not (corpus / "never" / "last.pt").exists()


def test_bad_data_files(corpus, tmp_path):
    (tmp_path / "short.fr").write_text("un\ndeux\n", encoding="utf-8")
    (tmp_path / "empty.fr").write_text("", encoding="utf-8")
    (tmp_path / "bad.fr").write_bytes(b"ok\nfine\ncaf\xe9\n")
    (tmp_path / "three.en").write_text("a\nb\nc\n", encoding="utf-8")
    cases = [("short.fr", ["short.fr", "3", "2"]), ("empty.fr", ["empty.fr", "empty"]),
             ("bad.fr", ["bad.fr:3", "utf-8"]), ("missing.fr", ["missing.fr"])]
    for name, fragments in cases:
        result = seqlab("train", corpus / "config.yaml", "--set", f"data.train_src={tmp_path / 'three.en'}",
                        "--set", f"data.train_tgt={tmp_path / name}", "--set", f"model_dir={tmp_path / 'm'}")
        assert_clean_error(result, *fragments)


def test_missing_and_corrupted_checkpoints(trained, tmp_path):
    assert_clean_error(seqlab("translate", tmp_path, stdin="go .\n"), "no checkpoint")
    assert_clean_error(seqlab("translate", tmp_path / "nowhere", stdin="go .\n"), "no such model directory")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "best.pt").write_bytes((trained / "best.pt").read_bytes()[:1000])
    assert_clean_error(seqlab("evaluate", broken), "corrupted")


def test_missing_dataset_in_data_dir(corpus, tmp_path):
    result = seqlab("train", corpus / "config.yaml", "--set", "data.dataset=multi30k", "--set",
                    f"data.data_dir={tmp_path}", "--set", f"model_dir={tmp_path / 'm'}")
    assert_clean_error(result, "multi30k", str(tmp_path))


def test_output_is_not_half_written(trained, tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("previous\n", encoding="utf-8")
    (tmp_path / "bad.en").write_bytes(b"fine\n\xff\xfe\n")
    assert_clean_error(seqlab("translate", trained, "-i", tmp_path / "bad.en", "-o", out), "bad.en:2")
    assert out.read_text(encoding="utf-8") == "previous\n"


def test_ensemble_of_one_model_equals_the_model_and_vote_agrees(trained, tmp_path):
    source = "i am cold .\nhe is calm .\ngo .\n"
    single = seqlab("translate", trained, "--beam", "3", stdin=source)
    mean = seqlab("translate", "--models", trained, trained, "--ensemble", "mean", "--beam", "3", stdin=source)
    voted = seqlab("translate", "--models", trained, trained, "--ensemble", "vote", stdin=source)
    greedy = seqlab("translate", trained, stdin=source)
    assert single.returncode == mean.returncode == voted.returncode == 0, mean.stderr + voted.stderr
    assert mean.stdout == single.stdout  # the mean of identical distributions is that distribution
    assert voted.stdout == greedy.stdout


def test_attention_plots_are_written_per_sentence(trained, tmp_path):
    result = seqlab("translate", trained, "--attention-plot", tmp_path / "maps", stdin="i am cold .\n\ngo .\n")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["0001.png", "0003.png"]  # not the empty line


def test_score_ranks_the_memorised_target_first(trained, tmp_path):
    (tmp_path / "src").write_text("i am cold .\ni am cold .\n", encoding="utf-8")
    (tmp_path / "tgt").write_text("j'ai froid .\nelle est grande .\n", encoding="utf-8")
    result = seqlab("score", trained, "--src", tmp_path / "src", "--tgt", tmp_path / "tgt")
    assert result.returncode == 0, result.stderr
    scores = [json.loads(line)["log_prob"] for line in result.stdout.strip().splitlines()]
    assert len(scores) == 2 and scores[0] > scores[1] and all(s < 0 for s in scores)


def test_average_of_identical_checkpoints_translates_the_same(trained, tmp_path):
    result = seqlab("average", trained, trained, "-o", tmp_path / "avg", "--checkpoint", "best")
    assert result.returncode == 0, result.stderr
    source = "i am cold .\nshe is calm .\n"
    assert seqlab("translate", tmp_path / "avg", stdin=source).stdout == seqlab("translate", trained,
                                                                                stdin=source).stdout


def test_scheduled_sampling_training_runs_and_learns(corpus, tmp_path):
    result = seqlab("train", corpus / "config.yaml", "--model-dir", tmp_path / "ss",
                    "--set", "train.scheduled_sampling=linear", "--set", "train.scheduled_sampling_c=0.002",
                    "--set", "train.max_epochs=25")
    assert result.returncode == 0, result.stderr
    translated = seqlab("translate", tmp_path / "ss", stdin="i am cold .\n")
    assert translated.stdout == "j'ai froid.\n"


def test_grid_search_trains_every_point_and_ranks_them(corpus, tmp_path):
    result = seqlab("search", corpus / "config.yaml", "--model-dir", tmp_path / "search",
                    "--grid", "model.hidden_size=16,32", "--set", "train.max_epochs=2")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "search" / "search.jsonl").read_text().splitlines()]
    assert sorted(r["params"]["model.hidden_size"] for r in records) == ["16", "32"]
    ranking = result.stdout.split("# trials ranked")[1].strip().splitlines()[1:]
    bleus = [float(line.split("bleu=")[1].split()[0]) for line in ranking]
    assert len(bleus) == 2 and bleus == sorted(bleus, reverse=True)
    assert_clean_error(seqlab("search", corpus / "config.yaml", "--grid", "train.lr"), "--grid")
