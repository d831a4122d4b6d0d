"""``seqlab forecast``: predict a numeric series from its past (d2l seed 001, "序列模型").

    seqlab forecast train (--csv F [--column C] | --source sine|sunspots) --model mlp|rnn --tau 4 --model-dir DIR
    seqlab forecast predict DIR (--csv F [--column C] | --source ...) --steps K --out OUT.csv [--plot OUT.png]

Training standardises the series with the mean and standard deviation of its training part (the first
``--train-fraction``), fits the τ-lag MLP (Markov assumption) or the latent RNN on one-step targets, and validates
on the rest.  Prediction writes, for every time step t of the series::

    index, observed, one_step (x̂_t from the observed x_{t-L} .. x_{t-1}), <K>_step (x̂_t from observations up to
    x_{t-K}, the K-1 values between fed back from the model's own predictions), forecast (K rows past the end)

L is the model's context length: τ for the MLP, the training window for the RNN.  Numbers are in the series'
own units (the standardisation is undone).  Built-in sources: ``sine`` (d2l: x_t = sin(0.01 t) + N(0, 0.2²),
t = 1..1000) and ``sunspots`` (yearly, 1700-2008, from statsmodels' bundled data).
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from seqlab.config import from_dict
from seqlab.data.series import noisy_sine, read_series_csv, sunspots
from seqlab.errors import CheckpointError, ConfigError, DataError, SeqlabError
from seqlab.models.forecaster import (Forecaster, LagMLP, LagMLPConfig, RNNForecaster, RNNForecasterConfig,
                                      k_step_errors, multistep_forecast)
from seqlab.tasks.forecasting import ForecastingTask, lag_batches, window_batches
from seqlab.train.checkpoint import find_checkpoint, load_checkpoint
from seqlab.train.trainer import Trainer, TrainConfig
from seqlab.utils import atomic_write

HELP = "forecast a numeric series (CSV, noisy sine, sunspots) with a tau-lag MLP or a latent RNN"
SOURCES = ("sine", "sunspots")


@dataclass
class ForecastConfig:
    """One forecasting run: the model family and its size, the split and the optimisation."""

    model: str = "mlp"  # mlp (τ lags, Markov assumption) | rnn (latent state over a window)
    tau: int = 4  # mlp: number of lags (d2l: 4)
    hidden_size: int = 10  # d2l's MLP: 10 ReLU units
    cell: str = "gru"  # rnn only
    window: int = 16  # rnn: training window length, and the context it reads when predicting
    train_fraction: float = 0.6  # d2l trains on the first 600 of 1,000 points
    epochs: int = 10
    batch_size: int = 16
    lr: float = 0.01
    seed: int = 1

    def __post_init__(self) -> None:
        if self.model not in ("mlp", "rnn"):
            raise ConfigError(f"model: must be mlp or rnn, got {self.model!r}")
        for name in ("tau", "hidden_size", "window", "epochs", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(f"train_fraction: must be in (0, 1), got {self.train_fraction}")
        if self.lr <= 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr}")

    @property
    def context_length(self) -> int:
        return self.tau if self.model == "mlp" else self.window


def load_series(csv_path: str | None = None, column: str | None = None, source: str | None = None) -> torch.Tensor:
    """(N,) float32 from a CSV column or a built-in source; exactly one of ``csv_path`` and ``source``."""
    if (csv_path is None) == (source is None):
        raise SeqlabError("forecast: give exactly one of --csv FILE and --source " + "|".join(SOURCES))
    if csv_path is not None:
        return read_series_csv(csv_path, column)
    if source == "sine":
        return noisy_sine(1000, seed=0)
    if source == "sunspots":
        return sunspots()
    raise ConfigError(f"--source: must be one of {', '.join(SOURCES)}, got {source!r}")


def build_forecaster(config: ForecastConfig) -> Forecaster:
    if config.model == "mlp":
        return LagMLP(LagMLPConfig(tau=config.tau, hidden_size=config.hidden_size))
    return RNNForecaster(RNNForecasterConfig(cell=config.cell, hidden_size=config.hidden_size))


# ------------------------------------------------------------------------------------------------ training
def train_forecaster(series: torch.Tensor, config: ForecastConfig, model_dir: str | Path,
                     progress: bool = False) -> dict[str, Any]:
    """Fit on the first ``train_fraction`` of ``series`` (N,), validate 1-step MSE on the rest; best.pt in model_dir.

    Returns the held-out 1-step MSE of the best model, in the series' units, beside the naive last-value
    baseline's (x̂_t = x_{t-1}) on the same points.
    """
    if (Path(model_dir) / "last.pt").is_file():
        raise CheckpointError(f"{model_dir}: already holds a trained model; choose another --model-dir")
    split = _split_point(series, config)
    mean, std = float(series[:split].mean()), float(series[:split].std())
    std = std if std > 0 else 1.0  # a constant training part: predict in raw offsets rather than divide by 0
    scaled = (series - mean) / std  # standardised with training statistics only: no test leakage
    torch.manual_seed(config.seed)
    model = build_forecaster(config)
    train_part, held_out = scaled[:split], scaled[split - config.context_length:]
    batches = (lag_batches(train_part, config.tau, config.batch_size, seed=config.seed) if config.model == "mlp"
               else window_batches(train_part, config.window, config.batch_size, seed=config.seed))
    validate = lambda m: {"mse": one_step_mse(m, held_out, config.context_length)}  # noqa: E731
    train_config = TrainConfig(seed=config.seed, device="cpu", lr=config.lr, max_epochs=config.epochs,
                               clip_norm=0.0, log_every=10 ** 6, early_stopping_metric="mse", progress=progress)
    extra = {"forecast": asdict(config), "mean": mean, "std": std, "series_length": int(series.numel())}
    progress_state = Trainer(model, ForecastingTask(), train_config, model_dir, extra, validate).fit(batches)
    model.load_state_dict(load_checkpoint(Path(model_dir) / "best.pt")["model"])
    naive = float((held_out[config.context_length:] - held_out[config.context_length - 1:-1]).pow(2).mean())
    return {"model_dir": str(model_dir), "train_points": split, "test_points": int(series.numel()) - split,
            "epochs": progress_state.epoch, "test_mse": one_step_mse(model, held_out, config.context_length) * std ** 2,
            "naive_last_value_mse": naive * std ** 2}


def _split_point(series: torch.Tensor, config: ForecastConfig) -> int:
    split = int(series.numel() * config.train_fraction)
    needed = config.context_length + 2  # at least two training targets and one held-out target
    if split < needed or series.numel() - split < 1:
        raise DataError(f"series: {series.numel()} values are too few for context {config.context_length} "
                        f"with train_fraction {config.train_fraction}")
    return split


@torch.no_grad()
def one_step_mse(model: Forecaster, series: torch.Tensor, context_length: int) -> float:
    """Mean squared 1-step error over every window of ``series`` (N,): contexts of L values, then their target."""
    was_training = model.training
    model.eval()
    error = k_step_errors(model, series, context_length, horizons=(1,))[1]
    model.train(was_training)
    return error


# ------------------------------------------------------------------------------------------------ prediction
@dataclass
class LoadedForecaster:
    model: Forecaster
    config: ForecastConfig
    mean: float
    std: float


def load_forecaster(model_dir: str | Path) -> LoadedForecaster:
    path = find_checkpoint(model_dir)
    extra = load_checkpoint(path).get("extra", {})
    if "forecast" not in extra:
        raise CheckpointError(f"{path}: not a forecasting checkpoint (trained by another command?)")
    config = from_dict(ForecastConfig, extra["forecast"], "forecast.")
    model = build_forecaster(config)
    model.load_state_dict(load_checkpoint(path)["model"])
    return LoadedForecaster(model.eval(), config, float(extra["mean"]), float(extra["std"]))


@torch.no_grad()
def forecast_table(loaded: LoadedForecaster, series: torch.Tensor, steps: int) -> dict[str, list[float | None]]:
    """Columns of the output CSV (see the module docstring); None = no prediction at that row."""
    context = loaded.config.context_length
    if series.numel() < context + 1:
        raise DataError(f"series: {series.numel()} values, but the model reads a context of {context}")
    scaled = (series - loaded.mean) / loaded.std
    unscale = lambda values: (values * loaded.std + loaded.mean).tolist()  # noqa: E731
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
    import matplotlib

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
    from seqlab.plots import save_figure

    save_figure(figure, path)


# ------------------------------------------------------------------------------------------------ the CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = actions.add_parser("train", help="fit a forecaster; best.pt/last.pt in --model-dir")
    _add_source_arguments(train)
    train.add_argument("--model-dir", required=True)
    defaults = ForecastConfig()
    train.add_argument("--model", choices=("mlp", "rnn"), default=defaults.model)
    for name in ("tau", "hidden_size", "window", "epochs", "batch_size", "seed"):
        train.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    train.add_argument("--cell", default=defaults.cell, help="rnn cell: rnn | gru | lstm")
    train.add_argument("--lr", type=float, default=defaults.lr)
    train.add_argument("--train-fraction", type=float, default=defaults.train_fraction)
    predict = actions.add_parser("predict", help="1-step and K-step-ahead predictions of a series -> CSV (+ PNG)")
    predict.add_argument("model_dir")
    _add_source_arguments(predict)
    predict.add_argument("--steps", type=int, default=4, help="K: how many steps ahead (default 4)")
    predict.add_argument("--out", required=True, help="output CSV")
    predict.add_argument("--plot", help="also draw the columns into this PNG")


def _add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csv", help="a CSV file with a header line")
    parser.add_argument("--column", help="the CSV column to read (default: the last one)")
    parser.add_argument("--source", choices=SOURCES, help="a built-in series instead of --csv")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)  # models of a few hundred weights: more threads only add overhead
    series = load_series(args.csv, args.column, args.source)
    if args.action == "train":
        fields = {name: getattr(args, name) for name in ForecastConfig.__dataclass_fields__}
        summary = train_forecaster(series, ForecastConfig(**fields), args.model_dir)
        print(json.dumps(summary))
        return 0
    if args.steps <= 0:
        raise ConfigError(f"--steps: must be > 0, got {args.steps}")
    loaded = load_forecaster(args.model_dir)
    table = forecast_table(loaded, series, args.steps)
    write_table(args.out, table)
    if args.plot:
        plot_table(args.plot, table, f"{loaded.config.model}, context {loaded.config.context_length}")
    return 0
