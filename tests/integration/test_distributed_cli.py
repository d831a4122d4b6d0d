"""``seqlab train --nproc 2``: two DDP workers (gloo) end to end on the tiny corpus of test_cli.py.

Worker 0 alone writes the model directory and prints the summary; the workers stop together whatever stops them
(epochs, the wall-clock limit decided on worker 0); bad input is refused once, by the launcher, before any worker
starts.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import flickr  # noqa: F401 (fixture)
from tests.integration.test_cli import ROOT, assert_clean_error, corpus, seqlab  # noqa: F401  (corpus: a fixture)


def log_events(model_dir) -> list[dict]:
    return [json.loads(line) for line in (model_dir / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]


def test_two_workers_train_a_model_that_translates(corpus, tmp_path):  # noqa: F811
    model_dir = tmp_path / "ddp"
    result = seqlab("train", corpus / "config.yaml", "--model-dir", model_dir, "--nproc", 2,
                    "--set", "train.max_epochs=30")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # one line: worker 0's summary, worker 1 prints nothing
    assert summary["workers"] == 2 and summary["stop_reason"] == "max_epochs=30"
    events = log_events(model_dir)
    assert [e["event"] for e in events].count("start") == 1 and events[0]["workers"] == 2
    assert [e["event"] for e in events].count("stop") == 1  # one writer
    assert seqlab("translate", model_dir, stdin="i am cold .\n").stdout == "j'ai froid.\n"

    # --resume in both workers: each loads last.pt, finds the epoch budget spent, and they stop together
    resumed = seqlab("train", corpus / "config.yaml", "--model-dir", model_dir, "--nproc", 2,
                     "--set", "train.max_epochs=30", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps"] == summary["steps"]


def test_the_wall_clock_limit_stops_both_workers(corpus, tmp_path):  # noqa: F811
    # worker 0's clock is broadcast: were each worker to read its own, one could stop an update before the other
    # and leave its partner waiting in an all-reduce for ever (the subprocess timeout would fail this test)
    result = seqlab("train", corpus / "config.yaml", "--model-dir", tmp_path / "timed", "--nproc", 2,
                    "--set", "train.max_minutes=0.003", "--set", "train.max_epochs=1000")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stop_reason"] == "max_minutes=0.003"


def test_bad_input_is_refused_once_before_the_workers_start(corpus, tmp_path):  # noqa: F811
    assert_clean_error(seqlab("train", corpus / "config.yaml", "--nproc", 0), "--nproc: must be >= 1")
    model_dir = tmp_path / "taken"
    (model_dir).mkdir()
    (model_dir / "last.pt").write_bytes(b"")
    assert_clean_error(seqlab("train", corpus / "config.yaml", "--model-dir", model_dir, "--nproc", 2),
                       "already holds a trained model")
    assert_clean_error(seqlab("train", corpus / "config.yaml", "--nproc", 2, "--set", "model.hiden_size=8"),
                       "model.hiden_size")
    (tmp_path / "text.txt").write_text("a b c\n", encoding="utf-8")
    lm_config = {"task": "lm", "model_dir": str(tmp_path / "lm"),
                 "data": {"dataset": "files", "train_file": str(tmp_path / "text.txt"),
                          "valid_file": str(tmp_path / "text.txt"), "batch_size": 1}}
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(lm_config), encoding="utf-8")
    assert_clean_error(seqlab("train", tmp_path / "lm.yaml", "--nproc", 2), "data.batch_size: 1 stream columns")


def test_other_commands_refuse_to_run_as_distributed_workers(tmp_path):
    (tmp_path / "hyp.txt").write_text("a b c\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORLD_SIZE": "2", "RANK": "0"}
    result = subprocess.run([sys.executable, "-m", "seqlab", "bleu", tmp_path / "hyp.txt", tmp_path / "hyp.txt"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert_clean_error(result, "only 'seqlab train' runs distributed")


@pytest.mark.parametrize("task", ["lm", "classification", "tagging", "captioning", "forecasting"])
def test_every_task_trains_with_two_workers(task, tmp_path, flickr):  # noqa: F811
    from tests.integration.test_tasks import write_config

    config = write_config(tmp_path, task, flickr, tmp_path / "model")
    result = seqlab("train", config, "--nproc", 2, "--set", "train.max_steps=6")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["workers"] == 2 and summary["steps"] == 6
    assert seqlab("evaluate", tmp_path / "model", "--json").returncode == 0
