"""The seed's GRU (reset gate before the product) against PyTorch's (reset after) on The Time Machine, characters.

    OMP_NUM_THREADS=1 python benchmarks/gru_seed_vs_torch.py [--steps 1500]

Both cells train from configs/timemachine_char_gru.yaml with the same seed and the same fixed number of updates
(a small budget, not to convergence), one thread; max_minutes is a guard that keeps the whole run under 8 minutes.
Writes benchmarks/results/gru_seed_vs_torch.json: command, commit, machine, and per cell the wall time, updates,
stop reason and exact validation and test perplexity of the best checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch

from common import git_commit, machine, write_result

CONFIG = "configs/timemachine_char_gru.yaml"


def run_cell(cell: str, steps: int, guard_minutes: float) -> dict:
    """Train one cell for ``steps`` updates, then evaluate valid and test perplexity exactly."""
    from seqlab.tasks import load_config, load_model_dir, train
    from seqlab.tasks.language_model import prepare_lm, stream_nll

    overrides = [f"model.cell={cell}", f"model_dir=runs/gru_seed_vs_torch/{cell}", f"train.max_steps={steps}",
                 f"train.max_minutes={guard_minutes}", "train.max_epochs=100", "train.validate_every=100",
                 "train.progress=false", "train.num_threads=1"]
    config = load_config(CONFIG, overrides)
    start = time.perf_counter()
    summary = train(config, overwrite=True)
    wall = time.perf_counter() - start
    loaded = load_model_dir(config.model_dir)  # best.pt: the lowest validation perplexity
    _, streams = prepare_lm(loaded.config.data)
    figures = {"train_wall_seconds": round(wall, 1), "summary": summary}
    for split in ("valid", "test"):
        nll, count = stream_nll(loaded.model, streams[split], loaded.config.data.bptt)
        figures[f"{split}_perplexity"] = round(math.exp(nll / count), 3)
        figures[f"{split}_tokens"] = count
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500, help="updates per cell")
    parser.add_argument("--guard-minutes", type=float, default=3.5, help="wall-clock cap per cell")
    args = parser.parse_args()
    torch.set_num_threads(1)
    wall = time.perf_counter()
    cells = {}
    for cell in ("gru", "gru_seed"):
        torch.manual_seed(0)
        cells[cell] = run_cell(cell, args.steps, args.guard_minutes)
        print(cell, json.dumps({k: v for k, v in cells[cell].items() if k != "summary"}), flush=True)
    record = {
        "name": "gru_seed_vs_torch", "command": " ".join(["OMP_NUM_THREADS=1", sys.executable, *sys.argv]),
        "commit": git_commit(), "machine": machine(), "config": CONFIG, "updates_per_cell": args.steps,
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "note": "gru = nn.GRU, reset after the product (cuDNN form); gru_seed = SeedGRU, reset before "
                "(Cho et al. 2014, seed 001); same seed, data, optimiser and updates; perplexity exact over every "
                "token of the split (batch 1, state carried), best checkpoint",
        "cells": cells,
        "test_perplexity_ratio_seed_over_torch": round(cells["gru_seed"]["test_perplexity"]
                                                       / cells["gru"]["test_perplexity"], 3),
    }
    path = write_result("gru_seed_vs_torch", record)
    print(json.dumps(record, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
