"""Train a language-model recipe, then measure exact test perplexity, and record the figures as JSON.

    python benchmarks/run_lm.py --config configs/ptb_lstm_small.yaml --name ptb_lstm_small [--set k=v ...]

Writes benchmarks/results/<name>.json: the command, git commit, machine, wall time, training tokens/s (median of
the logged windows), valid and test perplexity over every token of the split (token-weighted), and two samples.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run_seq2seq import git_commit, machine, training_throughput  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--skip-train", action="store_true", help="only evaluate an existing model dir")
    args = parser.parse_args()

    import math

    from seqlab.commands.train import train_lm
    from seqlab.config import load_config
    from seqlab.inference import load_model_dir
    from seqlab.lm.neural import generate, prepare_lm, stream_nll

    config = load_config(args.config, args.overrides)
    wall = time.perf_counter()
    summary = {} if args.skip_train else train_lm(config, overwrite=True)
    train_seconds = time.perf_counter() - wall
    loaded = load_model_dir(config.model_dir)  # best.pt: the lowest validation perplexity
    _, streams = prepare_lm(loaded.config.data)
    figures = {}
    for split in ("valid", "test"):
        nll, count = stream_nll(loaded.model, streams[split], loaded.config.data.bptt)
        figures[split] = {"perplexity": round(math.exp(nll / count), 2), "tokens": count}
    samples = [generate(loaded.model, loaded.preprocessing, prompt, 20, loaded.config.decode)
               for prompt in ("", "the company said")]
    record = {
        "name": args.name, "command": " ".join([sys.executable, *sys.argv]), "commit": git_commit(),
        "machine": machine(),
        "train": {**summary, "wall_seconds": round(train_seconds, 1),
                  "median_tokens_per_second": round(training_throughput(Path(config.model_dir)), 1)},
        **figures, "samples": samples,
    }
    out = ROOT / "benchmarks" / "results" / f"{args.name}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
