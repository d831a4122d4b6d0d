"""Recurrent building blocks: PyTorch's fused RNN/GRU/LSTM, a packed-sequence helper, and their readable twins.

The fast path is always the fused ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (cuDNN on GPU, one C++ loop on CPU).
The twins below re-derive every output from the gate equations of the d2l seed (001, "门控循环单元" and
"长短期记忆网络") and are used only by the tests, which check that the library computes what the equations say.

Gate order inside PyTorch's stacked weights (``weight_ih_l{k}`` is (G*H, I), ``weight_hh_l{k}`` is (G*H, H)):

    GRU:  [ r | z | n ]          (reset, update, candidate)      G = 3
    LSTM: [ i | f | g | o ]      (input, forget, candidate, output)  G = 4

PyTorch stores W with shape (out, in) and computes x W^T; the seed writes X W with W shaped (in, out).

Shapes: B batch, S sequence length, I input size, H hidden size, L layers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqlab.errors import ConfigError

RNNState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # h (L*dirs, B, H), or (h, c) for an LSTM
CellWeights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # w_ih, w_hh, b_ih, b_hh

CELL_NAMES = ("rnn", "rnn_relu", "gru", "gru_seed", "lstm")


def make_rnn(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
             bidirectional: bool = False) -> nn.RNNBase:
    """A fused, batch-first recurrent stack: inputs (B, S, I) -> outputs (B, S, dirs*H), final state.

    ``dropout`` is applied between layers only (Zaremba et al. 2014), so it is dropped for a single layer
    (PyTorch would warn that it has no effect).
    """
    if cell not in CELL_NAMES:
        raise ConfigError(f"cell: must be one of {list(CELL_NAMES)}, got {cell!r}")
    options = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, batch_first=True,
                   dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
    if cell == "gru":
        return nn.GRU(**options)
    if cell == "gru_seed":
        return SeedGRU(**options)
    if cell == "lstm":
        return nn.LSTM(**options)
    return nn.RNN(nonlinearity="relu" if cell == "rnn_relu" else "tanh", **options)


def encode_packed(rnn: nn.RNNBase, inputs: torch.Tensor, lengths: torch.Tensor,
                  state: RNNState | None = None) -> tuple[torch.Tensor, RNNState]:
    """Run ``rnn`` over right-padded ``inputs`` (B, S, I) whose rows have ``lengths`` (B,) real positions.

    -> outputs (B, S, dirs*H), zero at padded positions, and the final state taken at each row's own last real
    position (for the backward direction: at its first position), in the input's row order.  Packing is what
    makes a sentence's encoding independent of the batch it is padded into; the readable twin is running each
    sentence alone (see the tests).  Rows must have length >= 1.
    """
    # pack_padded_sequence wants lengths on the CPU: one small device->host copy (a sync on GPU).
    packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, final = rnn(packed, state)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=inputs.size(1))
    return outputs, final


class SeedGRU(nn.GRU):
    """A trainable GRU with the seed's reset-*before* candidate (seed 001, "门控循环单元", Cho et al. 2014)::

        R_t = σ(X_t W_xr + H_{t-1} W_hr + b_r)      Z_t = σ(X_t W_xz + H_{t-1} W_hz + b_z)
        H̃_t = tanh(X_t W_xh + (R_t ⊙ H_{t-1}) W_hh + b_h)
        H_t = Z_t ⊙ H_{t-1} + (1 − Z_t) ⊙ H̃_t

    ``nn.GRU`` instead computes tanh(X W_xh + b_xh + R ⊙ (H W_hh + b_hh)) (reset after the product).  Same
    parameters, constructor and call as ``nn.GRU`` (batch-first only; PackedSequence inputs accepted), so it
    drops in wherever ``cell: gru`` is used; the seed's b_h is b_xh + b_hh of the candidate gate.
    Performance hazard: one Python-level step per position (no fused kernel does reset-before); the input
    projections of all positions are one matrix product up front.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.batch_first:
            raise ConfigError("gru_seed: only batch_first=True is supported")

    def forward(self, inputs, state: torch.Tensor | None = None):
        packed = isinstance(inputs, PackedSequence)
        if packed:
            padded, lengths = pad_packed_sequence(inputs, batch_first=True)  # (B, S, I), original row order
        else:
            padded, lengths = inputs, None
        batch, length = padded.shape[:2]
        directions = 2 if self.bidirectional else 1
        if state is None:
            state = padded.new_zeros(self.num_layers * directions, batch, self.hidden_size)
        # real_mask (B, S): True at real positions; a padded step leaves the state as it was
        real_mask = None if lengths is None else (torch.arange(length)[None, :] < lengths[:, None]).to(padded.device)
        layer_input, finals = padded, []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                direction_outputs, final = self._run_direction(
                    layer_input, state[index], cell_weights(self, layer, direction), real_mask, direction == 1)
                outputs.append(direction_outputs)
                finals.append(final)
            layer_input = torch.cat(outputs, dim=-1)  # (B, S, dirs*H)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = nn.functional.dropout(layer_input, self.dropout)
        final_state = torch.stack(finals)  # (L*dirs, B, H)
        if packed:
            repacked = pack_padded_sequence(layer_input, lengths, batch_first=True, enforce_sorted=False)
            return repacked, final_state
        return layer_input, final_state

    @staticmethod
    def _run_direction(inputs: torch.Tensor, h: torch.Tensor, weights: CellWeights,
                       real_mask: torch.Tensor | None, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (B, S, I), h (B, H) -> outputs (B, S, H), zero at padded positions, and the final h (B, H)."""
        w_ih, w_hh, b_ih, b_hh = weights
        hidden = h.size(-1)
        input_parts = (inputs @ w_ih.T + b_ih).chunk(3, dim=-1)  # X W_x* + b_x*, each (B, S, H)
        w_h_gates, w_h_candidate = w_hh[:2 * hidden], w_hh[2 * hidden:]  # (2H, H), (H, H)
        b_h_gates, b_h_candidate = b_hh[:2 * hidden], b_hh[2 * hidden:]
        outputs: list[torch.Tensor] = [h.new_zeros(h.shape)] * inputs.size(1)
        positions = range(inputs.size(1) - 1, -1, -1) if reverse else range(inputs.size(1))
        for t in positions:
            reset_part, update_part = (h @ w_h_gates.T + b_h_gates).chunk(2, dim=-1)
            reset = torch.sigmoid(input_parts[0][:, t] + reset_part)
            update = torch.sigmoid(input_parts[1][:, t] + update_part)
            candidate = torch.tanh(input_parts[2][:, t] + (reset * h) @ w_h_candidate.T + b_h_candidate)
            h_next = update * h + (1 - update) * candidate
            if real_mask is not None:
                keep = real_mask[:, t, None]  # (B, 1)
                h_next = torch.where(keep, h_next, h)
                outputs[t] = torch.where(keep, h_next, torch.zeros_like(h_next))
            else:
                outputs[t] = h_next
            h = h_next
        return torch.stack(outputs, dim=1), h


# ------------------------------------------------------------------------------------------ readable twins
def cell_weights(rnn: nn.RNNBase, layer: int = 0, direction: int = 0) -> CellWeights:
    """The four tensors of one layer and direction of a fused RNN: (w_ih, w_hh, b_ih, b_hh)."""
    suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
    return tuple(getattr(rnn, f"{name}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def gru_cell_reference(x: torch.Tensor, h: torch.Tensor, weights: CellWeights,
                       reset_after: bool = True) -> torch.Tensor:
    """One GRU step, x (B, I), h (B, H) -> h' (B, H), written from the seed's equations::

        R_t = σ(X_t W_xr + H_{t-1} W_hr + b_r)
        Z_t = σ(X_t W_xz + H_{t-1} W_hz + b_z)
        H̃_t = tanh(X_t W_xh + (R_t ⊙ H_{t-1}) W_hh + b_h)          (seed, ``reset_after=False``)
        H̃_t = tanh(X_t W_xh + b_xh + R_t ⊙ (H_{t-1} W_hh + b_hh))  (PyTorch/cuDNN, ``reset_after=True``)
        H_t = Z_t ⊙ H_{t-1} + (1 − Z_t) ⊙ H̃_t

    The one difference: PyTorch applies the reset gate *after* the recurrent matrix product (and to its bias),
    which lets cuDNN compute H W_hh for all three gates in one matrix product.  Both are valid GRUs (Cho et al.
    2014 give the seed's form; cuDNN's is Keras' ``reset_after=True``); only the PyTorch form equals ``nn.GRU``.
    """
    w_ih, w_hh, b_ih, b_hh = weights
    w_xr, w_xz, w_xh = w_ih.chunk(3)  # each (H, I)
    w_hr, w_hz, w_hh_n = w_hh.chunk(3)  # each (H, H)
    b_xr, b_xz, b_xh = b_ih.chunk(3)
    b_hr, b_hz, b_hh_n = b_hh.chunk(3)
    reset = torch.sigmoid(x @ w_xr.T + b_xr + h @ w_hr.T + b_hr)
    update = torch.sigmoid(x @ w_xz.T + b_xz + h @ w_hz.T + b_hz)
    if reset_after:
        candidate = torch.tanh(x @ w_xh.T + b_xh + reset * (h @ w_hh_n.T + b_hh_n))
    else:
        candidate = torch.tanh(x @ w_xh.T + (reset * h) @ w_hh_n.T + b_xh + b_hh_n)
    return update * h + (1 - update) * candidate


def lstm_cell_reference(x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor],
                        weights: CellWeights) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step, x (B, I), (h, c) each (B, H) -> (h', c'), from the seed's equations (same as PyTorch)::

        I_t = σ(X_t W_xi + H_{t-1} W_hi + b_i)      F_t = σ(X_t W_xf + H_{t-1} W_hf + b_f)
        O_t = σ(X_t W_xo + H_{t-1} W_ho + b_o)      C̃_t = tanh(X_t W_xc + H_{t-1} W_hc + b_c)
        C_t = F_t ⊙ C_{t-1} + I_t ⊙ C̃_t            H_t = O_t ⊙ tanh(C_t)

    PyTorch keeps two biases (b_ih + b_hh) where the seed has one; their sum plays the seed's b.
    """
    h, c = state
    w_ih, w_hh, b_ih, b_hh = weights
    gates = [x @ w_x.T + h @ w_h.T + b_x + b_h  # (B, H) each, in PyTorch's order i, f, g, o
             for w_x, w_h, b_x, b_h in zip(w_ih.chunk(4), w_hh.chunk(4), b_ih.chunk(4), b_hh.chunk(4))]
    input_gate, forget_gate, output_gate = (torch.sigmoid(gates[k]) for k in (0, 1, 3))
    candidate = torch.tanh(gates[2])
    c_next = forget_gate * c + input_gate * candidate
    return output_gate * torch.tanh(c_next), c_next


def elman_cell_reference(x: torch.Tensor, h: torch.Tensor, weights: CellWeights,
                         nonlinearity: str = "tanh") -> torch.Tensor:
    """One plain RNN step: H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h), φ = tanh or ReLU (seed 001, "循环神经网络")."""
    w_ih, w_hh, b_ih, b_hh = weights
    pre_activation = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    return torch.relu(pre_activation) if nonlinearity == "relu" else torch.tanh(pre_activation)


def _reference_step(rnn: nn.RNNBase, x: torch.Tensor, state, weights: CellWeights):
    """One step of whichever cell ``rnn`` is; the state is h, or (h, c) for an LSTM."""
    if rnn.mode == "LSTM":
        return lstm_cell_reference(x, state, weights)
    if rnn.mode == "GRU":
        return gru_cell_reference(x, state, weights)
    return elman_cell_reference(x, state, weights, "relu" if rnn.mode == "RNN_RELU" else "tanh")


def _reference_direction(rnn: nn.RNNBase, inputs: torch.Tensor, weights: CellWeights, reverse: bool):
    """Unroll one layer in one direction over inputs (B, S, I) from a zero state -> outputs (B, S, H), final."""
    zeros = inputs.new_zeros(inputs.size(0), rnn.hidden_size)
    state = (zeros, zeros) if rnn.mode == "LSTM" else zeros
    positions = range(inputs.size(1) - 1, -1, -1) if reverse else range(inputs.size(1))
    outputs: list[torch.Tensor] = [zeros] * inputs.size(1)
    for t in positions:
        state = _reference_step(rnn, inputs[:, t], state, weights)
        outputs[t] = state[0] if rnn.mode == "LSTM" else state
    return torch.stack(outputs, dim=1), state


def rnn_reference(rnn: nn.RNNBase, inputs: torch.Tensor) -> tuple[torch.Tensor, RNNState]:
    """The readable twin of ``rnn(inputs)`` (batch-first, zero initial state, no dropout: eval mode).

    Layer by layer (seed: "深层循环神经网络"), each direction unrolled step by step, the two directions'
    outputs concatenated as the next layer's input (seed: "双向循环神经网络").  -> outputs (B, S, dirs*H) and
    the final state (L*dirs, B, H) (a pair for an LSTM), laid out as PyTorch does: index = layer*dirs + direction.
    """
    directions = 2 if rnn.bidirectional else 1
    finals = []
    layer_input = inputs
    for layer in range(rnn.num_layers):
        outputs = []
        for direction in range(directions):
            weights = cell_weights(rnn, layer, direction)
            direction_outputs, final = _reference_direction(rnn, layer_input, weights, reverse=direction == 1)
            outputs.append(direction_outputs)
            finals.append(final)
        layer_input = torch.cat(outputs, dim=-1)  # (B, S, dirs*H)
    if rnn.mode == "LSTM":
        return layer_input, (torch.stack([h for h, _ in finals]), torch.stack([c for _, c in finals]))
    return layer_input, torch.stack(finals)
