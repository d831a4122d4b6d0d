"""``seqlab predict MODEL_DIR (--split NAME | --csv F)`` for an image_classification model: one label per image.

``--split`` classifies a split of the trained dataset (the digits' test split by default); ``--csv`` reads 64 grey
levels (0..16, row-major 8x8, as ``load_digits`` gives them) per line.  The task is
``seqlab.tasks.image_classification``.
"""

from __future__ import annotations

import argparse

from seqlab.commands.shared import write_output_lines
from seqlab.commands.task_verbs import add_model_arguments

TASK = "image_classification"


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--split", default="test", help="a split of the model's dataset (default: test)")
    source.add_argument("--csv", help="64 comma-separated grey levels (0..16) per line")
    parser.add_argument("--output", help="write here (atomically) instead of stdout")


def predict(args: argparse.Namespace) -> int:
    from seqlab.errors import DataError
    from seqlab.tasks import load_model_dir
    from seqlab.tasks.image_classification import classify_images, load_splits, read_pixel_csv

    loaded = load_model_dir(args.model_dir, args.checkpoint, task=TASK)
    if args.csv:
        grey_levels = read_pixel_csv(args.csv)
    else:
        splits = load_splits(loaded.config.data)
        if args.split not in splits:
            raise DataError(f"--split: must be one of {', '.join(splits)}, got {args.split!r}")
        grey_levels = splits[args.split][0]
    write_output_lines(classify_images(loaded, grey_levels, args.batch_size), args.output)
    return 0
