"""seqlab's Transformer against Hugging Face ``MarianMTModel`` with the same architecture, on CPU.

Architecture (both): d_model 256, 4 heads, FFN 1024 (ReLU), 3 + 3 layers, post-LN, vocabulary 8000, sinusoidal
positions, embeddings scaled by sqrt(D), source/target/output embeddings one tensor, dropout 0.1, SDPA attention.

Measured, each implementation in its own worker process (so peak RSS is its own), on ONE thread (the machine is
shared; a single thread's CPU time barely depends on the other jobs, so CPU-time figures are reported beside the
wall-clock ones and are the ones to trust under load):
* training tokens/s: forward + backward + Adam step on one length-bucketed batch of ~4000 target tokens of
  Multi30k de->en (seqlab's own BatchSampler; random ids when the data is absent), median of repeated steps.
  seqlab twice: as ``Seq2SeqTask.loss`` calls it today (full (B, T, V) logits) and with
  ``forward(..., tgt_mask=)`` (logits of real tokens only, the loss never touches padding);
* model FLOP utilisation: useful matmul FLOPs (real tokens only, counted analytically below) per second against
  the machine's single-thread fp32 matmul peak (a large torch.mm);
* decoding sentences/s (wall and CPU, best of three passes), greedy and beam 5, on ``--sentences`` Multi30k test
  sentences (100 by default; the committed run used 500), every output forced to the same length
  (untrained weights would otherwise stop at random places, and the two models would do different work);
* peak RSS of the worker.

Needs ``transformers`` in a separate venv so the main environment's torch stays put:

    python -m venv --system-site-packages /work/venv-bench
    /work/venv-bench/bin/pip install --no-deps transformers==5.23.0 huggingface-hub tokenizers safetensors typer \
        httpx2 httpcore2 anyio truststore h11 "typing_extensions>=4.16"
    PYTHONPATH=. /work/venv-bench/bin/python benchmarks/transformer_vs_hf.py      # ~5-10 min on one core

Writes benchmarks/results/transformer_vs_hf.json.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "multi30k" / "tok"
RESULT = ROOT / "benchmarks" / "results" / "transformer_vs_hf.json"
PAD, BOS, EOS, UNK = 0, 1, 2, 3
DIMS = dict(d_model=256, heads=4, ffn=1024, layers=3, vocab=8000)


# ------------------------------------------------------------------------------------------------ data
def read_lines(name: str) -> list[list[str]]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as handle:
        return [line.split() for line in handle]


def load_corpus(vocab_size: int, seed: int = 0) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """-> (train src ids, train tgt ids, test src ids) from Multi30k de->en, or random ids of Multi30k-like
    lengths when the data is absent.  One shared vocabulary: the most frequent training words (de + en)."""
    if not DATA.exists():
        generator = torch.Generator().manual_seed(seed)

        def random_ids(count: int) -> list[list[int]]:
            lengths = torch.randint(6, 24, (count,), generator=generator).tolist()
            return [torch.randint(4, vocab_size, (n,), generator=generator).tolist() for n in lengths]

        return random_ids(2000), random_ids(2000), random_ids(100)
    train_de, train_en = read_lines("train.lc.norm.tok.de.gz"), read_lines("train.lc.norm.tok.en.gz")
    counts = collections.Counter(word for sentence in train_de + train_en for word in sentence)
    index = {word: i + 4 for i, (word, _) in enumerate(counts.most_common(vocab_size - 4))}

    def encode(sentences: list[list[str]]) -> list[list[int]]:
        return [[index.get(word, UNK) for word in sentence] for sentence in sentences]

    return encode(train_de), encode(train_en), encode(read_lines("test_2016_flickr.lc.norm.tok.de.gz")[:100])


def pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [PAD] * (width - len(row)) for row in rows])


def training_batch(src: list[list[int]], tgt: list[list[int]], target_tokens: int) -> dict[str, torch.Tensor]:
    """A batch as seqlab's trainer makes them (token budget over the longer side, length-bucketed in shuffled
    chunks): of epoch 0's batches, the one with the median number of target tokens, the budget chosen so that
    this median is about ``target_tokens``."""
    from seqlab.data.batching import BatchSampler

    lengths = [max(len(s), len(t)) + 1 for s, t in zip(src, tgt)]  # <eos> / <bos> included
    budget = target_tokens
    while True:
        batches = BatchSampler(lengths, max_tokens=budget, shuffle=True, seed=1).epoch_batches(0)
        sizes = sorted((sum(len(tgt[i]) + 1 for i in batch), k) for k, batch in enumerate(batches))
        median_tokens, median_index = sizes[len(sizes) // 2]
        if median_tokens >= 0.98 * target_tokens:
            break
        budget += 100
    chosen = [(src[i], tgt[i]) for i in batches[median_index]]
    src_ids = pad([s + [EOS] for s, _ in chosen])
    return {"src_ids": src_ids, "src_mask": src_ids != PAD, "tgt_in": pad([[BOS] + t for _, t in chosen]),
            "tgt_out": pad([t + [EOS] for _, t in chosen])}


# ------------------------------------------------------------------------------------------------ models
def build_seqlab() -> torch.nn.Module:
    from seqlab.models.transformer import TransformerConfig, TransformerSeq2Seq

    config = TransformerConfig(d_model=DIMS["d_model"], num_heads=DIMS["heads"], ffn_size=DIMS["ffn"],
                               num_encoder_layers=DIMS["layers"], num_decoder_layers=DIMS["layers"], dropout=0.1,
                               positions="sinusoidal", share_embeddings=True, tie_output=True)
    return TransformerSeq2Seq(config, DIMS["vocab"], DIMS["vocab"])


def build_hf() -> torch.nn.Module:
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(vocab_size=DIMS["vocab"], d_model=DIMS["d_model"], encoder_layers=DIMS["layers"],
                          decoder_layers=DIMS["layers"], encoder_attention_heads=DIMS["heads"],
                          decoder_attention_heads=DIMS["heads"], encoder_ffn_dim=DIMS["ffn"],
                          decoder_ffn_dim=DIMS["ffn"], activation_function="relu", dropout=0.1,
                          attention_dropout=0.0, activation_dropout=0.0, scale_embedding=True,
                          share_encoder_decoder_embeddings=True, tie_word_embeddings=True, pad_token_id=PAD,
                          eos_token_id=EOS, decoder_start_token_id=BOS, forced_eos_token_id=None,
                          attn_implementation="sdpa")
    return MarianMTModel(config)


def logits_of(impl: str, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    if impl == "seqlab":
        return model(batch["src_ids"], batch["src_mask"], batch["tgt_in"])
    return model(input_ids=batch["src_ids"], attention_mask=batch["src_mask"].long(),
                 decoder_input_ids=batch["tgt_in"]).logits


# ------------------------------------------------------------------------------------------------ measurements
def training_loss(impl: str, model, batch: dict[str, torch.Tensor], packed: bool) -> torch.Tensor:
    """Summed cross-entropy over real target tokens; ``packed``: seqlab's logits of real tokens only."""
    if packed:
        tgt_mask = batch["tgt_out"] != PAD
        logits = model(batch["src_ids"], batch["src_mask"], batch["tgt_in"], tgt_mask=tgt_mask)  # (N, V)
        return F.cross_entropy(logits, batch["tgt_out"][tgt_mask], reduction="sum")
    logits = logits_of(impl, model, batch)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["tgt_out"].reshape(-1), ignore_index=PAD,
                           reduction="sum")


