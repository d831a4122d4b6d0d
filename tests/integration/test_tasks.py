"""Every task through the one task layer, on tiny data: ``seqlab train`` (killed with SIGKILL, then resumed to the
same weights as an uninterrupted run), a refused second train into the used directory, and ``seqlab evaluate`` /
``seqlab predict`` on the model directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from seqlab import cli
from seqlab.errors import SeqlabError
from seqlab.tasks import load_config, train
from seqlab.train.checkpoint import load_checkpoint
from tests.conftest import check_one_line_error

ROOT = Path(__file__).resolve().parents[2]
TRAIN = {"lr": 0.01, "max_epochs": 100, "max_steps": 24, "checkpoint_every": 1, "num_threads": 1,
         "progress": False, "log_every": 1000, "device": "cpu"}
PAIRS = [("i am here .", "je suis là ."), ("he is calm .", "il est calme ."), ("go .", "va !")]
CONLL = ["the DT B-NP", "cat NN I-NP", "sat VBD B-VP", ". . O", "", "a DT B-NP", "dog NN I-NP", "ran VBD B-VP", ""]


def write_lines(path: Path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def translation(tmp: Path, _flickr: Path) -> dict:
    src = write_lines(tmp / "train.en", [s for s, _ in PAIRS] * 4)
    tgt = write_lines(tmp / "train.fr", [t for _, t in PAIRS] * 4)
    return {"task": "translation", "data": {"dataset": "files", "train_src": src, "train_tgt": tgt, "valid_src": src,
                                            "valid_tgt": tgt, "test_src": src, "test_tgt": tgt, "batch_size": 4},
            "model": {"architecture": "rnn", "cell": "gru", "embedding_size": 8, "hidden_size": 16, "dropout": 0.1},
            "decode": {"max_len": 8}}


def lm(tmp: Path, _flickr: Path) -> dict:
    text = write_lines(tmp / "lm.txt", ["the cat sat on the mat", "the dog sat on the log"] * 6)
    return {"task": "lm", "data": {"dataset": "files", "train_file": text, "valid_file": text, "test_file": text,
                                   "batch_size": 2, "bptt": 4},
            "model": {"architecture": "rnn", "cell": "lstm", "embedding_size": 8, "hidden_size": 16, "dropout": 0.1},
            "decode": {"strategy": "greedy"}}


def classification(tmp: Path, _flickr: Path) -> dict:
    rows = [f"{'pos' if i % 2 else 'neg'}\t{'good' if i % 2 else 'bad'} film number {i}" for i in range(24)]
    path = write_lines(tmp / "labelled.tsv", rows)
    return {"task": "classification", "data": {"dataset": "files", "train_file": path, "valid_file": path,
                                               "test_file": path, "batch_size": 4},
            "model": {"encoder": "gru", "embedding_size": 8, "hidden_size": 8, "dropout": 0.1}}


def tagging(tmp: Path, _flickr: Path) -> dict:
    path = write_lines(tmp / "tags.conll", CONLL * 4)
    return {"task": "tagging", "data": {"dataset": "files", "train_file": path, "valid_file": path,
                                        "test_file": path, "batch_size": 2},
            "model": {"embedding_size": 8, "hidden_size": 8, "dropout": 0.1, "crf": True}}


def captioning(tmp: Path, flickr: Path) -> dict:
    return {"task": "captioning", "data": {"data_dir": str(flickr), "image_size": 16, "min_freq": 1,
                                           "images_per_batch": 4},
            "model": {"cnn": {"architecture": "vgg", "channels": [4, 8]}, "cell": "gru", "embedding_size": 8,
                      "hidden_size": 16, "dropout": 0.1},
            "decode": {"beam_size": 2, "max_len": 6}}


def forecasting(tmp: Path, _flickr: Path) -> dict:
    return {"task": "forecasting", "data": {"source": "sine", "batch_size": 32},
            "model": {"architecture": "rnn", "cell": "gru", "hidden_size": 8}}


def dialogue(tmp: Path, _flickr: Path) -> dict:
    path = write_lines(tmp / "dialogues.txt", ["hi . __eou__ hello ! __eou__ how are you ? __eou__ fine . __eou__"] * 4)
    return {"task": "dialogue", "data": {"dataset": "files", "train_file": path, "valid_file": path,
                                         "test_file": path, "min_freq": 1, "batch_size": 4},
            "model": {"architecture": "hred", "embedding_size": 8, "hidden_size": 8, "dropout": 0.1},
            "decode": {"beam_size": 2, "max_len": 6}}


RECIPES = {f.__name__: f for f in (translation, lm, classification, tagging, captioning, forecasting, dialogue)}
PREDICT_ARGUMENTS = {  # what `seqlab predict MODEL_DIR ...` takes for each task (its natural verb's arguments)
    "translation": lambda tmp, flickr: ["-i", write_lines(tmp / "in.txt", ["he is calm ."])],
    "lm": lambda tmp, flickr: ["--prompt", "the cat", "--max-tokens", "3"],
    "classification": lambda tmp, flickr: [write_lines(tmp / "in.txt", ["good film"])],
    "tagging": lambda tmp, flickr: [write_lines(tmp / "in.txt", ["the cat sat ."])],
    "captioning": lambda tmp, flickr: [str(flickr / "red.jpg")],
    "forecasting": lambda tmp, flickr: ["--source", "sine", "--steps", "2", "--out", str(tmp / "forecast.csv")],
    "dialogue": lambda tmp, flickr: ["-i", write_lines(tmp / "turns.txt", ["hi ."])],
}


def write_config(tmp: Path, task: str, flickr: Path, model_dir: Path, train_options: dict | None = None) -> Path:
    raw = RECIPES[task](tmp, flickr)
    raw.update(model_dir=str(model_dir), train={**TRAIN, **(train_options or {})})
    path = tmp / f"{task}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def kill_after_first_checkpoint(config: Path) -> int:
    """``seqlab train CONFIG`` in a subprocess, SIGKILLed as soon as its first last.pt exists; the killed run's step."""
    last = Path(yaml.safe_load(config.read_text())["model_dir"]) / "last.pt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "seqlab", "train", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return load_checkpoint(last)["trainer"]["step"]


