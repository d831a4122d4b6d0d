"""What every benchmark script shares: where the repository is, the git commit and machine to record beside each
figure, results written atomically as JSON, and training a recipe (or skipping it) the way ``seqlab train`` does.

Benchmarks run as scripts (``python benchmarks/NAME.py ...``) with seqlab installed (``pip install -e .``); their
own folder is then first on ``sys.path``, so they import this module as ``common``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from seqlab.utils import atomic_write

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def git_commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine(note: str = "shared 2-core machine; other jobs (tests, other benchmarks) ran at the same time") -> dict:
    return {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "loadavg_at_end": os.getloadavg(),
            "note": note}


def write_result(name: str, record: dict[str, Any]) -> Path:
    """``benchmarks/results/<name>.json``, all or nothing; returns the path."""
    path = RESULTS / f"{name}.json"
    with atomic_write(path) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    return path


def training_throughput(model_dir: Path) -> float:
    """Median tokens/s over the logged training windows."""
    rates = [r["tokens_per_second"] for r in map(json.loads, (model_dir / "train_log.jsonl").open())
             if r.get("event") == "train"]
    return sorted(rates)[len(rates) // 2] if rates else 0.0


def train_with_workers(config_path: str, overrides: list[str], nproc: int) -> dict:
    """``seqlab train CONFIG --nproc N --overwrite``: N data-parallel workers (DDP); returns worker 0's summary."""
    command = [sys.executable, "-m", "seqlab", "train", config_path, "--overwrite", "--nproc", str(nproc),
               *(f"--set={override}" for override in overrides)]
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE)
    if result.returncode != 0:
        raise SystemExit(result.returncode)  # the workers' one-line error is on stderr already
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def train_or_skip(args: argparse.Namespace, config: Any) -> dict:
    """The training summary: none with --skip-train, worker 0's with --nproc N > 1, else trained in this process."""
    from seqlab.tasks import train

    if args.skip_train:
        return {}
    if args.nproc > 1:
        return train_with_workers(args.config, args.overrides, args.nproc)
    return train(config, overwrite=True)
