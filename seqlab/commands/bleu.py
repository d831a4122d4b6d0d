"""``seqlab bleu HYP_FILE REF_FILE [REF_FILE ...] [--tokenize 13a] [--lowercase] [--json]``: corpus BLEU.

Files hold one detokenized sentence per line; line i of every reference file is a reference of line i of the
hypothesis file (several reference files = several references per sentence, as in ``sacrebleu REF1 REF2 -i HYP``).
``--hyp FILE --ref FILE ...`` is the same command with named options; ``-`` as HYP_FILE reads standard input
(``seqlab translate MODEL -i test.en | seqlab bleu - test.fr``).  Prints sacreBLEU's line (``BLEU = 34.21 65.2/40.1/27.5/19.0 (BP = 0.978 ...)``), then the signature.

``--sentence-d2l [--k 4]`` adds d2l's sentence BLEU of every line (against the first reference, whitespace
tokens after the same tokenizer as the corpus score): one ``line<TAB>score`` row per sentence, after the corpus line.
"""

from __future__ import annotations

import argparse
import json

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
    parser.add_argument("--sentence-d2l", action="store_true",
                        help="also print d2l's sentence BLEU of every line (against the first reference)")
    parser.add_argument("--k", type=int, default=4, help="largest n-gram order of --sentence-d2l (default: 4)")


def run(args: argparse.Namespace) -> int:
    from seqlab.metrics.bleu import corpus_bleu

    hyp_path, ref_paths = _hyp_and_refs(args)
    hypotheses, references = read_hyps_and_refs(hyp_path, ref_paths)
    if args.k < 1:
        raise SeqlabError(f"--k: must be >= 1, got {args.k}")
    result = corpus_bleu(hypotheses, references, tokenize=args.tokenize, lowercase=args.lowercase)
    sentence_scores = d2l_scores(hypotheses, references, args.tokenize, args.lowercase, args.k) \
        if args.sentence_d2l else None
    if args.json:
        record = {"bleu": round(result.score, 2), "precisions": [round(p, 2) for p in result.precisions],
                  "bp": round(result.bp, 4), "sys_len": result.sys_len, "ref_len": result.ref_len,
                  "sentences": len(hypotheses), "signature": result.signature}
        if sentence_scores is not None:
            record[f"sentence_d2l_k{args.k}"] = [round(score, 4) for score in sentence_scores]
        print(json.dumps(record))
        return 0
    print(result)
    for line_number, score in enumerate(sentence_scores or [], start=1):
        print(f"{line_number}\t{score:.4f}")
    return 0


def d2l_scores(hypotheses: list[str], references: list[list[str]], tokenize: str, lowercase: bool,
               k: int) -> list[float]:
    """d2l's sentence BLEU per line, on the tokens sacreBLEU's tokenizer ``tokenize`` gives."""
    from sacrebleu.metrics.bleu import BLEU

    from seqlab.metrics.bleu import sentence_bleu_d2l

    tokenizer = BLEU(tokenize=tokenize).tokenizer

    def tokens(text: str) -> list[str]:
        return tokenizer(text.lower() if lowercase else text).split()

    return [sentence_bleu_d2l(tokens(hyp), tokens(refs[0]), k) for hyp, refs in zip(hypotheses, references)]


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
    from seqlab.data.corpora import read_stdin_lines

    return read_stdin_lines()
