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
import time
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


def timed_pass(decode, batches) -> tuple[float, float, list[list[int]]]:
    """(wall seconds, CPU seconds, outputs in batch order) of one pass of ``decode`` over every batch."""
    wall, cpu = time.perf_counter(), time.process_time()
    outputs = [row for src_ids, src_mask in batches for row in decode(src_ids, src_mask)]
    return time.perf_counter() - wall, time.process_time() - cpu, outputs


def alternating_passes(label: str, decoders: dict, batches: list, rounds: int) -> tuple[dict, dict]:
    """``rounds`` full passes of every decoder, the order reversed every other round (neither always runs on a
    warmer or cooler machine) -> ({name: [(wall, cpu), ...]}, {name: outputs of its last pass})."""
    import sys

    passes, outputs = {name: [] for name in decoders}, {}
    for round_index in range(rounds):
        for name in (list(decoders) if round_index % 2 == 0 else list(decoders)[::-1]):
            wall, cpu, outputs[name] = timed_pass(decoders[name], batches)
            passes[name].append((wall, cpu))
            print(f"[{label}] round {round_index + 1} {name}: {cpu:.1f} CPU-s, {wall:.1f} s", file=sys.stderr)
    return passes, outputs


def pass_figures(passes: list[tuple[float, float]], sentences: int) -> dict:
    """Median rates of a decoder's passes: sentences per CPU-second and per second, with every pass's times."""
    import statistics

    walls, cpus = (list(times) for times in zip(*passes))
    return {"sentences_per_cpu_second": sentences / statistics.median(cpus),
            "sentences_per_second": sentences / statistics.median(walls),
            "cpu_seconds_by_round": cpus, "wall_seconds_by_round": walls}
