"""Pictures: attention heat-maps (source tokens × output tokens)."""

from __future__ import annotations

from pathlib import Path

import torch


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
