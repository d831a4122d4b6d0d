"""Forecasting (d2l seed 001): k-step error growth on the noisy sine, MLP vs latent RNN, sunspots vs a naive baseline.

    python benchmarks/forecast.py [--seeds 3]

1. Noisy sine (x_t = sin(0.01 t) + N(0, 0.2²), 1,000 points, train on the first 600): the mean squared error of
   1-, 4-, 16- and 64-step-ahead predictions over the 400 held-out points, for the τ=4 lag MLP (d2l's model) and a
   GRU latent-variable forecaster.  The seed's claim: 1-step predictions are good, k-step predictions made by
   feeding predictions back degrade quickly as k grows (errors compound).  The noise floor is 0.2² = 0.04.
2. Yearly sunspots (309 values; train on the first 80 %, test on the last 62 years): 1-step test MSE of both models
   against the naive last-value forecast x̂_t = x_{t-1}.

Every figure is the mean (and min/max) over ``--seeds`` training seeds; MSE in the series' own units.  Writes
benchmarks/results/forecast.json and docs/forecast_sine.png, docs/forecast_sunspots.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import ROOT, git_commit, machine

from seqlab.models.forecaster import k_step_errors
from seqlab.tasks import build_config, load_model_dir, train
from seqlab.tasks.forecasting import forecast_table, plot_table, split_series
from seqlab.data.series import noisy_sine, sunspots
from seqlab.utils import atomic_write

HORIZONS = (1, 4, 16, 64)
# Run configs of the forecasting task (as in configs/forecast_*.yaml), without model_dir and seed.
SINE_MODELS = {"mlp_tau4": {"model": {"architecture": "mlp", "tau": 4, "hidden_size": 10}, "data": {"source": "sine"}},
               "gru_latent": {"model": {"architecture": "rnn", "hidden_size": 32}, "data": {"source": "sine",
                                                                                             "window": 16}}}
SUNSPOT_MODELS = {
    "mlp_tau8": {"model": {"architecture": "mlp", "tau": 8, "hidden_size": 16},
                 "data": {"source": "sunspots", "train_fraction": 0.8}, "train": {"max_epochs": 30}},
    "gru_latent": {"model": {"architecture": "rnn", "hidden_size": 32},
                   "data": {"source": "sunspots", "train_fraction": 0.8, "window": 16}, "train": {"max_epochs": 30}}}


def train_one(recipe: dict, seed: int, model_dir: Path):
    """Train one forecaster; (the loaded best model, the run summary)."""
    config = build_config({**recipe, "task": "forecasting", "model_dir": str(model_dir),
                           "train": {**recipe.get("train", {}), "seed": seed, "progress": False}})
    summary = train(config, overwrite=True)
    return load_model_dir(model_dir), summary


def sine_errors(recipe: dict, seed: int, work: Path) -> dict[int, float]:
    """k-step MSE over the held-out part of the sine (contexts start inside it, after the training part)."""
    loaded, _ = train_one(recipe, seed, work / f"sine_{recipe['model']['architecture']}_{seed}")
    _, held_out, pre = split_series(loaded.config)
    errors = k_step_errors(loaded.model, held_out, pre.context_length, HORIZONS)
    return {k: v * pre.std ** 2 for k, v in errors.items()}


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def run_sine(seeds: int, work: Path) -> dict[str, object]:
    results = {}
    for name, config in SINE_MODELS.items():
        per_seed = [sine_errors(config, seed, work) for seed in range(1, seeds + 1)]
        results[name] = {f"{k}_step_mse": spread([errors[k] for errors in per_seed]) for k in HORIZONS}
    return results


def run_sunspots(seeds: int, work: Path) -> dict[str, object]:
    series = sunspots()
    results: dict[str, object] = {}
    for name, config in SUNSPOT_MODELS.items():
        summaries = [train_one(config, seed, work / f"sun_{name}_{seed}")[1] for seed in range(1, seeds + 1)]
        results[name] = {"test_mse": spread([s["test"]["mse"] for s in summaries])}
        results["naive_last_value_mse"] = summaries[0]["test"]["naive_last_value_mse"]
        results["test_points"] = series.numel() - int(series.numel() * 0.8)
    results["variance_of_test_part"] = float(series[int(series.numel() * 0.8):].var())
    return results


def draw(work: Path) -> None:
    """docs/forecast_sine.png (1-step and 16-step MLP predictions, d2l's picture) and docs/forecast_sunspots.png."""
    loaded = load_model_dir(work / "sine_mlp_1")
    plot_table(ROOT / "docs" / "forecast_sine.png", forecast_table(loaded, noisy_sine(1000, seed=0), 16),
               "noisy sine, tau=4 MLP trained on t < 600: 1-step vs 16-step-ahead predictions")
    loaded = load_model_dir(work / "sun_mlp_tau8_1")
    plot_table(ROOT / "docs" / "forecast_sunspots.png", forecast_table(loaded, sunspots(), 4),
               "yearly sunspots 1700-2008, tau=8 MLP trained on the first 80 %: 1-step and 4-step predictions")



def report(sine: dict, sun: dict) -> None:
    print("noisy sine, held-out MSE of k-step-ahead predictions (noise floor 0.04):")
    for name, errors in sine.items():
        row = "  ".join(f"k={k}: {errors[f'{k}_step_mse']['mean']:.3f}" for k in HORIZONS)
        print(f"  {name:11s} {row}")
    print(f"sunspots, 1-step test MSE over the last {sun['test_points']} years:")
    for name in SUNSPOT_MODELS:
        mse = sun[name]["test_mse"]["mean"]
        print(f"  {name:11s} {mse:8.1f}   naive last value {sun['naive_last_value_mse']:8.1f}   "
              f"ratio {mse / sun['naive_last_value_mse']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "forecast.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sine, sun = run_sine(args.seeds, work), run_sunspots(args.seeds, work)
        draw(work)
    wall = time.perf_counter() - start
    report(sine, sun)
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    print(f"reproduce: {command}   ({wall:.0f} s)")
    result = {"command": command, "git_commit": git_commit(),
              "machine": machine(), "wall_seconds": round(wall, 1),
              "seeds": args.seeds, "sine": sine, "sunspots": sun,
              "models": {"sine": SINE_MODELS, "sunspots": SUNSPOT_MODELS},
              "figures": ["docs/forecast_sine.png", "docs/forecast_sunspots.png"]}
    with atomic_write(args.out) as handle:
        json.dump(result, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
