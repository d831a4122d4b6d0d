"""Numeric time series for forecasting (d2l seed 001, "序列模型"): the noisy sine of d2l, CSV files, and a real
series, the yearly sunspot numbers 1700-2008 (309 values) shipped with statsmodels.

``lag_features`` turns a series into the (x_{t-τ} .. x_{t-1}) -> x_t pairs of the seed's Markov assumption
("假设当前数据只跟 τ 个过去数据点相关").  Shapes: N series length, τ lag.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import torch

from seqlab.errors import DataError


def noisy_sine(num_steps: int = 1000, noise_std: float = 0.2, frequency: float = 0.01,
               seed: int = 0) -> torch.Tensor:
    """d2l's toy series x_t = sin(0.01 t) + ε_t, ε_t ~ N(0, 0.2²), t = 1..N -> (N,) float32."""
    generator = torch.Generator().manual_seed(seed)
    time = torch.arange(1, num_steps + 1, dtype=torch.float32)
    return torch.sin(frequency * time) + noise_std * torch.randn(num_steps, generator=generator)


def read_series_csv(path: str | Path, column: str | None = None) -> torch.Tensor:
    """The numeric ``column`` of a CSV file with a header line (default: its last column) -> (N,) float32.

    A missing or non-numeric cell is a DataError naming ``path:line``: forecasting cannot skip a time step.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise DataError(f"{path}: expected a header line and at least one value")
    header = rows[0]
    if column is not None and column not in header:
        raise DataError(f"{path}:1: no column {column!r} (columns: {', '.join(header)})")
    index = header.index(column) if column is not None else len(header) - 1
    values = []
    for number, row in enumerate(rows[1:], start=2):
        try:
            value = float(row[index])
        except (IndexError, ValueError):
            raise DataError(f"{path}:{number}: expected a number in column {header[index]!r}, got {row}") from None
        if not math.isfinite(value):
            raise DataError(f"{path}:{number}: value {row[index]!r} is not finite")
        values.append(value)
    return torch.tensor(values, dtype=torch.float32)


def sunspots() -> torch.Tensor:
    """Yearly mean sunspot numbers 1700..2008 -> (309,) float32, read from statsmodels' bundled CSV.

    The file is read directly (``YEAR,SUNACTIVITY``), without importing statsmodels (and pandas) at all.
    """
    spec = importlib.util.find_spec("statsmodels")
    if spec is None or spec.origin is None:
        raise DataError("sunspots: needs the statsmodels package for its bundled data (pip install statsmodels)")
    path = Path(spec.origin).parent / "datasets" / "sunspots" / "sunspots.csv"
    return read_series_csv(path, "SUNACTIVITY")


def lag_features(series: torch.Tensor, tau: int) -> tuple[torch.Tensor, torch.Tensor]:
    """series (N,) -> features (N-τ, τ) with row i = x_i .. x_{i+τ-1}, and targets (N-τ,) with x_{i+τ}."""
    if not 0 < tau < series.numel():
        raise DataError(f"tau: must be in [1, {series.numel() - 1}] for a series of {series.numel()}, got {tau}")
    windows = series.unfold(0, tau + 1, 1)  # (N-τ, τ+1), a view: row i = x_i .. x_{i+τ}
    return windows[:, :tau].contiguous(), windows[:, tau].contiguous()
