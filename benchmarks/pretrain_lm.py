"""In-domain LM pretraining for the sentence classifiers (Dai & Le 2015; ULMFiT's first step): one word-level LSTM
LM on all the running English text of ../shared/data except MR and TREC, whose word vectors then start a
classifier (``--set model.pretrained=runs/pretrain/lm``).

    python benchmarks/pretrain_lm.py                          # corpus + LM (configs/pretrain_lm.yaml), ~27 min
    python benchmarks/pretrain_lm.py --corpus-only            # only write runs/pretrain/corpus/*.txt
    python benchmarks/classify_real.py --dataset trec --config configs/trec_kimcnn.yaml --seeds 1-3 \\
        --name trec_kimcnn_pretrained --set model.pretrained=runs/pretrain/lm

The corpus: the training splits of PTB, Multi30k (en, the organisers' lower-cased tokenisation), DailyDialog and
Flickr8k captions, and all of Tatoeba fra-eng (English side) and The Time Machine (no official splits) —
lower-cased, punctuation split off as in MR, one sentence or utterance per line; every 100th line is held out
for validation, every 100th after it for test.  Writes ``benchmarks/results/pretrain_lm.json``: tokens per
source, the LM's validation / test perplexity, how much of MR's and TREC's running text its vocabulary covers.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

from common import ROOT, git_commit, machine, write_result

CONFIG = "configs/pretrain_lm.yaml"
CORPUS = ROOT / "runs/pretrain/corpus"
WORD = re.compile(r"\w+(?:['’\-]\w+)*|[^\w\s]")  # words keep inner apostrophes and hyphens, as MR's "he's"


def tokenize(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def sources(data_dir: Path) -> dict[str, list[str]]:
    """{source name: its lines, tokenised}."""
    from seqlab.data.corpora import read_lines

    def lines(path: str) -> list[str]:
        return read_lines(data_dir / path)

    flickr_train = {line.strip() for line in lines("flickr8k/Flickr_8k.trainImages.txt.gz") if line.strip()}
    return {
        "ptb": [line.strip() for line in lines("ptb/ptb.train.txt.gz")],
        "multi30k": [line.strip() for line in lines("multi30k/tok/train.lc.norm.tok.en.gz")],
        "fra-eng": [tokenize(line.split("\t")[0]) for line in lines("fra-eng/fra.txt.gz")],
        "timemachine": [tokenize(line) for line in lines("timemachine/timemachine.txt.gz")],
        "dailydialog": [tokenize(turn) for line in lines("dailydialog/train/dialogues_train.txt.gz")
                        for turn in line.split("__eou__")],
        "flickr8k": [tokenize(line.split("\t", 1)[1]) for line in lines("flickr8k/Flickr8k.token.txt.gz")
                     if "\t" in line and line.split("#")[0] in flickr_train],
    }


def write_corpus(data_dir: Path) -> dict[str, int]:
    """runs/pretrain/corpus/{train,valid,test}.txt -> tokens per source."""
    from seqlab.utils import atomic_write

    splits: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    counts = {}
    for name, lines in sources(data_dir).items():
        lines = [line for line in lines if line]
        counts[name] = sum(len(line.split()) for line in lines)
        for index, line in enumerate(lines):
            split = "valid" if index % 100 == 0 else "test" if index % 100 == 1 else "train"
            splits[split].append(line)
    CORPUS.mkdir(parents=True, exist_ok=True)
    for split, lines in splits.items():
        with atomic_write(CORPUS / f"{split}.txt") as handle:
            handle.write("".join(line + "\n" for line in lines))
    counts["train_tokens"] = sum(len(line.split()) for line in splits["train"])
    return counts


def coverage(vocab, data_dir: Path) -> dict[str, float]:
    """Share (%) of MR's and TREC's running words (lower-cased) that the LM's vocabulary holds."""
    from seqlab.data.labelled import read_rt_polarity, read_trec

    shares = {}
    for name, examples in (("mr", read_rt_polarity(data_dir)), ("trec", read_trec("train", data_dir))):
        words = Counter(w.lower() for e in examples for w in e.tokens)
        shares[name] = round(100 * sum(n for w, n in words.items() if w in vocab) / sum(words.values()), 1)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-dir", default=None, help="the datasets' folder (default: ../shared/data, ...)")
    parser.add_argument("--corpus-only", action="store_true")
    args = parser.parse_args()
    from seqlab.data.datasets import resolve_data_dir
    from seqlab.tasks import load_config, load_model_dir, train
    from seqlab.tasks.language_model import split_perplexity

    data_dir = resolve_data_dir(args.data_dir)
    commit, wall = git_commit(), time.perf_counter()
    counts = write_corpus(data_dir)
    print(f"corpus: {counts}", flush=True)
    if args.corpus_only:
        return
    config = load_config(ROOT / CONFIG, args.overrides)
    summary = train(config, overwrite=True)
    loaded = load_model_dir(config.model_dir)
    perplexity = {split: round(split_perplexity(loaded, None, split)["perplexity"], 2) for split in ("valid", "test")}
    record = {
        "name": "pretrain_lm", "command": " ".join([sys.executable, *sys.argv]), "commit": commit,
        "machine": machine(), "wall_seconds": round(time.perf_counter() - wall, 1), "config": CONFIG,
        "overrides": args.overrides, "corpus_tokens": counts, "vocab": len(loaded.preprocessing.vocab),
        "vocab_covers_percent_of_running_words": coverage(loaded.preprocessing.vocab, data_dir),
        "perplexity": perplexity, "train": summary,
    }
    write_result("pretrain_lm", record)
    print(f"pretrain_lm: {summary['steps']} updates in {record['wall_seconds']:.0f} s; valid / test perplexity "
          f"{perplexity['valid']} / {perplexity['test']}; vocabulary {record['vocab']} covers "
          f"{record['vocab_covers_percent_of_running_words']} % of MR / TREC running words")
    print(f"reproduce: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
