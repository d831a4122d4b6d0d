"""``seqlab train CONFIG.yaml [--set key=value ...] [--resume | --overwrite] [--nproc N]`` -> a model directory.

Any task's recipe (``task:`` in the YAML: translation, lm, classification, tagging, captioning, forecasting) goes
through the one driver, ``seqlab.tasks.train``.
"""

from __future__ import annotations

import argparse
import json

from seqlab.errors import ConfigError

HELP = "train a model of any task from a YAML config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config (sections: task, model_dir, data, model, train, decode)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.lr=0.0005 (repeatable)")
    parser.add_argument("--model-dir", help="where checkpoints go (overrides model_dir in the config)")
    parser.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/last.pt")
    parser.add_argument("--overwrite", action="store_true", help="start afresh even if MODEL_DIR has checkpoints")
    parser.add_argument("--nproc", type=int, default=1,
                        help="data-parallel worker processes on this machine (DDP; like torchrun --nproc_per_node)")


def run(args: argparse.Namespace) -> int:
    from seqlab.config import load_yaml, merge, parse_overrides
    from seqlab.tasks import build_config, check_task, train
    from seqlab.train.distributed import launch

    raw = merge(load_yaml(args.config), parse_overrides(args.overrides))
    expected = getattr(args, "task", None)  # set by a task's own verb: `seqlab classify train CONFIG`
    if expected and raw.setdefault("task", expected) != expected:
        raise ConfigError(f"task: must be {expected} for this command, got {raw['task']!r}")
    config = build_config(raw)
    if args.model_dir:
        config.model_dir = args.model_dir
    if args.nproc < 1:
        raise ConfigError(f"--nproc: must be >= 1, got {args.nproc}")
    if args.nproc > 1:  # check here, once, what every worker would refuse; then start the workers
        from seqlab.run_dir import check_model_dir, clear_model_dir

        check_task(config, args.nproc)
        check_model_dir(config, args.resume, args.overwrite)
        if args.overwrite:  # the workers run without --overwrite: the directory is cleared here, once
            clear_model_dir(config.model_dir)
        return launch(worker_argv(args), args.nproc)
    summary = train(config, resume=args.resume, overwrite=args.overwrite)
    if summary is not None:  # worker 0's, when distributed
        print(json.dumps(summary))
    return 0


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The ``seqlab train`` command line each worker runs: ours without ``--nproc`` and ``--overwrite``."""
    argv = ["train", args.config, *(f"--set={override}" for override in args.overrides)]
    if getattr(args, "task", None):
        argv += [f"--set=task={args.task}"]
    if args.model_dir:
        argv += ["--model-dir", args.model_dir]
    return argv + ["--resume"] * args.resume
