r"""Decoding speed of a *trained* Multi30k Transformer: seqlab against Hugging Face ``MarianMTModel`` holding the
same weights, on the same test sentences, each search stopping where the model says <eos>.

``transformer_vs_hf.py`` times random weights with every output forced to the same length: that measures the cost
of one decoder step.  A user translates with a trained model, whose outputs end at different lengths; how a search
spends the steps after a sentence has ended is then part of its speed.  seqlab's greedy and beam searches drop a
sentence from the batch when it is done (fairseq does the same); ``generate`` keeps every row of the batch until
the last one ends.  This script measures what that is worth, with identical weights, so both produce (nearly)
the same translations, and it says how many outputs agree and what each scores in BLEU.

Protocol: the first ``--sentences`` test_2016 sentences of the model's own split, encoded by its sentencepiece
model, sorted by length (as ``seqlab translate`` does) into batches of ``--batch-size``; per batch one step cap
for both, seqlab's rule for the batch's longest source (min(ceil(1.5 S) + 5, 100)); greedy and beam 5, length
penalty log-prob / length for both (seqlab ``length_penalty=average, alpha=1``, HF ``length_penalty=1``), a
sentence's beam search stopping by HF's default rule (``early_stopping=False``: the best live beam judged at its
current length; seqlab ``beam_stopping=current_length``) and, in the ``beam5_exact`` row, by the exact one (HF
``"never"``, seqlab ``bound``).  Every round times one full pass of each implementation, their order alternating;
the figures are CPU-time medians over the rounds, on one thread.  Before timing, HF's logits on teacher-forced
test pairs are compared with seqlab's (the largest difference is reported; over 1e-3 aborts).

The model: the benchmark architecture (3 + 3 layers, d_model 256, 4 heads, FFN 1024, post-LN, sinusoidal
positions, one tied embedding table, a joint sentencepiece vocabulary of ~8000: 7794 entries), trained 45
minutes on one thread:

    python benchmarks/run_seq2seq.py --config configs/multi30k_transformer.yaml \
        --name multi30k_transformer_postln_45min --set model_dir=runs/multi30k_transformer_postln \
        --set model.pre_norm=false --set model.dropout=0.1 --set model.attention_dropout=0.0 \
        --set train.lr=0.0007 --set train.warmup_steps=600 --set train.num_threads=1 \
        --set train.progress=false --set train.max_minutes=45 --set train.max_epochs=30
    PYTHONPATH=. OMP_NUM_THREADS=1 /work/venv-bench/bin/python benchmarks/trained_decoding_vs_hf.py \
        --model-dir runs/multi30k_transformer_postln

(the venv with transformers 5.23.0 beside torch 2.13.0: see ``transformer_vs_hf.py``).  Writes
benchmarks/results/trained_decoding_vs_hf.json.  ``--dtype bfloat16`` casts both models' weights to bfloat16 after
the fp32 logit check (HF's ``torch_dtype=torch.bfloat16``, ``seqlab translate --dtype bfloat16``) and writes
``trained_decoding_vs_hf_bf16.json``; the two then round differently, so fewer outputs are identical.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from common import ROOT, alternating_passes, git_commit, pass_figures

RESULT = ROOT / "benchmarks" / "results" / "trained_decoding_vs_hf.json"
# label -> (beam size, (seqlab decode.beam_stopping, HF early_stopping)): when a sentence's beam search may stop,
# the same rule for both: HF's default heuristic (the best live beam judged at its current length), and the exact
# rule (no live beam can win even at the step cap).  Greedy has no such rule.
SEARCHES = {"greedy": (1, (None, None)), "beam5": (5, ("current_length", False)),
            "beam5_exact": (5, ("bound", "never"))}


# ------------------------------------------------------------------------------------------------ the HF twin
def marian_from_seqlab(model, vocab) -> torch.nn.Module:
    """A ``MarianMTModel`` with ``model``'s weights (a post-LN, sinusoidal, fully tied ``TransformerSeq2Seq``)."""
    from transformers import MarianConfig, MarianMTModel

    cfg = model.config
    if cfg.pre_norm or cfg.positions != "sinusoidal" or not (cfg.share_embeddings and cfg.tie_output):
        raise SystemExit("the model must be post-LN, with sinusoidal positions and one tied embedding table "
                         "(Marian's architecture)")
    config = MarianConfig(vocab_size=len(vocab), d_model=cfg.d_model, encoder_layers=cfg.num_encoder_layers,
                          decoder_layers=cfg.num_decoder_layers, encoder_attention_heads=cfg.num_heads,
                          decoder_attention_heads=cfg.num_heads, encoder_ffn_dim=cfg.ffn_size,
                          decoder_ffn_dim=cfg.ffn_size, activation_function=cfg.activation,
                          max_position_embeddings=cfg.max_positions, scale_embedding=True,
                          share_encoder_decoder_embeddings=True, tie_word_embeddings=True,
                          pad_token_id=vocab.pad_id, eos_token_id=vocab.eos_id, decoder_start_token_id=vocab.bos_id,
                          forced_eos_token_id=None, attn_implementation="sdpa")
    hf = MarianMTModel(config).eval()
    with torch.no_grad():
        hf.model.shared.weight.copy_(model.src_embedding.embedding.weight)
        table = model.src_embedding.position_codes(cfg.max_positions)  # seqlab's layout: sin/cos interleaved
        hf.model.encoder.embed_positions.weight.copy_(table)
        hf.model.decoder.embed_positions.weight.copy_(table)
        for ours, theirs in zip(model.encoder_layers, hf.model.encoder.layers):
            _copy_attention(theirs.self_attn, ours.attention.qkv.weight, ours.attention.qkv.bias, ours.attention.out)
            _copy_norm(theirs.self_attn_layer_norm, ours.attention_block.norm)
            _copy_feed_forward(theirs, ours.feed_forward, ours.feed_forward_block.norm)
        for ours, theirs in zip(model.decoder.layers, hf.model.decoder.layers):
            _copy_attention(theirs.self_attn, ours.self_attention.qkv.weight, ours.self_attention.qkv.bias,
                            ours.self_attention.out)
            _copy_norm(theirs.self_attn_layer_norm, ours.self_attention_block.norm)
            cross = ours.cross_attention
            _copy_attention(theirs.encoder_attn, torch.cat([cross.query.weight, cross.key_value.weight]),
                            torch.cat([cross.query.bias, cross.key_value.bias]), cross.out)
            _copy_norm(theirs.encoder_attn_layer_norm, ours.cross_attention_block.norm)
            _copy_feed_forward(theirs, ours.feed_forward, ours.feed_forward_block.norm)
        hf.final_logits_bias.zero_()  # seqlab's output projection has no bias
    return hf


