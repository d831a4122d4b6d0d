"""What the task verbs share: ``train`` / ``predict`` / ``evaluate`` actions, reading input lines, writing
outputs atomically.  Only argument parsing and I/O: the work is done by ``seqlab.tasks``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from seqlab.utils import atomic_write


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


def read_input_lines(source: str | None) -> list[str]:
    """The lines of ``source`` (a file, or ``-`` / None for stdin), without line ends."""
    from seqlab.data.corpora import read_lines

    if source in (None, "-"):
        return [line.rstrip("\r\n") for line in sys.stdin]
    return read_lines(source)


def write_output_lines(lines: Sequence[str], output: str | None) -> None:
    text = "".join(line + "\n" for line in lines)
    if output:
        with atomic_write(output) as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)


def print_json(record: dict[str, Any], output: str | None = None) -> None:
    text = json.dumps(record, indent=2)
    if output:
        with atomic_write(output) as handle:
            handle.write(text + "\n")
    print(text)
