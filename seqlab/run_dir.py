"""One model-directory policy for every task.

A model directory is self-contained: ``best.pt`` / ``last.pt`` hold the weights and, in ``extra``, the resolved
config and the task's preprocessing (vocabularies, tokenizers, label names, normalisation statistics), so a
directory loads with no data file at hand.  Beside them, for people: ``config.yaml``, the vocabularies as text,
``train_log.jsonl`` (a start record with versions and sizes, then the trainer's events).

The rules, the same for every task:

* training into a directory that holds ``last.pt`` is refused, unless asked to resume (the saved config must
  equal the new one) or to overwrite (the checkpoints and the log are removed first);
* loading checks that the checkpoint is a seqlab one, carries its config and preprocessing, and, when asked,
  that it was trained for the expected task.
"""

from __future__ import annotations

import json
import platform
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml

import seqlab
from seqlab.config import RunConfig, first_difference
from seqlab.errors import CheckpointError, SeqlabError
from seqlab.train.checkpoint import find_checkpoint, load_checkpoint
from seqlab.utils import atomic_write


@dataclass
class TrainingRun:
    """What a task hands the one training driver (``seqlab.tasks.train``): the model, the loss and metrics
    (``objective.loss(model, batch) -> (sum, count)``), the training batches, ``validate(model) -> metrics``,
    the preprocessing saved with the weights, and the split sizes for the start record."""

    model: torch.nn.Module
    objective: Any
    batches: Any
    validate: Callable[[torch.nn.Module], dict[str, Any]] | None
    preprocessing: Any
    sizes: dict[str, int]
    notes: dict[str, Any] = field(default_factory=dict)  # more for the start record (e.g. what was handed over)


@dataclass
class LoadedModel:
    """A trained model in eval mode, with what it needs to read inputs and write outputs."""

    model: torch.nn.Module
    preprocessing: Any
    config: RunConfig
    checkpoint: Path

    @property
    def task(self) -> str:
        return self.config.task


def check_model_dir(config: RunConfig, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber a trained model, or to resume one trained with another config.  Nothing is removed here:
    ``clear_model_dir`` does that once the run's data has been read, so a bad data file never costs a model."""
    model_dir = Path(config.model_dir)
    last = model_dir / "last.pt"
    if model_dir.exists() and not model_dir.is_dir():
        raise SeqlabError(f"model_dir: {model_dir} is not a directory")
    if resume:
        if not last.is_file():
            raise CheckpointError(f"{model_dir}: nothing to resume (no last.pt)")
        saved = load_checkpoint(last).get("extra", {}).get("config")
        difference = first_difference(saved, config.to_dict())
        if difference:
            raise SeqlabError(f"--resume: config differs from the one {model_dir} was trained with at {difference}")
    elif last.is_file() and not overwrite:
        raise SeqlabError(f"{model_dir}: already holds a trained model; continue it (--resume, resume=True) or "
                          f"start afresh (--overwrite, overwrite=True)")


def clear_model_dir(model_dir: str | Path) -> None:
    """What ``--overwrite`` replaces: the checkpoints, snapshots and training log of an earlier run."""
    model_dir = Path(model_dir)
    for name in ("last.pt", "best.pt", "train_log.jsonl"):
        (model_dir / name).unlink(missing_ok=True)
    for snapshot in model_dir.glob("snapshot-*.pt"):
        snapshot.unlink()


def seed_everything(seed: int, num_threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if num_threads:
        torch.set_num_threads(num_threads)


def write_run_files(config: RunConfig, run: TrainingRun, workers: int) -> None:
    """The human-readable companions of the checkpoints and the start record of ``train_log.jsonl``."""
    model_dir = Path(config.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(model_dir / "config.yaml") as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
    files = run.preprocessing.text_files()  # {"vocab.txt": Vocab, "labels.txt": [names], ...}
    for name, content in files.items():
        if isinstance(content, list):
            with atomic_write(model_dir / name) as handle:
                handle.write("".join(f"{line}\n" for line in content))
        else:
            content.save(model_dir / name)
    info = {"event": "start", "task": config.task, "seqlab": seqlab.__version__, "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.platform(), "argv": sys.argv,
            "seed": config.train.seed, "threads": torch.get_num_threads(), "examples": run.sizes, "workers": workers,
            "parameters": sum(p.numel() for p in run.model.parameters()),
            "sizes": {name: len(content) for name, content in files.items()}, **run.notes}
    with open(model_dir / "train_log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(info) + "\n")


def summary(config: RunConfig, progress: Any, workers: int) -> dict[str, Any]:
    """What ``seqlab train`` prints as JSON."""
    return {"task": config.task, "model_dir": config.model_dir, "steps": progress.step, "epochs": progress.epochs_seen,
            "best_" + config.train.early_stopping_metric: progress.best_metric,
            "stop_reason": progress.stop_reason, "wall_seconds": round(progress.elapsed_seconds, 1),
            "workers": workers}


def read_checkpoint(model_dir: str | Path, which: str = "best", task: str | None = None) -> tuple[Path, dict]:
    """(path, payload) of a model directory's checkpoint; ``task``: refuse a model of another task."""
    path = find_checkpoint(model_dir, which)
    payload = load_checkpoint(path)
    extra = payload.get("extra") or {}
    if "config" not in extra or "preprocessing" not in extra:
        raise CheckpointError(f"{path}: checkpoint lacks its config or preprocessing (written by an older seqlab?)")
    found = extra["config"].get("task", "translation")
    if task is not None and found != task:
        raise CheckpointError(f"{model_dir}: a {found!r} model, not a {task} one")
    return path, payload


def load_weights(model: torch.nn.Module, weights: dict[str, Any], path: Path) -> torch.nn.Module:
    """``model`` with ``weights`` in eval mode; a mismatch is a CheckpointError, not a traceback."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the saved config ({str(error).splitlines()[0]})") from None
    return model.eval()
