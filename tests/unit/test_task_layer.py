"""The task layer's config rules: every recipe builds, the config reference is current, and what a task cannot do
is refused in one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqlab.errors import ConfigError
from seqlab.tasks import TASKS, build_config, load_config
from seqlab.tasks.reference import render

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("recipe", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_every_recipe_builds_a_run_config_of_its_task(recipe):
    config = load_config(ROOT / "configs" / recipe)
    assert config.task in TASKS
    assert (config.decode is None) == (not TASKS[config.task].GENERATES)
    assert build_config(config.to_dict()).to_dict() == config.to_dict()  # what checkpoints save reloads alike


def test_every_task_has_a_recipe():
    tasks = {load_config(path).task for path in (ROOT / "configs").glob("*.yaml")}
    assert tasks == set(TASKS)


def test_config_reference_is_up_to_date():
    assert (ROOT / "docs" / "CONFIG.md").read_text(encoding="utf-8") == render(), \
        "docs/CONFIG.md is stale: python -m seqlab.tasks.reference > docs/CONFIG.md"


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_an_empty_config_is_refused(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"{path}: empty config"):
        load_config(path)


@pytest.mark.parametrize("task", ["classification", "tagging", "dialogue"])
def test_scheduled_sampling_is_refused_where_a_task_cannot_use_it(task):
    with pytest.raises(ConfigError, match="train.scheduled_sampling: task"):
        build_config({"task": task, "train": {"scheduled_sampling": "linear"}})


def test_scheduled_sampling_is_accepted_by_captioning_and_rnn_lms_but_not_a_transformer_lm():
    for task in ("translation", "captioning", "lm"):
        assert build_config({"task": task, "train": {"scheduled_sampling": "linear"}}).train.scheduled_sampling
    with pytest.raises(ConfigError, match="train.scheduled_sampling: needs model.architecture rnn"):
        build_config({"task": "lm", "model": {"architecture": "transformer"},
                      "train": {"scheduled_sampling": "linear"}})


def test_a_task_that_does_not_generate_refuses_a_decode_section():
    with pytest.raises(ConfigError, match="decode: task tagging does not generate"):
        build_config({"task": "tagging", "decode": {"beam_size": 3}})


def test_unknown_task_and_architecture_name_the_key():
    with pytest.raises(ConfigError, match="task: must be one of translation, lm"):
        build_config({"task": "parsing"})
    with pytest.raises(ConfigError, match="model.architecture: must be one of"):
        build_config({"task": "forecasting", "model": {"architecture": "arima"}})


def test_task_defaults_sit_under_the_yaml():
    config = build_config({"task": "captioning", "decode": {"beam_size": 5}})
    assert (config.decode.strategy, config.decode.beam_size, config.decode.max_len) == ("beam", 5, 30)
    assert build_config({"task": "forecasting"}).train.early_stopping_metric == "mse"
