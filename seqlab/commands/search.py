"""``seqlab search CONFIG.yaml --grid train.lr=0.001,0.003 --grid model.hidden_size=128,256 [--random N]``

Hyper-parameter search (CS182 notes: "grid or random search over a config"): every combination of the ``--grid``
values (or ``--random N`` of them, drawn with ``--seed``) is trained into ``MODEL_DIR/trial-XX`` with the recipe's
own early-stopping metric, and the trials are ranked by their best validation value.  ``search.jsonl`` holds one
line per finished trial, so an interrupted search can be resumed with ``--resume`` (finished trials are skipped).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path
from typing import Any

from seqlab.errors import ConfigError

HELP = "grid or random hyper-parameter search over a training config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a `seqlab train` YAML recipe (translation or lm)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="values to try for one key (repeatable); the search space is their product")
    parser.add_argument("--random", type=int, default=0, metavar="N", help="train N random points of the grid")
    parser.add_argument("--seed", type=int, default=1, help="seed of --random")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="fixed overrides applied to every trial, e.g. --set train.max_minutes=5")
    parser.add_argument("--model-dir", help="where trials go (default: the recipe's model_dir)")
    parser.add_argument("--resume", action="store_true", help="skip trials already in search.jsonl")


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        choices = [v for v in values.split(",") if v != ""]
        if not sep or not key or not choices:
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. train.lr=0.001,0.003)")
        grid[key.strip()] = choices
    if not grid:
        raise ConfigError("search: give at least one --grid KEY=V1,V2,...")
    return grid


def trials(grid: dict[str, list[str]], count: int, seed: int) -> list[dict[str, str]]:
    """Every point of the grid in a fixed order, or ``count`` distinct random ones."""
    if count < 0:
        raise ConfigError(f"--random: must be >= 0, got {count}")
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if count and count < len(points):
        points = random.Random(seed).sample(points, count)
    return points


def run(args: argparse.Namespace) -> int:
    from seqlab.tasks import load_config, train

    grid = parse_grid(args.grid)
    base = load_config(args.config, args.overrides)  # fail early on a bad recipe or override
    root = Path(args.model_dir or base.model_dir)
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "search.jsonl"
    done = {json.dumps(r["params"], sort_keys=True): r for r in _read_log(log_path)} if args.resume else {}
    if not args.resume:
        log_path.unlink(missing_ok=True)
    results = list(done.values())
    for number, params in enumerate(trials(grid, args.random, args.seed)):
        if json.dumps(params, sort_keys=True) in done:
            continue
        overrides = [*args.overrides, *(f"{k}={v}" for k, v in params.items())]
        config = load_config(args.config, overrides)
        config.model_dir = str(root / f"trial-{number:02d}")
        summary = train(config, overwrite=True)
        metric = config.train.early_stopping_metric
        record = {"trial": number, "params": params, "metric": metric, "best": summary.get("best_" + metric),
                  "model_dir": config.model_dir, "steps": summary["steps"], "wall_seconds": summary["wall_seconds"]}
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        results.append(record)
        print(json.dumps(record), flush=True)
    print(format_ranking(results, base.train))
    return 0


def format_ranking(results: list[dict[str, Any]], train_config) -> str:
    from seqlab.train.trainer import MAXIMISED_METRICS

    metric = train_config.early_stopping_metric
    mode = train_config.early_stopping_mode
    maximise = mode == "max" or (mode == "auto" and metric in MAXIMISED_METRICS)
    scored = [r for r in results if r["best"] is not None]
    scored.sort(key=lambda r: r["best"], reverse=maximise)
    lines = [f"# trials ranked by best validation {metric} ({'higher' if maximise else 'lower'} is better)"]
    lines += [f"{i}. {r['metric']}={r['best']:.4f}  {r['params']}  {r['model_dir']}" for i, r in enumerate(scored, 1)]
    return "\n".join(lines)


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