@pytest.mark.parametrize("task", list(RECIPES))
def test_train_kill_resume_equals_uninterrupted_and_a_used_directory_is_refused(task, tmp_path, flickr):
    config_path = assert_kill_resume_equals_uninterrupted(task, tmp_path, flickr)
    with pytest.raises(SeqlabError, match=r"already holds a trained model.*resume=True.*overwrite=True"):
        train(load_config(config_path))


@pytest.mark.parametrize("task", ["lm", "captioning"])
def test_scheduled_sampling_trains_end_to_end_and_resumes_with_the_same_choices(task, tmp_path, flickr):
    """ε falls from 1 to 0.31 over the 24 updates, the fed tokens sampled from the global RNG (checkpointed)."""
    assert_kill_resume_equals_uninterrupted(task, tmp_path, flickr, {"scheduled_sampling": "linear",
                                                                      "scheduled_sampling_c": 0.03})


def assert_kill_resume_equals_uninterrupted(task: str, tmp_path: Path, flickr: Path,
                                            train_options: dict | None = None) -> Path:
    """Train uninterrupted; train again, SIGKILLed after its first checkpoint, and resume: the same weights."""
    train(load_config(write_config(tmp_path, task, flickr, tmp_path / "reference", train_options)))
    config_path = write_config(tmp_path, task, flickr, tmp_path / "killed", train_options)
    killed_at = kill_after_first_checkpoint(config_path)
    assert 1 <= killed_at < TRAIN["max_steps"]  # killed mid-run, not after it
    summary = train(load_config(config_path), resume=True)
    assert summary["steps"] == TRAIN["max_steps"]
    expected = load_checkpoint(tmp_path / "reference" / "last.pt")["model"]
    resumed = load_checkpoint(tmp_path / "killed" / "last.pt")["model"]
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
    return config_path


@pytest.mark.parametrize("task", list(RECIPES))
def test_evaluate_and_predict_any_model_directory(task, tmp_path, flickr, capsys):
    config = load_config(write_config(tmp_path, task, flickr, tmp_path / "model"))
    config.train.max_steps = 6
    train(config)
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path / "model"), "--json"]) == 0
    assert capsys.readouterr().out.strip()
    arguments = PREDICT_ARGUMENTS[task](tmp_path, flickr)
    assert cli.main(["predict", str(tmp_path / "model"), *arguments]) == 0
    out = capsys.readouterr().out
    if task == "forecasting":
        assert (tmp_path / "forecast.csv").read_text().count("\n") == 1000 + 2 + 1  # header, series, 2 ahead
    else:
        assert len(out.splitlines()) == 1  # one output line per input line (or image, or prompt)


def test_task_verbs_refuse_a_model_of_another_task(tmp_path, flickr, capsys):
    config = load_config(write_config(tmp_path, "forecasting", flickr, tmp_path / "model"))
    config.train.max_steps = 2
    train(config)
    capsys.readouterr()
    code = cli.main(["classify", "evaluate", str(tmp_path / "model")])
    check_one_line_error(code, capsys.readouterr().err, "'forecasting' model", "classification")
