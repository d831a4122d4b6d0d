r"""Decoding speed of a trained Multi30k Transformer: seqlab fp32 and int8 against CTranslate2 fp32 and int8,
Hugging Face and ONNX Runtime, every one of them running what ``seqlab export`` wrote for the same model.

Implementations (one process, one thread unless ``--threads``):

* ``seqlab``: ``load_model_dir(MODEL_DIR)``, seqlab's greedy / beam search (the reference, fp32);
* ``seqlab_int8``: ``load_model_dir(MODEL_DIR, quantize="int8")``, the same searches;
* ``hf``: ``MarianMTModel.from_pretrained`` of ``seqlab export --format hf``, ``generate``;
* ``ct2`` / ``ct2_int8``: ``ctranslate2.Translator`` of ``seqlab export --format ctranslate2 [--quantization
  int8]``, ``translate_batch`` on the sentencepiece pieces;
* ``onnx``: ``seqlab export --format onnx`` under ONNX Runtime, driven by seqlab's searches
  (``seqlab.export.onnx_export.OnnxRuntimeModel``).

Protocol (as ``trained_decoding_vs_hf.py``): the first ``--sentences`` test_2016 sentences, encoded by the model's
sentencepiece model, sorted by length into batches of ``--batch-size`` (throughput) and of 1 (latency, the
first ``--latency-sentences`` of them); per batch one step cap for everyone, seqlab's rule for the longest source
(min(ceil(1.5 S) + 5, 100)); greedy and beam 5 with log-prob / length (seqlab ``length_penalty=average,
alpha=1``, HF ``length_penalty=1``, CTranslate2 ``length_penalty=1``), beam stopping by HF's default rule
(seqlab ``beam_stopping=current_length``; CTranslate2 has its own).  Every round times one full pass of each
implementation, the order reversed every other round; the figures are medians over the rounds of sentences per
CPU second (``time.process_time``: the process's own CPU, so other jobs on the machine count little) and per
wall second.  Reported: the ratio to CTranslate2 (seqlab fp32 / CTranslate2 fp32, seqlab int8 / CTranslate2
int8), sacreBLEU, and how many outputs are identical to seqlab fp32's.

The matrix-product floor (``decode_floor.py``'s idea, on this model's real output lengths): the CPU time of the
linear maps alone, fp32 (``x @ W^T``) and int8 (``seqlab.quantize.Int8Linear``), for the rows the search must run
through them: per sentence (its seqlab fp32 output length + 1) decoder rows, times K for beam K (a lower bound:
beams run past the best hypothesis' end), in batches of the batch size, plus the encoder's maps on the source
tokens.  No attention, softmax or search: no implementation can beat it.

    PYTHONPATH=. OMP_NUM_THREADS=1 python3 benchmarks/decode_vs_ctranslate2.py --model-dir /work/models/m30k_postln

Writes benchmarks/results/decode_vs_ctranslate2.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import ROOT, alternating_passes, git_commit, pass_figures
from trained_decoding_vs_hf import corpus_bleu, decode_hf, decode_seqlab, length_sorted_batches, step_cap

RESULT = ROOT / "benchmarks" / "results" / "decode_vs_ctranslate2.json"
SEARCHES = {"greedy": 1, "beam5": 5}
BEAM_STOPPING = ("current_length", False)  # (seqlab, HF): HF's default rule for both


# ------------------------------------------------------------------------------------------------ the peers
def export_all(model_dir: str, root: Path) -> dict[str, Path]:
    from seqlab.export import export

    return {"hf": export(model_dir, "hf", root / "hf"), "ct2": export(model_dir, "ctranslate2", root / "ct2"),
            "ct2_int8": export(model_dir, "ctranslate2", root / "ct2_int8", "int8"),
            "onnx": export(model_dir, "onnx", root / "onnx")}


def ct2_decoder(translator, vocab, beam_size: int):
    """(src_ids, src_mask) -> output ids, through CTranslate2 on the pieces of the same ids."""
    def decode(src_ids: torch.Tensor, src_mask: torch.Tensor) -> list[list[int]]:
        cap = step_cap(int(src_mask.sum(1).max()))
        pieces = [[vocab.id_to_token(i) for i in row[:length]] for row, length in
                  zip(src_ids.tolist(), src_mask.sum(1).tolist())]
        results = translator.translate_batch(pieces, beam_size=beam_size, max_decoding_length=cap,
                                             length_penalty=1.0, max_batch_size=0)
        return [[vocab.token_to_id(token) for token in result.hypotheses[0]] for result in results]

    return decode


def build_decoders(args: argparse.Namespace, paths: dict[str, Path], vocab) -> dict[str, dict]:
    """search -> implementation -> decode(src_ids, src_mask) -> output ids."""
    import ctranslate2
    from transformers import MarianMTModel

    from seqlab.export.onnx_export import OnnxRuntimeModel
    from seqlab.tasks import load_model_dir

    fp32 = load_model_dir(args.model_dir).model
    int8 = load_model_dir(args.model_dir, quantize="int8").model
    hf = MarianMTModel.from_pretrained(paths["hf"]).eval()
    ct2 = {name: ctranslate2.Translator(str(paths[name]), device="cpu", intra_threads=args.threads, inter_threads=1)
           for name in ("ct2", "ct2_int8")}
    onnx = OnnxRuntimeModel(paths["onnx"], threads=args.threads)
    decoders = {}
    for label, beam in SEARCHES.items():
        stopping = None if beam == 1 else BEAM_STOPPING[0]
        decoders[label] = {
            "seqlab": lambda s, m, beam=beam, stop=stopping: decode_seqlab(fp32, vocab, s, m, beam, stop),
            "seqlab_int8": lambda s, m, beam=beam, stop=stopping: decode_seqlab(int8, vocab, s, m, beam, stop),
            "hf": lambda s, m, beam=beam: decode_hf(hf, vocab, s, m, beam, None if beam == 1 else BEAM_STOPPING[1]),
            "ct2": ct2_decoder(ct2["ct2"], vocab, beam), "ct2_int8": ct2_decoder(ct2["ct2_int8"], vocab, beam),
            "onnx": lambda s, m, beam=beam, stop=stopping: decode_seqlab(onnx, vocab, s, m, beam, stop)}
    return decoders


# ------------------------------------------------------------------------------------------------ timing

def compare(label: str, decoders: dict, batches: list, pre, references: list[str], rounds: int) -> dict:
    """``rounds`` passes of every implementation, order reversed every other round -> per implementation its
    median rates, passes, BLEU and outputs identical to seqlab fp32; the two ratios to CTranslate2."""
    for decode in decoders.values():  # warm-up: allocators, kernels, ORT's first-run planning
        decode(*batches[0])
    passes, outputs = alternating_passes(label, decoders, batches, rounds)
    figures = {}
    for name in decoders:
        bleu, signature = corpus_bleu(pre, outputs[name], references)
        figures[name] = {**pass_figures(passes[name], len(references)), "bleu": bleu,
                         "identical_to_seqlab": sum(a == b for a, b in zip(outputs[name], outputs["seqlab"])),
                         "output_tokens": sum(len(row) for row in outputs[name])}
    rate = {name: figures[name]["sentences_per_cpu_second"] for name in figures}
    return {"implementations": figures, "bleu_signature": signature, "sentences": len(references),
            "ratio_seqlab_to_ct2": rate["seqlab"] / rate["ct2"],
            "ratio_seqlab_int8_to_ct2_int8": rate["seqlab_int8"] / rate["ct2_int8"],
            "output_lengths": [len(row) for row in outputs["seqlab"]]}


# ------------------------------------------------------------------------------------------------ the floor
def linear_maps(model) -> tuple[list[torch.nn.Linear], list[torch.nn.Linear]]:
    """(the maps every source token goes through: encoder + memory K/V; those every decoder row goes through:
    the decoder layers' and the output projection)."""
    encoder = [m for layer in model.encoder_layers for m in layer.modules() if isinstance(m, torch.nn.Linear)]
    encoder += [layer.cross_attention.key_value for layer in model.decoder.layers]
    decoder = [m for layer in model.decoder.layers for m in layer.modules()
               if isinstance(m, torch.nn.Linear) and all(m is not l.cross_attention.key_value
                                                         for l in model.decoder.layers)]
    return encoder, decoder + [model.decoder.output]


@torch.no_grad()
def product_seconds(maps, rows_per_call: list[int], int8: bool) -> float:
    """CPU seconds of every map applied to random rows, one call per entry of ``rows_per_call`` (median of 3)."""
    from seqlab.quantize import Int8Linear

    functions = [Int8Linear.from_linear(m) if int8 else (lambda x, w=m.weight: x @ w.t()) for m in maps]
    inputs = {rows: {m.in_features: torch.randn(rows, m.in_features) for m in maps} for rows in set(rows_per_call)}
    times = []
    for _ in range(3):
        start = time.process_time()
        for rows in rows_per_call:
            for function, m in zip(functions, maps):
                function(inputs[rows][m.in_features])
        times.append(time.process_time() - start)
    return statistics.median(times)


def floor(model, lengths: list[int], source_tokens: list[int], batch_size: int, beam: int) -> dict:
    """Sentences per CPU second if only the linear maps cost anything (fp32 and int8); see the docstring."""
    encoder, decoder = linear_maps(model)
    calls = []  # one entry per decoder step of each batch: its live rows
    for start in range(0, len(lengths), batch_size):
        chunk = lengths[start:start + batch_size]
        calls += [beam * sum(length + 1 > step for length in chunk) for step in range(max(chunk) + 1)]
    encoder_calls = [sum(source_tokens[i:i + batch_size]) for i in range(0, len(source_tokens), batch_size)]
    result = {}
    for name, int8 in (("fp32", False), ("int8", True)):
        seconds = product_seconds(decoder, calls, int8) + product_seconds(encoder, encoder_calls, int8)
        result[f"{name}_sentences_per_cpu_second"] = len(lengths) / seconds
    return result


# ------------------------------------------------------------------------------------------------ main
def run_batch_size(args, decoders, pre, pairs, batch_size: int, model) -> dict:
    batches, references = length_sorted_batches(pre, pairs, batch_size)
    results = {}
    for label, beam in SEARCHES.items():
        results[label] = compare(f"batch {batch_size} {label}", decoders[label], batches, pre, references,
                                 args.rounds)
        sources = [int(n) for _, mask in batches for n in mask.sum(1).tolist()]
        results[label]["floor"] = floor(model, results[label].pop("output_lengths"), sources, batch_size, beam)
    return results


def print_table(results: dict) -> None:
    names = ["seqlab", "seqlab_int8", "hf", "ct2", "ct2_int8", "onnx"]
    print(f"\n{'sentences/CPU-s':22}" + "".join(f"{n:>12}" for n in names)
          + f"{'fp32 vs CT2':>13}{'int8 vs CT2':>13}{'floor fp32':>12}{'floor int8':>12}")
    for batch, rows in results.items():
        for label, row in rows.items():
            figures = row["implementations"]
            print(f"{batch + ' ' + label:22}" + "".join(f"{figures[n]['sentences_per_cpu_second']:12.1f}"
                                                       for n in names)
                  + f"{row['ratio_seqlab_to_ct2']:12.2f}x{row['ratio_seqlab_int8_to_ct2_int8']:12.2f}x"
                  + f"{row['floor']['fp32_sentences_per_cpu_second']:12.1f}"
                  + f"{row['floor']['int8_sentences_per_cpu_second']:12.1f}")
            print(f"{'  BLEU / identical':22}" + "".join(
                f"{figures[n]['bleu']:>6.2f}/{figures[n]['identical_to_seqlab']:<5}" for n in names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="a trained post-LN Transformer (see the docstring)")
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--latency-sentences", type=int, default=100, help="sentences decoded one at a time")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start, load_before = time.time(), os.getloadavg()

    from seqlab.data.pipeline import load_split
    from seqlab.tasks import load_model_dir

    loaded = load_model_dir(args.model_dir)
    pre = loaded.preprocessing
    pairs = load_split(loaded.config.data, "test")[:args.sentences]
    with tempfile.TemporaryDirectory() as root:
        decoders = build_decoders(args, export_all(args.model_dir, Path(root)), pre.tgt_vocab)
        results = {f"batch{args.batch_size}": run_batch_size(args, decoders, pre, pairs, args.batch_size,
                                                             loaded.model),
                   "batch1": run_batch_size(args, decoders, pre, pairs[:args.latency_sentences], 1, loaded.model)}
    print_table(results)
    write_report(args, loaded, start, load_before, results)
    return 0


def write_report(args, loaded, start: float, load_before, results: dict) -> None:
    import ctranslate2
    import onnxruntime
    import transformers

    from seqlab.utils import atomic_write

    threads = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
    report = {"command": " ".join(["PYTHONPATH=.", *threads, "python3", *sys.argv]), "commit": git_commit(),
              "model_dir": args.model_dir, "checkpoint": str(loaded.checkpoint),
              "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                          "torch": torch.__version__, "transformers": transformers.__version__,
                          "ctranslate2": ctranslate2.__version__, "onnxruntime": onnxruntime.__version__,
                          "threads": args.threads, "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
              "sentences": args.sentences, "latency_sentences": args.latency_sentences,
              "batch_size": args.batch_size, "rounds": args.rounds, "wall_seconds": time.time() - start,
              "results": results}
    with atomic_write(Path(args.out)) as handle:
        handle.write(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}\nreproduce: {report['command']}")


if __name__ == "__main__":
    sys.exit(main())
