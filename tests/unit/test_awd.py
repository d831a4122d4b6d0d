"""AWD-LSTM's regularisers (seqlab.nn.awd): the per-layer stack against PyTorch's fused one, DropConnect on the
recurrent matrix with gradients reaching the parameter, masks shared over time, whole word types dropped."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.models.rnn_lm import RNNLM, RNNLMConfig
from seqlab.nn.awd import LockedDropout, WeightDropRNN, embedding_dropout


def stack_like(fused: nn.LSTM, weight_drop: float = 0.0) -> WeightDropRNN:
    """A WeightDropRNN holding ``fused``'s weights, layer by layer."""
    stack = WeightDropRNN(nn.LSTM, fused.input_size, fused.hidden_size, fused.num_layers, weight_drop)
    with torch.no_grad():
        for index, layer in enumerate(stack.layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(layer, f"{name}_l0").copy_(getattr(fused, f"{name}_l{index}"))
    return stack


def test_without_drops_the_stack_is_the_fused_lstm():
    torch.manual_seed(0)
    fused = nn.LSTM(5, 7, 3, batch_first=True)
    stack = stack_like(fused)
    x, h, c = torch.randn(2, 6, 5), torch.randn(3, 2, 7), torch.randn(3, 2, 7)
    expected, (h1, c1) = fused(x, (h, c))
    out, (h2, c2) = stack(x, (h, c))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(h2, h1)
    torch.testing.assert_close(c2, c1)


def test_weight_drop_masks_the_recurrent_matrix_in_training_only():
    torch.manual_seed(0)
    fused = nn.LSTM(4, 6, 2, batch_first=True)
    stack = stack_like(fused, weight_drop=0.5)
    x, state = torch.randn(3, 5, 4), (torch.zeros(2, 3, 6), torch.zeros(2, 3, 6))
    reference, _ = fused(x, state)
    out, _ = stack.train()(x, state)
    assert not torch.allclose(out, reference)  # half of every W_hh dropped
    out.sum().backward()
    for layer in stack.layers:  # the dropped matrix stood in for the parameter: its gradient arrives
        assert layer.weight_hh_l0.grad is not None and layer.weight_hh_l0.grad.abs().sum() > 0
    with torch.no_grad():
        torch.testing.assert_close(stack.eval()(x, state)[0], reference)  # eval: nothing dropped
    # the parameter itself is untouched by the mask
    torch.testing.assert_close(stack.layers[1].weight_hh_l0, fused.weight_hh_l1)


def test_locked_dropout_reuses_one_mask_for_every_step():
    torch.manual_seed(0)
    drop = LockedDropout(0.5).train()
    out = drop(torch.ones(64, 9, 32))
    assert torch.equal(out, out[:, :1].expand_as(out))  # every time step the same mask
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    assert 0.4 < (out == 0).float().mean() < 0.6
    x = torch.randn(2, 3, 4)
    assert torch.equal(drop.eval()(x), x)


def test_embedding_dropout_drops_word_types_not_occurrences():
    torch.manual_seed(0)
    embedding = nn.Embedding(50, 8, padding_idx=0)
    ids = torch.randint(1, 50, (16, 20))
    out = embedding_dropout(embedding, ids, 0.5, training=True)
    dropped = (out == 0).all(-1)  # (B, T): positions whose word was dropped
    for word in ids.unique().tolist():  # a word is dropped everywhere or nowhere
        assert dropped[ids == word].unique().numel() == 1
    kept = ~dropped
    torch.testing.assert_close(out[kept], 2.0 * embedding(ids)[kept])
    assert 0.2 < dropped.float().mean() < 0.8
    torch.testing.assert_close(embedding_dropout(embedding, ids, 0.5, training=False), embedding(ids))


def test_an_awd_lm_trains_and_keeps_the_state_shape():
    torch.manual_seed(0)
    config = RNNLMConfig(cell="lstm", embedding_size=8, hidden_size=12, num_layers=3, dropout=0.3,
                         embedding_dropout=0.1, tie_embeddings=True, weight_drop=0.5, variational_dropout=True,
                         word_dropout=0.1)
    model = RNNLM(config, 30).train()
    assert isinstance(model.rnn, WeightDropRNN) and isinstance(model.output_dropout, LockedDropout)
    ids = torch.randint(4, 30, (4, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    losses = []
    for _ in range(30):
        logits, state = model(ids[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, 30), ids[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert state.hidden.shape == state.cell.shape == (3, 4, 12)
    assert losses[-1] < losses[0]
    model.eval()
    with torch.no_grad():  # eval is deterministic: no mask anywhere
        torch.testing.assert_close(model(ids)[0], model(ids)[0])


@pytest.mark.parametrize("fields, message", [
    ({"cell": "gru_seed", "weight_drop": 0.3}, "need cell rnn, gru or lstm"),
    ({"weight_drop": 1.0}, "weight_drop: must be in"),
    ({"word_dropout": -0.1}, "word_dropout: must be in"),
])
def test_bad_awd_settings_are_config_errors(fields, message):
    with pytest.raises(ConfigError, match=message):
        RNNLMConfig(**fields)
