"""``seqlab quickstart``: train a small GRU seq2seq on the bundled Tatoeba sample, then show what it learned.

Prints corpus BLEU (sacreBLEU, with its signature) on held-out pairs and translates d2l's four probe sentences
with their d2l sentence BLEU.
"""

from __future__ import annotations

import argparse
from importlib import resources

HELP = "train a small GRU seq2seq on the bundled Tatoeba fra-eng sample and translate with it"

# d2l's probe sentences (chapter "Sequence to Sequence Learning") and their references.
PROBES = [("go .", "va !"), ("i lost .", "j'ai perdu ."), ("he's calm .", "il est calme ."),
          ("i'm home .", "je suis chez moi .")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", default=None, help="where to put the model (default: runs/quickstart)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a quickstart config value, e.g. --set train.max_minutes=1")


def run(args: argparse.Namespace) -> int:
    from seqlab.data.pipeline import load_split
    from seqlab.tasks import load_config, load_model_dir, train
    from seqlab.tasks.translation import Translator, evaluate
    from seqlab.metrics.bleu import sentence_bleu_d2l

    config_path = resources.files("seqlab.resources").joinpath("quickstart.yaml")
    with resources.as_file(config_path) as path:
        config = load_config(path, args.overrides)
    if args.model_dir:
        config.model_dir = args.model_dir
    print(f"training a {config.model.options.cell.upper()} seq2seq on the Tatoeba sample -> {config.model_dir}")
    summary = train(config, overwrite=True)
    print(f"trained {summary['steps']} updates in {summary['wall_seconds']} s ({summary['stop_reason']})")

    loaded = load_model_dir(config.model_dir)
    pairs = load_split(loaded.config.data, "test")
    _, bleu, ppl = evaluate(loaded, pairs, loaded.config.decode, "cpu", 64)
    print(f"held-out test ({len(pairs)} pairs): BLEU = {bleu.score:.2f}  ({bleu.signature})")
    print(f"held-out test perplexity = {ppl['ppl']:.2f}")
    translator = Translator(loaded.model, loaded.preprocessing, loaded.config.decode)
    for (source, reference), translation in zip(PROBES, translator.translate([s for s, _ in PROBES])):
        score = sentence_bleu_d2l(translation.tokens, loaded.preprocessing.tgt_tokenizer.encode(reference), k=2)
        print(f"{source} => {translation.text}, bleu {score:.3f}")
    return 0
