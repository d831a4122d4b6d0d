"""Does the continuous cache pointer (Grave, Joulin & Usunier 2017) lower a trained RNN LM's test perplexity?

    OMP_NUM_THREADS=1 python benchmarks/lm_cache.py --model-dir runs/ptb_lstm_tied [--name ptb_lstm_tied_cache]

The model reads each split once (batch 1, state carried: exact, as ``stream_nll``); its final hidden states and
target log-probabilities are kept, and every (window, θ, λ) of the grid is then matrix work on those tensors
(``seqlab.lm.cache.cache_grid``).  The grid is tuned on VALID, the chosen point applied to TEST.

θ multiplies h_t·h_i, so its useful range scales with the squared norm of the hidden states (about the hidden
size times the mean squared activation): the paper's θ suit its LSTM, not necessarily ours.  So the record keeps
the median |h|² of the validation states, and while the best θ sits on an edge of the grid the grid grows past it
(×2 above, ÷2 below; ``--theta-extensions``).  With ``--verify`` (the default) the test figures are recomputed by
the library's streaming path (``stream_nll``, ``cache_stream_nll``) as a check on the grid's bookkeeping.

Writes benchmarks/results/<name>.json: the command, git commit, machine, wall time, the grid and every validation
point, the chosen values, valid and test perplexity with and without the cache, and the paper's PTB figures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from common import ROOT, git_commit, machine

THETAS = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0]
LAMBDAS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
WINDOWS = [100, 500, 2000]
# Grave et al. 2017, Table 1 (Penn Treebank test perplexity): their LSTM alone, and with the cache (window 500).
PAPER = {"model": 82.3, "cache": 72.1, "window": 500}


def perplexity(nll: float, count: int) -> float:
    return round(math.exp(nll / count), 2)


def tune(features, windows: list[int], thetas: list[float], lambdas: list[float], extensions: int,
         block: int) -> tuple[list[dict], list[float]]:
    """The grid on one split; grow θ past an edge while the best point sits on it."""
    from seqlab.lm.cache import cache_grid

    thetas = sorted(thetas)
    rows = cache_grid(features, windows, thetas, lambdas, block)
    for _ in range(extensions):
        best = min(rows, key=lambda row: row["nll"])["theta"]
        if best == thetas[-1]:
            new = thetas[-1] * 2
        elif best == thetas[0]:
            new = thetas[0] / 2
        else:
            break
        rows += cache_grid(features, windows, [new], lambdas, block)
        thetas = sorted([*thetas, new])
    return rows, thetas


def evaluate_valid(model, stream, bptt: int, args) -> dict:
    from seqlab.lm.cache import stream_features

    start = time.perf_counter()
    features = stream_features(model, stream, bptt)
    model_seconds = time.perf_counter() - start
    start = time.perf_counter()
    rows, thetas = tune(features, args.windows, args.thetas, args.lambdas, args.theta_extensions, args.block)
    grid_seconds = time.perf_counter() - start
    count = len(features.next_ids)
    for row in rows:
        row["perplexity"] = perplexity(row["nll"], count)
    best = min(rows, key=lambda row: row["nll"])
    best_per_window = {str(window): min((r for r in rows if r["window"] == window), key=lambda r: r["nll"])
                       for window in args.windows}  # how much a longer memory buys
    squared_norms = (features.hidden.float() ** 2).sum(1)
    return {
        "tokens": count, "perplexity": perplexity(-float(features.model_log_probs.double().sum()), count),
        "perplexity_cache": best["perplexity"],
        "chosen": {"window": best["window"], "theta": best["theta"], "lambda": best["lambda"]},
        "at_grid_edge": {"window": best["window"] in (min(args.windows), max(args.windows)),
                         "theta": best["theta"] in (thetas[0], thetas[-1]),
                         "lambda": best["lambda"] in (min(args.lambdas), max(args.lambdas))},
        "thetas_searched": thetas, "hidden_squared_norm_median": round(float(squared_norms.median()), 3),
        "best_per_window": {window: {key: row[key] for key in ("theta", "lambda", "perplexity")}
                            for window, row in best_per_window.items()},
        "seconds": {"model_pass": round(model_seconds, 1), "grid": round(grid_seconds, 1), "grid_points": len(rows)},
        "grid": [{k: row[k] for k in ("window", "theta", "lambda", "perplexity")} for row in rows],
    }


def evaluate_test(model, stream, bptt: int, chosen: dict, verify: bool, block: int) -> dict:
    from seqlab.lm.cache import cache_grid, cache_stream_nll, stream_features
    from seqlab.tasks.language_model import stream_nll

    start = time.perf_counter()
    features = stream_features(model, stream, bptt)
    count = len(features.next_ids)
    base = -float(features.model_log_probs.double().sum())
    (row,) = cache_grid(features, [chosen["window"]], [chosen["theta"]], [chosen["lambda"]], block)
    result = {"tokens": count, "perplexity": perplexity(base, count), "perplexity_cache": perplexity(row["nll"], count),
              "seconds": round(time.perf_counter() - start, 1)}
    if verify:  # the same figures by the library's streaming paths: a second model pass each
        start = time.perf_counter()
        plain, plain_count = stream_nll(model, stream, bptt)
        cached, cached_count = cache_stream_nll(model, stream, bptt, chosen["window"], chosen["theta"],
                                                chosen["lambda"])
        assert plain_count == cached_count == count
        result["streaming_check"] = {
            "perplexity": perplexity(plain, count), "perplexity_cache": perplexity(cached, count),
            "max_relative_nll_difference": max(abs(plain - base) / base, abs(cached - row["nll"]) / row["nll"]),
            "seconds": round(time.perf_counter() - start, 1)}
    return result


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="a trained RNN LM (its best.pt is evaluated)")
    parser.add_argument("--name", help="record name (default: <model dir name>_cache)")
    parser.add_argument("--output", help="where the JSON goes (default: benchmarks/results/<name>.json)")
    parser.add_argument("--windows", type=int, nargs="+", default=WINDOWS)
    parser.add_argument("--thetas", type=float, nargs="+", default=THETAS)
    parser.add_argument("--lambdas", type=float, nargs="+", default=LAMBDAS)
    parser.add_argument("--theta-extensions", type=int, default=4,
                        help="at most this many θ added past an edge of the grid (0: the grid as given)")
    parser.add_argument("--block", type=int, default=128, help="queries per matrix product of the grid")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip recomputing the test figures by the streaming path")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    from seqlab.tasks import load_model_dir
    from seqlab.lm.cache import check_cache_model
    from seqlab.tasks.language_model import prepare_lm
    from seqlab.utils import atomic_write

    name = args.name or f"{Path(args.model_dir).name}_cache"
    commit, wall = git_commit(), time.perf_counter()
    loaded = load_model_dir(args.model_dir)  # best.pt: the lowest validation perplexity
    check_cache_model(loaded.model)
    pre, streams = prepare_lm(loaded.config.data)
    if pre.vocab.to_dict() != loaded.preprocessing.vocab.to_dict():
        raise SystemExit(f"{args.model_dir}: the data's vocabulary differs from the model's")
    bptt = loaded.config.data.bptt
    valid = evaluate_valid(loaded.model, streams["valid"], bptt, args)
    test = evaluate_test(loaded.model, streams["test"], bptt, valid["chosen"], args.verify, args.block)
    record = {
        "name": name, "command": " ".join([sys.executable, *sys.argv]), "commit": commit, "machine": machine(),
        "model_dir": args.model_dir, "checkpoint": str(loaded.checkpoint),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "method": "continuous cache pointer, Grave et al. 2017: p = (1-λ) p_model + λ p_cache, "
                  "p_cache(w) ∝ Σ_{i in window, x_{i+1}=w} exp(θ h_t·h_i); tuned on valid, applied to test",
        "perplexity_note": "exact, every token of the split predicted once with the state carried (batch 1), "
                           "dropout off; the first position of a split has an empty cache and uses p_model",
        "grid": {"windows": args.windows, "thetas": valid["thetas_searched"], "lambdas": args.lambdas},
        "chosen": valid["chosen"], "valid": valid, "test": test,
        "paper_ptb_test": {**PAPER, "ratio": round(PAPER["cache"] / PAPER["model"], 3)},
        "ratio_test": round(test["perplexity_cache"] / test["perplexity"], 3),
    }
    out = Path(args.output) if args.output else ROOT / "benchmarks" / "results" / f"{name}.json"
    with atomic_write(out) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    chosen = valid["chosen"]
    print(f"{name}: test ppl {test['perplexity']} -> {test['perplexity_cache']} with the cache "
          f"(x{record['ratio_test']}; window {chosen['window']}, θ {chosen['theta']}, λ {chosen['lambda']}; "
          f"valid {valid['perplexity']} -> {valid['perplexity_cache']}); paper PTB {PAPER['model']} -> "
          f"{PAPER['cache']} (x{record['paper_ptb_test']['ratio']}); grid {valid['seconds']['grid']} s for "
          f"{valid['seconds']['grid_points']} points; wrote {out}")
    print("reproduce: OMP_NUM_THREADS=1 python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
