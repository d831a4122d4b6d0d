"""Forecasting numeric series (d2l seed 001, "序列模型"): the seed's two answers to p(x_t | x_1 .. x_{t-1}).

* Plan A, the Markov assumption: x_t depends only on the last τ values, x̂_t = MLP(x_{t-τ} .. x_{t-1})
  (``LagMLP``; d2l: τ = 4, one hidden layer of 10 ReLU units).
* Plan B, a latent-variable model: h_t = f(x_{t-1}, h_{t-1}) summarises the whole past, x̂_t = g(h_t)
  (``RNNForecaster``).

Both answer ``predict_next(context (B, L)) -> (B,)``, the 1-step-ahead prediction after a context window.  k-step-ahead
prediction (``multistep_forecast``) feeds predictions back as inputs; its errors compound, so the error grows with k
(d2l: the 1-step predictions of a noisy sine are good, 16- and 64-step ones drift to a flat line).

Training targets (``forward``): ``LagMLP(features (B, τ)) -> (B,)``; ``RNNForecaster(inputs (B, T)) -> (B, T)``, the
prediction of x_{t+1} after reading x_1 .. x_t at every t.  Shapes: B batch, L context length, T window length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.nn.rnn import CELL_NAMES, make_rnn


@dataclass
class LagMLPConfig:
    tau: int = 4
    hidden_size: int = 10

    def __post_init__(self) -> None:
        for name in ("tau", "hidden_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")


@dataclass
class RNNForecasterConfig:
    cell: str = "gru"
    hidden_size: int = 32
    num_layers: int = 1

    def __post_init__(self) -> None:
        if self.cell not in CELL_NAMES:
            raise ConfigError(f"cell: must be one of {', '.join(CELL_NAMES)}, got {self.cell!r}")
        for name in ("hidden_size", "num_layers"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")


class LagMLP(nn.Module):
    """x̂_t = W2 ReLU(W1 [x_{t-τ} .. x_{t-1}] + b1) + b2, with Xavier-initialised weights as in d2l."""

    def __init__(self, config: LagMLPConfig):
        super().__init__()
        self.tau = config.tau
        self.net = nn.Sequential(nn.Linear(config.tau, config.hidden_size), nn.ReLU(),
                                 nn.Linear(config.hidden_size, 1))
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, τ), oldest first -> predictions (B,)."""
        return self.net(features).squeeze(-1)

    def predict_next(self, context: torch.Tensor) -> torch.Tensor:
        """context (B, L), L >= τ -> (B,): only the last τ values count (the Markov assumption)."""
        if context.size(1) < self.tau:
            raise ValueError(f"context of {context.size(1)} values is shorter than tau={self.tau}")
        return self.forward(context[:, -self.tau:])


class RNNForecaster(nn.Module):
    """h_t = RNN(x_t, h_{t-1}), x̂_{t+1} = w^T h_t + b."""

    def __init__(self, config: RNNForecasterConfig):
        super().__init__()
        self.rnn = make_rnn(config.cell, 1, config.hidden_size, config.num_layers)
        self.output = nn.Linear(config.hidden_size, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, T) -> (B, T): column t predicts x_{t+1} from x_1 .. x_t."""
        states, _ = self.rnn(inputs.unsqueeze(-1))  # (B, T, 1) -> (B, T, H)
        return self.output(states).squeeze(-1)

    def predict_next(self, context: torch.Tensor) -> torch.Tensor:
        """context (B, L) -> (B,).  Re-reads the whole context: simple, and contexts here are short."""
        return self.forward(context)[:, -1]


Forecaster = LagMLP | RNNForecaster


@torch.no_grad()
def multistep_forecast(model: Forecaster, context: torch.Tensor, steps: int) -> torch.Tensor:
    """Predict ``steps`` values after each context window, feeding each prediction back as the newest input.

    context (B, L) -> (B, steps); column j is the (j+1)-step-ahead prediction.  The window slides, so its length
    stays L: x̂ replaces observations one by one, which is where the error growth comes from.
    """
    window = context
    predictions = []
    for _ in range(steps):
        next_value = model.predict_next(window)  # (B,)
        predictions.append(next_value)
        window = torch.cat([window[:, 1:], next_value.unsqueeze(1)], dim=1)  # (B, L)
    return torch.stack(predictions, dim=1)


@torch.no_grad()
def k_step_errors(model: Forecaster, series: torch.Tensor, context_length: int,
                  horizons: tuple[int, ...] = (1, 4, 16, 64)) -> dict[int, float]:
    """Mean squared error of k-step-ahead predictions over every window of ``series`` (N,), for each k.

    All horizons are scored over the same context windows (those that leave room for the largest k), so the numbers
    differ only by how far ahead the model had to look.
    """
    longest = max(horizons)
    windows = series.unfold(0, context_length + longest, 1)  # (M, L + k_max): contexts and their futures
    predictions = multistep_forecast(model, windows[:, :context_length], longest)  # (M, k_max)
    futures = windows[:, context_length:]  # (M, k_max)
    return {k: float((predictions[:, k - 1] - futures[:, k - 1]).pow(2).mean()) for k in horizons}