def _copy_attention(theirs, qkv_weight: torch.Tensor, qkv_bias: torch.Tensor, out: torch.nn.Linear) -> None:
    for projection, weight, bias in zip((theirs.q_proj, theirs.k_proj, theirs.v_proj), qkv_weight.chunk(3),
                                        qkv_bias.chunk(3)):
        projection.weight.copy_(weight)
        projection.bias.copy_(bias)
    theirs.out_proj.weight.copy_(out.weight)
    theirs.out_proj.bias.copy_(out.bias)


def _copy_norm(theirs: torch.nn.LayerNorm, ours: torch.nn.LayerNorm) -> None:
    theirs.weight.copy_(ours.weight)
    theirs.bias.copy_(ours.bias)


def _copy_feed_forward(theirs, feed_forward, norm: torch.nn.LayerNorm) -> None:
    first, _, second = feed_forward.net
    for projection, source in ((theirs.fc1, first), (theirs.fc2, second)):
        projection.weight.copy_(source.weight)
        projection.bias.copy_(source.bias)
    _copy_norm(theirs.final_layer_norm, norm)


@torch.no_grad()
def largest_logit_difference(model, hf, pre, pairs: list[tuple[str, str]]) -> float:
    """max |seqlab logits - HF logits| over teacher-forced pairs (real target positions)."""
    from seqlab.tasks.translation import pad_sources

    vocab = pre.tgt_vocab
    src_ids, src_mask = pad_sources([pre.encode_src(s) for s, _ in pairs], torch.device("cpu"))
    targets = [[vocab.bos_id, *pre.tgt_ids(t).tolist()] for _, t in pairs]
    tgt_in, tgt_mask = pad_sources(targets, torch.device("cpu"))
    ours = model(src_ids, src_mask, tgt_in)
    theirs = hf(input_ids=src_ids, attention_mask=src_mask.long(), decoder_input_ids=tgt_in).logits
    return float((ours - theirs)[tgt_mask].abs().max())


