"""AWD-LSTM's regularisers (Merity, Keskar & Socher 2018, "Regularizing and Optimizing LSTM Language Models").

* ``WeightDropRNN``: a stack of one-layer RNNs whose hidden-to-hidden matrices get DropConnect (Wan et al. 2013):
  one mask per forward call (a BPTT chunk), the same at every time step, so the recurrence itself is regularised
  while the fused kernel still runs;
* ``LockedDropout``: variational dropout (Gal & Ghahramani 2016): one mask per sequence, reused at every step;
* ``embedding_dropout``: whole word types dropped from the embedding table (every occurrence of a dropped word
  in the batch is zero), the rest scaled by 1 / (1 - p).

With ``weight_drop = 0`` and identity between the layers, ``WeightDropRNN`` is ``nn.LSTM(num_layers=L)`` with the
same weights (tests/unit/test_awd.py holds the two together); in eval mode nothing is dropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from seqlab.nn.dropout import keep_mask

RecurrentState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # h (L, B, H), or (h, c) for an LSTM


class LockedDropout(nn.Module):
    """x (B, T, D) -> x with one keep-mask (B, 1, D) for all T steps, scaled by 1 / (1 - p); identity in eval."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep, p_used = keep_mask((x.size(0), 1, x.size(2)), self.p, x.device)
        return x * keep * (1.0 / (1.0 - p_used))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def embedding_dropout(embedding: nn.Embedding, ids: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """ids (B, T) -> (B, T, E): the embedding with each word type's row dropped with probability ``p``."""
    if not training or p == 0.0:
        return embedding(ids)
    keep, p_used = keep_mask((embedding.num_embeddings, 1), p, ids.device)  # one draw per word type
    weight = embedding.weight * keep * (1.0 / (1.0 - p_used))
    return F.embedding(ids, weight, embedding.padding_idx)


class WeightDropRNN(nn.Module):
    """``num_layers`` one-layer ``cell``s (nn.RNN / nn.GRU / nn.LSTM), batch first, with DropConnect ``weight_drop``
    on each ``weight_hh_l0`` in training and ``between`` (e.g. ``LockedDropout``) on the outputs of every layer
    but the last.  Takes and returns the state as the fused multi-layer module does: h (L, B, H) [, c]."""

    def __init__(self, cell: type[nn.RNNBase], input_size: int, hidden_size: int, num_layers: int,
                 weight_drop: float = 0.0, between: nn.Module | None = None):
        super().__init__()
        self.layers = nn.ModuleList(cell(input_size if i == 0 else hidden_size, hidden_size, 1, batch_first=True)
                                    for i in range(num_layers))
        self.weight_drop = weight_drop
        self.between = between if between is not None else nn.Identity()

    def forward(self, x: torch.Tensor, state: RecurrentState) -> tuple[torch.Tensor, RecurrentState]:
        """x (B, T, I), state -> outputs of the last layer (B, T, H), the state after the last step."""
        lstm = isinstance(state, tuple)
        hidden, cell = state if lstm else (state, None)
        new_hidden, new_cell = [], []
        for index, layer in enumerate(self.layers):
            layer_state = (hidden[index:index + 1], cell[index:index + 1]) if lstm else hidden[index:index + 1]
            x, layer_state = self._run(layer, x, layer_state)
            h, c = layer_state if lstm else (layer_state, None)
            new_hidden.append(h)
            new_cell.append(c)
            if index < len(self.layers) - 1:
                x = self.between(x)
        hidden = torch.cat(new_hidden)
        return x, ((hidden, torch.cat(new_cell)) if lstm else hidden)

    def _run(self, layer: nn.RNNBase, x: torch.Tensor, state: RecurrentState):
        if not self.training or self.weight_drop == 0.0:
            return layer(x, state)
        # The dropped matrix stands in for the parameter during this call only; gradients reach the parameter.
        dropped = F.dropout(layer.weight_hh_l0, self.weight_drop, training=True)
        return functional_call(layer, {"weight_hh_l0": dropped}, (x, state))

    def extra_repr(self) -> str:
        return f"weight_drop={self.weight_drop}"
