"""Train a language-model recipe, then measure exact test perplexity, and record the figures as JSON.

    python benchmarks/run_lm.py --config configs/ptb_lstm_small.yaml --name ptb_lstm_small [--set k=v ...] [--nproc N]

Writes benchmarks/results/<name>.json: the command, git commit, machine, wall time, training tokens/s (median of
the logged windows), train, valid and test perplexity over every token of the split (token-weighted), and
samples (from nothing and from a prompt: "time traveller" on The Time Machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from common import git_commit, machine, train_or_skip, training_throughput, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--name", help="results file name (default: the config's file name without .yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--skip-train", action="store_true", help="only evaluate an existing model dir")
    parser.add_argument("--nproc", type=int, default=1, help="train with N data-parallel worker processes (DDP)")
    parser.add_argument("--prompt", action="append", default=None,
                        help="prompt of a sample (repeatable; default: '' and a prompt suited to the data set)")
    parser.add_argument("--sample-tokens", type=int, default=None,
                        help="tokens per sample (default: 20 words, or 100 characters at char level)")
    args = parser.parse_args()
    args.name = args.name or Path(args.config).stem

    import math

    from seqlab.tasks import load_config, load_model_dir
    from seqlab.tasks.language_model import generate, prepare_lm, stream_nll

    config = load_config(args.config, args.overrides)
    wall = time.perf_counter()
    summary = train_or_skip(args, config)
    train_seconds = time.perf_counter() - wall
    loaded = load_model_dir(config.model_dir)  # best.pt: the lowest validation perplexity
    _, streams = prepare_lm(loaded.config.data)
    figures = {}
    for split in ("train", "valid", "test"):
        nll, count = stream_nll(loaded.model, streams[split], loaded.config.data.bptt)
        key = "train_split" if split == "train" else split  # "train" holds the training summary
        figures[key] = {"perplexity": round(math.exp(nll / count), 2), "tokens": count}
    char_level = loaded.config.data.level == "char"
    default_prompt = "time traveller" if loaded.config.data.dataset == "timemachine" else "the company said"
    prompts = args.prompt or ["", default_prompt]
    sample_tokens = args.sample_tokens or (100 if char_level else 20)
    torch.manual_seed(0)
    samples = {prompt: generate(loaded.model, loaded.preprocessing, prompt, sample_tokens, loaded.config.decode)
               for prompt in prompts}
    record = {
        "name": args.name, "command": " ".join([sys.executable, *sys.argv]), "commit": git_commit(),
        "machine": machine(),
        "train": {**summary, "wall_seconds": round(train_seconds, 1),
                  "median_tokens_per_second": round(training_throughput(Path(config.model_dir)), 1)},
        "perplexity_note": "exact, every token of the split predicted once with the state carried (batch 1); "
                           "the best checkpoint (lowest validation perplexity), dropout off",
        **figures, "decode": {"strategy": loaded.config.decode.strategy,
                              "temperature": loaded.config.decode.temperature}, "samples": samples,
    }
    write_result(args.name, record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
