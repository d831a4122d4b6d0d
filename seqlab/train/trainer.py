"""The training loop, for every model family.

It reads like its sketch (STYLE habit 13)::

    for each epoch: for each batch from the saved position on:
        train_step -> maybe log -> maybe validate (best checkpoint, early stopping) -> maybe checkpoint -> stop?

The trainer knows nothing of translation, tagging or language modelling.  A *task* gives the loss of a batch as a
sum plus a count (``task.loss(model, batch) -> (loss_sum, count)``), a *batch source* gives each epoch's batches
deterministically (``source.epoch_batches(epoch)``), and ``validate(model) -> {metric: value}`` scores the model.

Crash safety: ``last.pt`` is written atomically every ``checkpoint_every`` updates with the weights, optimiser,
scheduler, RNG states and the position inside the epoch, so ``resume()`` continues exactly where a killed run
stopped (the same weights as an uninterrupted run, on the CPU).

Data parallel (``seqlab.train.distributed``): under torchrun every worker runs this loop on its rows of each batch;
the model is wrapped once (``Distributed.wrap``), the loss sums are added across workers in ``train_step``
(``reduce_step``), and what worker 0 decides (validation, the time limit) is broadcast so every worker stops at the
same update.  Only worker 0 logs and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import torch
from tqdm import tqdm

from seqlab.errors import ConfigError
from seqlab.precision import autocast, check_precision
from seqlab.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from seqlab.train.distributed import Distributed, LossModule
from seqlab.train.events import EventWriter
from seqlab.train.optim import build_optimizer, build_scheduler

MAXIMISED_METRICS = ("bleu", "accuracy", "f1", "chunk_f1", "macro_f1")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``Trainer.fit``; the message says which update ``last.pt`` holds and how to resume."""


