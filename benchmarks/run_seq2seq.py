"""Train a seq2seq recipe, evaluate it on the test split (greedy and beam), and record the figures as JSON.

    python benchmarks/run_seq2seq.py --config configs/multi30k_gru.yaml --name multi30k_gru [--set k=v ...]
        [--average N]   # also evaluate the average of the last N validation snapshots (needs train.keep_last >= N)

Writes benchmarks/results/<name>.json: the command, git commit, machine, wall time, training tokens/s,
test sacreBLEU (with signature) for greedy and beam search, test perplexity, decoding sentences/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import git_commit, machine, train_or_skip, training_throughput, write_result


def decode_and_score(loaded, pairs, strategy: str, beam_size: int) -> dict:
    from seqlab.config import from_dict, to_dict
    from seqlab.decoding.config import DecodeConfig
    from seqlab.tasks.translation import evaluate

    decode = from_dict(DecodeConfig, {**to_dict(loaded.config.decode), "strategy": strategy,
                                      "beam_size": beam_size}, "decode.")
    start = time.perf_counter()
    _, bleu, ppl = evaluate(loaded, pairs, decode, "cpu", 64)
    seconds = time.perf_counter() - start
    return {"bleu": round(bleu.score, 2), "signature": bleu.signature, "perplexity": round(ppl["ppl"], 2),
            "seconds_incl_ppl": round(seconds, 1), "sentences_per_second": round(len(pairs) / seconds, 1)}


def average_snapshots(model_dir: Path, count: int) -> Path:
    """``seqlab average`` over the newest ``count`` snapshots, into ``<model_dir>-avg<count>``."""
    from seqlab.commands.average import average_files
    from seqlab.train.trainer import snapshot_paths

    paths = snapshot_paths(model_dir)[-count:]
    if len(paths) < count:
        raise SystemExit(f"{model_dir}: {len(paths)} snapshots, --average {count} needs train.keep_last >= {count}")
    output = model_dir.with_name(f"{model_dir.name}-avg{count}")
    average_files(paths, output)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--name", help="results file name (default: the config's file name without .yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--skip-train", action="store_true", help="only evaluate an existing model dir")
    parser.add_argument("--average", type=int, default=0,
                        help="also evaluate the average of the last N snapshots (train.keep_last >= N)")
    parser.add_argument("--nproc", type=int, default=1, help="train with N data-parallel worker processes (DDP)")
    args = parser.parse_args()
    args.name = args.name or Path(args.config).stem

    from seqlab.data.pipeline import load_split
    from seqlab.tasks import load_config, load_model_dir

    config = load_config(args.config, args.overrides)
    commit = git_commit()  # the code that trains, even if the checkout moves on during a long run
    wall = time.perf_counter()
    summary = train_or_skip(args, config)
    train_seconds = time.perf_counter() - wall
    loaded = load_model_dir(config.model_dir)
    pairs = load_split(loaded.config.data, "test")
    results = {"greedy": decode_and_score(loaded, pairs, "greedy", 1),
               "beam5": decode_and_score(loaded, pairs, "beam", 5)}
    if args.average:
        averaged_dir = average_snapshots(Path(config.model_dir), args.average)
        averaged = load_model_dir(averaged_dir)
        results["averaged"] = {"model_dir": str(averaged_dir), "greedy": decode_and_score(averaged, pairs, "greedy", 1),
                               "beam5": decode_and_score(averaged, pairs, "beam", 5)}
    record = {
        "name": args.name, "command": " ".join([sys.executable, *sys.argv]), "commit": commit,
        "machine": machine(),
        "train": {**summary, "wall_seconds": round(train_seconds, 1),
                  "median_tokens_per_second": round(training_throughput(Path(config.model_dir)), 1)},
        "test_sentences": len(pairs), "test": results,
    }
    write_result(args.name, record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    from seqlab.errors import SeqlabError

    try:
        main()
    except SeqlabError as error:  # a bad --set key or config file: one line, as the CLI
        print(f"run_seq2seq: error: {error}", file=sys.stderr)
        sys.exit(2)
