"""Forecasting a numeric series from its past (d2l seed 001, "序列模型") with ``seqlab.models.forecaster``: the
τ-lag MLP (Markov assumption) or the latent RNN.

    seqlab train configs/forecast_sine_mlp.yaml        # or: seqlab forecast train --source sine --model mlp ...
    seqlab forecast runs/forecast_sine_mlp --source sine --steps 4 --out pred.csv --plot pred.png

Training standardises the series with the mean and standard deviation of its training part (the first
``data.train_fraction``), fits the model on one-step targets and validates (1-step MSE) on the rest.  Two ways to
cut a series into training examples, one per model family:

* ``lag_batches(series, tau)``: (x_{t-τ} .. x_{t-1}) -> x_t pairs for the τ-lag MLP, inputs (B, τ), targets (B,);
* ``window_batches(series, length)``: windows x_i .. x_{i+T-1} with targets x_{i+1} .. x_{i+T}, inputs and
  targets (B, T), for the latent RNN (teacher forcing: the observed value, not the prediction, is fed back).

Prediction writes, for every time step t of the series::

    index, observed, one_step (x̂_t from the observed x_{t-L} .. x_{t-1}), <K>_step (x̂_t from observations up to
    x_{t-K}, the K-1 values between fed back from the model's own predictions), forecast (K rows past the end)

L is the model's context length: τ for the MLP, the training window for the RNN.  Numbers are in the series'
own units (the standardisation is undone).  Built-in sources: ``sine`` (d2l: x_t = sin(0.01 t) + N(0, 0.2²),
t = 1..1000) and ``sunspots`` (yearly, 1700-2008, from statsmodels' bundled data).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import torch

from seqlab.config import RunConfig
from seqlab.data.series import lag_features, noisy_sine, read_series_csv, sunspots
from seqlab.errors import ConfigError, DataError
from seqlab.models.forecaster import (Forecaster, LagMLP, LagMLPConfig, RNNForecaster, RNNForecasterConfig,
                                      k_step_errors, multistep_forecast)
from seqlab.plots import save_figure
from seqlab.run_dir import LoadedModel, TrainingRun
from seqlab.tasks.batching import Batches, evaluating
from seqlab.utils import atomic_write

SOURCES = ("sine", "sunspots", "csv")
# What the task table reads (seqlab.tasks): DataConfig, Preprocessing and these.
MODEL_CONFIGS = {"mlp": LagMLPConfig, "rnn": RNNForecasterConfig}
DEFAULT_ARCHITECTURE = "mlp"
# d2l's recipe: lr 0.01, 10 epochs, no clipping; models of a few hundred weights run best on one thread.
DEFAULTS: dict[str, Any] = {"model_dir": "runs/forecaster", "train": {
    "lr": 0.01, "max_epochs": 10, "clip_norm": 0.0, "early_stopping_metric": "mse", "device": "cpu",
    "num_threads": 1, "log_every": 1000}}
GENERATES = False
SCHEDULED_SAMPLING = False


@dataclass
class DataConfig:
    source: str = "sine"  # sine | sunspots | csv
    csv_file: str = ""  # source csv: a CSV file with a header line
    column: str = ""  # source csv: the column to read ("" = the last one)
    train_fraction: float = 0.6  # d2l trains on the first 600 of 1,000 points
    window: int = 16  # rnn: training window length, and the context it reads when predicting
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"source: must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.source == "csv" and not self.csv_file:
            raise ConfigError("csv_file: required when source is csv")
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(f"train_fraction: must be in (0, 1), got {self.train_fraction}")
        for name in ("window", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")


@dataclass
class Preprocessing:
    """The training part's mean and standard deviation (inputs are standardised by them) and the context length
    the model reads."""

    mean: float
    std: float
    context_length: int

    def text_files(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "context_length": self.context_length}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        return cls(float(data["mean"]), float(data["std"]), int(data["context_length"]))


def build_model(config: RunConfig, pre: Preprocessing | None = None) -> Forecaster:
    options = config.model.options
    return LagMLP(options) if config.model.architecture == "mlp" else RNNForecaster(options)


def context_length(config: RunConfig) -> int:
    return config.model.options.tau if config.model.architecture == "mlp" else config.data.window


def load_series(data: DataConfig) -> torch.Tensor:
    """(N,) float32 from the data section's source."""
    if data.source == "csv":
        return read_series_csv(data.csv_file, data.column or None)
    return noisy_sine(1000, seed=0) if data.source == "sine" else sunspots()


