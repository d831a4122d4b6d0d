"""How the training speed depends on ``train.num_threads`` when other jobs share the CPU.

The Time Machine char GRU recipe is trained for the same number of updates with each thread setting, one after
the other, while whatever else runs on the machine keeps running (the script adds no load of its own; the load
average is recorded beside each run).  ``0`` is PyTorch's own default, one intra-op thread per core.

    python benchmarks/threads_under_load.py                     # 1, 2 and 0 (= all cores) threads, 300 updates
    python benchmarks/threads_under_load.py --threads 1 0 --steps 200

Writes benchmarks/results/threads_under_load.json (command, commit, machine, per setting: wall time, updates/s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, git_commit, machine
from seqlab.utils import atomic_write

RESULT = ROOT / "benchmarks" / "results" / "threads_under_load.json"
CONFIG = "configs/timemachine_char_gru.yaml"


def train(threads: int, steps: int, model_dir: Path) -> dict:
    """``seqlab train`` of the recipe for ``steps`` updates with ``threads`` intra-op threads (0: PyTorch's)."""
    settings = [f"train.max_steps={steps}", "train.max_minutes=0", "train.max_epochs=1000", "train.progress=false",
                f"train.validate_every={steps}", f"train.num_threads={threads}"]
    command = [sys.executable, "-m", "seqlab", "train", CONFIG, "--model-dir", str(model_dir), "--overwrite",
               *(f"--set={s}" for s in settings)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OMP_NUM_THREADS", None)  # else it, not the setting, would choose PyTorch's default
    load_before = os.getloadavg()[0]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {"num_threads": threads, "steps": summary["steps"], "training_wall_seconds": summary["wall_seconds"],
            "updates_per_second": round(summary["steps"] / max(summary["wall_seconds"], 1e-9), 2),
            "loadavg_1min_before": round(load_before, 2), "loadavg_1min_after": round(os.getloadavg()[0], 2),
            "command": " ".join(command[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    start = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for threads in args.threads:  # the file is rewritten after every run: a stopped benchmark keeps its runs
            runs.append(train(threads, args.steps, Path(scratch) / f"threads{threads}"))
            print(json.dumps(runs[-1]))
            write(runs, time.perf_counter() - start)
    print(f"wrote {RESULT}")


def write(runs: list[dict], wall_seconds: float) -> None:
    fastest = max(r["updates_per_second"] for r in runs)
    for run in runs:
        run["relative_to_fastest"] = round(run["updates_per_second"] / fastest, 3)
    record = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "commit": git_commit(),
              "machine": machine(), "wall_seconds": round(wall_seconds, 1), "runs": runs}
    with atomic_write(RESULT) as handle:
        json.dump(record, handle, indent=2)


if __name__ == "__main__":
    main()
