"""seqlab.models.forecaster + seqlab.tasks.forecasting: the d2l noisy-sine experiment (1-step predictions are good,
k-step errors grow with k), feeding predictions back, causality of the latent RNN, the loss as a sum."""

import pytest
import torch

from seqlab.data.series import noisy_sine
from seqlab.errors import ConfigError
from seqlab.models.forecaster import (LagMLP, LagMLPConfig, RNNForecaster, RNNForecasterConfig, k_step_errors,
                                      multistep_forecast)
from seqlab.tasks.forecasting import ForecastingObjective, lag_batches, window_batches


def train(model: torch.nn.Module, batches, epochs: int, lr: float) -> None:
    task = ForecastingObjective()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        for batch in batches.epoch_batches(epoch):
            loss_sum, count = task.loss(model, batch)
            optimizer.zero_grad()
            (loss_sum / count).backward()
            optimizer.step()


def test_lag_mlp_one_step_is_good_and_k_step_error_grows():
    """d2l: T = 1000, x_t = sin(0.01 t) + N(0, 0.2²), τ = 4, train on the first 600 pairs; the 1-step error is near
    the noise floor (0.04 + noise in the inputs), while predicting 16 and 64 steps ahead from own predictions is much worse."""
    torch.manual_seed(0)
    series = noisy_sine(1000, seed=0)
    model = LagMLP(LagMLPConfig(tau=4, hidden_size=10))
    train(model, lag_batches(series[:604], tau=4, batch_size=16, seed=0), epochs=10, lr=0.01)
    one_step = ForecastingObjective().evaluate(model, lag_batches(series[600:], 4, 64, shuffle=False).epoch_batches(0))
    errors = k_step_errors(model, series, context_length=4, horizons=(1, 4, 16, 64))
    assert one_step["mse"] < 0.08  # about 0.058 (noisy inputs too); always predicting the mean gives about 0.5
    assert errors[1] == pytest.approx(
        ForecastingObjective().evaluate(model, lag_batches(series[:-63], 4, 997).epoch_batches(0))["mse"], rel=1e-4)
    assert errors[1] < errors[4] < errors[16] < errors[64]
    assert errors[64] > 3 * errors[1]


class CountingModel(torch.nn.Module):
    """x̂_{t} = x_{t-1} + 1: predictions fed back make an arithmetic sequence."""

    def predict_next(self, context: torch.Tensor) -> torch.Tensor:
        return context[:, -1] + 1


def test_multistep_forecast_feeds_predictions_back():
    context = torch.tensor([[0.0, 5.0], [1.0, -2.0]])
    assert multistep_forecast(CountingModel(), context, 3).tolist() == [[6.0, 7.0, 8.0], [-1.0, 0.0, 1.0]]


def test_lag_mlp_uses_only_the_last_tau_values():
    model = LagMLP(LagMLPConfig(tau=2))
    context = torch.randn(3, 6)
    torch.testing.assert_close(model.predict_next(context), model(context[:, -2:]))
    with pytest.raises(ValueError):
        model.predict_next(context[:, :1])


def test_rnn_forecaster_is_causal_and_learns_the_sine():
    torch.manual_seed(0)
    model = RNNForecaster(RNNForecasterConfig(cell="gru", hidden_size=16))
    inputs = torch.randn(2, 10)
    changed = inputs.clone()
    changed[:, 6:] += 5.0  # the future must not change earlier predictions
    torch.testing.assert_close(model(inputs)[:, :6], model(changed)[:, :6])
    series = noisy_sine(600, seed=1)
    train(model, window_batches(series[:400], length=20, batch_size=16, stride=2), epochs=10, lr=0.02)
    scores = ForecastingObjective().evaluate(model, window_batches(series[400:], 20, 64, shuffle=False).epoch_batches(0))
    assert scores["mse"] < 0.1  # about 0.06 (early window positions see little context); the mean gives about 0.5
    errors = k_step_errors(model, series[400:], 20, (1, 32))
    assert errors[32] > errors[1]


def test_batches_cut_the_series_as_documented_and_loss_is_a_sum():
    series = torch.arange(10.0)
    lag = lag_batches(series, 3, batch_size=100, shuffle=False).epoch_batches(0)[0]
    assert lag.inputs.shape == (7, 3) and lag.inputs[0].tolist() == [0, 1, 2] and lag.targets[0] == 3
    windows = window_batches(series, 4, batch_size=100, shuffle=False, stride=3).epoch_batches(0)[0]
    assert windows.inputs.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6]]
    assert windows.targets.tolist() == [[1, 2, 3, 4], [4, 5, 6, 7]]
    model = LagMLP(LagMLPConfig(tau=3))
    loss_sum, count = ForecastingObjective().loss(model, lag)
    assert count == 7
    torch.testing.assert_close(loss_sum, ((model(lag.inputs) - lag.targets) ** 2).sum())


@pytest.mark.parametrize("config,changes,key", [(LagMLPConfig, {"tau": 0}, "tau"),
                                                (LagMLPConfig, {"hidden_size": -1}, "hidden_size"),
                                                (RNNForecasterConfig, {"cell": "mlp"}, "cell"),
                                                (RNNForecasterConfig, {"num_layers": 0}, "num_layers")])
def test_config_errors_name_the_key(config, changes, key):
    with pytest.raises(ConfigError, match=f"^{key}"):
        config(**changes)
