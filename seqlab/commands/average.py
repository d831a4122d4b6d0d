"""``seqlab average DIR1 DIR2 ... -o DIR``: checkpoint averaging (the parameters' element-wise mean).

Usually the last few checkpoints of one run (Vaswani et al. 2017 average the last 5 or 20).  The models must share
an architecture; the output directory gets ``best.pt`` with the averaged weights and the first model's config,
vocabularies and tokenizers, so every other command can use it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seqlab.errors import CheckpointError

HELP = "average the weights of several checkpoints of one architecture into a new model directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="model directories or .pt checkpoint files")
    parser.add_argument("-o", "--output", required=True, help="model directory to write")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="last",
                        help="which checkpoint of each model directory (default: last)")


def run(args: argparse.Namespace) -> int:
    from seqlab.train.checkpoint import find_checkpoint

    paths = [Path(p) if Path(p).is_file() else find_checkpoint(p, args.checkpoint) for p in args.inputs]
    average_files(paths, Path(args.output))
    return 0


def average_files(paths: list[Path], output: Path) -> None:
    """Average the checkpoints at ``paths`` into ``output/best.pt``."""
    from seqlab.train.checkpoint import average_state_dicts, load_checkpoint, save_checkpoint

    payloads = [load_checkpoint(path) for path in paths]
    configs = [p.get("extra", {}).get("config", {}).get("model") for p in payloads]
    if any(c != configs[0] for c in configs[1:]):
        raise CheckpointError(f"{paths[configs.index(next(c for c in configs if c != configs[0]))]}: "
                              f"model config differs from {paths[0]}'s; only one architecture can be averaged")
    averaged = average_state_dicts([p["model"] for p in payloads])
    save_checkpoint(output / "best.pt", {"model": averaged, "extra": payloads[0].get("extra", {}),
                                         "trainer": {"averaged_from": [str(p) for p in paths]}})
    print(f"averaged {len(paths)} checkpoints into {output / 'best.pt'}")
