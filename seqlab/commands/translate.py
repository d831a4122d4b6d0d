"""``seqlab translate MODEL_DIR [-i FILE] [-o FILE] [--beam K ...]``: one output line per input line, always.

``--models DIR1 DIR2 ... --ensemble mean|vote`` decodes with several models of one vocabulary;
``--attention-plot DIR`` writes a source x output heat-map per sentence (models with attention).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqlab.commands.shared import add_ensemble_arguments, add_quantize_argument, add_search_arguments
from seqlab.utils import atomic_write, check_output_path

HELP = "translate lines with a trained model (stdin/stdout by default)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", nargs="?", help="a directory written by `seqlab train`")
    add_ensemble_arguments(parser)
    parser.add_argument("--attention-plot", metavar="DIR", help="write one attention heat-map PNG per sentence")
    parser.add_argument("-i", "--input", help="input file, one sentence per line (default: stdin)")
    parser.add_argument("-o", "--output", help="output file (default: stdout); written atomically")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_search_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="weights' dtype for decoding; bfloat16 is faster on CPUs with AMX / AVX-512 BF16")
    add_quantize_argument(parser)


def run(args: argparse.Namespace) -> int:
    from seqlab.commands.shared import decode_config_from_args, read_input_lines, use_interactive
    from seqlab.tasks.translation import Translator

    if args.output:  # a directory or a file parent fails now, not after the decoding
        check_output_path(args.output)
    models = load_models(args)
    decode = decode_config_from_args(models[0].config.decode, args)
    if use_interactive(args.input) and not args.output and not args.attention_plot:
        return translate_interactively(models, decode, args)
    lines = read_input_lines(args.input)
    if len(models) > 1 and args.ensemble == "vote":
        outputs = vote([Translator(m.model, m.preprocessing, decode, args.device, args.batch_size).translate(lines)
                        for m in models])
    else:
        model = models[0].model if len(models) == 1 else ensemble_of(models)
        translator = Translator(model, models[0].preprocessing, decode, args.device, args.batch_size,
                                progress="translate")
        outputs = translator.translate(lines, return_attention=bool(args.attention_plot))
    if args.attention_plot:
        write_attention_plots(outputs, Path(args.attention_plot))
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


def translate_interactively(models: list, decode, args: argparse.Namespace) -> int:
    """A person at a terminal: one answer per line as it is typed (``seqlab translate MODEL_DIR`` with no ``-i``)."""
    from seqlab.commands.shared import interactive_lines
    from seqlab.tasks.translation import Translator

    model = models[0].model if len(models) == 1 else ensemble_of(models)
    translator = Translator(model, models[0].preprocessing, decode, args.device, args.batch_size)
    for line in interactive_lines("source> "):
        translation = translator.translate([line])[0]
        if decode.nbest > 1:
            print("\t".join(f"{hyp}\t{score:.4f}" for hyp, score in translation.nbest), flush=True)
        else:
            print(translation.text, flush=True)
    return 0


def load_models(args: argparse.Namespace) -> list:
    from seqlab.commands.shared import load_members_from_args

    return load_members_from_args(args, task="translation")


def ensemble_of(models: list):
    from seqlab.ensemble import combine

    return combine(models, "mean").model


def vote(per_model: list[list]) -> list:
    """Majority vote per sentence over the models' outputs; a tie goes to the earliest model."""
    from seqlab.decoding.ensemble import vote as vote_by

    return vote_by(per_model, key=lambda translation: translation.text)


def write_attention_plots(outputs: list, directory: Path) -> None:
    from seqlab.plots import plot_attention

    for index, translation in enumerate(outputs):
        if translation.attention is None:
            continue
        plot_attention(translation.attention, translation.src_tokens + ["<eos>"], translation.tokens + ["<eos>"],
                       directory / f"{index + 1:04d}.png", title=translation.text)


add_predict_arguments, predict = add_arguments, run  # what `seqlab predict` runs for a translation model
