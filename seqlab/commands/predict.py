"""``seqlab predict MODEL_DIR ...``: use any task's model directory with its task's natural verb.

translation -> ``seqlab translate``, lm -> ``seqlab generate``, classification -> ``seqlab classify predict``,
tagging -> ``seqlab tag predict``, captioning -> ``seqlab caption predict``, forecasting -> ``seqlab forecast
predict``, image_classification -> ``--split test`` or ``--csv F`` (seqlab.commands.image_classify), dialogue -> ``seqlab chat``; the arguments after MODEL_DIR are that verb's (``seqlab predict MODEL_DIR --help`` lists them).
"""

from __future__ import annotations

import argparse
import importlib

HELP = "use a trained model of any task: translate, generate, classify, tag, caption, forecast or reply"
VERBS = {"translation": "seqlab.commands.translate", "lm": "seqlab.commands.generate",
         "classification": "seqlab.commands.classify", "tagging": "seqlab.commands.tag",
         "captioning": "seqlab.commands.caption", "forecasting": "seqlab.commands.forecast",
         "image_classification": "seqlab.commands.image_classify", "dialogue": "seqlab.commands.chat"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="the task verb's arguments")


def run(args: argparse.Namespace) -> int:
    from seqlab.run_dir import read_checkpoint

    _, payload = read_checkpoint(args.model_dir)
    task = payload["extra"]["config"].get("task", "translation")
    verb = importlib.import_module(VERBS[task])
    parser = argparse.ArgumentParser(prog=f"seqlab predict ({task})")
    verb.add_predict_arguments(parser)
    return verb.predict(parser.parse_args([args.model_dir, *args.rest]))
