"""TensorBoard event files beside ``train_log.jsonl``: the same records, as curves ``tensorboard --logdir`` draws.

Written with PyTorch's own ``torch.utils.tensorboard.SummaryWriter``, which needs the ``tensorboard`` package
(``pip install 'seqlab[tensorboard]'``).  Without it, training runs as before and says once that it writes no
event files; ``seqlab plot MODEL_DIR`` draws the same curves from ``train_log.jsonl`` with matplotlib alone.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

# record key -> TensorBoard tag; "train" records go under train/, "validate" records under valid/
SCALARS = ("loss", "ppl", "bleu", "accuracy", "f1", "chunk_f1", "macro_f1", "lr", "tokens_per_second")


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class EventWriter:
    """``write(record)`` for every log record; a no-op when tensorboard is missing or ``enabled`` is False."""

    def __init__(self, log_dir: str | Path, enabled: bool = True, announce: bool = True):
        self._writer = None
        if not enabled:
            return
        if not tensorboard_available():
            if announce:
                print("seqlab: note: no TensorBoard event files (the 'tensorboard' package is not installed: "
                      "pip install 'seqlab[tensorboard]'); `seqlab plot MODEL_DIR` draws the curves", file=sys.stderr)
            return
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(log_dir))

    @property
    def active(self) -> bool:
        return self._writer is not None

    def write(self, record: dict[str, Any]) -> None:
        if self._writer is None or record.get("event") not in ("train", "validate"):
            return
        group = "train" if record["event"] == "train" else "valid"
        for key in SCALARS:
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(f"{group}/{key}", value, record["step"])
        self._writer.flush()  # a killed run keeps its curves up to the last record

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