@dataclass
class TrainConfig:
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # intra-op threads.  1 by default: on a CPU that other jobs share, more threads than free cores collapse
    # (benchmarks/results/threads_under_load.json: 2 threads ran 0.13x as fast as 1 on a busy 2-core EPYC);
    # on an idle machine raise it, e.g. --set train.num_threads=4
    num_threads: int = 1  # intra-op threads (1: graceful on a shared CPU); 0 = PyTorch's default of one per core
    precision: str = "fp32"  # fp32 | bf16: forward and loss under bfloat16 autocast, fp32 weights (seqlab.precision)
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    schedule: str = "constant"  # constant | step | exponential | warmup_linear | inverse_sqrt | noam | plateau
    warmup_steps: int = 0
    decay_every: int = 1000  # step/exponential: updates per decay by gamma
    decay_start: int = 0  # step/exponential: updates at the full lr before decaying starts
    gamma: float = 0.5  # decay factor (step, exponential, plateau)
    plateau_patience: int = 1
    min_lr: float = 0.0
    noam_d_model: int = 512
    clip_norm: float = 1.0  # θ of gradient clipping by global norm; 0 = off
    clip_value: float = 0.0  # clip each gradient element to ±value; 0 = off
    label_smoothing: float = 0.0
    max_epochs: int = 10
    max_steps: int = 0  # 0 = no limit
    max_minutes: float = 0.0  # wall-clock budget; 0 = no limit
    validate_every: int = 0  # updates between validations; 0 = at the end of every epoch
    checkpoint_every: int = 0  # updates between crash-safety checkpoints; 0 = at every validation
    keep_last: int = 0  # weights at each of the last N validations (snapshot-STEP.pt), for checkpoint averaging
    log_every: int = 50
    valid_bleu_sentences: int = 0  # seq2seq: greedy BLEU on the first N validation pairs (0 = all)
    early_stopping_metric: str = "loss"
    early_stopping_mode: str = "auto"  # auto (max for bleu/accuracy/f1, else min) | min | max
    patience: int = 0  # validations without improvement before stopping; 0 = never stop early
    scheduled_sampling: str = "none"  # none | linear | exponential | inverse_sigmoid: translation, captioning, RNN LM
    scheduled_sampling_k: float = 1000.0  # exponential: ε = k^i; inverse_sigmoid: ε = k / (k + exp(i / k))
    scheduled_sampling_c: float = 1e-4  # linear: ε = 1 - c·i at update i
    scheduled_sampling_min: float = 0.0  # the floor of ε
    scheduled_sampling_feed: str = "sample"  # sample | argmax: how the model's own prediction is chosen
    progress: bool = True
    tensorboard: bool = True  # event files in MODEL_DIR when the tensorboard package is installed
    log_format: str = "text"  # text | json: how progress lines on stderr look (train_log.jsonl is always JSON lines)

    def __post_init__(self):
        for name in ("lr", "max_epochs", "log_every"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in ("max_steps", "warmup_steps", "validate_every", "checkpoint_every", "patience", "num_threads",
                     "clip_norm", "clip_value", "weight_decay", "max_minutes", "keep_last"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing: must be in [0, 1), got {self.label_smoothing}")
        check_precision(self.precision, "precision")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format: must be text or json, got {self.log_format!r}")
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ConfigError(f"optimizer: must be adam, adamw or sgd, got {self.optimizer!r}")
        schedules = ("constant", "step", "exponential", "warmup_linear", "inverse_sqrt", "noam", "plateau")
        if self.schedule not in schedules:
            raise ConfigError(f"schedule: must be one of {list(schedules)}, got {self.schedule!r}")
        if self.early_stopping_mode not in ("auto", "min", "max"):
            raise ConfigError(f"early_stopping_mode: must be auto, min or max, got {self.early_stopping_mode!r}")
        if self.early_stopping_mode == "auto":
            maximise = self.early_stopping_metric in MAXIMISED_METRICS
            self.early_stopping_mode = "max" if maximise else "min"
        if self.scheduled_sampling_feed not in ("sample", "argmax"):
            raise ConfigError(f"scheduled_sampling_feed: must be sample or argmax, got {self.scheduled_sampling_feed!r}")
        if self.scheduled_sampling not in ("none", "linear", "exponential", "inverse_sigmoid"):
            raise ConfigError(f"scheduled_sampling: must be none, linear, exponential or inverse_sigmoid, "
                              f"got {self.scheduled_sampling!r}")


class Task(Protocol):
    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, int]: ...


class BatchSource(Protocol):
    def epoch_batches(self, epoch: int) -> Sequence[Any]: ...


def snapshot_paths(model_dir: str | Path) -> list[Path]:
    """The weight snapshots ``keep_last`` left in ``model_dir``, oldest first."""
    return sorted(Path(model_dir).glob("snapshot-*.pt"))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name} requested but CUDA is not available")
    return torch.device(name)


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    step: int = 0  # optimiser updates done
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of ``epoch`` already consumed
    best_metric: float | None = None
    bad_validations: int = 0  # validations since the best one
    elapsed_seconds: float = 0.0
    stop_reason: str = ""
    validated_step: int = -1  # the update count at the last validation
    validation_seconds: float = 0.0  # how long the last validation took: max_minutes keeps that much for the final one

    @property
    def epochs_seen(self) -> int:
        """Epochs begun, the current one counted once a batch of it is done: what log lines and summaries call
        ``epoch`` (a run stopped in its 3rd epoch says 3; one that finished 10 epochs says 10)."""
        return self.epoch + (1 if self.batch_in_epoch else 0)


def format_record(record: dict[str, Any], log_format: str = "text") -> str:
    """One log record as a line for people (``text``) or for programs (``json``, as in train_log.jsonl)::

        validate  step 300  epoch 2  80 s  loss 3.0510  ppl 21.14  bleu 0.33  (best)
    """
    if log_format == "json":
        return json.dumps(record)
    parts = [f"{record['event']:<8}"]
    for key, value in record.items():
        if key in ("event", "best"):
            continue
        if key == "elapsed_seconds":
            parts.append(f"{value:.0f} s")
        elif key == "tokens_per_second":
            parts.append(f"{value:.0f} tok/s")
        elif isinstance(value, float):
            parts.append(f"{key} {value:.4g}" if key == "lr" else f"{key} {value:.4f}" if abs(value) < 10
                         else f"{key} {value:.2f}")
        else:
            parts.append(f"{key} {value}")
    return "  ".join(parts) + ("  (best)" if record.get("best") else "")


