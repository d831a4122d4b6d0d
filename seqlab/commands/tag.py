"""``seqlab tag {train,predict,evaluate}``: one tag per token (CoNLL-2000 chunking or part-of-speech tagging).

    seqlab tag train configs/conll2000_chunk.yaml --model-dir runs/chunk          # = seqlab train
    echo "He reckons the current account deficit will narrow ." | seqlab tag predict runs/chunk
        -> He/B-NP reckons/B-VP the/B-NP current/I-NP account/I-NP deficit/I-NP will/B-VP narrow/I-VP ./O
    seqlab tag evaluate runs/chunk [--split test | --file my.conll]  # = seqlab evaluate: accuracy, chunk P/R/F1

The task itself is ``seqlab.tasks.tagging``.
"""

from __future__ import annotations

import argparse

from seqlab.commands.classify import add_predict_arguments
from seqlab.commands.shared import load_members_from_args, read_input_lines, write_output_lines
from seqlab.commands.task_verbs import add_task_actions, run_task_action

HELP = "sequence tagging (CoNLL-2000 chunking or POS): train, predict, evaluate"
TASK = "tagging"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = add_task_actions(parser)
    add_predict_arguments(actions.add_parser(
        "predict", help="tag one whitespace-tokenised sentence per line (word/POS tokens for a model that reads POS)"))


def run(args: argparse.Namespace) -> int:
    return run_task_action(args, TASK, predict)


def predict(args: argparse.Namespace) -> int:
    from seqlab.ensemble import combine
    from seqlab.tasks.tagging import tag

    loaded = combine(load_members_from_args(args, TASK), args.ensemble)
    sentences = [line.split() for line in read_input_lines(args.input)]
    tagged = tag(loaded, sentences, args.batch_size)
    write_output_lines([" ".join(f"{w}/{t}" for w, t in zip(words, tags)) for words, tags in zip(sentences, tagged)],
                       args.output)
    return 0
