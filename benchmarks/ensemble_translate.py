"""A translation ensemble on real data: M Multi30k Transformers trained alike but for their seed, each member and
their ensembles on test_2016 (sacreBLEU, greedy and beam 5).

    # the members: one recipe, the same update budget, seeds 1..3
    for s in 1 2 3; do python benchmarks/run_seq2seq.py --config configs/multi30k_transformer.yaml \\
        --name multi30k_transformer_postln_413steps_seed$s --set model_dir=runs/m30k_s$s --set train.seed=$s \\
        --set train.max_steps=413 ...; done      # the overrides this file's JSON records
    python benchmarks/ensemble_translate.py --models runs/m30k_s1 runs/m30k_s2 runs/m30k_s3

Two ensembles, the two of seed 002:

* "mean": one model whose next-token distribution is the mean of the members' (``seqlab.ensemble.combine``),
  driven by the same greedy and beam searches as one model (``seqlab evaluate A --models B C``);
* "vote": every member translates alone and each sentence takes the translation most members gave
  (``seqlab.decoding.ensemble.vote`` over the members' own outputs; a tie goes to the first member, so with three members that all differ it is
  member 1's output).

"Best member" is chosen on the test set, which flatters it: the ensemble is held against the luckiest single.
Writes ``benchmarks/results/ensemble_multi30k.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from common import git_commit, machine, write_result

SEARCHES = {"greedy": ("greedy", 1), "beam5": ("beam", 5)}


def decode_config(loaded, strategy: str, beam_size: int):
    from seqlab.config import from_dict, to_dict
    from seqlab.decoding.config import DecodeConfig

    return from_dict(DecodeConfig, {**to_dict(loaded.config.decode), "strategy": strategy, "beam_size": beam_size},
                     "decode.")


def score(loaded, pairs, strategy: str, beam_size: int) -> tuple[list[str], dict]:
    """(hypotheses, figures) of one model or ensemble on ``pairs``."""
    from seqlab.tasks.translation import evaluate

    start = time.perf_counter()
    hyps, bleu, ppl = evaluate(loaded, pairs, decode_config(loaded, strategy, beam_size), "cpu", 64)
    return hyps, {"bleu": round(bleu.score, 2), "signature": bleu.signature, "perplexity": round(ppl["ppl"], 2),
                  "seconds_incl_ppl": round(time.perf_counter() - start, 1)}


def member_training(model_dir: Path) -> dict:
    """Steps, wall time and best validation BLEU from a member's train_log.jsonl."""
    events = [json.loads(line) for line in (model_dir / "train_log.jsonl").read_text().splitlines() if line.strip()]
    start = next(e for e in events if e["event"] == "start")
    validations = [e for e in events if e["event"] == "validate"]
    return {"model_dir": str(model_dir), "seed": start.get("seed"), "argv": start.get("argv"),
            "steps": max(e["step"] for e in validations), "train_seconds": validations[-1]["elapsed_seconds"],
            "best_valid_bleu": round(max(e.get("bleu", 0.0) for e in validations), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="the members' model directories")
    parser.add_argument("--name", default="ensemble_multi30k")
    parser.add_argument("--sentences", type=int, default=0, help="only the first N test pairs (0 = all)")
    args = parser.parse_args()
    from seqlab.data.pipeline import load_split
    from seqlab.decoding.ensemble import vote
    from seqlab.ensemble import combine, load_members
    from seqlab.metrics.bleu import corpus_bleu

    torch.set_num_threads(1)  # a shared 2-core machine
    wall = time.perf_counter()
    members = load_members(args.models)
    pairs = load_split(members[0].config.data, "test")[:args.sentences or None]
    references = [t for _, t in pairs]
    figures: dict = {}
    for search, (strategy, beam_size) in SEARCHES.items():
        outputs, singles = [], []
        for member in members:
            hyps, member_figures = score(member, pairs, strategy, beam_size)
            outputs.append(hyps)
            singles.append(member_figures)
        _, mean = score(combine(members, "mean"), pairs, strategy, beam_size)
        voted = vote(outputs)
        bleus = [s["bleu"] for s in singles]
        figures[search] = {
            "members": singles, "best_member_bleu": max(bleus), "mean_member_bleu": round(statistics.mean(bleus), 2),
            "ensemble_mean": mean, "ensemble_vote_bleu": round(corpus_bleu(voted, references).score, 2),
            "ensemble_mean_minus_best_member": round(mean["bleu"] - max(bleus), 2),
        }
    record = {
        "name": args.name, "command": " ".join([sys.executable, *sys.argv]), "commit": git_commit(),
        "machine": machine(), "wall_seconds": round(time.perf_counter() - wall, 1), "test_sentences": len(pairs),
        "members": [member_training(Path(d)) for d in args.models], "test": figures,
        "note": "best member chosen on the test set (flatters the single model); one thread",
    }
    write_result(args.name, record)
    for search, f in figures.items():
        print(f"{search}: members {[s['bleu'] for s in f['members']]} BLEU; best {f['best_member_bleu']}, "
              f"mean {f['mean_member_bleu']}; ensemble mean-prob {f['ensemble_mean']['bleu']} "
              f"({f['ensemble_mean_minus_best_member']:+.2f} over the best), vote {f['ensemble_vote_bleu']}")
    print(f"reproduce: python {' '.join(sys.argv)}  ({record['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
