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

import torch

from common import ROOT, git_commit
from transformer_vs_hf import (EOS, PAD, build_seqlab, decode_seqlab, load_corpus, pad,  # noqa: E402
                                          RESULT as PEER_RESULT)

RESULT = ROOT / "benchmarks" / "results" / "decode_floor.json"
# Linear maps per layer, by path inside the layer.  Decoder: what a step applies to its rows (the cross-attention
# keys/values are projected once per sentence, with the encoder).
DECODER_WEIGHTS = ("self_attention.qkv", "self_attention.out", "cross_attention.query", "cross_attention.out",
                   "feed_forward.net.0", "feed_forward.net.2")
ENCODER_WEIGHTS = ("attention.qkv", "attention.out", "feed_forward.net.0", "feed_forward.net.2")


def getattr_path(module, dotted: str):
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def encoder_weights(model) -> list[torch.Tensor]:
    """Every weight applied once per source token: the encoder's and the decoder's memory K/V projections."""
    weights = [getattr_path(layer, name).weight for layer in model.encoder_layers for name in ENCODER_WEIGHTS]
    return weights + [layer.cross_attention.key_value.weight for layer in model.decoder.layers]


def decoder_weights(model) -> list[torch.Tensor]:
    """Every weight applied once per target position (one decoding step's rows), the output projection last."""
    weights = [getattr_path(layer, name).weight for layer in model.decoder.layers for name in DECODER_WEIGHTS]
    return weights + [model.decoder.output.weight]


def median_cpu_seconds(function, repeats: int, warmup: int) -> float:
    """Median CPU seconds of ``function()`` over ``repeats`` calls after ``warmup`` untimed ones."""
    times = []
    for repeat in range(warmup + repeats):
        start = time.process_time()
        function()
        if repeat >= warmup:
            times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def forward_products(weights: list[torch.Tensor], rows: int, repeats: int, warmup: int) -> float:
    """CPU seconds of ``rows`` random activations times every weight (transposed), in order."""
    inputs = {width: torch.randn(rows, width) for width in {weight.size(1) for weight in weights}}
    return median_cpu_seconds(lambda: [inputs[weight.size(1)] @ weight.t() for weight in weights], repeats, warmup)


@torch.no_grad()
def training_products(work: list[tuple[torch.Tensor, int]], repeats: int) -> float:
    """CPU seconds of a training step's products: per (weight (out, in), rows N) the forward (N, out), the input
    gradient (N, in) and the weight gradient (out, in)."""
    tensors = [(weight, torch.randn(rows, weight.size(1)), torch.randn(rows, weight.size(0))) for weight, rows in work]
    return median_cpu_seconds(lambda: [(x @ weight.t(), grad_y @ weight, grad_y.t() @ x)
                                       for weight, x, grad_y in tensors], repeats, warmup=1)


@torch.no_grad()
def decode_seconds_per_step(model, batches, beam_size: int, length: int) -> float:
    """seqlab's own search over ``batches``, best of three passes, per decoder step (the encoder included)."""
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


def decoding_report(model, test: list[list[int]], peers: dict, args: argparse.Namespace) -> dict:
    """Floor and seqlab's own figure for greedy and beam 5, printed as a table; -> their entries."""
    padded = [pad([s + [EOS] for s in test[i:i + args.batch_size]])
              for i in range(0, args.decode_sentences, args.batch_size)]
    batches = [(ids, ids != PAD) for ids in padded]
    steps = -(-args.sentences // args.batch_size) * args.length  # decoder steps for --sentences
    source_tokens = sum(len(sentence) + 1 for sentence in test[:args.sentences])  # + <eos>
    # all --sentences at once: the best case for the encoder's products
    encoder = forward_products(encoder_weights(model), source_tokens, repeats=5, warmup=1)
    others = [peer for peer in peers if peer != "seqlab"]
    print(f"{'':10}{'GEMM ms/step':>14}{'floor sent/CPU-s':>18}{'seqlab ms/step':>16}{'seqlab sent/CPU-s':>19}"
          + "".join(f"{peer + ' sent/CPU-s':>20}" for peer in others))
    report = {}
    for name, beam_size in (("greedy", 1), ("beam5", 5)):
        gemm = forward_products(decoder_weights(model), args.batch_size * beam_size, repeats=30, warmup=3)
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
              + "".join(f"{peer_rates[peer] or float('nan'):20.1f}" for peer in others))
    print(f"floor: the steps' products plus the encoder's ({encoder:.2f} CPU-s for {source_tokens} source tokens); "
          "no attention, softmax or search.  seqlab ms/step includes the encoder.")
    return report


def training_report(model, peers: dict) -> dict | None:
    """Floor of one training step on the benchmark's batch (read from seqlab's result), against the peers."""
    if "seqlab" not in peers:
        return None
    source_tokens, target_tokens = training_batch_of(peers["seqlab"])
    work = [(weight, source_tokens) for weight in encoder_weights(model)]
    work += [(weight, target_tokens) for weight in decoder_weights(model)]
    gemm = training_products(work, repeats=5)
    step_seconds = {peer: result.get("median_step_cpu_seconds") for peer, result in peers.items()}
    rates = {peer: target_tokens / seconds for peer, seconds in step_seconds.items() if seconds}
    print(f"training: products alone {gemm:.2f} CPU-s per step = {target_tokens / gemm:,.0f} tokens/CPU-s; "
          + ", ".join(f"{peer} {rate:,.0f}" for peer, rate in rates.items()))
    return {"source_tokens": source_tokens, "target_tokens": target_tokens, "gemm_seconds_per_step": gemm,
            "floor_tokens_per_cpu_second": target_tokens / gemm, "peers_step_cpu_seconds": step_seconds,
            "peers_tokens_per_cpu_second": rates}


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
    peers = {}
    if PEER_RESULT.exists():
        peers = {name: result for name, result in json.loads(PEER_RESULT.read_text())["results"].items() if result}
    print(f"peers' figures from {PEER_RESULT.relative_to(ROOT)}")
    report = decoding_report(model, test, peers, args)
    training = training_report(model, peers)
    if training is not None:
        report["training"] = training
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
