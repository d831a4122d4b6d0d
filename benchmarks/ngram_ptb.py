"""Count-based n-gram LMs on Penn Treebank: perplexity, build/score time and memory against KenLM and NLTK.

    PYTHONPATH=. python benchmarks/ngram_ptb.py [--orders 3 4 5] [--nltk-sentences 20]

For every order x estimator (mle, add-k with k = 1, kn, mkn): train on ptb.train, report test perplexity (words +
one </s> per sentence, as KenLM), build time (fit from token lists; reading the gzipped text is timed apart),
scoring time of the whole test set, and peak resident memory of a fresh process that does read + build + score.
Every configuration runs in its own process so that ``ru_maxrss`` belongs to it alone.

Peers:
* KenLM ``lmplz -o N`` (modified Kneser-Ney), measured on this machine by the lead: test perplexity, build time,
  scoring time and memory below.  Goals: our mkn within 1 % of its perplexity, build + score within 3x its time.
* KenLM's Python module scores our mkn ARPA files: the per-sentence log10 scores must agree (checks the export).
* NLTK ``nltk.lm.KneserNeyInterpolated`` trigram: fit on all of ptb.train, scored on the first test sentences only
  because it scores ~10 tokens/s.

Writes benchmarks/results/ngram_ptb.json.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import ROOT

from seqlab.utils import atomic_write  # noqa: E402

ESTIMATORS = {"mle": {}, "add-k": {"k": 1.0}, "kn": {}, "mkn": {}}
# KenLM anchors (lmplz + query on this machine, same files): order -> (test ppl, build s); scoring 0.2-0.75 s, 82 MiB.
KENLM = {3: (148.28, 0.8), 4: (142.72, 1.4), 5: (141.19, 1.9)}
KENLM_SCORE_S = 0.2  # the fastest of KenLM's 0.2-0.75 s scoring runs: the strictest reading of the goal
KENLM_MEMORY_MIB = 82
LOAD_NOTE = "shared 2-core machine, other jobs running"


def read_ptb(split: str) -> list[list[str]]:
    from seqlab.data.corpora import read_lines
    from seqlab.data.datasets import resolve_data_dir

    return [line.split() for line in read_lines(resolve_data_dir() / "ptb" / f"ptb.{split}.txt.gz")]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(order: int, smoothing: str) -> dict:
    """One configuration, run in a fresh process: read, build, score, and the memory that took."""
    import numpy as np

    from seqlab.lm.ngram import NGramLM

    start = time.perf_counter()
    train, test = read_ptb("train"), read_ptb("test")
    read_s = time.perf_counter() - start
    rss_after_read = peak_rss_mib()
    start = time.perf_counter()
    model = NGramLM.fit(train, order, smoothing, **ESTIMATORS[smoothing])
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    result = model.perplexity(test)
    score_s = time.perf_counter() - start
    figures = {"order": order, "smoothing": smoothing, "test_perplexity": _finite(result.perplexity),
               "test_tokens": result.tokens, "oovs": result.oovs, "read_s": round(read_s, 3),
               "build_s": round(build_s, 3), "score_s": round(score_s, 3),
               "ngrams_per_order": [len(level.keys) for level in model.levels],
               "peak_rss_mib": round(peak_rss_mib(), 1),
               "rss_growth_mib": round(peak_rss_mib() - rss_after_read, 1),
               "discounts": model.info.get("discounts")}
    if smoothing == "mkn":
        figures["kenlm_module_agreement"] = _kenlm_agreement(model, test[:500], np)
    return figures


def _finite(value: float) -> float | str:
    return round(value, 3) if math.isfinite(value) else "inf"  # JSON has no infinity


def _kenlm_agreement(model, sentences: list[list[str]], np) -> dict | str:
    """Write our ARPA, load it in KenLM's Python module, compare sentence scores and time KenLM's scoring."""
    try:
        import kenlm
    except ImportError:
        return "kenlm not installed (pip install kenlm)"
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.arpa"
        start = time.perf_counter()
        model.to_arpa(path)
        write_s = time.perf_counter() - start
        oracle = kenlm.Model(str(path))
    texts = [" ".join(sentence) for sentence in sentences]
    start = time.perf_counter()
    theirs = np.array([oracle.score(text, bos=True, eos=True) for text in texts])
    kenlm_score_s = time.perf_counter() - start
    ours = np.array([model.sentence_log10prob(sentence) for sentence in sentences])
    return {"sentences": len(sentences), "max_abs_log10_diff": float(np.abs(ours - theirs).max()),
            "arpa_write_s": round(write_s, 3), "kenlm_module_score_s": round(kenlm_score_s, 3)}


def measure_nltk(num_sentences: int) -> dict:
    """NLTK's interpolated Kneser-Ney trigram (default discount 0.1), and ours on the same sentences."""
    try:
        from nltk.lm import KneserNeyInterpolated
        from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
        from nltk.util import ngrams
    except ImportError:
        return {"skipped": "nltk not installed (pip install nltk)"}
    from seqlab.lm.ngram import NGramLM

    train, test = read_ptb("train"), read_ptb("test")[:num_sentences]
    start = time.perf_counter()
    grams, vocab = padded_everygram_pipeline(3, train)
    nltk_model = KneserNeyInterpolated(3)
    nltk_model.fit(grams, vocab)
    fit_s = time.perf_counter() - start
    trigrams = [g for sentence in test for g in ngrams(list(pad_both_ends(sentence, 3)), 3)]
    start = time.perf_counter()
    nltk_ppl = nltk_model.perplexity(trigrams)
    score_s = time.perf_counter() - start
    ours = {name: NGramLM.fit(train, 3, "kn", discount=d).perplexity(test).perplexity
            for name, d in (("kn_estimated_discounts", None), ("kn_discount_0.1", 0.1))}
    return {"sentences": num_sentences, "nltk_fit_s": round(fit_s, 2), "nltk_score_s": round(score_s, 2),
            "nltk_scored_trigrams": len(trigrams), "nltk_tokens_per_s": round(len(trigrams) / score_s, 1),
            "nltk_perplexity": _finite(nltk_ppl), **{f"ours_{k}_perplexity": round(v, 3) for k, v in ours.items()}}


