"""Weight initialisation shared by every model: one call after construction, ``init_weights(model, scheme)``.

Schemes (CS182 seed 002, "初始化"; the choice matters most for deep and recurrent nets):

* ``"xavier"``: Glorot & Bengio 2010, uniform(±sqrt(6 / (fan_in + fan_out))) for every matrix, biases 0.
  Keeps activation variance roughly constant through tanh/sigmoid layers.
* ``"kaiming"``: He et al. 2015, uniform with std sqrt(2 / fan_in) for every matrix, biases 0 (ReLU nets).
* ``"orthogonal"``: xavier for input matrices, an orthogonal matrix for each gate's recurrent matrix W_h*
  (Saxe et al. 2014): repeated multiplication by an orthogonal matrix neither explodes nor vanishes.
* ``"lecun"``: LeCun et al. 1998, normal(0, σ² = 1 / fan_in) for every matrix, biases 0 (SELU/tanh nets).
* ``"orthogonal_all"``: an orthogonal matrix for *every* weight matrix, input and output layers included (a
  non-square one gets orthonormal rows or columns, whichever are fewer; Saxe et al. 2014).
* ``"uniform"``: every parameter, biases included, uniform(±uniform_range) (Sutskever et al. 2014 used 0.08,
  Zaremba et al. 2014 0.05 / 0.1).
* ``"default"``: keep PyTorch's own initialisation.

Recurrent matrices are initialised gate by gate ((H, I) blocks of the stacked (G*H, I) tensor), so fans are
those of one gate, as if each gate were its own layer.  Afterwards the LSTM forget-gate bias is set to
``forget_bias`` (Jozefowicz et al. 2015 recommend 1: the cell remembers by default early in training) - for
``"default"`` only when it is non-zero - and embedding padding rows are zeroed again.

``bias``: the value every bias starts at in the schemes that otherwise zero it (all but ``"uniform"`` and
``"default"``).  The seed's advice for ReLU layers is a small positive 0.1, so every unit starts active and
passes a gradient; 0 keeps today's behaviour.
"""

from __future__ import annotations

import torch
from torch import nn

from seqlab.errors import ConfigError

INIT_SCHEMES = ("xavier", "kaiming", "lecun", "orthogonal", "orthogonal_all", "uniform", "default")
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def init_weights(module: nn.Module, scheme: str = "xavier", uniform_range: float = 0.1,
                 forget_bias: float = 0.0, bias: float = 0.0) -> None:
    """Re-initialise every parameter of ``module`` and its children in place (see the module docstring)."""
    if scheme not in INIT_SCHEMES:
        raise ConfigError(f"init: must be one of {list(INIT_SCHEMES)}, got {scheme!r}")
    if scheme == "uniform" and uniform_range <= 0:
        raise ConfigError(f"uniform_range: must be > 0, got {uniform_range}")
    if bias and scheme in ("uniform", "default"):
        raise ConfigError(f"init_bias: init {scheme!r} sets its own biases; a start value of {bias} needs one of "
                          f"xavier, kaiming, lecun, orthogonal, orthogonal_all")
    with torch.no_grad():
        for child in module.modules():
            if scheme != "default":
                _init_module(child, scheme, uniform_range, bias)
            if isinstance(child, nn.LSTM) and (scheme != "default" or forget_bias != 0.0):
                _set_forget_bias(child, forget_bias)
            if isinstance(child, nn.Embedding) and child.padding_idx is not None:
                child.weight[child.padding_idx].zero_()  # our init overwrote PyTorch's zero row


def _init_module(module: nn.Module, scheme: str, uniform_range: float, bias: float) -> None:
    """Initialise the parameters a module owns directly (not its children's)."""
    for name, parameter in module.named_parameters(recurse=False):
        if scheme == "uniform":
            nn.init.uniform_(parameter, -uniform_range, uniform_range)
        elif isinstance(module, nn.RNNBase) and name.startswith("weight_"):
            recurrent = name.startswith("weight_hh") and scheme.startswith("orthogonal")
            for gate in parameter.chunk(_GATES[module.mode]):  # views: (H, I) or (H, H) per gate
                _init_matrix(gate, "orthogonal" if recurrent else scheme)
        elif parameter.dim() >= 2:
            _init_matrix(parameter, scheme)
        elif name.endswith("bias") or name.startswith("bias"):
            nn.init.constant_(parameter, bias)
        # other vectors (LayerNorm gains, ...) keep their constructor's value: 1 is right for them


def _init_matrix(matrix: torch.Tensor, scheme: str) -> None:
    if scheme == "orthogonal_all" or (scheme == "orthogonal" and matrix.size(0) == matrix.size(-1)):
        nn.init.orthogonal_(matrix)
    elif scheme == "lecun":
        nn.init.kaiming_normal_(matrix, mode="fan_in", nonlinearity="linear")  # gain 1: std = 1 / sqrt(fan_in)
    elif scheme == "kaiming":
        nn.init.kaiming_uniform_(matrix, a=0.0, nonlinearity="relu")
    else:  # xavier, and orthogonal's non-square input matrices
        nn.init.xavier_uniform_(matrix)


def _set_forget_bias(lstm: nn.LSTM, forget_bias: float) -> None:
    """b_f = forget_bias: PyTorch adds b_ih and b_hh, so put the value in one and zero the other."""
    hidden = lstm.hidden_size
    for name, parameter in lstm.named_parameters():
        if name.startswith("bias_ih"):
            parameter[hidden:2 * hidden].fill_(forget_bias)  # gate order i, f, g, o
        elif name.startswith("bias_hh"):
            parameter[hidden:2 * hidden].zero_()

