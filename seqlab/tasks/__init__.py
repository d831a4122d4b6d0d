"""The task layer: a task is a file.  This table names them; the three functions below drive any of them.

    config = load_config("configs/mr_bigru.yaml", ["train.max_epochs=2"])   # task: classification
    summary = train(config)                      # refuse / resume / overwrite, DDP, max_minutes: the same for all
    loaded = load_model_dir(config.model_dir)    # any task's model directory, from its checkpoint alone

Each task module, top to bottom, holds its data section (``DataConfig``), its model families
(``MODEL_CONFIGS``: architecture -> config class, and ``DEFAULT_ARCHITECTURE``), the section defaults that differ
from the components' own (``DEFAULTS``), whether it generates with a ``decode`` section (``GENERATES``) and can
use ``train.scheduled_sampling`` (``SCHEDULED_SAMPLING``), its ``Preprocessing`` (what a model directory needs to
read inputs: ``to_dict`` / ``from_dict`` / ``text_files``), ``build_model(config, preprocessing)``,
``prepare(config, device) -> TrainingRun`` (model, loss, batches, validator), and what using a model means for it
(translate, generate, classify, tag, caption, forecast, classify images, reply in a dialogue).  Optional: ``check(config, world_size)`` refuses what a
run of the task cannot do, ``test_scores(loaded, config)`` scores the best model on the test split after training.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from seqlab import run_dir
from seqlab.config import RunConfig, build_model_config, check_sections, from_dict, load_yaml, merge, parse_overrides
from seqlab.decoding.config import DecodeConfig
from seqlab.errors import ConfigError
from seqlab.precision import parse_dtype
from seqlab.quantize import check_quantize, quantize_int8
from seqlab.run_dir import LoadedModel
from seqlab.tasks import (captioning, classification, dialogue, forecasting, image_classification, language_model,
                          tagging, translation)
from seqlab.train.distributed import Distributed
from seqlab.train.trainer import Trainer, TrainConfig, resolve_device

TASKS: dict[str, ModuleType] = {
    "translation": translation,
    "lm": language_model,
    "classification": classification,
    "tagging": tagging,
    "captioning": captioning,
    "forecasting": forecasting,
    "image_classification": image_classification,
    "dialogue": dialogue,
}


def task_module(name: Any) -> ModuleType:
    if name not in TASKS:
        raise ConfigError(f"task: must be one of {', '.join(TASKS)}, got {name!r}")
    return TASKS[name]


def build_config(raw: dict[str, Any]) -> RunConfig:
    """Plain dict (from YAML + overrides) -> a fully typed, validated ``RunConfig`` of its task."""
    check_sections(raw)
    task = raw.get("task", "translation")
    module = task_module(task)
    raw = merge(module.DEFAULTS, {key: value for key, value in raw.items() if value is not None})
    model_dir = raw.get("model_dir", "runs/model")
    if not isinstance(model_dir, str):
        raise ConfigError(f"model_dir: expected a path string, got {model_dir!r}")
    if raw.get("decode") and not module.GENERATES:
        raise ConfigError(f"decode: task {task} does not generate text; remove the section")
    config = RunConfig(
        task=task, model_dir=model_dir,
        data=from_dict(module.DataConfig, raw.get("data"), "data."),
        model=build_model_config(raw.get("model"), module.MODEL_CONFIGS, module.DEFAULT_ARCHITECTURE),
        train=from_dict(TrainConfig, raw.get("train"), "train."),
        decode=from_dict(DecodeConfig, raw.get("decode"), "decode.") if module.GENERATES else None)
    if config.train.scheduled_sampling != "none" and not module.SCHEDULED_SAMPLING:
        raise ConfigError(f"train.scheduled_sampling: task {config.task} cannot use it "
                          "(translation, lm and captioning can)")
    check_task(config)
    return config


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    raw = load_yaml(path) if path is not None else {}
    return build_config(merge(raw, parse_overrides(overrides or [])))


def check_task(config: RunConfig, world_size: int = 1) -> None:
    check = getattr(task_module(config.task), "check", None)
    if check is not None:
        check(config, world_size)


def train(config: RunConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any] | None:
    """Train any task's model into ``config.model_dir``; returns the run's summary (best metric, steps, wall
    time, and the best model's test scores where the task has a test split) on worker 0 of a distributed run
    (``WORLD_SIZE`` set by torchrun or ``--nproc``) and None on the others."""
    module = task_module(config.task)
    workers = Distributed.from_env()
    check_task(config, workers.world_size)
    device = resolve_device(config.train.device)
    with workers.main_first():  # worker 0 writes the data caches and clears the model directory first
        run_dir.check_model_dir(config, resume, overwrite)
        run_dir.seed_everything(config.train.seed, config.train.num_threads)
        run = module.prepare(config, device)
        if overwrite and workers.is_main:  # only now: data that cannot be read leaves the old model in place
            run_dir.clear_model_dir(config.model_dir)
    extra = {"config": config.to_dict(), "preprocessing": run.preprocessing.to_dict()}
    trainer = Trainer(run.model, run.objective, config.train, config.model_dir, extra, run.validate, device, workers)
    if workers.is_main:
        run_dir.write_run_files(config, run, workers.world_size)
    if resume:
        trainer.resume()
    progress = trainer.fit(run.batches)
    workers.close()
    if not workers.is_main:
        return None
    result = run_dir.summary(config, progress, workers.world_size)
    if hasattr(module, "test_scores"):
        result["test"] = module.test_scores(load_model_dir(config.model_dir, device=device), config)
    return result


def load_model_dir(model_dir: str | Path, which: str = "best", device: str | torch.device = "cpu",
                   dtype: str | torch.dtype | None = None, task: str | None = None,
                   quantize: str | None = None) -> LoadedModel:
    """Rebuild the model of any task's ``model_dir`` from its checkpoint alone (no data files needed), in eval
    mode.  ``dtype`` ("float32" | "bfloat16", or None for the checkpoint's): the weights' dtype for inference
    (seqlab.precision); ``task``: refuse a model directory of another task; ``quantize="int8"``: every linear
    layer's weights in int8, activations quantised per call (seqlab.quantize; CPU, fp32 elsewhere)."""
    quantize = check_quantize(quantize, device)
    if quantize and parse_dtype(dtype) not in (None, torch.float32):
        raise ConfigError(f"quantize: int8 keeps the other weights in float32, got dtype {dtype}")
    path, payload = run_dir.read_checkpoint(model_dir, which, task)
    config = build_config(payload["extra"]["config"])
    module = task_module(config.task)
    preprocessing = module.Preprocessing.from_dict(payload["extra"]["preprocessing"])
    model = run_dir.load_weights(module.build_model(config, preprocessing), payload["model"], path)
    model.to(device=device, dtype=parse_dtype(dtype))
    if quantize:
        quantize_int8(model)
    return LoadedModel(model, preprocessing, config, path)
