"""Forecasting a numeric series with ``seqlab.models.forecaster`` (``LagMLP`` or ``RNNForecaster``).

Two ways to cut a series into training examples, one per model family:

* ``lag_batches(series, tau)``: (x_{t-τ} .. x_{t-1}) -> x_t pairs for the τ-lag MLP, inputs (B, τ), targets (B,);
* ``window_batches(series, length)``: windows x_i .. x_{i+T-1} with targets x_{i+1} .. x_{i+T}, inputs and
  targets (B, T), for the latent RNN (teacher forcing: the observed value, not the prediction, is fed back).

Either way ``ForecastingTask.loss`` is the summed squared error and the count the number of predicted values.  The
k-step-ahead errors of the seed live in ``seqlab.models.forecaster.k_step_errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import torch

from seqlab.data.series import lag_features
from seqlab.errors import DataError
from seqlab.tasks.batching import Batches, evaluating


@dataclass
class ForecastBatch:
    """inputs (B, τ) with targets (B,), or inputs (B, T) with targets (B, T); indices (B,)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor

    def to(self, device: torch.device | str) -> "ForecastBatch":
        return ForecastBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def _collate(items: list[tuple[torch.Tensor, torch.Tensor]], indices: list[int]) -> ForecastBatch:
    return ForecastBatch(torch.stack([x for x, _ in items]), torch.stack([y for _, y in items]),
                         torch.tensor(indices))


def lag_batches(series: torch.Tensor, tau: int, batch_size: int, shuffle: bool = True, seed: int = 0) -> Batches:
    """Every (τ lags, next value) pair of ``series`` (N,): N - τ examples."""
    features, targets = lag_features(series, tau)  # (N-τ, τ), (N-τ,)
    return Batches(list(zip(features, targets)), _collate, batch_size, shuffle, seed)


def window_batches(series: torch.Tensor, length: int, batch_size: int, shuffle: bool = True, seed: int = 0,
                   stride: int = 1) -> Batches:
    """Windows of ``length`` inputs and their one-step-shifted targets, starting every ``stride`` steps."""
    if not 0 < length < series.numel():
        raise DataError(f"window length: must be in [1, {series.numel() - 1}], got {length}")
    windows = series.unfold(0, length + 1, stride)  # (M, T+1)
    return Batches([(w[:-1], w[1:]) for w in windows], _collate, batch_size, shuffle, seed)


class ForecastingTask:
    def loss(self, model: torch.nn.Module, batch: ForecastBatch) -> tuple[torch.Tensor, int]:
        predictions = model(batch.inputs)  # same shape as targets
        return (predictions - batch.targets).pow(2).sum(), batch.targets.numel()

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, batches: Sequence[ForecastBatch]) -> dict[str, float]:
        """One-step-ahead mean squared error and its root."""
        with evaluating(model) as device:
            total, count = 0.0, 0
            for batch in batches:
                batch = batch.to(device)
                total += float((model(batch.inputs) - batch.targets).pow(2).sum())
                count += batch.targets.numel()
        mse = total / max(count, 1)
        return {"mse": mse, "rmse": mse ** 0.5}
