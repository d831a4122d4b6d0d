"""How fast could a Transformer step be at fp32 on this CPU?  Its matrix products alone, timed.

Every decoding step of the benchmark's Transformer (``transformer_vs_hf.py``: d_model 256, 4 heads, FFN 1024,
3 decoder layers, vocabulary 8000) multiplies the step's rows by the same weights: per layer the fused Q|K|V
(768 x 256), the self-attention output, the cross-attention query and output (256 x 256 each), the FFN
(1024 x 256, 256 x 1024), then the output projection (8000 x 256).  Any implementation (seqlab, Hugging Face,
fairseq) must do these products; they are the floor under a step's time.  This script times, on one thread:

* ``gemm``: those products alone, the model's own weights in the order a step uses them, rows = batch (greedy)
  or batch x beam (beam 5), on random activations — no attention, no softmax, no bookkeeping;
* ``step``: seqlab's real greedy / beam-5 decoding of the same batches (``decode_seqlab``), per step;

and converts both into sentences per CPU second for ``--sentences`` sentences in batches of 50 with 25 steps each
(the benchmark's protocol), plus the encoder's products on the sentences' real source tokens (its linear maps and
the cross-attention keys/values, once per sentence).

For training, the same for one step on the benchmark's training batch (its real tokens only, as padding removal
runs them): every linear map's forward product and its two backward products (input and weight gradients),
encoder and decoder, and the output projection — no attention, softmax, LayerNorm, dropout or optimiser.

Compare with the peers' figures in ``benchmarks/results/transformer_vs_hf.json``: a goal of N x a peer's rate is
reachable only if N x that rate stays below the floor.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/decode_floor.py

Writes benchmarks/results/decode_floor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run_seq2seq import git_commit  # noqa: E402
from benchmarks.transformer_vs_hf import (EOS, PAD, build_seqlab, decode_seqlab, load_corpus, pad,  # noqa: E402
                                          RESULT as PEER_RESULT)

RESULT = ROOT / "benchmarks" / "results" / "decode_floor.json"
STEP_WEIGHTS = ("self_attention.qkv", "self_attention.out", "cross_attention.query", "cross_attention.out",
                "feed_forward.net.0", "feed_forward.net.2")  # per layer; cross K/V is once per sentence


def step_linears(model) -> list[torch.nn.Linear]:
    """The linear maps one decoder step applies to its rows, in order."""
    layers = [getattr_path(layer, name) for layer in model.decoder.layers for name in STEP_WEIGHTS]
    return layers + [model.decoder.output]


def getattr_path(module, dotted: str):
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


@torch.no_grad()
def gemm_seconds(linears: list[torch.nn.Linear], rows: int, repeats: int) -> float:
    """CPU seconds of one step's products, median of ``repeats`` steps (after warm-up)."""
    inputs = {width: torch.randn(rows, width) for width in {lin.in_features for lin in linears}}
    times = []
    for repeat in range(repeats + 3):
        start = time.process_time()
        for linear in linears:
            F.linear(inputs[linear.in_features], linear.weight, linear.bias)
        if repeat >= 3:
            times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2]


ENCODER_WEIGHTS = ("attention.qkv", "attention.out", "feed_forward.net.0", "feed_forward.net.2")


@torch.no_grad()
def training_gemm_seconds(model, source_tokens: int, target_tokens: int, repeats: int) -> float:
    """CPU seconds of one training step's products (forward, input gradient, weight gradient of every linear
    map, on the batch's real tokens), median of ``repeats``."""
    work = [(getattr_path(layer, name).weight, source_tokens) for layer in model.encoder_layers
            for name in ENCODER_WEIGHTS]
    work += [(getattr_path(layer, name).weight, target_tokens) for layer in model.decoder.layers
             for name in STEP_WEIGHTS]
    work += [(layer.cross_attention.key_value.weight, source_tokens) for layer in model.decoder.layers]
    work.append((model.decoder.output.weight, target_tokens))
    tensors = [(weight, torch.randn(rows, weight.size(1)), torch.randn(rows, weight.size(0))) for weight, rows in work]
    times = []
    for repeat in range(repeats + 1):
        start = time.process_time()
        for weight, x, grad_y in tensors:
            x @ weight.t()  # forward (N, out)
            grad_y @ weight  # input gradient (N, in)
            grad_y.t() @ x  # weight gradient (out, in)
        if repeat >= 1:
            times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def encoder_gemm_seconds(model, source_tokens: int, repeats: int = 5) -> float:
    """CPU seconds of the encoder's products (and the decoder's memory K/V) on ``source_tokens`` rows."""
    weights = [getattr_path(layer, name).weight for layer in model.encoder_layers for name in ENCODER_WEIGHTS]
    weights += [layer.cross_attention.key_value.weight for layer in model.decoder.layers]
    inputs = {width: torch.randn(source_tokens, width) for width in {w.size(1) for w in weights}}
    times = []
    for repeat in range(repeats + 1):
        start = time.process_time()
        for weight in weights:
            inputs[weight.size(1)] @ weight.t()
        if repeat >= 1:
            times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def decode_seconds_per_step(model, batches, beam_size: int, length: int) -> float:
    decode_seqlab(model, *batches[0], length, beam_size)  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for src_ids, src_mask in batches:
            decode_seqlab(model, src_ids, src_mask, length, beam_size)
        best = min(best, time.process_time() - start)
    return best / (len(batches) * length)


