"""CoNLL-2000 on real data: chunking F1 (conlleval's chunk-level definition) and POS tagging accuracy.

    python benchmarks/tag_conll2000.py --column chunk      # configs/conll2000_chunk.yaml: BiLSTM-CRF over words,
                                                           # their spelling (char CNN) and the input's POS column
    python benchmarks/tag_conll2000.py --column pos        # configs/conll2000_pos.yaml: BiLSTM + softmax over
                                                           # words and their spelling
    python benchmarks/tag_conll2000.py --column chunk --name conll2000_chunk_words \
        --set model.char_embedding_size=0 --set model.pos_embedding_size=0    # an ablation: words only

Trains through ``seqlab train``'s library path, scores the best checkpoint on the test set, prints the figures
beside the anchors and writes ``benchmarks/results/<name>.json``.

Anchors: chunking F1 94.46 for BiLSTM-CRF (Huang, Xu & Yu 2015), with Senna embeddings and POS/spelling
features; the CoNLL-2000 shared task's best system (Kudo & Matsumoto 2000, SVMs over words and POS tags, no
pretrained vectors) reached 93.48.  Our embeddings start random (no pretrained vectors offline).  POS: the column is
the Brill tagger's output (not gold), so there is no published anchor for it; a char-aware BiLSTM reaches about 97 %
on gold WSJ tags (Ma & Hovy 2016: 97.55 with pretrained vectors).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch

from classify_real import tree_note
from common import ROOT, git_commit, machine, write_result

ANCHORS = {"chunk": ("chunk_f1", 94.46, "BiLSTM-CRF, Huang et al. 2015 (Senna embeddings + POS features)"),
           "pos": ("accuracy", 97.0, "approximate BiLSTM figure on gold WSJ POS; this column is Brill output")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--column", choices=sorted(ANCHORS), default="chunk")
    parser.add_argument("--config", help="a recipe (default: configs/conll2000_<column>.yaml)")
    parser.add_argument("--name", help="names the run and its JSON (default: conll2000_<column>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--runs", default="runs/benchmarks")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared 2-core machine
    from seqlab.tasks import load_config, train

    name = args.name or f"conll2000_{args.column}"
    recipe = args.config or f"configs/conll2000_{args.column}.yaml"
    config = load_config(ROOT / recipe, args.overrides)
    if config.data.column != args.column:
        parser.error(f"{recipe} learns data.column {config.data.column!r}, not --column {args.column}")
    config.model_dir = str(ROOT / args.runs / name)
    wall = time.perf_counter()
    summary = train(config, overwrite=True)
    metric, anchor, anchor_note = ANCHORS[args.column]
    figure = 100 * summary["test"][metric]
    record = {
        "name": name, "command": " ".join([sys.executable, *sys.argv]), "commit": git_commit(),
        "commit_note": tree_note(),
        "machine": machine(), "wall_seconds": round(time.perf_counter() - wall, 1),
        "config": recipe, "overrides": args.overrides,
        f"test_{metric}_percent": round(figure, 2),
        "test": {k: round(100 * v, 2) for k, v in summary["test"].items() if isinstance(v, float)},
        "anchor": {"value": anchor, "what": anchor_note,
                   "note": "no pretrained vectors: embeddings start random; see model for what the tagger reads"},
        "model": dataclasses.asdict(config.model.options),
        "ratio_to_anchor": round(figure / anchor, 3),
        "train": summary,
    }
    write_result(name, record)
    print(f"{name}: test {metric} {figure:.2f} %; anchor {anchor} ({anchor_note}); ratio {figure / anchor:.3f}")
    print(f"reproduce: {record['command']}")


if __name__ == "__main__":
    main()
