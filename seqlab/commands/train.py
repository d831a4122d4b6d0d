"""``seqlab train CONFIG.yaml [--set key=value ...] [--resume]`` -> a self-contained model directory."""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import seqlab
from seqlab.config import Config, first_difference, load_config
from seqlab.errors import CheckpointError, ConfigError, SeqlabError
from seqlab.train.distributed import Distributed, launch
from seqlab.utils import atomic_write

HELP = "train a model from a YAML config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config (sections: model_dir, data, model, train, decode)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.lr=0.0005 (repeatable)")
    parser.add_argument("--model-dir", help="where checkpoints go (overrides model_dir in the config)")
    parser.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/last.pt")
    parser.add_argument("--overwrite", action="store_true", help="start afresh even if MODEL_DIR has checkpoints")
    parser.add_argument("--nproc", type=int, default=1,
                        help="data-parallel worker processes on this machine (DDP; like torchrun --nproc_per_node)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    if args.model_dir:
        config.model_dir = args.model_dir
    if args.nproc < 1:
        raise ConfigError(f"--nproc: must be >= 1, got {args.nproc}")
    if args.nproc > 1:  # check here, once, what every worker would refuse; then start the workers
        check_distributed(config, args.nproc)
        check_model_dir(config, args.resume, args.overwrite)  # --overwrite clears the directory here, once
        return launch(worker_argv(args), args.nproc)
    train = train_lm if config.task == "lm" else train_seq2seq
    summary = train(config, resume=args.resume, overwrite=args.overwrite)
    if summary is not None:  # worker 0's, when distributed
        print(json.dumps(summary))
    return 0


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The ``seqlab train`` command line each worker runs: ours without ``--nproc`` and ``--overwrite``."""
    argv = ["train", args.config, *(f"--set={override}" for override in args.overrides)]
    if args.model_dir:
        argv += ["--model-dir", args.model_dir]
    return argv + ["--resume"] * args.resume


def check_distributed(config: Config, world_size: int) -> None:
    if world_size == 1:
        return
    if config.task == "lm" and config.data.batch_size < world_size:
        raise ConfigError(f"data.batch_size: {config.data.batch_size} stream columns cannot be shared by "
                          f"{world_size} workers")


def check_model_dir(config: Config, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber a trained model, or to resume one trained with another config."""
    model_dir = Path(config.model_dir)
    last = model_dir / "last.pt"
    if resume:
        from seqlab.train.checkpoint import load_checkpoint

        if not last.is_file():
            raise CheckpointError(f"{model_dir}: nothing to resume (no last.pt)")
        saved = load_checkpoint(last).get("extra", {}).get("config")
        difference = first_difference(saved, config.to_dict())
        if difference:
            raise SeqlabError(f"--resume: config differs from the one {model_dir} was trained with at {difference}")
    elif last.is_file() and not overwrite:
        raise SeqlabError(f"{model_dir}: already holds a trained model; use --resume to continue or --overwrite")
    elif overwrite:
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


def train_seq2seq(config: Config, resume: bool = False, overwrite: bool = False) -> dict[str, Any] | None:
    """Prepare data, build the model, train; returns a summary (best metric, steps, wall time), on worker 0 of
    a distributed run (``WORLD_SIZE`` set by torchrun or ``--nproc``) and None on the others."""
    from seqlab.data.pipeline import make_batches, prepare_parallel
    from seqlab.inference import make_seq2seq_validator
    from seqlab.models.build import build_seq2seq
    from seqlab.train.trainer import Trainer, resolve_device

    workers = Distributed.from_env()
    with workers.main_first():  # worker 0 clears the model directory and writes the data cache first
        check_model_dir(config, resume, overwrite and workers.is_main)
        seed_everything(config.train.seed, config.train.num_threads)
        preprocessing, corpora = prepare_parallel(config.data, splits=("train", "valid"))
    device = resolve_device(config.train.device)
    model = build_seq2seq(config.model.architecture, config.model.options, len(preprocessing.src_vocab),
                          len(preprocessing.tgt_vocab))
    valid_batches = make_batches(corpora["valid"], config.data, shuffle=False).epoch_batches(0)
    validate = make_seq2seq_validator(preprocessing, corpora["valid"].raw, valid_batches, device,
                                      bleu_sentences=config.train.valid_bleu_sentences)
    task = build_task(config)
    extra = {"config": config.to_dict(), "preprocessing": preprocessing.to_dict()}
    trainer = Trainer(model, task, config.train, config.model_dir, extra, validate, device, workers)
    if workers.is_main:
        write_run_files(config, preprocessing, model, len(corpora["train"]), workers.world_size,
                        vocabs={"vocab.src.txt": preprocessing.src_vocab, "vocab.tgt.txt": preprocessing.tgt_vocab})
    if resume:
        trainer.resume()
    progress = trainer.fit(make_batches(corpora["train"], config.data, shuffle=config.data.shuffle))
    return finish(config, progress, workers)


def finish(config: Config, progress, workers: Distributed) -> dict[str, Any] | None:
    """Leave the process group; the run's summary on worker 0, None on the others."""
    workers.close()
    if not workers.is_main:
        return None
    return {"model_dir": config.model_dir, "steps": progress.step, "epochs": progress.epoch,
            "best_" + config.train.early_stopping_metric: progress.best_metric,
            "stop_reason": progress.stop_reason, "wall_seconds": round(progress.elapsed_seconds, 1),
            "workers": workers.world_size}


def train_lm(config: Config, resume: bool = False, overwrite: bool = False) -> dict[str, Any] | None:
    """Language model on a token stream with truncated BPTT; validation = exact perplexity of the valid split.
    Distributed: each worker reads every N-th of the ``batch_size`` stream columns."""
    from seqlab.lm.neural import BPTTBatches, LMTask, lm_validator, prepare_lm
    from seqlab.models.build import build_lm
    from seqlab.train.trainer import Trainer, resolve_device

    workers = Distributed.from_env()
    check_distributed(config, workers.world_size)
    with workers.main_first():
        check_model_dir(config, resume, overwrite and workers.is_main)
        seed_everything(config.train.seed, config.train.num_threads)
        preprocessing, streams = prepare_lm(config.data)
    device = resolve_device(config.train.device)
    model = build_lm(config.model.architecture, config.model.options, len(preprocessing.vocab))
    extra = {"config": config.to_dict(), "preprocessing": preprocessing.to_dict()}
    trainer = Trainer(model, LMTask(), config.train, config.model_dir, extra,
                      lm_validator(streams["valid"], config.data.bptt, device), device, workers)
    if workers.is_main:
        write_run_files(config, None, model, len(streams["train"]), workers.world_size,
                        vocabs={"vocab.txt": preprocessing.vocab})
    if resume:
        trainer.resume()
    progress = trainer.fit(BPTTBatches(streams["train"], config.data.batch_size, config.data.bptt))
    return finish(config, progress, workers)


def build_task(config: Config):
    from seqlab.train.loss import Seq2SeqTask

    if config.train.scheduled_sampling == "none":
        return Seq2SeqTask(config.train.label_smoothing)
    from seqlab.train.loss import ScheduledSamplingTask

    return ScheduledSamplingTask(config.train)


def write_run_files(config: Config, preprocessing, model: torch.nn.Module, num_train: int, workers: int,
                    vocabs: dict[str, Any]) -> None:
    """Human-readable companions of the checkpoints: resolved config, versions, vocabularies."""
    model_dir = Path(config.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(model_dir / "config.yaml") as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
    for name, vocab in vocabs.items():
        vocab.save(model_dir / name)
    info = {"event": "start", "seqlab": seqlab.__version__, "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.platform(), "argv": sys.argv,
            "seed": config.train.seed, "train_examples": num_train, "workers": workers,
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_sizes": {name: len(vocab) for name, vocab in vocabs.items()}}
    with open(model_dir / "train_log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(info) + "\n")