def split_series(config: RunConfig) -> tuple[torch.Tensor, torch.Tensor, Preprocessing]:
    """(standardised training part, held-out part with its L context values in front, preprocessing)."""
    series, length = load_series(config.data), context_length(config)
    split = int(series.numel() * config.data.train_fraction)
    if split < length + 2 or series.numel() - split < 1:  # two training targets and one held-out target at least
        raise DataError(f"series: {series.numel()} values are too few for context {length} "
                        f"with train_fraction {config.data.train_fraction}")
    mean, std = float(series[:split].mean()), float(series[:split].std())
    std = std if std > 0 else 1.0  # a constant training part: predict in raw offsets rather than divide by 0
    scaled = (series - mean) / std  # standardised with training statistics only: no test leakage
    return scaled[:split], scaled[split - length:], Preprocessing(mean, std, length)


def prepare(config: RunConfig, device: torch.device) -> TrainingRun:
    train_part, held_out, pre = split_series(config)
    data, seed = config.data, config.train.seed
    batches = (lag_batches(train_part, pre.context_length, data.batch_size, seed=seed)
               if config.model.architecture == "mlp" else window_batches(train_part, data.window, data.batch_size,
                                                                          seed=seed))
    return TrainingRun(build_model(config), ForecastingObjective(), batches,
                       lambda m: {"mse": one_step_mse(m, held_out, pre.context_length)}, pre,
                       {"train": int(train_part.numel()), "test": int(held_out.numel()) - pre.context_length})


def test_scores(loaded: LoadedModel, config: RunConfig) -> dict[str, float]:
    """Held-out 1-step MSE of the best model in the series' units, beside the naive last-value baseline's
    (x̂_t = x_{t-1}) on the same points."""
    _, held_out, pre = split_series(config)
    naive = float((held_out[pre.context_length:] - held_out[pre.context_length - 1:-1]).pow(2).mean())
    return {"mse": one_step_mse(loaded.model, held_out, pre.context_length) * pre.std ** 2,
            "naive_last_value_mse": naive * pre.std ** 2}


@torch.no_grad()
def one_step_mse(model: Forecaster, series: torch.Tensor, context_length: int) -> float:
    """Mean squared 1-step error over every window of ``series`` (N,): contexts of L values, then their target."""
    with evaluating(model):
        return k_step_errors(model, series, context_length, horizons=(1,))[1]


@torch.no_grad()
def forecast_table(loaded: LoadedModel, series: torch.Tensor, steps: int) -> dict[str, list[float | None]]:
    """Columns of the output CSV (see the module docstring); None = no prediction at that row."""
    pre = loaded.preprocessing
    context = pre.context_length
    if series.numel() < context + 1:
        raise DataError(f"series: {series.numel()} values, but the model reads a context of {context}")
    scaled = (series - pre.mean) / pre.std
    unscale = lambda values: (values * pre.std + pre.mean).tolist()  # noqa: E731
    n = series.numel()
    windows = scaled.unfold(0, context, 1)[:-1]  # (N-L, L): window i precedes x_{i+L}
    predictions = multistep_forecast(loaded.model, windows, steps)  # (N-L, K): column j = (j+1)-step ahead
    one_step = [None] * context + unscale(predictions[:, 0])
    k_step_values = unscale(predictions[:max(n - context - steps + 1, 0), steps - 1])
    k_step = ([None] * (context + steps - 1) + k_step_values)[:n]  # K > N - L: no observed row is K steps in
    future = unscale(multistep_forecast(loaded.model, scaled[-context:].unsqueeze(0), steps)[0])  # (K,)
    pad = [None] * steps
    return {"index": list(range(n + steps)), "observed": series.tolist() + pad, "one_step": one_step + pad,
            f"{steps}_step": k_step + pad, "forecast": [None] * n + future}


def write_table(path: str | Path, table: dict[str, list[Any]]) -> None:
    with atomic_write(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(table)
        writer.writerows(["" if v is None else (repr(v) if isinstance(v, float) else v) for v in row]
                         for row in zip(*table.values()))


def plot_table(path: str | Path, table: dict[str, list[Any]], title: str = "") -> None:
    """Observed series with its 1-step, K-step and future predictions (d2l's figures, one picture)."""
    import matplotlib  # here, not at the top: half a second of start-up, paid only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 3.5))
    for name, style in zip(list(table)[1:], ("-", "--", ":", "-.")):
        points = [(i, v) for i, v in zip(table["index"], table[name]) if v is not None]
        if points:
            axes.plot(*zip(*points), style, linewidth=1, label=name.replace("_", "-"))
    axes.set_xlabel("time step")
    axes.legend(fontsize=8)
    if title:
        axes.set_title(title, fontsize=9)
    save_figure(figure, path)



# ------------------------------------------------------------------------------------------------ batches and loss
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


class ForecastingObjective:
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
