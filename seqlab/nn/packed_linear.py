"""Linear layers with their weights packed once for oneDNN: a decoding fast path (the Transformer's vocabulary
projection, its fused self-attention Q|K|V and its feed-forward layers).

At every decoding step each hypothesis goes through the output projection (rows x vocabulary), the largest
matrix product of a step.  MKL's sgemm, behind ``F.linear``, re-packs the (V, D) weight on every call; oneDNN
takes a weight packed once into its own layout.  On one thread of a 2-core AMD EPYC, D 256 and V 7,793 (the
Multi30k Transformer), the product ran 2.1x as fast for 250 rows (beam 5 x 50 sentences), 1.6x for 50 rows and
1.2x for 5 (``benchmarks/decode_vs_ctranslate2.py`` measures the whole search).  The Q|K|V (256 -> 768) and
feed-forward (256 -> 1024 -> 256) products gained 1.1-1.3x at 50-250 rows and 1.4-1.9x at 5; the 256 -> 256
ones lost at 5 rows (0.77x), so they stay on ``F.linear``.  A packed copy costs the weight's size again in
memory while the model decodes.

``project(linear, x)`` is ``linear(x)`` (the readable twin, used whenever gradients are on, in training mode,
off the CPU, outside fp32, under ONNX export, tracing or torch.compile, or where PyTorch lacks oneDNN);
``tests/unit/test_packed_linear.py`` holds the two together.  The packing is redone when the weight changes
(a training step, a loaded checkpoint, a tied embedding updated), read from the tensor's version counter.
"""

from __future__ import annotations

import torch
from torch import nn

_MKLDNN = getattr(torch.ops, "mkldnn", None)
AVAILABLE = bool(torch.backends.mkldnn.is_available() and _MKLDNN is not None
                 and hasattr(_MKLDNN, "_linear_pointwise") and hasattr(_MKLDNN, "_reorder_linear_weight"))


def project(linear: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``linear(x)``, through the packed weight where that is the same product."""
    if not _packable(linear, x):
        return linear(x)
    return _MKLDNN._linear_pointwise(x, _packed_weight(linear), linear.bias, "none", [], "")


def _packable(linear: nn.Module, x: torch.Tensor) -> bool:
    return (AVAILABLE and type(linear) is nn.Linear and not linear.training and not torch.is_grad_enabled()
            and x.device.type == "cpu" and x.dtype == torch.float32 and linear.weight.dtype == torch.float32
            and not _exporting())


def _exporting() -> bool:
    """Under tracing (ONNX export) or torch.compile the graph must hold the plain product, not oneDNN's op."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()  # the ONNX exporter traces (dynamo=False)


def _packed_weight(linear: nn.Linear) -> torch.Tensor:
    weight = linear.weight
    key = (weight.data_ptr(), weight._version, tuple(weight.shape))
    cached = getattr(linear, "_seqlab_packed", None)
    if cached is None or cached[0] != key:
        cached = (key, _MKLDNN._reorder_linear_weight(weight.detach(), None))
        linear._seqlab_packed = cached  # a plain attribute: not a parameter, never in a state dict
    return cached[1]
