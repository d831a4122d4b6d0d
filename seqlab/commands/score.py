"""``seqlab score MODEL_DIR``: log-probabilities of given sentences.

* language model: ``seqlab score MODEL_DIR --lm < sentences`` prints total and per-token log-probability of each
  line and, with ``--rank``, the lines ordered from most to least likely;
* encoder-decoder (forced decoding): ``seqlab score MODEL_DIR --src F --tgt F`` prints log p(target | source).
"""

from __future__ import annotations

import argparse
import json

from seqlab.commands.shared import add_quantize_argument
from seqlab.errors import SeqlabError

HELP = "log-probability of sentences under a language model, or of targets given sources (forced decoding)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir")
    parser.add_argument("--lm", action="store_true", help="score lines (stdin or -i) with a language model")
    parser.add_argument("-i", "--input", help="sentences to score with --lm (default: stdin)")
    parser.add_argument("--rank", action="store_true", help="also print the lines from most to least likely")
    parser.add_argument("--src", help="source file (encoder-decoder)")
    parser.add_argument("--tgt", help="target file (encoder-decoder)")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_quantize_argument(parser)


def run(args: argparse.Namespace) -> int:
    from seqlab.tasks import load_model_dir

    loaded = load_model_dir(args.model_dir, args.checkpoint, quantize=args.quantize)
    if loaded.config.task == "lm":
        return score_lm(loaded, args)
    if loaded.config.task != "translation":
        raise SeqlabError(f"score: a {loaded.config.task} model scores nothing; use `seqlab evaluate`")
    if not (args.src and args.tgt):
        raise SeqlabError("score: an encoder-decoder needs --src FILE --tgt FILE")
    from seqlab.data.corpora import read_parallel
    from seqlab.tasks.translation import score_pairs

    for (source, target), log_prob in zip(*score_pairs(loaded, read_parallel(args.src, args.tgt))):
        print(json.dumps({"src": source, "tgt": target, "log_prob": round(log_prob, 4)}, ensure_ascii=False))
    return 0


def score_lm(loaded, args: argparse.Namespace) -> int:
    from seqlab.data.corpora import read_input_lines
    from seqlab.tasks.language_model import score_sentences

    lines = read_input_lines(args.input)
    results = score_sentences(loaded.model, loaded.preprocessing, [line for line in lines if line.strip()])
    for result in results:
        print(f"{result['log_prob']:.4f}\t{result['per_token']:.4f}\t{result['sentence']}")
    if args.rank:
        print("# ranking, most likely first:")
        for position, result in enumerate(sorted(results, key=lambda r: -r["log_prob"]), 1):
            print(f"{position}. {result['sentence']} ({result['log_prob']:.4f})")
    return 0
