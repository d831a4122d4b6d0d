"""``seqlab lm ngram``: build, evaluate, export and sample count-based n-gram language models.

    seqlab lm ngram --order 5 --smoothing mkn --train TRAIN --eval TEST [--arpa OUT.arpa] [--save OUT.npz]
    seqlab lm ngram --load MODEL.npz|MODEL.arpa --eval TEST
    seqlab lm ngram --load MODEL --generate --prefix "the stock" [--num 3 --seed 0 --temperature 0.8]

Files hold one sentence per line, words separated by spaces (``.gz`` is read transparently).  Perplexity counts
every word plus one ``</s>`` per sentence, as KenLM does; words outside the training vocabulary are scored as
``<unk>`` and reported as OOVs.  The work is done by ``seqlab.lm.ngram``; this module only parses and prints.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from seqlab.errors import ConfigError

HELP = "count-based n-gram language models: build, evaluate, export ARPA, generate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lm_command", metavar="KIND", required=True)
    ngram = sub.add_parser("ngram", help="count-based n-gram model (MLE, add-k, Kneser-Ney, modified Kneser-Ney)",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = ngram.add_argument_group("model (one of --train, --load)")
    source.add_argument("--train", help="training text, one sentence per line")
    source.add_argument("--load", help="a model saved with --save (.npz) or an ARPA file (.arpa, .arpa.gz)")
    estimate = ngram.add_argument_group("estimation (with --train)")
    estimate.add_argument("--order", type=int, default=3)
    estimate.add_argument("--smoothing", choices=["mle", "add-k", "kn", "mkn"], default="mkn")
    estimate.add_argument("--k", type=float, default=1.0, help="add-k pseudo-count (1 = Laplace)")
    estimate.add_argument("--discount", type=float, default=None,
                          help="fixed Kneser-Ney discount, e.g. 0.75 (default: estimated from count-of-counts)")
    estimate.add_argument("--no-discount-fallback", action="store_true",
                          help="fail instead of using KenLM's fallback discounts 0.5 1 1.5 on tiny corpora")
    estimate.add_argument("--min-count", type=int, default=1, help="words seen fewer times become <unk>")
    estimate.add_argument("--max-vocab", type=int, default=None, help="keep the most frequent words only")
    ngram.add_argument("--eval", action="append", default=[], metavar="FILE",
                       help="report perplexity on FILE (repeatable)")
    ngram.add_argument("--arpa", help="write the model as an ARPA file")
    ngram.add_argument("--save", help="save the model (.npz) for --load")
    sample = ngram.add_argument_group("generation")
    sample.add_argument("--generate", action="store_true", help="sample sentences")
    sample.add_argument("--prefix", default="", help="words the sampled sentences start with")
    sample.add_argument("--num", type=int, default=1, help="how many sentences (seeds seed, seed+1, ...)")
    sample.add_argument("--max-len", type=int, default=50, help="at most this many words, prefix included")
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    _check_arguments(args)
    model = _train(args) if args.train else _load(args.load)
    for path in args.eval:
        _evaluate(model, path)
    if args.arpa:
        model.to_arpa(args.arpa)
        print(f"wrote {args.arpa}")
    if args.save:
        model.save(args.save)
        print(f"wrote {args.save}")
    if args.generate:
        for index in range(args.num):
            words = model.generate(args.prefix.split(), args.max_len, args.seed + index, args.temperature)
            print(" ".join(words))
    return 0


def _check_arguments(args: argparse.Namespace) -> None:
    if bool(args.train) == bool(args.load):
        raise ConfigError("lm ngram: give exactly one of --train FILE or --load MODEL")
    if not (args.eval or args.arpa or args.save or args.generate):
        raise ConfigError("lm ngram: nothing to do; add --eval FILE, --arpa OUT, --save OUT or --generate")
    if args.num < 1 or args.max_len < 1:
        raise ConfigError(f"--num and --max-len: must be >= 1, got {args.num} and {args.max_len}")
    from seqlab.utils import check_output_path

    for output in (args.arpa, args.save):  # before the model is built, not after
        if output:
            check_output_path(output)


def read_sentences(path: str | Path) -> list[list[str]]:
    """One whitespace-tokenised sentence per line (a blank line is an empty sentence: ``<s> </s>``)."""
    from seqlab.data.corpora import read_lines

    return [line.split() for line in read_lines(path)]


def _train(args: argparse.Namespace):
    from seqlab.lm.ngram import NGramLM

    sentences = read_sentences(args.train)
    start = time.perf_counter()
    # Discount fallbacks warn from the library; here they become one readable line instead of a source location.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = NGramLM.fit(sentences, args.order, args.smoothing, args.k, not args.no_discount_fallback,
                            discount=args.discount, min_count=args.min_count, max_vocab=args.max_vocab)
    for warning in caught:
        print(f"seqlab: warning: {args.train}: {warning.message}", file=sys.stderr)
    counts = " ".join(str(len(level.keys)) for level in model.levels)
    print(f"{args.order}-gram {args.smoothing} on {args.train}: {len(sentences)} sentences, "
          f"{model.info['training_tokens']} tokens, vocabulary {len(model.vocab)}, n-grams per order {counts}; "
          f"build {time.perf_counter() - start:.2f} s")
    return model


def _load(path: str):
    from seqlab.lm.ngram import NGramLM

    start = time.perf_counter()
    is_arpa = path.endswith((".arpa", ".arpa.gz"))
    model = NGramLM.from_arpa(path) if is_arpa else NGramLM.load(path)
    print(f"loaded {path}: {model.order}-gram {model.smoothing}, vocabulary {len(model.vocab)}; "
          f"load {time.perf_counter() - start:.2f} s")
    return model


def _evaluate(model, path: str) -> None:
    sentences = read_sentences(path)
    start = time.perf_counter()
    result = model.perplexity(sentences)
    print(f"{path}: perplexity {result.perplexity:.2f} ({result.perplexity_without_oovs:.2f} excluding OOVs), "
          f"{result.tokens} tokens incl. </s>, {result.sentences} sentences, {result.oovs} OOVs, "
          f"log10 prob {result.log10_prob:.2f}; score {time.perf_counter() - start:.2f} s")