def time_training(impl: str, model, batch: dict[str, torch.Tensor], steps: int,
                  packed: bool = False) -> tuple[list[float], list[float]]:
    """-> (wall seconds, process CPU seconds) of each timed step."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)  # PyTorch defaults for both
    walls, cpus = [], []
    for step in range(steps + 2):  # two warm-up steps (allocator, kernels)
        wall, cpu = time.perf_counter(), time.process_time()
        loss = training_loss(impl, model, batch, packed)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 2:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return walls, cpus


@torch.no_grad()
def decode_seqlab(model, src_ids: torch.Tensor, length: int, beam_size: int) -> None:
    """seqlab's own searches; <eos> is never chosen, so every output has ``length`` tokens."""
    from seqlab.decoding.beam import beam_search
    from seqlab.decoding.config import DecodeConfig
    from seqlab.decoding.greedy import greedy_search

    src_mask = src_ids != PAD
    state = model.init_state(model.encode(src_ids, src_mask), src_mask)
    if beam_size == 1:
        greedy_search(model, state, src_ids.size(0), BOS, -1, length)  # eos -1: no token ends a row
        return
    # min_len = length forbids <eos> throughout; the step budget (last argument) stops the search at length.
    config = DecodeConfig(strategy="beam", beam_size=beam_size, min_len=length, max_len=length + 1)
    beam_search(model, state, src_ids.size(0), BOS, EOS, config, length)


@torch.no_grad()
def decode_hf(model, src_ids: torch.Tensor, length: int, beam_size: int) -> None:
    model.generate(src_ids, attention_mask=(src_ids != PAD).long(), num_beams=beam_size, do_sample=False,
                   max_new_tokens=length, min_new_tokens=length)


