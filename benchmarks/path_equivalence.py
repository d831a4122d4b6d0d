"""Does today's code path train every README recipe exactly as the code that measured its figure did?

Most README figures were measured before the task-layer redesign (commit 0925cc2 is the last one before it), many
of them in trainings of 40-120 minutes that no session can afford to repeat.  This script trains each recipe for a
few updates in both trees (same config file, same seed, the same overrides) and compares the per-update training
losses of the two ``train_log.jsonl`` files (full precision, ``log_every: 1``), the validation figures, and the
final weights.  Where all three agree bit for bit, the old figure is a figure of the new code too.

    cd /work/wt-eq && PYTHONPATH=. python benchmarks/path_equivalence.py --old-tree /work/wt-old [--updates 30]
        [--recipes mr_bigru,trec_bigru]

The old tree trained classification, tagging and captioning with their own verbs (``seqlab classify train``,
``seqlab tag train``, ``seqlab caption train``); today every task goes through ``seqlab train``.  Each run is a
subprocess with ``PYTHONPATH`` set to its tree and ``OMP_NUM_THREADS=1``, working in its own temporary folder
(relative cache paths land there, so neither tree reads the other's cache).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, git_commit, machine, write_result

# recipe -> the old tree's verb (today's is always ``train``)
RECIPES = {
    "timemachine_char_gru": ["train"], "timemachine_char_lstm": ["train"],
    "timemachine_char_transformer": ["train"], "ptb_lstm_small": ["train"], "ptb_lstm_tied": ["train"],
    "mr_bigru": ["classify", "train"], "trec_bigru": ["classify", "train"],
    "conll2000_chunk": ["tag", "train"], "conll2000_pos": ["tag", "train"],
    "multi30k_gru": ["train"], "multi30k_bigru_attn": ["train"], "multi30k_transformer": ["train"],
    "flickr8k_caption": ["caption", "train"],
}
# the same in both trees; the recipe's own max_minutes is kept (it never ends these short runs, but it makes
# today's trainer validate the initial model first, which is part of the path the figures would now take)
COMMON = ["train.log_every=1", "train.num_threads=1", "train.progress=false"]
EXTRA = {  # keeps the end-of-run validation to seconds: BLEU on 50 sentences instead of 500 or 1,014
    "multi30k_gru": ["train.valid_bleu_sentences=50"], "multi30k_bigru_attn": ["train.valid_bleu_sentences=50"],
    "multi30k_transformer": ["train.valid_bleu_sentences=50"],
    "flickr8k_caption": ["data.cache_dir=runs/image_cache"],  # the recipe's is /tmp/seqlab_cache, shared
}


def train_in(tree: Path, verb: list[str], recipe: str, overrides: list[str], work: Path) -> dict:
    """Train ``recipe`` with ``tree``'s code in ``work``; returns {model_dir, seconds, rc, error}."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    command = [sys.executable, "-m", "seqlab", *verb, str(tree / "configs" / f"{recipe}.yaml"),
               "--model-dir", str(work / "model"), *(f"--set={override}" for override in overrides)]
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                            check=False)  # a failed run is a row of the table, not the end
    return {"model_dir": work / "model", "seconds": round(time.perf_counter() - started, 1),
            "rc": result.returncode, "error": result.stderr[-2000:] if result.returncode else "",
            "command": " ".join(["seqlab", *command[3:]])}


def read_log(model_dir: Path) -> tuple[dict[int, float], list[dict]]:
    """({update: training loss}, [validation records]) from ``train_log.jsonl``."""
    records = [json.loads(line) for line in (model_dir / "train_log.jsonl").open()]
    losses = {r["step"]: r["loss"] for r in records if r.get("event") == "train"}
    return losses, [r for r in records if r.get("event") == "validate"]


def compare_losses(old: dict[int, float], new: dict[int, float]) -> dict:
    """Max |Δ| over the updates both logged, and the first update whose losses are not bit-identical."""
    steps = sorted(set(old) & set(new))
    first = next((step for step in steps if old[step] != new[step]), None)
    return {"updates": len(steps), "old_updates": len(old), "new_updates": len(new),
            "max_abs_diff": max((abs(old[s] - new[s]) for s in steps), default=None), "first_differing": first,
            "first_losses": {"old": old.get(first), "new": new.get(first)} if first else None}


def compare_validation(old: list[dict], new: list[dict]) -> dict:
    """The last validation of each run: every figure both report, and whether they are identical."""
    if not old or not new:
        return {"compared": False}
    keys = sorted(k for k, v in old[-1].items() if isinstance(v, float) and k in new[-1] and k != "elapsed_seconds")
    pairs = {k: (old[-1][k], new[-1][k]) for k in keys}
    return {"compared": True, "identical": all(a == b for a, b in pairs.values()), "figures": pairs,
            "step": (old[-1]["step"], new[-1]["step"]), "validations": (len(old), len(new))}


