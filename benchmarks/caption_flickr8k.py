"""Flickr8k captioning from scratch on one CPU thread: BLEU-1..4 on the 1,000 official test images.

    python benchmarks/caption_flickr8k.py [--config configs/flickr8k_caption.yaml] [--minutes 30]
                                          [--model-dir /tmp/seqlab_flickr8k_caption] [--set key=value ...]

Trains with ``seqlab caption train`` (library call, same code path), then captions the test split with beam search
and scores against all 5 references.  The peer figure is Show, Attend and Tell (Xu et al. 2015, Table 1, soft
attention): BLEU-1/2/3/4 = 67.0 / 44.8 / 29.9 / 19.5 with an ImageNet-pretrained VGG on full-size images and a GPU,
so the ratio measures how far a ~30-minute CPU run without pretraining gets, not a like-for-like comparison.
Writes benchmarks/results/flickr8k_caption.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from common import ROOT, git_commit, machine

from seqlab.config import load_yaml
from seqlab.tasks import load_config, load_model_dir, train
from seqlab.tasks.captioning import evaluate
from seqlab.utils import atomic_write

PEER = {"name": "Show, Attend and Tell (soft), Xu et al. 2015, Flickr8k test, pretrained VGG",
        "bleu1": 67.0, "bleu2": 44.8, "bleu3": 29.9, "bleu4": 19.5}


def summary_from_log(model_dir: Path) -> dict[str, object]:
    """What ``seqlab.tasks.train`` returns, rebuilt from a finished run's train_log.jsonl (for --evaluate-only)."""
    records = [json.loads(line) for line in (model_dir / "train_log.jsonl").read_text().splitlines()]
    stop = next(r for r in reversed(records) if r["event"] == "stop")
    losses = [r["loss"] for r in records if r["event"] == "validate"]
    return {"model_dir": str(model_dir), "steps": stop["step"], "epochs": stop["epoch"] - 1,  # completed ones
            "best_dev_loss": min(losses), "stop": stop["reason"], "train_seconds": stop["elapsed_seconds"],
            "minutes": round(stop["elapsed_seconds"] / 60, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "flickr8k_caption.yaml"))
    parser.add_argument("--minutes", type=float, default=30.0, help="training wall-clock budget (train.max_minutes)")
    parser.add_argument("--model-dir", default="/tmp/seqlab_flickr8k_caption")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="score the finished run in --model-dir (its train_log.jsonl) without training again")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "flickr8k_caption.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # the machine is shared; the config also says train.num_threads: 1

    overrides = [f"train.max_minutes={args.minutes}", *args.overrides]
    config = load_config(args.config, overrides)
    config.model_dir = args.model_dir
    start = time.perf_counter()
    if args.evaluate_only:
        summary = summary_from_log(Path(args.model_dir))
        start -= summary["train_seconds"]  # the reported wall time still counts the training
    else:
        summary = train(config, overwrite=True)
    train_seconds = time.perf_counter() - start
    loaded = load_model_dir(args.model_dir, "best")
    scores, _, hypotheses = evaluate(loaded, "test", loaded.config.decode)
    wall = time.perf_counter() - start

    print(f"Flickr8k test ({scores['images']} images, beam {scores['beam_size']}):")
    for n in range(1, 5):
        ours, peer = scores[f"bleu_{n}"], PEER[f"bleu{n}"]
        print(f"  BLEU-{n}  ours {ours:5.2f}   peer {peer:5.1f}   ratio {ours / peer:.2f}")
    print(f"training {train_seconds / 60:.1f} min ({summary['epochs']} epochs, {summary['steps']} updates), "
          f"total {wall / 60:.1f} min")
    argv = [a for a in sys.argv[1:] if a != "--evaluate-only"]  # the command that trains *and* scores
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *argv])
    print(f"reproduce: {command}")
    print("longer run: python benchmarks/caption_flickr8k.py --minutes 0 --set train.max_epochs=30 "
          "--set data.image_size=128 --set model.attention=true")
    result = {"command": command, "git_commit": git_commit(), "machine": machine(),
              "wall_seconds": round(wall, 1),
              "train_seconds": round(train_seconds, 1), "train": summary, "test": scores, "peer": PEER,
              "ratio_bleu4": scores["bleu_4"] / PEER["bleu4"],
              "bleu_note": "seqlab.metrics.bleu.corpus_bleu_tokens: sacreBLEU's cumulative BLEU-n, default smoothing",
              "config": load_yaml(Path(args.model_dir) / "config.yaml"),
              "samples": [" ".join(h) for h in hypotheses[:10]]}
    with atomic_write(args.out) as handle:
        json.dump(result, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
