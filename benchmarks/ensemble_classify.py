"""Ensembles of classifiers on real data: M members trained alike but for their seed, the mean-probability and
majority-vote ensembles against the best member and the members' mean (test accuracy).

    python benchmarks/ensemble_classify.py --dataset trec --members 5 --set train.max_epochs=8
    python benchmarks/ensemble_classify.py --dataset mr --members 5 --set train.max_epochs=4     # MR fold 0

Members train through ``seqlab.tasks.train`` (``configs/trec_bigru.yaml`` / ``configs/mr_bigru.yaml`` with
``train.seed=1..M``: other initial weights and batch orders, one vocabulary); every member and both ensembles are
scored on the test split by the same ``classification.evaluate``.  ``--reuse`` keeps members already trained by an
earlier run of this script (their training wall time is the one recorded then).  Writes
``benchmarks/results/ensemble_<dataset>.json``.

"Best member" is chosen on the test set, which flatters it: the ensemble is held against the luckiest single.
"Validation-chosen member" is the one with the best validation accuracy: the single model one would ship.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from classify_real import RECIPES, train_one, tree_note
from common import ROOT, git_commit, machine, write_result

SUMMARY = "ensemble_member.json"  # what this script leaves in a member's directory, for --reuse


def member_summary(config_path: str, model_dir: Path, overrides: list[str], reuse: bool) -> dict:
    """Train one member (or, with ``reuse``, read the summary an earlier run left) -> its training summary."""
    saved = model_dir / SUMMARY
    if reuse and saved.is_file():
        return {**json.loads(saved.read_text()), "reused": True}
    summary = train_one(config_path, model_dir, overrides)
    saved.write_text(json.dumps({**summary, "overrides": overrides}) + "\n")
    return {**summary, "overrides": overrides, "reused": False}


def test_figures(config_path: str, member_dirs: list[Path], overrides: list[str]) -> dict:
    """Test accuracy (%) of every member and of the mean and vote ensembles; the ensembles' wall time."""
    from seqlab.ensemble import combine, load_members
    from seqlab.tasks import classification, load_config

    test = classification.load_splits(load_config(ROOT / config_path, overrides).data)["test"]
    members = load_members(member_dirs)
    singles = [100 * classification.evaluate(member, test)["accuracy"] for member in members]
    figures = {"members": [round(a, 2) for a in singles], "best_member": round(max(singles), 2),
               "mean_member": round(statistics.mean(singles), 2), "test_examples": len(test)}
    for how in ("mean", "vote"):
        start = time.perf_counter()
        scores = classification.evaluate(combine(members, how), test)
        figures[f"ensemble_{how}"] = round(100 * scores["accuracy"], 2)
        figures[f"ensemble_{how}_macro_f1"] = round(100 * scores["macro_f1"], 2)
        figures[f"ensemble_{how}_eval_seconds"] = round(time.perf_counter() - start, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(RECIPES), required=True)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--runs", default="runs/ensemble", help="where the members' model directories go")
    parser.add_argument("--reuse", action="store_true", help="keep members trained by an earlier run")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared 2-core machine
    config_path, name = RECIPES[args.dataset][:2]
    wall = time.perf_counter()
    member_dirs = [ROOT / args.runs / f"{name}_seed{seed}" for seed in range(1, args.members + 1)]
    members = [member_summary(config_path, d, [*args.overrides, f"train.seed={seed}"], args.reuse)
               for seed, d in enumerate(member_dirs, start=1)]
    figures = test_figures(config_path, member_dirs, args.overrides)
    # The single model one would ship without looking at the test set: the best on the validation hold-out.
    chosen = max(range(len(members)), key=lambda i: members[i]["best_accuracy"])
    figures["validation_chosen_member"] = figures["members"][chosen]
    record = {
        "name": f"ensemble_{args.dataset}", "command": " ".join([sys.executable, *sys.argv]),
        "reproduce": " ".join(["python", *(a for a in sys.argv if a != "--reuse")]),
        "commit": git_commit(), "commit_note": tree_note(), "machine": machine(),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "members_training_seconds": round(sum(m["wall_seconds"] for m in members), 1),
        "config": config_path, "overrides": args.overrides, "test_accuracy_percent": figures,
        "note": "best member chosen on the test set (flatters the single model)", "members": members,
    }
    write_result(record["name"], record)
    print(f"{name}: {args.members} members {figures['members']} %; best {figures['best_member']} %, "
          f"mean {figures['mean_member']} %, validation-chosen {figures['validation_chosen_member']} %; ensemble mean-prob {figures['ensemble_mean']} %, "
          f"vote {figures['ensemble_vote']} %")
    print(f"reproduce: {record['reproduce']}  ({record['members_training_seconds']:.0f} s of member training "
          f"here, {record['wall_seconds']:.0f} s this run)")


if __name__ == "__main__":
    main()
