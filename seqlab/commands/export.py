"""``seqlab export MODEL_DIR --format hf|ctranslate2|onnx OUT [--quantization int8]``: write a trained
Transformer in a deployment format (``seqlab.export``); OUT must not exist yet and appears only when complete."""

from __future__ import annotations

import argparse

HELP = "export a trained Transformer for Hugging Face transformers, CTranslate2 or ONNX Runtime"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="a directory written by `seqlab train` (a Transformer translation model)")
    parser.add_argument("out", help="the directory to write (must not exist)")
    parser.add_argument("--format", required=True, metavar="hf|ctranslate2|onnx",
                        help="hf: MarianMTModel + MarianTokenizer; ctranslate2: a ctranslate2.Translator model; "
                             "onnx: encoder.onnx + decoder_step.onnx for ONNX Runtime")
    parser.add_argument("--quantization", metavar="float32|int8",
                        help="ctranslate2 only: the stored weights' type (default float32)")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")


def run(args: argparse.Namespace) -> int:
    from seqlab.export import export

    out = export(args.model_dir, args.format, args.out, args.quantization, args.checkpoint)
    print(f"wrote {out} ({args.format}{', ' + args.quantization if args.quantization else ''})")
    return 0
