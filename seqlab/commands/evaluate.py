"""``seqlab evaluate MODEL_DIR [--split test | --src FILE --ref FILE]``: corpus BLEU with signature, perplexity."""

from __future__ import annotations

import argparse
import json

from seqlab.errors import SeqlabError

HELP = "corpus BLEU and perplexity of a trained model on a split or on files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir")
    parser.add_argument("--split", default="test", help="a split of the model's dataset (default: test)")
    parser.add_argument("--src", help="source file (instead of --split)")
    parser.add_argument("--ref", help="reference file (with --src)")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--beam", type=int, help="beam size (default: the model's decode config)")
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--max-len", type=int)
    parser.add_argument("--data-dir", help="where the datasets live (default: SEQLAB_DATA or ../shared/data)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--hyp-out", help="also write the hypotheses to this file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def load_pairs(loaded, args: argparse.Namespace) -> list[tuple[str, str]]:
    from seqlab.data.corpora import read_parallel
    from seqlab.data.pipeline import load_split

    if bool(args.src) != bool(args.ref):
        raise SeqlabError("evaluate: --src and --ref go together")
    if args.src:
        return read_parallel(args.src, args.ref)
    data = loaded.config.data
    if args.data_dir:
        data.data_dir = args.data_dir
    return load_split(data, args.split)


def evaluate(loaded, pairs: list[tuple[str, str]], decode, device: str, batch_size: int):
    """BLEU of decoded hypotheses and teacher-forced perplexity on ``pairs``."""
    from seqlab.data.pipeline import ParallelCorpus, make_batches
    from seqlab.inference import Translator, perplexity_of
    from seqlab.metrics.bleu import corpus_bleu

    translator = Translator(loaded.model, loaded.preprocessing, decode, device, batch_size)
    hyps = [t.text for t in translator.translate([s for s, _ in pairs])]
    bleu = corpus_bleu(hyps, [t for _, t in pairs])
    corpus = ParallelCorpus.from_pairs(pairs, loaded.preprocessing)
    batches = make_batches(corpus, loaded.config.data, shuffle=False).epoch_batches(0)
    return hyps, bleu, perplexity_of(loaded.model, batches, device)


def run(args: argparse.Namespace) -> int:
    from seqlab.commands.translate import decode_config_from_args
    from seqlab.inference import load_model_dir
    from seqlab.utils import atomic_write

    loaded = load_model_dir(args.model_dir, args.checkpoint, args.device)
    for name in ("nbest", "sample", "temperature", "top_k", "top_p", "seed"):
        setattr(args, name, None if name != "sample" else False)
    decode = decode_config_from_args(loaded.config.decode, args)
    pairs = load_pairs(loaded, args)
    hyps, bleu, ppl = evaluate(loaded, pairs, decode, args.device, args.batch_size)
    if args.hyp_out:
        with atomic_write(args.hyp_out) as handle:
            handle.write("".join(h + "\n" for h in hyps))
    result = {"sentences": len(pairs), "bleu": round(bleu.score, 2), "signature": bleu.signature,
              "perplexity": round(ppl["ppl"], 2), "tokens": ppl["tokens"], "decode": decode.strategy,
              "beam_size": decode.beam_size if decode.strategy == "beam" else 1}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"BLEU = {bleu.score:.2f}  ({bleu.signature})")
        print(f"perplexity = {ppl['ppl']:.2f}  over {ppl['tokens']} target tokens, {len(pairs)} sentences")
    return 0
