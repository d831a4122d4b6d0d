"""Data-parallel training (DDP: ``seqlab train --nproc N``) against one process that uses the same cores as threads.

For each recipe the same number of updates is trained twice from scratch, on the real data set, in one run:

* the peer: one process with ``train.num_threads`` = N (PyTorch's own intra-op thread parallelism);
* seqlab DDP: ``--nproc N`` worker processes with one thread each; every worker takes 1/N of each batch's rows.

Both see the same batches and take the same updates (dropout masks aside), so the validation figure after the last
update should agree; the training throughput (median tokens/s of the logged windows) and the wall time of the
updates are compared as DDP / peer.

    python benchmarks/ddp_scaling.py                       # all recipes, ~25 minutes on 2 cores
    python benchmarks/ddp_scaling.py --recipes timemachine --nproc 2

Writes benchmarks/results/ddp_scaling.json (command, commit, machine, wall time, per recipe both runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, git_commit, machine, training_throughput
from seqlab.utils import atomic_write  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "ddp_scaling.json"
# recipe -> (config, overrides, the validation figure to compare)
RECIPES = {
    "timemachine": ("configs/timemachine_char_gru.yaml", ["train.max_steps=600", "train.validate_every=600"], "ppl"),
    "ptb": ("configs/ptb_lstm_small.yaml", ["train.max_steps=300", "train.validate_every=300"], "ppl"),
    "multi30k": ("configs/multi30k_transformer.yaml",
                 ["train.max_steps=120", "train.validate_every=120", "train.valid_bleu_sentences=100"], "loss"),
}
COMMON = ["train.max_minutes=0", "train.max_epochs=1000", "train.progress=false", "train.log_every=20"]


def train(config: str, overrides: list[str], model_dir: Path, nproc: int, threads: int) -> dict:
    """One training run as a user would start it; returns its summary, throughput and last validation."""
    settings = [*COMMON, *overrides, f"train.num_threads={threads}"]
    command = [sys.executable, "-m", "seqlab", "train", config, "--model-dir", str(model_dir), "--overwrite",
               "--nproc", str(nproc), *(f"--set={s}" for s in settings)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    events = [json.loads(line) for line in (model_dir / "train_log.jsonl").open(encoding="utf-8")]
    validation = [e for e in events if e["event"] == "validate"][-1]
    return {"command": " ".join(command[1:]), "process_wall_seconds": round(time.perf_counter() - start, 1),
            "training_wall_seconds": summary["wall_seconds"], "steps": summary["steps"],
            "tokens_per_second": round(training_throughput(model_dir), 1), "validation": validation}


def compare(name: str, nproc: int) -> dict:
    config, overrides, figure = RECIPES[name]
    runs = {}
    for label, workers, threads in (("threads", 1, nproc), ("ddp", nproc, 1)):  # the peer first, then DDP
        runs[label] = train(config, overrides, ROOT / "runs" / "ddp_scaling" / f"{name}-{label}", workers, threads)
        print(f"[{name}] {label}: {runs[label]['tokens_per_second']} tok/s, {runs[label]['training_wall_seconds']} s, "
              f"valid {figure} {runs[label]['validation'][figure]:.4f}", file=sys.stderr)
    threads, ddp = runs["threads"], runs["ddp"]
    runs["ratio_tokens_per_second"] = round(ddp["tokens_per_second"] / threads["tokens_per_second"], 3)
    runs["ratio_training_wall"] = round(threads["training_wall_seconds"] / ddp["training_wall_seconds"], 3)
    runs["figure"] = figure
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of {list(RECIPES)}")
    parser.add_argument("--nproc", type=int, default=2, help="DDP workers; the peer gets as many threads")
    args = parser.parse_args()
    start = time.perf_counter()
    results = {name: compare(name, args.nproc) for name in args.recipes.split(",")}
    print(f"{'recipe':<12} {'threads tok/s':>14} {'DDP tok/s':>10} {'ratio':>6} {'valid (threads / DDP)':>24}")
    for name, runs in results.items():
        figure = runs["figure"]
        print(f"{name:<12} {runs['threads']['tokens_per_second']:>14.0f} {runs['ddp']['tokens_per_second']:>10.0f} "
              f"{runs['ratio_tokens_per_second']:>5.2f}x "
              f"{runs['threads']['validation'][figure]:>11.3f} / {runs['ddp']['validation'][figure]:.3f}")
    record = {"command": " ".join(["python", *sys.argv]), "commit": git_commit(), "machine": machine(),
              "wall_seconds": round(time.perf_counter() - start, 1), "nproc": args.nproc, "results": results}
    with atomic_write(RESULT) as handle:
        handle.write(json.dumps(record, indent=1) + "\n")
    print(f"wrote {RESULT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
