"""DailyDialog response generation: HRED against its flat baseline, the same data, sizes and number of updates.

    python benchmarks/dialogue_dailydialog.py --config configs/dailydialog_hred.yaml --name dailydialog_hred
    python benchmarks/dialogue_dailydialog.py --config configs/dailydialog_flat_attn.yaml --name dailydialog_flat_attn
    python benchmarks/dialogue_dailydialog.py --config ... --name ... --skip-train --model-dir runs/...   # score only

Trains the recipe (``--steps`` updates, ``--minutes`` as a cap; one thread), then scores its best checkpoint (by
validation loss) on the official test split, all 6,740 (context, response) pairs and again without the 93 test
dialogues that also occur verbatim in train: response perplexity (teacher forced, per token, <eos> included),
corpus BLEU-1/2 (sacreBLEU on the lower-cased tokens, tokenize="none", one reference), distinct-1/2 and mean
length, for greedy search and beam 5.  Writes benchmarks/results/<name>.json.

Published figures for comparison: PLATO (Bao et al., ACL 2020, arXiv 1910.07931), its Seq2Seq baseline on
DailyDialog: BLEU-1/2 0.336 / 0.268 and distinct-1/2 0.030 / 0.128.  Its BLEU is an average of smoothed sentence
BLEU (NLTK) on its own preprocessing, not corpus BLEU, so only distinct-n compares closely; the BLEU columns do
not (smoothed sentence BLEU runs tens of points above corpus BLEU on short responses).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from common import ROOT, git_commit, machine, write_result

PUBLISHED = {"source": "Bao et al. 2020 (PLATO), ACL, arXiv 1910.07931, DailyDialog baselines, as given in "
                       "github.com/PaddlePaddle/Research NLP/Dialogue-PLATO/README.md",
             "seq2seq": {"bleu_1": 0.336, "bleu_2": 0.268, "distinct_1": 0.030, "distinct_2": 0.128},
             "ivae_mi": {"bleu_1": 0.309, "bleu_2": 0.249, "distinct_1": 0.029, "distinct_2": 0.250},
             "note": "averaged smoothed sentence BLEU (NLTK), fractions; not comparable to corpus BLEU"}


def train_model(config_path: str, model_dir: str, steps: int, minutes: float) -> dict:
    from seqlab.tasks import load_config, train

    config = load_config(ROOT / config_path, [f"model_dir={model_dir}", f"train.max_steps={steps}",
                                              f"train.max_minutes={minutes}", "train.progress=false"])
    return train(config, overwrite=True)


def logged_training(model_dir: str) -> dict:
    """The training figures of an existing model directory, from its train_log.jsonl (``--skip-train``)."""
    records = [json.loads(line) for line in (Path(model_dir) / "train_log.jsonl").open()]
    validations = [r for r in records if r["event"] == "validate"]
    stop = next((r for r in records if r["event"] == "stop"), {})
    return {"steps": stop.get("step"), "stop_reason": stop.get("reason"), "wall_seconds": stop.get("elapsed_seconds"),
            "best_loss": min(r["loss"] for r in validations), "best_ppl": min(r["ppl"] for r in validations),
            "from": "train_log.jsonl"}


def score(model_dir: str, searches: list[str], subsets: list[str]) -> dict:
    from seqlab.decoding import DecodeConfig
    from seqlab.tasks import load_model_dir
    from seqlab.tasks.dialogue import evaluate

    loaded = load_model_dir(model_dir)
    results = {"parameters": sum(p.numel() for p in loaded.model.parameters())}
    for search in searches:
        decode = DecodeConfig(strategy=search, beam_size=5, alpha=0.75, max_len=40)
        for drop in [subset == "without_overlap" for subset in subsets]:
            started = time.perf_counter()
            scores, _, _ = evaluate(loaded, "test", decode, drop_overlap=drop)
            scores["wall_seconds"] = round(time.perf_counter() - started, 1)
            results[f"{search}{'_without_overlap' if drop else ''}"] = {
                k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}
            print(search, "without overlap" if drop else "all", results[f"{search}{'_without_overlap' if drop else ''}"],
                  flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--model-dir", help="default: runs/benchmarks/<name>")
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--skip-train", action="store_true", help="score the model directory as it is")
    parser.add_argument("--searches", default="greedy,beam", help="comma-separated: greedy, beam")
    parser.add_argument("--subsets", default="all,without_overlap", help="comma-separated: all, without_overlap")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model_dir = args.model_dir or str(ROOT / "runs" / "benchmarks" / args.name)
    started = time.perf_counter()
    summary = (logged_training(model_dir) if args.skip_train
               else train_model(args.config, model_dir, args.steps, args.minutes))
    record = {"name": args.name, "command": "python " + shlex.join(["benchmarks/dialogue_dailydialog.py",
                                                                    *sys.argv[1:]]),
              "commit": git_commit(), "machine": machine(), "config": args.config, "steps": args.steps,
              "minutes_cap": args.minutes, "training": summary,
              "test": score(model_dir, args.searches.split(","), args.subsets.split(",")),
              "published": PUBLISHED, "wall_seconds": round(time.perf_counter() - started, 1)}
    print(write_result(args.name, record))


if __name__ == "__main__":
    main()
