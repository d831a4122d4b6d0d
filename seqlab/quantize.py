"""int8 inference: every linear map in int8, one scale per weight row, activations quantised at each call.

    W_q[r] = round(W[r] / s_r),  s_r = max|W[r]| / 127                    (once, when the model is loaded)
    x_q    = round(x / s_x) + z_x  (u8, s_x and z_x from this call's min / max of x: "dynamic")
    y      = s_x * s_r * (x_q - z_x) . W_q[r] + b_r                       (int32 accumulation, fp32 out)

That is PyTorch's dynamic quantisation (``torch.ops.quantized.linear_dynamic``, fbgemm on x86) with per-row
(per-channel) weight scales.  ``quantize_int8(model)`` swaps every ``nn.Linear`` of a model for an ``Int8Linear``
holding the packed int8 weights: the attention projections, the feed-forward layers, and the output projection
(D -> V) even where it is tied to the embedding table: the table itself stays fp32 for the embedding look-up,
and the output layer gets its own int8 copy.  Everything else stays fp32: embeddings, LayerNorm, attention's
softmax(q k^T) v over the cached keys, RNN cells (their gates are not ``nn.Linear``), and the search: every
step's log-softmax and the beam scores are fp32, as in the reference path.

The fp32 model is the readable reference; ``tests/unit/test_quantize.py`` holds the int8 model's log-probs
within a stated tolerance of it and its greedy outputs mostly identical, on a trained model.

Why 7-bit activations (``reduce_range``): on CPUs without AVX-512 VNNI, fbgemm multiplies u8 x s8 pairs with
``vpmaddubsw``, whose int16 sums saturate for full-range activations (measured here, AVX2: errors 5-10x larger
at full range).  PyTorch's own x86 dynamic qconfig does the same.

Measured on this 2-core AVX2 machine, one thread (``benchmarks/decode_vs_ctranslate2.py``): the products run
1.6-2.8x faster than fp32 at 50-250 rows; at one row (batch-1 greedy) the small ones barely gain.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from seqlab.errors import ConfigError

QUANTIZATIONS = ("int8",)


def check_quantize(name: str | None, device: str | torch.device = "cpu") -> str | None:
    """None or "int8"; anything else, or int8 off the CPU, is a ConfigError naming ``--quantize``."""
    if name is None or name == "none":
        return None
    if name not in QUANTIZATIONS:
        raise ConfigError(f"quantize: must be one of {list(QUANTIZATIONS)} (or none), got {name!r}")
    if torch.device(device).type != "cpu":
        raise ConfigError(f"quantize: int8 runs on the CPU only, got device {str(device)!r}")
    return name


class Int8Linear(nn.Module):
    """An ``nn.Linear`` for inference with int8 weights (per-row scales) and dynamically quantised inputs.

    x (..., in_features) fp32 -> (..., out_features) fp32.  No gradient, no training: build it from a trained
    ``nn.Linear`` with ``from_linear``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        weight = weight.detach().float().cpu()
        scales = (weight.abs().amax(dim=1).clamp_min(1e-12) / 127.0).double()  # (out,) one per row
        zero_points = torch.zeros(self.out_features, dtype=torch.long)
        with warnings.catch_warnings():  # the quantized-tensor constructors warn of their deprecation (torch 2.13)
            warnings.simplefilter("ignore")
            quantized = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
            bias = None if bias is None else bias.detach().float().cpu()
            self._packed = torch.ops.quantized.linear_prepack(quantized, bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "Int8Linear":
        return cls(linear.weight, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x.float(), self._packed, True)  # True: 7-bit inputs (see top)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-row"


def quantize_int8(model: nn.Module) -> nn.Module:
    """Swap every ``nn.Linear`` of ``model`` (in place) for an ``Int8Linear``; returns ``model`` in eval mode.

    Tied weights: an output layer that shares the embedding's tensor is quantised from it; the embedding keeps
    its fp32 table (``nn.Embedding`` is not an ``nn.Linear``, so it is left alone)."""
    model.eval()
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if isinstance(child, nn.Linear)]
    for parent, name, child in swaps:
        setattr(parent, name, Int8Linear.from_linear(child))
    return model


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(module, Int8Linear) for module in model.modules())
