"""``seqlab translate MODEL_DIR [-i FILE] [-o FILE] [--beam K ...]``: one output line per input line, always."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqlab.utils import atomic_write

HELP = "translate lines with a trained model (stdin/stdout by default)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="a directory written by `seqlab train`")
    parser.add_argument("-i", "--input", help="input file, one sentence per line (default: stdin)")
    parser.add_argument("-o", "--output", help="output file (default: stdout); written atomically")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--beam", type=int, help="beam size (>1 switches to beam search)")
    parser.add_argument("--alpha", type=float, help="length normalisation exponent (score = log p / L^alpha)")
    parser.add_argument("--nbest", type=int, help="print the N best hypotheses, tab-separated with scores")
    parser.add_argument("--max-len", type=int, help="maximum output length in tokens")
    parser.add_argument("--sample", action="store_true", help="sample instead of searching")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")


def decode_config_from_args(base, args: argparse.Namespace):
    """The model's saved decode config with the command-line choices on top."""
    from seqlab.config import from_dict, to_dict
    from seqlab.decoding.config import DecodeConfig

    values = to_dict(base)
    if args.beam is not None:
        values.update(beam_size=args.beam, strategy="beam" if args.beam > 1 else "greedy")
    if args.sample:
        values["strategy"] = "sample"
    for option, key in (("alpha", "alpha"), ("nbest", "nbest"), ("max_len", "max_len"),
                        ("temperature", "temperature"), ("top_k", "top_k"), ("top_p", "top_p"), ("seed", "seed")):
        if getattr(args, option, None) is not None:
            values[key] = getattr(args, option)
    if values.get("nbest", 1) > 1 and values["strategy"] != "beam":
        values["strategy"] = "beam"
    return from_dict(DecodeConfig, values, "decode.")


def read_input(path: str | None) -> list[str]:
    if path is None:
        return [line.rstrip("\n") for line in sys.stdin]
    from seqlab.data.corpora import read_lines

    return read_lines(path)


def run(args: argparse.Namespace) -> int:
    from seqlab.inference import Translator, load_model_dir

    loaded = load_model_dir(args.model_dir, args.checkpoint, args.device)
    decode = decode_config_from_args(loaded.config.decode, args)
    lines = read_input(args.input)
    translator = Translator(loaded.model, loaded.preprocessing, decode, args.device, args.batch_size)
    outputs = translator.translate(lines)
    if decode.nbest > 1:
        text = "".join("\t".join(f"{hyp}\t{score:.4f}" for hyp, score in t.nbest) + "\n" for t in outputs)
    else:
        text = "".join(t.text + "\n" for t in outputs)
    if args.output:
        with atomic_write(Path(args.output)) as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0