class Trainer:
    """Drives ``task.loss`` over a ``BatchSource`` with the optimiser, schedule, clipping and checkpoints of a
    ``TrainConfig``.  ``extra`` (plain data: vocab, tokenizer, resolved config...) is stored in every checkpoint so
    a model directory is self-contained."""

    def __init__(self, model: torch.nn.Module, task: Task, config: TrainConfig, model_dir: str | Path,
                 extra: dict[str, Any] | None = None,
                 validate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
                 device: torch.device | None = None, distributed: Distributed | None = None):
        self.config = config
        self.dist = distributed or Distributed()
        self.device = self.dist.device(device or resolve_device(config.device))
        self.model = model.to(self.device)
        self.task = task
        # what a training step calls: task.loss on the model, inside DDP when there are several workers
        self.loss_module = self.dist.wrap(LossModule(self.model, task), self.device)
        self.model_dir = Path(model_dir)
        self.extra = extra or {}
        self.validate_fn = validate
        betas = (config.beta1, config.beta2)
        self.optimizer = build_optimizer(model.parameters(), config.optimizer, config.lr, config.weight_decay,
                                         config.momentum, betas)
        self.scheduler = build_scheduler(self.optimizer, config)
        self.progress = Progress()
        self._seed_worker()
        self._window = {"loss": 0.0, "count": 0, "time": time.perf_counter()}
        self._start_time = time.perf_counter()
        self.events = EventWriter(self.model_dir, enabled=False)
        self._saved_step: int | None = None  # the update last.pt holds, for the Ctrl-C message

    # ----------------------------------------------------------------------------------------- the loop
    def fit(self, source: BatchSource) -> Progress:
        """Train until a stop condition; Ctrl-C ends it with ``TrainingInterrupted`` saying how to resume."""
        self.model_dir.mkdir(parents=True, exist_ok=True)
        self.events = EventWriter(self.model_dir, self.config.tensorboard and self.dist.is_main,
                                  announce=self.config.progress)
        self._start_time = time.perf_counter() - self.progress.elapsed_seconds
        try:
            self._loop(source)
        except KeyboardInterrupt:
            raise TrainingInterrupted(self._interrupted_message()) from None
        finally:
            self.events.close()
        return self.progress

    def _loop(self, source: BatchSource) -> None:
        if self.config.max_minutes and self.progress.validated_step < 0 and self.validate_fn is not None:
            # validate the initial model once, to know how long the final validation will take: the time
            # budget includes it (an untrained model decodes the longest outputs, so this is an upper bound)
            self._validate_and_checkpoint()
        self._check_limits()
        while not self.progress.stop_reason:
            batches = source.epoch_batches(self.progress.epoch)
            self._run_epoch(batches)
            if self.progress.stop_reason:
                break
            self.progress.epoch += 1
            self.progress.batch_in_epoch = 0
            if self.config.validate_every == 0:
                self._validate_and_checkpoint()
            self._check_limits()
        if self.progress.validated_step != self.progress.step:
            self._validate_and_checkpoint()  # a time or step budget ended between validations: score the end
        self._save("last.pt")
        self._log({"event": "stop", "reason": self.progress.stop_reason, **self._position()})

    def _interrupted_message(self) -> str:
        if self._saved_step is None:
            return f"training stopped at update {self.progress.step} before any checkpoint; nothing to resume"
        return (f"training stopped at update {self.progress.step}; {self.model_dir / 'last.pt'} holds update "
                f"{self._saved_step}: run the same command with --resume to continue from there "
                f"(Python: resume=True)")

    def _run_epoch(self, batches: Sequence[Any]) -> None:
        start = self.progress.batch_in_epoch
        bar = tqdm(total=len(batches), initial=start, desc=f"epoch {self.progress.epoch + 1}", unit="batch",
                   disable=not (self.config.progress and sys.stderr.isatty() and self.dist.is_main), leave=False,
                   dynamic_ncols=True)
        for index in range(start, len(batches)):
            self.train_step(batches[index])
            self.progress.batch_in_epoch = index + 1
            bar.update(1)
            self._maybe_log(bar)
            if self.config.validate_every and self.progress.step % self.config.validate_every == 0:
                self._validate_and_checkpoint()
            elif self.config.checkpoint_every and self.progress.step % self.config.checkpoint_every == 0:
                self._save("last.pt")
            self._check_limits()
            if self.progress.stop_reason:
                break
        bar.close()

    def train_step(self, batch: Any) -> float:
        """One update: loss sum / count -> backward -> clip -> optimiser and schedule step.  With ``precision``
        bf16 the loss is computed under autocast; backward leaves it (as torch.autocast asks)."""
        self.model.train()
        if hasattr(self.task, "set_step"):  # e.g. scheduled sampling's decaying ε
            self.task.set_step(self.progress.step)
        batch = self.dist.shard(batch).to(self.device)
        with autocast(self.device, self.config.precision):
            loss_sum, count = self.loss_module(batch)
        self.optimizer.zero_grad(set_to_none=True)
        # one host sync per update (needed for the log anyway); with N workers the sums of all of them
        loss_value, total_count = self.dist.reduce_step(loss_sum, count)
        # normalised once per update by the whole batch's count, / N undone because DDP averages the gradients
        (loss_sum / (max(total_count, 1) / self.dist.world_size)).backward()
        if self.config.clip_value > 0:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), self.config.clip_value)
        if self.config.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
        self.optimizer.step()
        if not isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step()
        self.progress.step += 1
        self._window["loss"] += loss_value
        self._window["count"] += total_count
        return loss_value / max(total_count, 1)

    # ----------------------------------------------------------------------------------------- named checks
    def _maybe_log(self, bar: tqdm) -> None:
        if self.progress.step % self.config.log_every:
            return
        elapsed = time.perf_counter() - self._window["time"]
        count = max(self._window["count"], 1)
        loss = self._window["loss"] / count
        record = {"event": "train", **self._position(), "loss": loss, "ppl": math.exp(min(loss, 50.0)),
                  "tokens_per_second": self._window["count"] / max(elapsed, 1e-9),
                  "lr": self.optimizer.param_groups[0]["lr"]}
        bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{record['ppl']:.1f}", tok_s=f"{record['tokens_per_second']:.0f}")
        self._log(record)
        self._window = {"loss": 0.0, "count": 0, "time": time.perf_counter()}

    def _validate_and_checkpoint(self) -> None:
        self.progress.validated_step = self.progress.step
        if self.validate_fn is None:
            self._save("last.pt")
            return
        # worker 0 scores the model; every worker takes its figures, so all make the same decisions
        started = time.perf_counter()
        metrics = self.dist.broadcast(self.validate_fn(self.model) if self.dist.is_main else None)
        self.progress.validation_seconds = time.perf_counter() - started
        name = self.config.early_stopping_metric
        if name not in metrics:
            raise ConfigError(f"train.early_stopping_metric: {name!r} is not among the validation metrics "
                              f"{sorted(metrics)}")
        value = float(metrics[name])
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(value)
        improved = self._is_better(value)
        if improved:
            self.progress.best_metric, self.progress.bad_validations = value, 0
        else:
            self.progress.bad_validations += 1
        self._log({"event": "validate", **self._position(), **metrics, "best": improved})
        if self.config.patience and self.progress.bad_validations >= self.config.patience:
            self.progress.stop_reason = f"early stopping: no better {name} in {self.config.patience} validations"
        if improved:
            self._save("best.pt")
        self._save("last.pt")
        if self.config.keep_last:
            self._save_snapshot()

    def _is_better(self, value: float) -> bool:
        best = self.progress.best_metric
        if best is None:
            return True
        return value > best if self.config.early_stopping_mode == "max" else value < best

    def _check_limits(self) -> None:
        if self.progress.epoch >= self.config.max_epochs:
            self.progress.stop_reason = f"max_epochs={self.config.max_epochs}"
        if self.config.max_steps and self.progress.step >= self.config.max_steps:
            self.progress.stop_reason = f"max_steps={self.config.max_steps}"
        if self.config.max_minutes:  # worker 0's clock: the workers' clocks differ a little
            # the budget keeps room for the final validation, which lasts about as long as the last one
            reserve = self.progress.validation_seconds if self.validate_fn is not None else 0.0
            minutes = self.dist.broadcast((time.perf_counter() - self._start_time + reserve) / 60)
            if minutes >= self.config.max_minutes:
                self.progress.stop_reason = f"max_minutes={self.config.max_minutes}"

    # ----------------------------------------------------------------------------------------- persistence
    def _position(self) -> dict[str, Any]:
        return {"step": self.progress.step, "epoch": max(self.progress.epochs_seen, 1),
                "elapsed_seconds": round(time.perf_counter() - self._start_time, 3)}

    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        with open(self.model_dir / "train_log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        self.events.write(record)
        # on a terminal the bar shows the training figures; elsewhere (a log file, CI) they get a line each
        shown = ("validate", "stop") if sys.stderr.isatty() else ("train", "validate", "stop")
        if record["event"] in shown and self.config.progress:
            print(format_record(record, self.config.log_format), file=sys.stderr, flush=True)

    def _save(self, name: str) -> None:
        self.progress.elapsed_seconds = time.perf_counter() - self._start_time
        if not self.dist.is_main:
            return
        save_checkpoint(self.model_dir / name, {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "trainer": vars(self.progress).copy(),
            "rng": rng_state(),
            "extra": self.extra,
            # what the objective carries between batches (an LM's hidden state across BPTT chunks)
            "objective": self.task.state_dict() if hasattr(self.task, "state_dict") else {},
        })
        if name == "last.pt":  # after the write: an interrupted write leaves the previous last.pt
            self._saved_step = self.progress.step

    def _save_snapshot(self) -> None:
        """Weights only (no optimiser state), then drop all but the newest ``keep_last`` snapshots."""
        if not self.dist.is_main:
            return
        save_checkpoint(self.model_dir / f"snapshot-{self.progress.step:08d}.pt", {
            "model": self.model.state_dict(), "trainer": vars(self.progress).copy(), "extra": self.extra})
        for old in snapshot_paths(self.model_dir)[:-self.config.keep_last]:
            old.unlink()

    def resume(self, path: str | Path | None = None) -> None:
        """Load ``last.pt`` (or ``path``): weights, optimiser, schedule, RNG and position in the data."""
        payload = load_checkpoint(path or self.model_dir / "last.pt")
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.progress = Progress(**payload["trainer"])
        self.progress.stop_reason = ""
        if hasattr(self.task, "load_state_dict") and self.dist.world_size == 1:
            # only worker 0's is saved: with several workers each starts its columns afresh, as at an epoch start
            self.task.load_state_dict(payload.get("objective") or {})
        set_rng_state(payload["rng"])
        self._seed_worker()

    def _seed_worker(self) -> None:
        """Workers 1.. draw their own dropout masks (worker 0 keeps the single-process stream; the model was
        built alike everywhere and DDP copied worker 0's weights).  Only worker 0's RNG state is checkpointed."""
        if not self.dist.is_main:
            torch.manual_seed(self.config.seed + 1000 * self.dist.rank + self.progress.step)
