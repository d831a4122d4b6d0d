"""``seqlab quickstart``: train a small GRU seq2seq on the bundled Tatoeba sample, then show what it learned.

Prints corpus BLEU (sacreBLEU, with its signature) on held-out pairs, says whether it lies in the band the README
promises for the recipe, and translates d2l's four probe sentences with their d2l sentence BLEU.

The recipe trains a fixed number of updates (``train.max_steps``) with no time budget, so every machine reaches
the same model whatever its load; only the time it takes differs.  ``--model-dir`` follows ``seqlab train``'s
policy: a directory that holds a trained model is refused unless ``--overwrite`` or ``--resume`` is given.
"""

from __future__ import annotations

import argparse
from importlib import resources
from typing import Any

HELP = "train a small GRU seq2seq on the bundled Tatoeba fra-eng sample and translate with it"

# d2l's probe sentences (chapter "Sequence to Sequence Learning") and their references.
PROBES = [("go .", "va !"), ("i lost .", "j'ai perdu ."), ("he's calm .", "il est calme ."),
          ("i'm home .", "je suis chez moi .")]
# Held-out test BLEU of the recipe as shipped (README "Set-up"); measured, with margin for other CPUs' rounding.
EXPECTED_BLEU = (12.0, 17.0)  # measured 14.10 (2-core AMD EPYC, one thread, 3000 updates)
# Keys that do not change the trained model: where it goes, how it reports, how many threads compute it.
NEUTRAL_KEYS = ("model_dir", "train.progress", "train.num_threads", "train.log_every", "train.device")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", default=None, help="where to put the model (default: runs/quickstart)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a quickstart config value, e.g. --set train.max_steps=500")
    # the same model-directory policy as `seqlab train`: never replace a trained model silently
    parser.add_argument("--resume", action="store_true", help="continue the model in --model-dir from its last.pt")
    parser.add_argument("--overwrite", action="store_true", help="start afresh even if --model-dir holds a model")


def recipe_config(overrides: list[str] | None = None):
    """The packaged quickstart config, with ``overrides`` (``key=value``) on top."""
    from seqlab.tasks import load_config

    with resources.as_file(resources.files("seqlab.resources").joinpath("quickstart.yaml")) as path:
        return load_config(path, overrides)


def recipe_changes(config) -> list[str]:
    """The dotted keys where ``config`` departs from the recipe as shipped, ignoring ``NEUTRAL_KEYS``."""
    def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(tree, dict):
            return {prefix.rstrip("."): tree}
        return {k: v for key, value in tree.items() for k, v in flat(value, f"{prefix}{key}.").items()}

    ours, shipped = flat(config.to_dict()), flat(recipe_config().to_dict())
    return [key for key in sorted(set(ours) | set(shipped))
            if ours.get(key) != shipped.get(key) and key not in NEUTRAL_KEYS]


def time_budget_note(summary: dict, train) -> str | None:
    """A warning when ``train.max_minutes`` ended training before its ``max_steps`` updates: the figures then
    depend on the machine's speed and load, and fall short of the README's."""
    if not summary["stop_reason"].startswith("max_minutes"):
        return None
    planned = f" of the {train.max_steps} planned" if train.max_steps else ""
    return (f"note: the time budget (train.max_minutes={train.max_minutes}) stopped training early, after "
            f"{summary['steps']}{planned} updates, so the figures below depend on this machine's speed and load and "
            f"fall short of a full run's (for one: drop the time budget and add --overwrite)")


def bleu_verdict(bleu: float, changes: list[str], band: tuple[float, float] = EXPECTED_BLEU) -> str:
    """How ``bleu`` compares with the README's band for the recipe; ``changes``: keys the run changed."""
    low, high = band
    if changes:
        return (f"the recipe was changed ({', '.join(changes[:3])}{' ...' if len(changes) > 3 else ''}): "
                f"the expected BLEU {low:.1f}-{high:.1f} is for the recipe as shipped")
    if bleu < low:
        return (f"BLEU {bleu:.2f} is below the expected {low:.1f}-{high:.1f}: something is wrong with this "
                f"install (please report it with the output of `seqlab --version`)")
    if bleu > high:
        return f"BLEU {bleu:.2f} is above the expected {low:.1f}-{high:.1f} (a better CPU's rounding?)"
    return f"BLEU {bleu:.2f} is within the expected {low:.1f}-{high:.1f}"


def run(args: argparse.Namespace) -> int:
    from seqlab.tasks import train

    config = recipe_config(args.overrides)
    if args.model_dir:
        config.model_dir = args.model_dir
    print(f"training a {config.model.options.cell.upper()} seq2seq on the Tatoeba sample -> {config.model_dir}")
    summary = train(config, resume=args.resume, overwrite=args.overwrite)
    print(f"trained {summary['steps']} updates in {summary['wall_seconds']} s ({summary['stop_reason']})")
    note = time_budget_note(summary, config.train)
    if note:
        print(note)
    changes = recipe_changes(config)
    if note and "train.max_minutes" not in changes:
        changes.append("train.max_minutes")
    show_results(config.model_dir, changes)
    return 0


def show_results(model_dir: str, changes: list[str]) -> None:
    """Held-out BLEU and perplexity, the verdict on the BLEU, and the probe translations."""
    from seqlab.data.pipeline import load_split
    from seqlab.metrics.bleu import sentence_bleu_d2l
    from seqlab.tasks import load_model_dir
    from seqlab.tasks.translation import Translator, evaluate

    loaded = load_model_dir(model_dir)
    pairs = load_split(loaded.config.data, "test")
    _, bleu, ppl = evaluate(loaded, pairs, loaded.config.decode, "cpu", 64)
    print(f"held-out test ({len(pairs)} pairs): BLEU = {bleu.score:.2f}  ({bleu.signature})")
    print(f"held-out test perplexity = {ppl['ppl']:.2f}")
    print(bleu_verdict(bleu.score, changes))
    translator = Translator(loaded.model, loaded.preprocessing, loaded.config.decode)
    for (source, reference), translation in zip(PROBES, translator.translate([s for s, _ in PROBES])):
        score = sentence_bleu_d2l(translation.tokens, loaded.preprocessing.tgt_tokenizer.encode(reference), k=2)
        print(f"{source} => {translation.text}, bleu {score:.3f}")