def training_batch_of(result: dict) -> tuple[int, int]:
    """(real source tokens, real target tokens) of the benchmark's training batch, from its result."""
    (rows, src_width), (_, tgt_width) = result["batch_shape"]
    return (round(rows * src_width * (1 - result["source_padding_fraction"])),
            round(rows * tgt_width * (1 - result["target_padding_fraction"])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--decode-sentences", type=int, default=100, help="sentences seqlab decodes for 'step'")
    parser.add_argument("--length", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    start = time.time()
    model = build_seqlab().eval()
    _, _, test = load_corpus(8000)
    padded = [pad([s + [EOS] for s in test[i:i + args.batch_size]])
              for i in range(0, args.decode_sentences, args.batch_size)]
    batches = [(ids, ids != PAD) for ids in padded]
    steps = -(-args.sentences // args.batch_size) * args.length  # decoder steps for --sentences
    source_tokens = sum(len(sentence) + 1 for sentence in test[:args.sentences])  # + <eos>
    encoder = encoder_gemm_seconds(model, source_tokens)  # all --sentences at once: the best case for the GEMMs
    peers = {}
    if PEER_RESULT.exists():
        results = json.loads(PEER_RESULT.read_text())["results"]
        peers = {name: result for name, result in results.items() if result}
    report = {}
    print(f"{'':10}{'GEMM ms/step':>14}{'floor sent/CPU-s':>18}{'seqlab ms/step':>16}{'seqlab sent/CPU-s':>19}"
          + "".join(f"{name + ' sent/CPU-s':>20}" for name in peers if name != "seqlab"))
    for name, beam_size in (("greedy", 1), ("beam5", 5)):
        gemm = gemm_seconds(step_linears(model), args.batch_size * beam_size, 30)
        step = decode_seconds_per_step(model, batches, beam_size, args.length)
        peer_rates = {peer: result.get(f"{name}_sentences_per_cpu_second") for peer, result in peers.items()}
        report[name] = {"rows": args.batch_size * beam_size, "gemm_seconds_per_step": gemm,
                        "encoder_gemm_seconds": encoder, "source_tokens": source_tokens,
                        "floor_sentences_per_cpu_second": args.sentences / (gemm * steps + encoder),
                        "seqlab_seconds_per_step": step,
                        "seqlab_sentences_per_cpu_second": args.sentences / (step * steps),
                        "peers_sentences_per_cpu_second": peer_rates}
        print(f"{name:10}{gemm * 1e3:14.2f}{report[name]['floor_sentences_per_cpu_second']:18.1f}"
              f"{step * 1e3:16.2f}{report[name]['seqlab_sentences_per_cpu_second']:19.1f}"
              + "".join(f"{rate or float('nan'):20.1f}" for peer, rate in peer_rates.items() if peer != "seqlab"))
    peer_training = {peer: result.get("median_step_cpu_seconds") for peer, result in peers.items()}
    seqlab_result = peers.get("seqlab", {})
    target_tokens = seqlab_result.get("target_tokens_per_batch")
    if target_tokens:
        batch = training_batch_of(seqlab_result)
        gemm = training_gemm_seconds(model, batch[0], batch[1], 5)
        report["training"] = {"source_tokens": batch[0], "target_tokens": batch[1], "gemm_seconds_per_step": gemm,
                              "floor_tokens_per_cpu_second": batch[1] / gemm,
                              "peers_step_cpu_seconds": peer_training,
                              "peers_tokens_per_cpu_second": {peer: batch[1] / seconds for peer, seconds in
                                                              peer_training.items() if seconds}}
        print(f"training: products alone {gemm:.2f} CPU-s per step = {batch[1] / gemm:,.0f} tokens/CPU-s; "
              + ", ".join(f"{peer} {batch[1] / seconds:,.0f}" for peer, seconds in peer_training.items() if seconds))
    print(f"floor: the steps' products plus the encoder's ({encoder:.2f} CPU-s for {source_tokens} source tokens); "
          f"no attention, softmax or search.  seqlab ms/step includes the encoder.  Peers from "
          f"{PEER_RESULT.relative_to(ROOT)}")
    output = {"command": f"PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/decode_floor.py "
                         f"--sentences {args.sentences} --length {args.length}",
              "commit": git_commit(), "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                                  "torch": torch.__version__, "loadavg": os.getloadavg()},
              "wall_seconds": time.time() - start, **report}
    from seqlab.utils import atomic_write

    with atomic_write(RESULT) as handle:
        handle.write(json.dumps(output, indent=2) + "\n")
    print("wrote", RESULT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