# ------------------------------------------------------------------------------------------------ searches
def step_cap(longest_source: int) -> int:
    """seqlab's default budget (``Translator._max_len``: max_len_ratio 1.5, max_len 100) for the longest source."""
    return min(math.ceil(1.5 * longest_source) + 5, 100)


@torch.no_grad()
def decode_seqlab(model, vocab, src_ids: torch.Tensor, src_mask: torch.Tensor, beam_size: int,
                  stopping: str | None) -> list[list[int]]:
    from seqlab.decoding.beam import beam_search
    from seqlab.decoding.config import DecodeConfig
    from seqlab.decoding.greedy import greedy_search

    cap = step_cap(int(src_mask.sum(1).max()))
    state = model.init_state(model.encode(src_ids, src_mask), src_mask)
    if beam_size == 1:
        return greedy_search(model, state, src_ids.size(0), vocab.bos_id, vocab.eos_id, cap).tokens
    config = DecodeConfig(strategy="beam", beam_size=beam_size, alpha=1.0, length_penalty="average", max_len=cap,
                          beam_stopping=stopping)
    hypotheses = beam_search(model, state, src_ids.size(0), vocab.bos_id, vocab.eos_id, config, cap)
    return [best[0].tokens for best in hypotheses]


@torch.no_grad()
def decode_hf(hf, vocab, src_ids: torch.Tensor, src_mask: torch.Tensor, beam_size: int,
              early_stopping: bool | str | None) -> list[list[int]]:
    cap = step_cap(int(src_mask.sum(1).max()))
    beam_options = {} if beam_size == 1 else {"length_penalty": 1.0, "early_stopping": early_stopping}
    output = hf.generate(src_ids, attention_mask=src_mask.long(), num_beams=beam_size, do_sample=False,
                         max_new_tokens=cap, **beam_options)
    rows = []
    for ids in output[:, 1:].tolist():  # the decoder start token first
        rows.append(ids[:ids.index(vocab.eos_id)] if vocab.eos_id in ids else
                    [i for i in ids if i != vocab.pad_id])
    return rows



def corpus_bleu(pre, outputs: list[list[int]], references: list[str]) -> tuple[float, str]:
    import sacrebleu

    bleu = sacrebleu.metrics.BLEU()
    score = bleu.corpus_score([pre.decode_tgt(ids) for ids in outputs], [references])
    return round(score.score, 2), str(bleu.get_signature())


# ------------------------------------------------------------------------------------------------ main
def length_sorted_batches(pre, pairs: list[tuple[str, str]], batch_size: int) -> tuple[list, list[str]]:
    """-> ((src_ids (B, S), src_mask (B, S)) batches of the sources sorted by length, as ``seqlab translate``
    batches them; the references in that order)."""
    from seqlab.tasks.translation import pad_sources

    encoded = [pre.encode_src(src) for src, _ in pairs]
    order = sorted(range(len(pairs)), key=lambda i: len(encoded[i]))
    batches = [pad_sources([encoded[i] for i in order[k:k + batch_size]], torch.device("cpu"))
               for k in range(0, len(order), batch_size)]
    return batches, [pairs[i][1] for i in order]


def compare(label: str, decoders: dict, batches: list, pre, references: list[str], rounds: int) -> dict:
    """Time one search of both implementations, ``rounds`` full passes each, order alternating -> its figures:
    per implementation the median rates, the passes and BLEU; the ratios and how many outputs are identical."""
    passes, outputs = alternating_passes(label, decoders, batches, rounds)
    figures = {}
    for name in decoders:
        bleu, signature = corpus_bleu(pre, outputs[name], references)
        figures[name] = {**pass_figures(passes[name], len(references)), "bleu": bleu,
                         "output_tokens": sum(len(row) for row in outputs[name])}
    ours, theirs = figures["seqlab"], figures["hf"]
    return {**figures, "bleu_signature": signature,
            "identical_outputs": sum(a == b for a, b in zip(outputs["seqlab"], outputs["hf"])),
            "ratio_cpu": ours["sentences_per_cpu_second"] / theirs["sentences_per_cpu_second"],
            "ratio_cpu_by_round": [h / s for s, h in zip(ours["cpu_seconds_by_round"], theirs["cpu_seconds_by_round"])],
            "ratio_wall": ours["sentences_per_second"] / theirs["sentences_per_second"]}