def compare(results: list[dict]) -> list[dict]:
    """Ratios of our mkn against the KenLM anchors (perplexity and build + score time)."""
    rows = []
    for figures in results:
        if figures["smoothing"] != "mkn" or figures["order"] not in KENLM:
            continue
        kenlm_ppl, kenlm_build_s = KENLM[figures["order"]]
        ours_s = figures["build_s"] + figures["score_s"]
        rows.append({"order": figures["order"], "perplexity": figures["test_perplexity"],
                     "kenlm_perplexity": kenlm_ppl,
                     "perplexity_ratio": round(figures["test_perplexity"] / kenlm_ppl, 5),
                     "build_plus_score_s": round(ours_s, 3), "kenlm_build_plus_score_s": kenlm_build_s + KENLM_SCORE_S,
                     "time_ratio": round(ours_s / (kenlm_build_s + KENLM_SCORE_S), 3),
                     "with_reading_time_ratio": round((ours_s + figures["read_s"]) / (kenlm_build_s + KENLM_SCORE_S),
                                                      3),
                     "peak_rss_mib": figures["peak_rss_mib"], "kenlm_memory_mib": KENLM_MEMORY_MIB})
    return rows


def print_tables(results: list[dict], ratios: list[dict], nltk: dict) -> None:
    print(f"{'order':>5} {'estimator':>9} {'test ppl':>10} {'build s':>8} {'score s':>8} {'peak MiB':>9}")
    for r in results:
        ppl = r["test_perplexity"]
        ppl_text = f"{ppl:10.2f}" if isinstance(ppl, float) else f"{ppl:>10}"
        print(f"{r['order']:>5} {r['smoothing']:>9} {ppl_text} {r['build_s']:8.2f} {r['score_s']:8.2f} "
              f"{r['peak_rss_mib']:9.1f}")
    print("\nmkn vs KenLM lmplz (perplexity goal: within 1 %; time goal: build + score within 3x):")
    for r in ratios:
        print(f"  order {r['order']}: ppl {r['perplexity']:.2f} vs {r['kenlm_perplexity']:.2f} "
              f"(ratio {r['perplexity_ratio']:.4f}); time {r['build_plus_score_s']:.2f} s vs "
              f"{r['kenlm_build_plus_score_s']:.2f} s (ratio {r['time_ratio']:.2f}, {r['with_reading_time_ratio']:.2f} "
              f"with reading the text); peak RSS {r['peak_rss_mib']:.0f} MiB vs {r['kenlm_memory_mib']} MiB")
    print(f"\nNLTK KneserNeyInterpolated(3): {json.dumps(nltk)}")


def machine() -> dict:
    import numpy

    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": multiprocessing.cpu_count(), "numpy": numpy.__version__}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no commit yet)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, nargs="+", default=[3, 4, 5])
    parser.add_argument("--nltk-sentences", type=int, default=20, help="0 skips NLTK")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "ngram_ptb.json"))
    args = parser.parse_args()
    start = time.perf_counter()
    configs = [(order, smoothing) for order in args.orders for smoothing in ESTIMATORS]
    # one fresh process per configuration (spawned, one at a time): its peak RSS is that configuration's alone
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, max_tasks_per_child=1) as pool:
        results = [pool.submit(measure, *config).result() for config in configs]
        nltk = pool.submit(measure_nltk, args.nltk_sentences).result() if args.nltk_sentences else {}
    ratios = compare(results)
    print_tables(results, ratios, nltk)
    command = "PYTHONPATH=. python benchmarks/ngram_ptb.py " + " ".join(sys.argv[1:])
    report = {"command": command.strip(), "git_commit": git_commit(), "machine": machine(), "load": LOAD_NOTE,
              "wall_time_s": round(time.perf_counter() - start, 1), "results": results, "kenlm_comparison": ratios,
              "kenlm_anchors": {"perplexity_and_build_s": KENLM, "score_s": "0.2-0.75", "memory_mib": 82},
              "nltk": nltk, "notes": NOTES}
    with atomic_write(args.output) as handle:
        json.dump(report, handle, indent=2)
    print(f"\nwrote {args.output}\nreproduce: {command.strip()}")


NOTES = [
    "Perplexity counts every word plus one </s> per sentence (82,430 test tokens), as KenLM does; PTB test has no "
    "word outside the training vocabulary, so OOVs are 0.",
    "MLE is the seed's n(h w) / n(h) with back-off only for unseen contexts: any unseen n-gram after a seen context "
    "has probability 0, so its test perplexity is infinite (NLTK's MLE gives inf for the same reason).",
    "NLTK's KneserNeyInterpolated differs in details: fixed discount 0.1 for every order (ours: estimated from "
    "count-of-counts, or --discount), n-1 </s> pads per sentence scored as extra tokens, no interpolation of the "
    "lowest order with the uniform distribution (unseen words get probability 0 -> inf perplexity), and counts "
    "kept in Python dicts queried one n-gram at a time, which is why it scores ~10 tokens/s against our millions.",
]


if __name__ == "__main__":
    main()
