"""``seqlab caption``: image captioning on Flickr8k (CNN encoder -> RNN decoder).

    seqlab caption train CONFIG.yaml --model-dir DIR [--set section.key=value ...] [--resume]   # = seqlab train
    seqlab caption predict DIR IMAGE.jpg ...          (or the shorthand: seqlab caption DIR IMAGE.jpg ...)
    seqlab caption evaluate DIR [--split test] [--out HYPS.tsv]                                  # = seqlab evaluate

The task itself is ``seqlab.tasks.captioning``.
"""

from __future__ import annotations

import argparse

from seqlab.commands.shared import add_ensemble_arguments
from seqlab.commands.task_verbs import run_task_action
from seqlab.errors import SeqlabError

HELP = "image captioning (Flickr8k): train, caption images with beam search, BLEU-1..4 on a split"
TASK = "captioning"
ACTIONS = ("train", "predict", "evaluate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", metavar="ACTION|MODEL_DIR",
                        help="train, predict or evaluate; a model directory means 'predict MODEL_DIR IMAGE ...'")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="the action's arguments (ACTION --help)")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir")
    parser.add_argument("images", nargs="*", metavar="IMAGE")
    parser.add_argument("--beam", "--beam-size", dest="beam", type=int,
                        help="beam size (default: the config's decode.beam_size)")
    parser.add_argument("--max-len", type=int, help="most words per caption, <eos> included")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--out", help="write '<image>\\t<caption>' lines here instead of stdout")
    add_ensemble_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from seqlab.commands import evaluate, train

    action, rest = args.action, list(args.rest)
    if action not in ACTIONS:  # the shorthand ``seqlab caption DIR IMAGE ...``
        action, rest = "predict", [action, *rest]
    parser = argparse.ArgumentParser(prog=f"seqlab caption {action}")
    {"train": train.add_arguments, "evaluate": evaluate.add_arguments, "predict": add_predict_arguments}[action](parser)
    action_args = parser.parse_args(rest)
    action_args.action = action
    return run_task_action(action_args, TASK, predict)


def predict(args: argparse.Namespace) -> int:
    import torch

    from seqlab.commands.shared import decode_config_from_args, load_members_from_args, write_captions
    from seqlab.data.images import read_image_file
    from seqlab.ensemble import combine, vote_outputs
    from seqlab.tasks.captioning import caption

    if not args.images:
        raise SeqlabError("caption predict: expected at least one image file after the model directory")
    members = load_members_from_args(args, TASK)
    first = members[0]
    size, decode = first.preprocessing.image_size, decode_config_from_args(first.config.decode, args)
    images = torch.stack([read_image_file(path, size) for path in args.images])  # all read before any decoding
    if args.ensemble == "vote" and len(members) > 1:
        captions = vote_outputs(members, lambda member: caption(member, images, decode), key=tuple)
    else:
        captions = caption(combine(members, args.ensemble), images, decode)
    write_captions(args.out, args.images, captions)
    return 0
