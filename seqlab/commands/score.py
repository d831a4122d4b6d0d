"""``seqlab score MODEL_DIR``: log-probabilities of given sentences, one JSON object per line for both model kinds.

* language model: ``seqlab score MODEL_DIR --lm < sentences`` -> ``{"text", "log_prob", "tokens", "per_token",
  "log_base": "e"}`` per line; at a terminal it is interactive (one answer per line as it is typed);
* encoder-decoder (forced decoding): ``seqlab score MODEL_DIR --src F --tgt F`` -> ``{"src", "tgt", "log_prob",
  "tokens", "per_token", "log_base": "e"}``.

``--rank`` (or ``--rank per-token``) prints the same lines ordered from most to least likely, by total or by
per-token log-probability, each with its ``rank``.  Natural logarithms throughout (``log_base``), <eos> included.
``--models DIR ...`` scores with an ensemble: the log of the members' mean probability of every token.
"""

from __future__ import annotations

import argparse
import json

from seqlab.commands.shared import add_ensemble_arguments, add_quantize_argument
from seqlab.errors import SeqlabError

HELP = "log-probability of sentences under a language model, or of targets given sources (forced decoding)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", nargs="?", help="a model directory (or give --models)")
    parser.add_argument("--lm", action="store_true", help="score lines (stdin or -i) with a language model")
    parser.add_argument("-i", "--input", help="sentences to score with --lm (default: stdin)")
    parser.add_argument("--rank", nargs="?", const="total", choices=["total", "per-token"],
                        help="order the output from most to least likely, by total (default) or per-token log-prob")
    parser.add_argument("--src", help="source file (encoder-decoder)")
    parser.add_argument("--tgt", help="target file (encoder-decoder)")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_quantize_argument(parser)
    add_ensemble_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from seqlab.commands.shared import load_members_from_args
    from seqlab.ensemble import combine

    if args.ensemble == "vote":
        raise SeqlabError("score: a log-probability needs probabilities to average; use --ensemble mean")
    loaded = combine(load_members_from_args(args), "mean")
    if loaded.config.task == "lm":
        return score_lm(loaded, args)
    if loaded.config.task != "translation":
        raise SeqlabError(f"score: a {loaded.config.task} model scores nothing; use `seqlab evaluate`")
    if not (args.src and args.tgt):
        raise SeqlabError("score: an encoder-decoder needs --src FILE --tgt FILE")
    from seqlab.data.corpora import read_parallel
    from seqlab.tasks.translation import score_pairs

    print_records(score_pairs(loaded, read_parallel(args.src, args.tgt)), args.rank)
    return 0


def score_lm(loaded, args: argparse.Namespace) -> int:
    from seqlab.commands.shared import interactive_lines, use_interactive
    from seqlab.data.corpora import read_input_lines
    from seqlab.tasks.language_model import score_sentences

    def score(lines: list[str]) -> list[dict]:
        results = score_sentences(loaded.model, loaded.preprocessing, [line for line in lines if line.strip()])
        return [{"text": r["sentence"], "log_prob": r["log_prob"], "tokens": r["tokens"],
                 "per_token": r["per_token"], "oov": r["oov"]} for r in results]

    if use_interactive(args.input):
        for line in interactive_lines("sentence> "):
            print_records(score([line]), None, flush=True)
        return 0
    print_records(score(read_input_lines(args.input)), args.rank)
    return 0


def print_records(records: list[dict], rank: str | None, flush: bool = False) -> None:
    """One JSON line per record, natural-log fields rounded to 4 places; ``rank``: sorted, with a rank field."""
    if rank is not None:
        key = "log_prob" if rank == "total" else "per_token"
        records = [{"rank": position, **record}
                   for position, record in enumerate(sorted(records, key=lambda r: -r[key]), 1)]
    for record in records:
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}
        print(json.dumps({**shown, "log_base": "e"}, ensure_ascii=False), flush=flush)
