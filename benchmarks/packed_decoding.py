"""What the oneDNN-packed weights (seqlab.nn.packed_linear) are worth in a whole search, on a trained Transformer:
the same sentences decoded with no packing, with only the vocabulary projection packed, and with every packed
layer (projection, Q|K|V, feed-forward), alternating, one thread, sentences per CPU-second.

    python benchmarks/packed_decoding.py --model-dir runs/m30k [--sentences 300] [--rounds 3]

Writes ``benchmarks/results/packed_decoding.json``: per mode and search the median rate, the ratio to no packing,
and how many outputs are identical to the unpacked ones (the products agree to rounding, so nearly all).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import contextmanager

import torch

from common import git_commit, machine, write_result

MODES = ("none", "projection", "all")


@contextmanager
def packing(mode: str):
    """``none``: every layer on F.linear; ``projection``: only the decoder's vocabulary projection packed."""
    import seqlab.models.transformer as model_module
    import seqlab.nn.transformer as layer_module

    plain = lambda linear, x: linear(x)  # noqa: E731  (the readable twin)
    saved = (model_module.project, layer_module.project)
    if mode in ("none", "projection"):
        layer_module.project = plain
    if mode == "none":
        model_module.project = plain
    try:
        yield
    finally:
        model_module.project, layer_module.project = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from seqlab.config import from_dict, to_dict
    from seqlab.data.pipeline import load_split
    from seqlab.nn import packed_linear
    from seqlab.decoding.config import DecodeConfig
    from seqlab.tasks import load_model_dir
    from seqlab.tasks.translation import Translator

    if not packed_linear.AVAILABLE:  # every mode would be the same F.linear path
        raise SystemExit("packed_decoding: this PyTorch build has no oneDNN linear ops; nothing to compare")
    torch.set_num_threads(1)
    loaded = load_model_dir(args.model_dir)
    sources = [s for s, _ in load_split(loaded.config.data, "test")[:args.sentences]]
    wall = time.perf_counter()
    results = {}
    for search, beam in (("greedy", 1), ("beam5", 5)):
        decode = from_dict(DecodeConfig, {**to_dict(loaded.config.decode), "beam_size": beam,
                                          "strategy": "beam" if beam > 1 else "greedy"}, "decode.")
        translator = Translator(loaded.model, loaded.preprocessing, decode, "cpu", args.batch_size)
        rates, outputs = {m: [] for m in MODES}, {}
        for _ in range(args.rounds):
            for mode in MODES:
                with packing(mode):
                    start = time.process_time()
                    outputs[mode] = [t.text for t in translator.translate(sources)]
                    rates[mode].append(len(sources) / (time.process_time() - start))
        medians = {m: statistics.median(r) for m, r in rates.items()}
        results[search] = {m: {"sentences_per_cpu_second": round(medians[m], 1),
                               "over_none": round(medians[m] / medians["none"], 3),
                               "identical_to_none": sum(a == b for a, b in zip(outputs[m], outputs["none"])),
                               "runs": [round(r, 1) for r in rates[m]]} for m in MODES}
        print(f"{search}: " + ", ".join(f"{m} {medians[m]:.1f} ({medians[m] / medians['none']:.3f}x)"
                                         for m in MODES), flush=True)
    record = {"name": "packed_decoding", "command": " ".join([sys.executable, *sys.argv]), "commit": git_commit(),
              "machine": machine(), "model_dir": args.model_dir, "sentences": len(sources),
              "batch_size": args.batch_size, "rounds": args.rounds, "threads": 1,
              "wall_seconds": round(time.perf_counter() - wall, 1), "results": results}
    write_result("packed_decoding", record)
    print(f"reproduce: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
