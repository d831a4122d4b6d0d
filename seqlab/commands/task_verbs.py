"""The task verbs' shared shape (``seqlab classify|tag|caption|forecast ACTION ...``): ``train`` and ``evaluate``
are ``seqlab train`` / ``seqlab evaluate`` restricted to the verb's task; each verb adds its own ``predict``."""

from __future__ import annotations

import argparse
from typing import Callable


def add_task_actions(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    """``train CONFIG ...`` and ``evaluate MODEL_DIR ...`` (the same options as ``seqlab train`` / ``evaluate``);
    the caller adds ``predict``."""
    from seqlab.commands import evaluate, train

    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train.add_arguments(actions.add_parser("train", help="train from a YAML config (as `seqlab train`)"))
    evaluate.add_arguments(actions.add_parser("evaluate", help="score a model directory (as `seqlab evaluate`)"))
    return actions


def run_task_action(args: argparse.Namespace, task: str, predict: Callable[[argparse.Namespace], int]) -> int:
    """Run ``args.action`` for ``task``: a model directory or config of another task is refused."""
    from seqlab.commands import evaluate, train

    args.task = task
    return {"train": train.run, "evaluate": evaluate.run, "predict": predict}[args.action](args)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``MODEL_DIR [--checkpoint best|last] [--batch-size N]``."""
    parser.add_argument("model_dir")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--batch-size", type=int, default=64)