def time_decoding(impl: str, model, sentences: list[list[int]], beam_size: int, length: int,
                  batch_size: int) -> tuple[float, float] | tuple[None, None]:
    """(sentences per wall second, per CPU second) over all ``sentences`` in batches, the best of three passes;
    None if this search is not available."""
    model.eval()
    decode = decode_seqlab if impl == "seqlab" else decode_hf
    batches = [pad([s + [EOS] for s in sentences[i:i + batch_size]]) for i in range(0, len(sentences), batch_size)]
    try:
        decode(model, batches[0][:2], 2, beam_size)  # warm-up
    except ImportError as error:
        print(f"[{impl}] beam {beam_size} skipped: {error}", file=sys.stderr)
        return None, None
    walls, cpus = [], []
    for _ in range(3):  # best of three: the pass least disturbed by other jobs
        wall, cpu = time.perf_counter(), time.process_time()
        for src_ids in batches:
            decode(model, src_ids, length, beam_size)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return len(sentences) / min(walls), len(sentences) / min(cpus)


def matmul_peak_gflops(size: int = 2048, repeats: int = 7) -> float:
    """fp32 GFLOP/s per CPU second of a large square torch.mm (2 n^3 FLOPs), best of ``repeats``: the usable
    peak of this many threads.  CPU time, like the MFU figures, so other jobs' load does not lower it."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_cpu_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _cpu_timed(function) -> float:
    start = time.process_time()
    function()
    return time.process_time() - start


def training_flops(src_lens: torch.Tensor, tgt_lens: torch.Tensor) -> float:
    """Matmul FLOPs of one training step (backward = 2 x forward) for sentences of these lengths (B,).

    Per source token and encoder layer: QKV + out (4 D^2) and FFN (2 D F) multiply-adds, attention 2 S D.
    Per target token and decoder layer: self QKV + out (4 D^2), cross Q + out (2 D^2), FFN (2 D F), self
    attention 2 T D, cross attention 2 S D; cross K/V (2 D^2) per source token and decoder layer; output D V.
    Real lengths give the useful FLOPs (MFU); the padded widths repeated B times give the FLOPs of a padded run.
    """
    d, f, layers, v = DIMS["d_model"], DIMS["ffn"], DIMS["layers"], DIMS["vocab"]
    s, t = src_lens.double(), tgt_lens.double()
    encoder = (s * layers * (4 * d * d + 2 * d * f + 2 * s * d)).sum()
    decoder = (t * layers * (6 * d * d + 2 * d * f + 2 * t * d + 2 * s * d) + s * layers * 2 * d * d).sum()
    output = t.sum() * d * v
    return float(3 * 2 * (encoder + decoder + output))  # multiply-add = 2 FLOPs; fwd + bwd = 3 x fwd


def training_figures(impl: str, model, batch: dict[str, torch.Tensor], steps: int, packed: bool,
                     suffix: str = "") -> dict:
    walls, cpus = time_training(impl, model, batch, steps, packed)
    target_tokens = int((batch["tgt_out"] != PAD).sum())
    useful = training_flops((batch["src_ids"] != PAD).sum(1), (batch["tgt_out"] != PAD).sum(1))
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {f"step_seconds{suffix}": walls, f"step_cpu_seconds{suffix}": cpus,
            f"median_step_seconds{suffix}": wall, f"median_step_cpu_seconds{suffix}": cpu,
            f"train_tokens_per_second{suffix}": target_tokens / wall,
            f"train_tokens_per_cpu_second{suffix}": target_tokens / cpu,
            f"useful_gflops_per_cpu_second{suffix}": useful / cpu / 1e9}


def run_worker(impl: str, args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train_src, train_tgt, test_src = load_corpus(DIMS["vocab"])
    batch = training_batch(train_src, train_tgt, args.batch_tokens)
    model = build_seqlab() if impl == "seqlab" else build_hf()
    (b, s), t = batch["src_ids"].shape, batch["tgt_in"].size(1)
    target_tokens = int((batch["tgt_out"] != PAD).sum())
    result = {"impl": impl, "target_tokens_per_batch": target_tokens, "batch_shape": [[b, s], [b, t]],
              "target_padding_fraction": 1 - target_tokens / (b * t),
              "source_padding_fraction": 1 - int(batch["src_mask"].sum()) / (b * s),
              **training_figures(impl, model, batch, args.steps, packed=False)}
    if impl == "seqlab":
        result.update(training_figures(impl, model, batch, args.steps, packed=True, suffix="_packed_loss"))
    sentences = test_src[:args.sentences]
    for name, beam_size in (("greedy", 1), ("beam5", 5)):
        wall, cpu = time_decoding(impl, model, sentences, beam_size, args.decode_length, 50)
        result.update({f"{name}_sentences_per_second": wall, f"{name}_sentences_per_cpu_second": cpu})
    result.update({
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "parameters": sum(p.numel() for p in model.parameters()),
        "loadavg_after": os.getloadavg(),
    })
    return result


# ------------------------------------------------------------------------------------------------ report
def launch(impl: str, args: argparse.Namespace) -> dict | None:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--worker", impl, "--out", out.name, "--steps", str(args.steps),
                   "--batch-tokens", str(args.batch_tokens), "--sentences", str(args.sentences),
                   "--decode-length", str(args.decode_length), "--threads", str(args.threads)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if subprocess.run(command, env=env).returncode != 0:
            print(f"[{impl}] worker failed (for HF: is transformers installed? see this file's docstring)")
            return None
        return json.loads(Path(out.name).read_text())


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


# (label, seqlab key, HF key): the packed-loss rows compare seqlab's packed path with HF's only path.
ROWS = [("train tok/s (wall)", "train_tokens_per_second", "train_tokens_per_second"),
        ("train tok/CPU-s", "train_tokens_per_cpu_second", "train_tokens_per_cpu_second"),
        ("  packed loss, wall", "train_tokens_per_second_packed_loss", "train_tokens_per_second"),
        ("  packed loss, CPU", "train_tokens_per_cpu_second_packed_loss", "train_tokens_per_cpu_second"),
        ("greedy sent/s", "greedy_sentences_per_second", "greedy_sentences_per_second"),
        ("greedy sent/CPU-s", "greedy_sentences_per_cpu_second", "greedy_sentences_per_cpu_second"),
        ("beam-5 sent/s", "beam5_sentences_per_second", "beam5_sentences_per_second"),
        ("beam-5 sent/CPU-s", "beam5_sentences_per_cpu_second", "beam5_sentences_per_cpu_second"),
        ("peak RSS MiB", "peak_rss_mib", "peak_rss_mib"), ("parameters", "parameters", "parameters")]


def print_table(results: dict[str, dict | None], peak: float) -> dict[str, float | None]:
    """Print the comparison; -> the seqlab/HF ratios by seqlab key."""
    seqlab, hf = results.get("seqlab") or {}, results.get("hf") or {}
    fmt = lambda x: "n/a" if x is None else f"{x:,.3f}" if isinstance(x, float) and x < 10 else f"{x:,.0f}"
    print(f"\n{'':22}{'seqlab':>12}{'HF Marian':>12}{'seqlab/HF':>12}")
    ratios = {}
    for label, key, hf_key in ROWS:
        a, b = seqlab.get(key), hf.get(hf_key)
        ratios[key] = ratio(a, b)
        print(f"{label:22}{fmt(a):>12}{fmt(b):>12}{fmt(ratios[key]):>12}")
    for name, result, suffixes in (("seqlab", seqlab, ("", "_packed_loss")), ("HF", hf, ("",))):
        for suffix in suffixes if result else ():
            mfu = result[f"useful_gflops_per_cpu_second{suffix}"] / peak
            print(f"MFU {name}{suffix}: {mfu:.1%} (useful FLOPs per CPU second / {peak:.1f} GFLOP/s fp32 mm peak)")
    return ratios


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=7, help="timed training steps (after 2 warm-up steps)")
    parser.add_argument("--batch-tokens", type=int, default=4000, help="target tokens of the training batch")
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--decode-length", type=int, default=25, help="every output has this many tokens")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the machine is shared)")
    parser.add_argument("--worker", choices=["seqlab", "hf"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        Path(args.out).write_text(json.dumps(run_worker(args.worker, args)))
        return 0
    start, load_before = time.time(), os.getloadavg()
    peaks = [matmul_peak_gflops()]
    results = {impl: launch(impl, args) for impl in ("seqlab", "hf")}
    peaks.append(matmul_peak_gflops())  # before and after: the best is the least disturbed by other jobs
    peak = max(peaks)
    for result in results.values():
        for suffix in ("", "_packed_loss"):
            if result and f"useful_gflops_per_cpu_second{suffix}" in result:
                result[f"mfu{suffix}"] = result[f"useful_gflops_per_cpu_second{suffix}"] / peak
    ratios = print_table(results, peak)
    report = {
        "command": " ".join(["PYTHONPATH=.", sys.executable, *sys.argv]), "commit": git_commit(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "torch_threads": args.threads,
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                    "note": "shared 2-core machine; other jobs may run beside it (see loadavg)"},
        "matmul_peak_gflops": peak, "matmul_peak_measurements": peaks, "wall_seconds": time.time() - start,
        "dims": DIMS, "ratios_seqlab_over_hf": ratios, "results": results,
    }
    from seqlab.utils import atomic_write

    with atomic_write(RESULT) as handle:
        handle.write(json.dumps(report, indent=2) + "\n")
    print(f"load average before {load_before}, after {report['machine']['loadavg_after']}; wrote {RESULT}")
    print("reproduce:", report["command"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
