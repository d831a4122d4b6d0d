"""Issue 20's missing unit tests: per-element gradient clipping (``train.clip_value``) and the draw of
``seqlab search --random N``."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from seqlab.commands.search import trials
from tests.unit.test_trainer import ToySource, make_trainer


def test_clip_value_clips_only_the_elements_above_the_value(tmp_path):
    trainer = make_trainer(tmp_path, clip_value=0.05, optimizer="sgd", lr=1.0)
    batch = ToySource().epoch_batches(0)[0]
    # the unclipped gradient of the same update, by hand (same dropout draw: same seed)
    reference = copy.deepcopy(trainer.model).train()
    torch.manual_seed(123)
    logits = reference(batch.x)
    (torch.nn.functional.cross_entropy(logits, batch.y, reduction="sum") / len(batch.y)).backward()
    gradient = torch.cat([p.grad.flatten() for p in reference.parameters()])
    above = gradient.abs() > 0.05
    assert above.any() and (~above & (gradient != 0)).any()  # the test exercises both cases
    before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    torch.manual_seed(123)
    trainer.train_step(batch)
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    step = before - after  # SGD, lr 1, no momentum: the (clipped) gradient itself
    torch.testing.assert_close(step[above], 0.05 * gradient[above].sign(), atol=1e-6, rtol=0)
    torch.testing.assert_close(step[~above], gradient[~above], atol=1e-6, rtol=0)


GRID = {"model.hidden_size": ["16", "24", "32"], "train.lr": ["0.01", "0.02"]}


def test_random_search_draws_n_distinct_points_inside_the_grid():
    points = trials(GRID, 4, seed=3)
    assert len(points) == 4
    assert len({tuple(p.items()) for p in points}) == 4  # no point twice
    for point in points:
        assert point.keys() == GRID.keys() and all(point[k] in GRID[k] for k in GRID)


def test_random_search_is_reproducible_by_seed():
    assert trials(GRID, 3, seed=5) == trials(GRID, 3, seed=5)
    draws = {tuple(tuple(p.items()) for p in trials(GRID, 3, seed=seed)) for seed in range(10)}
    assert len(draws) > 1  # the seed does change the draw


@pytest.mark.parametrize("count", [0, 6, 10])
def test_random_n_at_least_the_grid_size_is_the_whole_grid_in_order(count):
    whole = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    assert trials(GRID, count, seed=1) == whole
