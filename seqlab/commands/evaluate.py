"""``seqlab evaluate MODEL_DIR [--split test | --src F --ref F | --file F]``: score any task's model directory.

translation: corpus BLEU (sacreBLEU, with its signature) and perplexity; lm: perplexity of a split or a file;
classification: accuracy and macro F1; tagging: token accuracy and chunk P/R/F1; captioning: BLEU-1..4 against
every reference; forecasting: held-out 1-step MSE beside the naive last-value baseline; image_classification:
accuracy on a split of the digits; dialogue: response perplexity, BLEU-1/2, distinct-1/2 and length of the searched
replies (``--drop-overlap``: without the test dialogues that also occur in train).  ``--models DIR ...`` scores an
ensemble (seqlab.ensemble): classification and tagging ``--ensemble mean|vote``, translation and captioning ``mean``.
"""

from __future__ import annotations

import argparse
import json

from seqlab.commands.shared import (add_ensemble_arguments, add_quantize_argument, decode_config_from_args,
                                   load_members_from_args, print_json)
from seqlab.errors import DataError, SeqlabError
from seqlab.utils import atomic_write, check_output_path

HELP = "score a trained model of any task on a split or on files (BLEU, perplexity, accuracy, F1, MSE)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", nargs="?", help="a model directory (or give --models)")
    parser.add_argument("--split", default="test", help="a split of the model's dataset (default: test)")
    parser.add_argument("--src", help="translation: source file (instead of --split)")
    parser.add_argument("--ref", help="translation: reference file (with --src)")
    parser.add_argument("--file", help="lm: a text file; classification: label<TAB>text; tagging: a CoNLL file")
    parser.add_argument("--dataset", help="classification: another dataset than the one trained on")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--beam", type=int, help="beam size (default: the model's decode config)")
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--max-len", type=int)
    parser.add_argument("--data-dir", help="where the datasets live (default: SEQLAB_DATA or ../shared/data)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", "--hyp-out", "--output", dest="out",
                        help="also write the outputs here (hypotheses, captions, or the JSON scores)")
    parser.add_argument("--json", action="store_true", help="translation, lm: one JSON object instead of text")
    parser.add_argument("--drop-overlap", action="store_true",
                        help="dialogue: leave out the dialogues of the split that also occur in train")
    add_quantize_argument(parser)
    add_ensemble_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from seqlab.ensemble import combine

    if args.out:
        check_output_path(args.out)
    members = load_members_from_args(args, task=getattr(args, "task", None))
    if members[0].task == "lm" and len(members) > 1:
        raise SeqlabError("evaluate: an lm ensemble's perplexity is not measured here; "
                          "`seqlab score --lm --models ...` scores sentences with it")
    loaded = combine(members, args.ensemble)
    if loaded.config.data is not None and args.data_dir and hasattr(loaded.config.data, "data_dir"):
        loaded.config.data.data_dir = args.data_dir
    EVALUATORS[loaded.task](loaded, args)
    return 0


def evaluate_translation(loaded, args: argparse.Namespace) -> None:
    from seqlab.data.corpora import read_parallel
    from seqlab.data.pipeline import load_split
    from seqlab.tasks.translation import evaluate

    if bool(args.src) != bool(args.ref):
        raise SeqlabError("evaluate: --src and --ref go together")
    pairs = read_parallel(args.src, args.ref) if args.src else load_split(loaded.config.data, args.split)
    decode = decode_config_from_args(loaded.config.decode, args)
    hyps, bleu, ppl = evaluate(loaded, pairs, decode, args.device, args.batch_size, progress="evaluate")
    if args.out:
        with atomic_write(args.out) as handle:
            handle.write("".join(h + "\n" for h in hyps))
    result = {"sentences": len(pairs), "bleu": round(bleu.score, 2), "signature": bleu.signature,
              "perplexity": round(ppl["ppl"], 2), "tokens": ppl["tokens"], "decode": decode.strategy,
              "beam_size": decode.beam_size if decode.strategy == "beam" else 1}
    if args.json:
        print(json.dumps(result))
        return
    print(f"BLEU = {bleu.score:.2f}  ({bleu.signature})")
    print(f"perplexity = {ppl['ppl']:.2f}  over {ppl['tokens']} target tokens, {len(pairs)} sentences")


def evaluate_lm(loaded, args: argparse.Namespace) -> None:
    from seqlab.tasks.language_model import split_perplexity

    result = split_perplexity(loaded, args.file, args.split, args.device)
    if args.json or args.out:
        print_json(result, args.out)
    else:
        print(f"perplexity = {result['perplexity']:.2f}  over {result['tokens']} tokens ({result['source']})")


def evaluate_labelled(loaded, args: argparse.Namespace) -> None:
    """Classification and tagging: a split of the trained dataset, or ``--file``."""
    from seqlab.config import from_dict, to_dict
    from seqlab.tasks import task_module

    module = task_module(loaded.task)
    if args.file:
        read = module.read_labelled_file
        items, source = read(args.file), args.file
    else:
        data = loaded.config.data
        if args.dataset:  # rt-polarity keeps the trained fold: another fold's test set overlaps the training data
            data = from_dict(module.DataConfig, {**to_dict(data), "dataset": args.dataset}, "data.")
        items, source = module.load_splits(data)[args.split], f"{data.dataset} {args.split}"
    if not items:
        raise DataError(f"{source}: nothing to score (the config has no {args.split} split; give --file)")
    print_json({"source": source, "examples": len(items), **module.evaluate(loaded, items, args.batch_size)},
               args.out)


def evaluate_captioning(loaded, args: argparse.Namespace) -> None:
    from seqlab.commands.shared import write_captions
    from seqlab.tasks.captioning import evaluate

    scores, items, hypotheses = evaluate(loaded, args.split, decode_config_from_args(loaded.config.decode, args))
    if args.out:
        write_captions(args.out, [item.image for item in items], hypotheses)
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in scores.items()}))


def evaluate_forecasting(loaded, args: argparse.Namespace) -> None:
    from seqlab.tasks.forecasting import test_scores

    print_json({"source": "held-out part of the series", **test_scores(loaded, loaded.config)}, args.out)


def evaluate_images(loaded, args: argparse.Namespace) -> None:
    from seqlab.tasks.image_classification import evaluate

    print_json({"source": f"{loaded.config.data.dataset} {args.split}",
                **evaluate(loaded, args.split, args.batch_size)}, args.out)


def evaluate_dialogue(loaded, args: argparse.Namespace) -> None:
    from seqlab.tasks.dialogue import evaluate

    scores, _, replies = evaluate(loaded, args.split, decode_config_from_args(loaded.config.decode, args),
                                  drop_overlap=args.drop_overlap)
    if args.out:
        with atomic_write(args.out) as handle:
            handle.write("".join(reply.text + "\n" for reply in replies))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}))


EVALUATORS = {"translation": evaluate_translation, "lm": evaluate_lm, "classification": evaluate_labelled,
              "tagging": evaluate_labelled, "captioning": evaluate_captioning, "forecasting": evaluate_forecasting,
              "image_classification": evaluate_images, "dialogue": evaluate_dialogue}
