"""Does the toolkit add overhead?  seqlab's Trainer vs a plain PyTorch loop over the same ``nn.LSTM`` LM.

    python benchmarks/lm_overhead.py [--config configs/ptb_lstm_small.yaml] [--steps 600]

Both sides train the same model (built once by ``seqlab.models.build.build_lm`` from the recipe, copied for each
side) on the same Penn Treebank BPTT chunks with the same update: summed cross-entropy / token count, backward,
clip by norm, SGD step, hidden state carried and detached between chunks.  The plain loop is what one writes by
hand in a notebook; the other side is seqlab's ``Trainer.train_step`` with its ``LMObjective``.  After a warm-up of 20
updates each, the sides take turns in blocks of 25 updates (who goes first alternates), so a change in background
load on a shared machine hits both alike; tokens/s = tokens / summed block time.

Writes benchmarks/results/lm_overhead.json; the goal (issue 6) is seqlab/plain >= 1.0.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from common import ROOT, git_commit, machine

WARMUP = 20
BLOCK = 25  # updates per timed block; the two sides alternate block by block


class PlainLoop:
    """A hand-written truncated-BPTT update, as one writes it in a notebook."""

    def __init__(self, model: torch.nn.Module, lr: float, clip: float):
        self.model, self.clip, self.state = model, clip, None
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def train_step(self, batch) -> None:
        self.model.train()
        logits, state = self.model(batch.inputs, None if batch.first else self.state)
        self.state = state.detach()
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch.targets.reshape(-1), reduction="sum")
        self.optimizer.zero_grad(set_to_none=True)
        (loss / batch.targets.numel()).backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        float(loss.detach())  # the same one host sync per update as the trainer's log


def timed_block(side, batches: list) -> float:
    start = time.perf_counter()
    for batch in batches:
        side.train_step(batch)
    return time.perf_counter() - start


def interleaved_seconds(reference: torch.nn.Module, batches: list, train_config, steps: int) -> dict[str, list[float]]:
    """Seconds per block of BLOCK updates for each side, the sides taking turns on copies of ``reference``."""
    from seqlab.tasks.language_model import LMObjective
    from seqlab.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as model_dir:
        plain = PlainLoop(copy.deepcopy(reference), train_config.lr, train_config.clip_norm)
        toolkit = Trainer(copy.deepcopy(reference), LMObjective(), train_config, model_dir, {}, lambda m: {}, "cpu")
        timed_block(plain, batches[:WARMUP])
        timed_block(toolkit, batches[:WARMUP])
        seconds = {"plain": [], "seqlab": []}
        for index, first in enumerate(range(WARMUP, WARMUP + steps, BLOCK)):
            block = batches[first:first + BLOCK]
            order = [("plain", plain), ("seqlab", toolkit)]
            for name, side in order if index % 2 == 0 else order[::-1]:  # alternate who goes first
                seconds[name].append(timed_block(side, block))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/ptb_lstm_small.yaml")
    parser.add_argument("--steps", type=int, default=600, help="timed updates per side")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from seqlab.data.streams import BPTTBatches
    from seqlab.tasks import load_config
    from seqlab.tasks.language_model import prepare_lm
    from seqlab.utils import atomic_write
    from seqlab.models.build import build_lm

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = load_config(args.config, ["train.progress=false"])
    preprocessing, streams = prepare_lm(config.data)
    batches = BPTTBatches(streams["train"], config.data.batch_size, config.data.bptt).epoch_batches(0)
    if len(batches) < WARMUP + args.steps:
        raise SystemExit(f"--steps: at most {len(batches) - WARMUP} chunks in one epoch")
    reference = build_lm(config.model.architecture, config.model.options, len(preprocessing.vocab))

    seconds = interleaved_seconds(reference, batches, config.train, args.steps)
    tokens = sum(batch.targets.numel() for batch in batches[WARMUP:WARMUP + args.steps])
    rates = {name: tokens / sum(values) for name, values in seconds.items()}
    block_ratios = [p / s for p, s in zip(seconds["plain"], seconds["seqlab"])]  # time ratio = speed ratio
    options = config.model.options
    result = {
        "name": "lm_overhead",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": git_commit(),
        "machine": machine(),
        "model": f"{config.model.architecture} {options.cell} {options.num_layers}x{options.hidden_size}, "
                 f"vocab {len(preprocessing.vocab)}, batch {config.data.batch_size}, bptt {config.data.bptt}",
        "timed_updates_per_side": args.steps,
        "block_updates": BLOCK,
        "plain_pytorch_tokens_per_second": round(rates["plain"], 1),
        "seqlab_tokens_per_second": round(rates["seqlab"], 1),
        "ratio_seqlab_over_plain": round(rates["seqlab"] / rates["plain"], 3),
        "median_block_ratio": round(statistics.median(block_ratios), 3),
        "block_ratio_range": [round(min(block_ratios), 3), round(max(block_ratios), 3)],
        "goal": ">= 1.0",
    }
    out = ROOT / "benchmarks" / "results" / "lm_overhead.json"
    with atomic_write(out) as handle:
        handle.write(json.dumps(result, indent=2) + "\n")
    print(f"plain PyTorch {rates['plain']:.0f} tok/s, seqlab {rates['seqlab']:.0f} tok/s, ratio "
          f"{result['ratio_seqlab_over_plain']:.3f} (median block ratio {result['median_block_ratio']:.3f}; "
          f"goal >= 1.0) -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
