"""Numeric precision: fp32 everywhere, or bfloat16 matrix products.

Two uses, both opt-in (fp32 is the default and the reference):

* training, ``train.precision: bf16``: the forward pass and the loss run under ``torch.autocast`` (matrix
  products and attention in bfloat16, reductions such as the loss's log-softmax in fp32); the weights, their
  gradients and the optimiser state stay fp32 (mixed precision, Micikevicius et al. 2018).  bfloat16 has fp32's
  exponent range, so no loss scaling is needed.
* decoding, ``seqlab translate --dtype bfloat16`` / ``load_model_dir(..., dtype=)``: the model's weights are
  cast to bfloat16 (what ``model.to(torch.bfloat16)`` does for a Hugging Face model); every step's log-softmax
  and the search's scores stay fp32 (``seqlab.contracts.step_log_probs``).

On CPUs with AMX or AVX-512 BF16 (Intel Sapphire Rapids and later, AMD Zen 4 and later) bfloat16 matrix
products run several times faster than fp32 ones; elsewhere they are emulated and slower, so measure
(``benchmarks/transformer_vs_hf.py --dtype bfloat16``).  bfloat16 keeps 8 significant bits: outputs differ from
fp32 ones in the last digits and, for a few sentences, in the chosen tokens.
"""

from __future__ import annotations

import contextlib

import torch

from seqlab.errors import ConfigError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
DTYPE_NAMES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def check_precision(name: str, key: str) -> str:
    """A ConfigError naming ``key`` unless ``name`` is a known precision."""
    if name not in PRECISIONS:
        raise ConfigError(f"{key}: must be one of {list(PRECISIONS)}, got {name!r}")
    return name


def parse_dtype(name: str | torch.dtype | None) -> torch.dtype | None:
    """"float32" | "bfloat16" | a torch dtype | None (keep the model's) -> the torch dtype or None."""
    if name is None or isinstance(name, torch.dtype):
        return name
    if name not in DTYPE_NAMES:
        raise ConfigError(f"dtype: must be one of {list(DTYPE_NAMES)}, got {name!r}")
    return DTYPE_NAMES[name]


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context a training forward pass runs in: ``torch.autocast`` to bfloat16, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])


def compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype a matrix product of ``tensor`` runs in here: the autocast dtype when autocast is on for its
    device, else the tensor's own."""
    device_type = tensor.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return tensor.dtype
