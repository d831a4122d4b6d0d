"""``seqlab plot MODEL_DIR [-o DIR]``: PNG training curves (loss, perplexity, BLEU, accuracy / F1, learning rate)
from the model directory's ``train_log.jsonl``, the same records TensorBoard's event files hold."""

from __future__ import annotations

import argparse
from pathlib import Path

from seqlab.errors import DataError

HELP = "draw a model directory's training curves (loss, perplexity, BLEU, learning rate) as PNG files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="a directory written by `seqlab train`")
    parser.add_argument("-o", "--output", help="directory for the PNG files (default: MODEL_DIR/curves)")


def run(args: argparse.Namespace) -> int:
    from seqlab.plots import plot_training_curves, read_training_log

    model_dir = Path(args.model_dir)
    if not model_dir.is_dir():
        raise DataError(f"{model_dir}: {'not a directory' if model_dir.exists() else 'no such model directory'}")
    out_dir = Path(args.output) if args.output else model_dir / "curves"
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: not a directory")
    written = plot_training_curves(read_training_log(model_dir / "train_log.jsonl"), out_dir)
    if not written:
        raise DataError(f"{model_dir / 'train_log.jsonl'}: no training or validation records to draw")
    for path in written:
        print(path)
    return 0
