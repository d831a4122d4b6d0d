"""The ``seqlab`` command line: a thin dispatcher.

Each subcommand lives in ``seqlab/commands/<name>.py`` and defines ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``.  The table below is the whole registry: no decorators, no auto-import.  Command modules
are imported only when chosen, so ``seqlab --help`` stays fast.

A ``SeqlabError`` (bad file, bad config key, missing checkpoint, ...) becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from seqlab.errors import SeqlabError

# name -> module path.  Keep sorted by how a user meets them.
COMMANDS: dict[str, str] = {
    "quickstart": "seqlab.commands.quickstart",
    "train": "seqlab.commands.train",
    "translate": "seqlab.commands.translate",
    "evaluate": "seqlab.commands.evaluate",
    "predict": "seqlab.commands.predict",
    "bleu": "seqlab.commands.bleu",
    "score": "seqlab.commands.score",
    "generate": "seqlab.commands.generate",
    "lm": "seqlab.commands.lm",
    "average": "seqlab.commands.average",
    "plot": "seqlab.commands.plot",
    "export": "seqlab.commands.export",
    "serve": "seqlab.commands.serve",
    "search": "seqlab.commands.search",
    "classify": "seqlab.commands.classify",
    "tag": "seqlab.commands.tag",
    "caption": "seqlab.commands.caption",
    "forecast": "seqlab.commands.forecast",
    "chat": "seqlab.commands.chat",
}

# One-line help shown by ``seqlab --help`` without importing every command module.
SUMMARIES: dict[str, str] = {
    "quickstart": "train a small GRU seq2seq on the bundled Tatoeba fra-eng sample and translate with it",
    "train": "train a model of any task from a YAML config",
    "translate": "translate lines with a trained model (stdin/stdout by default)",
    "evaluate": "score a trained model of any task on a split or on files (BLEU, perplexity, accuracy, F1, MSE)",
    "predict": "use a trained model of any task: translate, generate, classify, tag, caption, forecast or reply",
    "bleu": "corpus BLEU of a hypothesis file against a reference file (sacreBLEU defaults)",
    "score": "log-probability of sentences (language model) or of targets given sources (forced decoding)",
    "generate": "generate text from a trained language model, optionally continuing a prompt",
    "lm": "count-based n-gram language models: build, evaluate, export ARPA, generate",
    "plot": "draw a model directory's training curves (loss, perplexity, BLEU, learning rate) as PNG files",
    "average": "average the weights of several checkpoints of one architecture into a new model directory",
    "export": "export a trained Transformer for Hugging Face transformers, CTranslate2 or ONNX Runtime",
    "serve": "serve trained models over HTTP: a JSON API, dynamic batching, metrics and a web page",
    "search": "grid or random hyper-parameter search over a training config",
    "classify": "sentence classification (MR, TREC, TSV files): train, predict, evaluate",
    "tag": "sequence tagging (CoNLL-2000 chunking or POS): train, predict, evaluate",
    "caption": "image captioning (Flickr8k): train, caption images with beam search, BLEU-1..4 on a split",
    "forecast": "forecast a numeric series (CSV, noisy sine, sunspots) with a tau-lag MLP or a latent RNN",
    "chat": "talk to a trained dialogue model (keeps the history; /reset starts over)",
}


def version_line() -> str:
    """``seqlab 0.1.0 (torch 2.13.0, python 3.11.7)``, read from package metadata so torch is not imported."""
    import platform
    from importlib import metadata

    import seqlab

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return f"seqlab {seqlab.__version__} (torch {torch_version}, python {platform.python_version()})"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqlab", description="Sequence models on real data.")
    parser.add_argument("--version", action="version", version=version_line())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_path in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=SUMMARIES.get(name, ""), description=SUMMARIES.get(name, ""))
        if name == command:  # only the chosen command's module is imported
            importlib.import_module(module_path).add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    command = command if command in COMMANDS else None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and args.command != "train":
            # under torchrun every worker would run the whole command and write the same files
            raise SeqlabError(f"{args.command}: runs in one process; only 'seqlab train' runs distributed")
        return importlib.import_module(COMMANDS[args.command]).run(args) or 0
    except SeqlabError as error:
        print(f"seqlab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # training says where its checkpoint stands and how to resume
        print(f"seqlab: interrupted{f': {interrupt}' if str(interrupt) else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `seqlab translate ... | head` is not an error
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
