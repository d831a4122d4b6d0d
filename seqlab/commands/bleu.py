"""``seqlab bleu HYP_FILE REF_FILE [REF_FILE ...] [--tokenize 13a] [--lowercase] [--json]``: corpus BLEU.

Files hold one detokenized sentence per line; line i of every reference file is a reference of line i of the
hypothesis file (several reference files = several references per sentence, as in ``sacrebleu REF1 REF2 -i HYP``).
``--hyp FILE --ref FILE ...`` is the same command with named options; ``-`` as HYP_FILE reads standard input
(``seqlab translate MODEL -i test.en | seqlab bleu - test.fr``).  Prints ``BLEU = 34.21 <signature>``.
"""

from __future__ import annotations

import argparse
import json
import sys

from seqlab.errors import DataError, SeqlabError

HELP = "corpus BLEU of a hypothesis file against a reference file (sacreBLEU defaults)"
# sacreBLEU tokenizers that need nothing beyond sacreBLEU itself (the mecab and flores ones need extra packages
# or a model download).
TOKENIZERS = ("13a", "intl", "zh", "char", "none")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="HYP_FILE REF_FILE [REF_FILE ...] (or only REF_FILEs when --hyp is given); HYP_FILE - is stdin")
    parser.add_argument("--hyp", help="hypothesis file (instead of the first FILE)")
    parser.add_argument("--ref", nargs="+", default=[], metavar="REF_FILE", help="reference file(s)")
    parser.add_argument("--tokenize", default="13a", choices=TOKENIZERS,
                        help="sacreBLEU tokenizer applied to both sides (default: 13a)")
    parser.add_argument("--lowercase", action="store_true", help="case-insensitive BLEU")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    from seqlab.metrics.bleu import corpus_bleu

    hyp_path, ref_paths = _hyp_and_refs(args)
    hypotheses, references = read_hyps_and_refs(hyp_path, ref_paths)
    result = corpus_bleu(hypotheses, references, tokenize=args.tokenize, lowercase=args.lowercase)
    if args.json:
        print(json.dumps({"bleu": round(result.score, 2), "precisions": [round(p, 2) for p in result.precisions],
                          "bp": round(result.bp, 4), "sys_len": result.sys_len, "ref_len": result.ref_len,
                          "sentences": len(hypotheses), "signature": result.signature}))
    else:
        print(result)
    return 0


def _hyp_and_refs(args: argparse.Namespace) -> tuple[str, list[str]]:
    files = list(args.files)
    hyp_path = args.hyp or (files.pop(0) if files else None)
    ref_paths = files + list(args.ref)
    if hyp_path is None or not ref_paths:
        raise SeqlabError("bleu: give a hypothesis file and at least one reference file (HYP_FILE REF_FILE ...)")
    return hyp_path, ref_paths


def read_hyps_and_refs(hyp_path: str, ref_paths: list[str]) -> tuple[list[str], list[list[str]]]:
    """The hypothesis lines and, per line, its references (one from each reference file).

    Every file must have as many lines as the hypothesis file: a shifted line would silently score every
    sentence against the wrong reference.
    """
    from seqlab.data.corpora import read_lines

    hypotheses = _stdin_lines() if hyp_path == "-" else read_lines(hyp_path)
    streams = [read_lines(path) for path in ref_paths]
    for path, stream in zip(ref_paths, streams):
        if len(stream) != len(hypotheses):
            raise DataError(f"line counts differ: {hyp_path} has {len(hypotheses)} lines, "
                            f"{path} has {len(stream)}")
    return hypotheses, [list(refs) for refs in zip(*streams)]


def _stdin_lines() -> list[str]:
    lines = sys.stdin.read().split("\n")
    if lines[-1] == "":  # the final newline ends the last line
        lines.pop()
    return [line.removesuffix("\r") for line in lines]