def print_table(results: dict, sentences: int, batch_size: int, rounds: int) -> None:
    print(f"\n{sentences} test sentences, batches of {batch_size} sorted by length, one thread, CPU time, "
          f"median of {rounds} rounds")
    print(f"{'':12}{'seqlab sent/CPU-s':>19}{'HF sent/CPU-s':>15}{'ratio':>8}{'by round':>20}"
          f"{'BLEU seqlab / HF':>19}{'identical':>11}")
    for label, row in results.items():
        by_round = ", ".join(f"{r:.2f}" for r in row["ratio_cpu_by_round"])
        ours, theirs = row["seqlab"]["sentences_per_cpu_second"], row["hf"]["sentences_per_cpu_second"]
        bleu = f"{row['seqlab']['bleu']:>11.2f} / {row['hf']['bleu']:<6.2f}"
        print(f"{label:12}{ours:>19.1f}{theirs:>15.1f}{row['ratio_cpu']:>7.2f}x{by_round:>20}{bleu}"
              f"{row['identical_outputs']:>6}/{sentences}")


def write_report(args: argparse.Namespace, loaded, transformers_version: str, sentences: int, difference: float,
                 start: float, load_before: tuple[float, float, float], results: dict) -> None:
    """The JSON record of a run (command, commit, machine, figures), written atomically to ``args.out``."""
    from seqlab.utils import atomic_write

    threads_variable = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
    report = {"command": " ".join(["PYTHONPATH=.", *threads_variable, sys.executable, *sys.argv]),
              "commit": git_commit(), "model_dir": args.model_dir, "checkpoint": str(loaded.checkpoint),
              "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                          "torch": torch.__version__, "transformers": transformers_version,
                          "torch_threads": args.threads, "loadavg_before": load_before,
                          "loadavg_after": os.getloadavg()},
              "dtype": args.dtype, "sentences": sentences, "batch_size": args.batch_size, "rounds": args.rounds,
              "largest_logit_difference": difference, "wall_seconds": time.time() - start, "results": results}
    with atomic_write(Path(args.out)) as handle:
        handle.write(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}\nreproduce: {report['command']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="a trained seqlab Transformer (see the docstring)")
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="bfloat16: both models' weights cast after the fp32 logit check "
                             "(default --out then trained_decoding_vs_hf_bf16.json)")
    parser.add_argument("--out")
    args = parser.parse_args()
    args.out = args.out or str(RESULT if args.dtype == "float32" else RESULT.with_name(f"{RESULT.stem}_bf16.json"))
    torch.set_num_threads(args.threads)
    start, load_before = time.time(), os.getloadavg()

    import transformers

    from seqlab.data.pipeline import load_split
    from seqlab.tasks import load_model_dir

    loaded = load_model_dir(args.model_dir)
    model, pre = loaded.model, loaded.preprocessing
    vocab = pre.tgt_vocab
    hf = marian_from_seqlab(model, vocab)
    pairs = load_split(loaded.config.data, "test")[:args.sentences]
    difference = largest_logit_difference(model, hf, pre, pairs[:16])
    print(f"largest |logit difference| seqlab vs HF on 16 teacher-forced test pairs: {difference:.2e}")
    if difference > 1e-3:
        raise SystemExit("the HF copy does not compute seqlab's model: not timing")
    model.to(getattr(torch, args.dtype)), hf.to(getattr(torch, args.dtype))
    batches, references = length_sorted_batches(pre, pairs, args.batch_size)
    results = {}
    for label, (beam, (ours, theirs)) in SEARCHES.items():
        decoders = {"seqlab": lambda s, m: decode_seqlab(model, vocab, s, m, beam, ours),
                    "hf": lambda s, m: decode_hf(hf, vocab, s, m, beam, theirs)}
        for decode in decoders.values():  # warm-up: allocator, kernels
            decode(*(t[:2] for t in batches[0]))
        results[label] = compare(label, decoders, batches, pre, references, args.rounds)
    print_table(results, len(pairs), args.batch_size, args.rounds)
    write_report(args, loaded, transformers.__version__, len(pairs), difference, start, load_before, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
