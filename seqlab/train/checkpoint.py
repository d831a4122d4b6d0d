"""Checkpoints: self-contained, plain data, written atomically, loaded with ``weights_only=True``.

A checkpoint is a dict of tensors and plain Python values (never pickled modules)::

    format, model (state_dict), optimizer, scheduler, trainer (step, epoch, position in the epoch, best metric,
    early-stopping counter), rng (torch, python, numpy), config (resolved, plain dict), extra (vocab, tokenizers
    incl. the sentencepiece model bytes, anything the model directory needs to translate on its own)

It is serialised to memory and then written through ``atomic_write``: a SIGKILL mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqlab.errors import CheckpointError
from seqlab.utils import atomic_write

FORMAT = "seqlab-checkpoint-1"


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached]}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getbuffer())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated, corrupted, or not a torch file at all; torch's advice about weights_only misleads
        raise CheckpointError(f"{path}: not a seqlab checkpoint (or corrupted)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a seqlab checkpoint (format {payload.get('format')!r})"
                              if isinstance(payload, dict) else f"{path}: not a seqlab checkpoint")
    return payload


def find_checkpoint(model_dir: str | Path, which: str = "best") -> Path:
    """``model_dir/best.pt`` (falling back to ``last.pt``), or ``last.pt`` when ``which == "last"``."""
    model_dir = Path(model_dir)
    if model_dir.is_file():
        raise CheckpointError(f"{model_dir}: not a directory (give the model directory that training wrote)")
    if not model_dir.is_dir():
        raise CheckpointError(f"{model_dir}: no such model directory")
    order = ["best.pt", "last.pt"] if which == "best" else ["last.pt"]
    for name in order:
        if (model_dir / name).is_file():
            return model_dir / name
    raise CheckpointError(f"{model_dir}: no checkpoint (expected {' or '.join(order)}); train a model first")


def average_state_dicts(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of several models' parameters (checkpoint averaging); integer buffers kept from the
    first.  Raises CheckpointError when the models' parameter names or shapes differ."""
    first = state_dicts[0]
    for other in state_dicts[1:]:
        if other.keys() != first.keys() or any(other[k].shape != first[k].shape for k in first):
            raise CheckpointError("cannot average checkpoints of different architectures")
    averaged = {}
    for key, value in first.items():
        if value.is_floating_point():
            averaged[key] = sum(sd[key].double() for sd in state_dicts).div(len(state_dicts)).to(value.dtype)
        else:
            averaged[key] = value.clone()
    return averaged
