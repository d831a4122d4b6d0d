"""``seqlab classify {train,predict,evaluate}``: sentence classification (MR polarity, TREC, your own TSV files).

    seqlab classify train configs/mr_bigru.yaml --model-dir runs/mr_fold0 [--set data.fold=3]   # = seqlab train
    seqlab classify predict runs/mr_fold0 sentences.txt      # one label per input line (stdin by default)
    seqlab classify predict runs/a sentences.txt --models runs/b runs/c --ensemble vote     # an ensemble
    seqlab classify evaluate runs/mr_fold0 --split test      # = seqlab evaluate: accuracy, macro F1, loss

The task itself is ``seqlab.tasks.classification``.
"""

from __future__ import annotations

import argparse

from seqlab.commands.shared import (add_ensemble_arguments, load_members_from_args, read_input_lines,
                                   write_output_lines)
from seqlab.commands.task_verbs import add_model_arguments, add_task_actions, run_task_action

HELP = "sentence classification (MR, TREC, TSV files): train, predict, evaluate"
TASK = "classification"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = add_task_actions(parser)
    add_predict_arguments(actions.add_parser("predict", help="one label per input line"))


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("input", nargs="?", default="-", help="one whitespace-tokenised sentence per line "
                                                               "(default: stdin)")
    parser.add_argument("--output", help="write here (atomically) instead of stdout")
    add_ensemble_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return run_task_action(args, TASK, predict)


def predict(args: argparse.Namespace) -> int:
    from seqlab.ensemble import combine
    from seqlab.tasks.classification import classify

    loaded = combine(load_members_from_args(args, TASK), args.ensemble)
    lines = read_input_lines(args.input)
    write_output_lines(classify(loaded, [line.split() for line in lines], args.batch_size), args.output)
    return 0
