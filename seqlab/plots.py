"""Pictures: attention heat-maps (source tokens × output tokens) and training curves from ``train_log.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from seqlab.errors import DataError


def plot_attention(weights: torch.Tensor, src_tokens: list[str], out_tokens: list[str], path: str | Path,
                   title: str = "") -> Path:
    """Save one heat-map PNG: rows = output tokens (the last row is <eos>), columns = source tokens.

    weights: (T_out, S) attention of every output step over the source positions.
    """
    import matplotlib  # here, not at the top: half a second of start-up, paid only when a plot is drawn

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    weights = weights.detach().float().cpu()[: len(out_tokens), : len(src_tokens)]
    height, width = weights.shape
    figure, axes = plt.subplots(figsize=(max(3.0, 0.45 * width + 1.5), max(2.5, 0.4 * height + 1.2)))
    image = axes.imshow(weights.numpy(), cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(width), src_tokens[:width], rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(height), out_tokens[:height], fontsize=8)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    if title:
        axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.04)
    return save_figure(figure, path)


def save_figure(figure, path: str | Path) -> Path:
    """Write a matplotlib figure as PNG atomically (temp file + rename: a reader never sees half a PNG) and close
    it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    tmp.replace(path)
    return path


# what a curve shows -> the record keys that hold it; the first key a log has is drawn (tasks name their metric)
CURVES = {"loss": ("loss",), "perplexity": ("ppl",), "bleu": ("bleu",),
          "accuracy": ("accuracy",), "f1": ("chunk_f1", "f1", "macro_f1"), "learning_rate": ("lr",)}


def read_training_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``train_log.jsonl``; a line that is not JSON is a DataError naming file:line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no training log (train a model into this directory first)")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not a JSON record ({error.msg})") from None
    return records


def plot_training_curves(records: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """One PNG per curve the log holds (loss, perplexity, BLEU, accuracy, F1, learning rate), update on the x
    axis, training records and validation records as two lines.  Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, keys in CURVES.items():
        key = next((k for k in keys if any(k in r for r in records if r.get("event") in ("train", "validate"))),
                   None)
        if key is None:
            continue
        figure, axes = plt.subplots(figsize=(5.5, 3.5))
        for event, label in (("train", "train"), ("validate", "valid")):
            points = [(r["step"], r[key]) for r in records
                      if r.get("event") == event and isinstance(r.get(key), (int, float)) and "step" in r]
            if points:
                axes.plot(*zip(*points), marker="o" if event == "validate" else None, markersize=3, label=label)
        axes.set_xlabel("update")
        axes.set_ylabel(key)
        if name == "perplexity":
            axes.set_yscale("log")
        axes.legend()
        axes.set_title(name.replace("_", " "))
        written.append(save_figure(figure, Path(out_dir) / f"{name}.png"))
    return written