def map_names(old: dict, new: dict) -> dict[str, str]:
    """old name -> new name: the same name where both have it; otherwise, if every leftover tensor matches one
    in order and shape, by order (a module renamed or moved)."""
    mapping = {name: name for name in old if name in new}
    rest_old = [n for n in old if n not in mapping]
    rest_new = [n for n in new if n not in old]
    if len(rest_old) == len(rest_new) and all(old[a].shape == new[b].shape for a, b in zip(rest_old, rest_new)):
        mapping.update(zip(rest_old, rest_new))
    return mapping


def compare_weights(old_dir: Path, new_dir: Path) -> dict:
    """Max |Δ| over the final (``last.pt``) weights, parameter names mapped by ``map_names``."""
    old = torch.load(old_dir / "last.pt", map_location="cpu", weights_only=True)["model"]
    new = torch.load(new_dir / "last.pt", map_location="cpu", weights_only=True)["model"]
    mapping = map_names(old, new)
    diffs = {a: (old[a].double() - new[b].double()).abs().max().item() if old[a].shape == new[b].shape
             else float("inf") for a, b in mapping.items() if old[a].is_floating_point()}
    worst = max(diffs, key=diffs.get) if diffs else None
    return {"tensors": len(diffs), "max_abs_diff": diffs[worst] if worst else None, "worst": worst,
            "renamed": {a: b for a, b in mapping.items() if a != b},
            "unmatched_old": [n for n in old if n not in mapping],
            "unmatched_new": [n for n in new if n not in mapping.values()]}


def check_recipe(recipe: str, old_tree: Path, updates: int, work: Path) -> dict:
    """Train ``recipe`` in both trees and compare; the record of one table row."""
    overrides = [f"train.max_steps={updates}", *COMMON, *EXTRA.get(recipe, [])]
    runs = {"old": train_in(old_tree, RECIPES[recipe], recipe, overrides, work / recipe / "old"),
            "new": train_in(ROOT, ["train"], recipe, overrides, work / recipe / "new")}
    record = {"recipe": recipe, "overrides": overrides,
              "runs": {k: {key: str(v) if key == "model_dir" else v for key, v in run.items()}
                       for k, run in runs.items()}}
    if any(run["rc"] for run in runs.values()):
        record["verdict"] = "failed to run"
        return record
    (old_losses, old_valid), (new_losses, new_valid) = (read_log(runs[k]["model_dir"]) for k in ("old", "new"))
    record["losses"] = compare_losses(old_losses, new_losses)
    record["validation"] = compare_validation(old_valid, new_valid)
    record["weights"] = compare_weights(runs["old"]["model_dir"], runs["new"]["model_dir"])
    same = (record["losses"]["first_differing"] is None and record["losses"]["old_updates"] == updates
            and record["losses"]["new_updates"] == updates and record["weights"]["max_abs_diff"] == 0.0
            and not record["weights"]["unmatched_old"] and not record["weights"]["unmatched_new"]
            and record["validation"].get("identical", True))
    record["verdict"] = "identical" if same else "differs"
    return record


def row(record: dict) -> str:
    if record["verdict"] == "failed to run":
        failed = [k for k, run in record["runs"].items() if run["rc"]]
        return f"| {record['recipe']} | {', '.join(failed)} run failed | | | failed to run |"
    losses, weights, valid = record["losses"], record["weights"], record["validation"]
    loss_cell = (f"yes, {losses['updates']} updates (0)" if losses["first_differing"] is None else
                 f"no: from update {losses['first_differing']} (max {losses['max_abs_diff']:.3g})")
    valid_cell = "n/a" if not valid["compared"] else "identical" if valid["identical"] else "differs"
    return (f"| {record['recipe']} | {loss_cell} | {weights['max_abs_diff']:.3g} | {valid_cell} | "
            f"{record['verdict']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old-tree", type=Path, required=True, help="a checkout of the old code (e.g. 0925cc2)")
    parser.add_argument("--updates", type=int, default=30, help="training updates per run (K)")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated subset of the recipes")
    parser.add_argument("--work-dir", type=Path, help="where the runs go (default: a temporary folder, removed)")
    parser.add_argument("--name", default="path_equivalence", help="benchmarks/results/NAME.json")
    args = parser.parse_args()
    old_tree = args.old_tree.resolve()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="path_equivalence_"))
    started, records = time.perf_counter(), []
    print("| recipe | losses bit-identical? | weights max abs diff | validation | verdict |\n|---|---|---|---|---|")
    old_commit = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=old_tree, text=True).strip()
    for recipe in args.recipes.split(","):
        records.append(check_recipe(recipe, old_tree, args.updates, work))
        print(row(records[-1]), flush=True)
        write_result(args.name, {  # after every recipe: a run cut short keeps the rows it has
            "command": " ".join(["python", *sys.argv]), "git_commit": git_commit(), "old_commit": old_commit,
            "updates": args.updates, "machine": machine(), "wall_seconds": round(time.perf_counter() - started, 1),
            "recipes": records})
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
