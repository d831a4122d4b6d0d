"""The seed's counting examples (CS182 seed 002), every CNN family's forward shape on 8x8 digits, and the fixed,
disjoint digits split."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from seqlab.config import from_dict
from seqlab.errors import ConfigError
from seqlab.nn.cnn import CNNConfig, CNNEncoder
from seqlab.tasks.image_classification import (DataConfig, ImageClassifier, ImageClassifierConfig, load_splits,
                                               split_indices)


def weights(layer: nn.Module) -> int:
    return layer.weight.numel()


def test_fully_connected_versus_conv_weight_counts() -> None:
    # A 128x128x3 image (49,152 inputs) fully connected to 64 units, against 64 3x3x3 filters (no biases).
    assert weights(nn.Linear(49_152, 64, bias=False)) == 3_145_728 == 64 * 49_152
    assert weights(nn.Conv2d(3, 64, 3, bias=False)) == 1_728 == 3 * 3 * 3 * 64


def test_alexnet_conv1_weight_count() -> None:
    # AlexNet's first layer: 96 filters of 11x11x3 (stride 4 on 224x224 ImageNet).
    assert weights(nn.Conv2d(3, 96, 11, stride=4)) == 34_848 == 11 * 11 * 3 * 96


@pytest.mark.parametrize("cnn, pad", [
    ({"architecture": "lenet", "channels": [6, 16], "batch_norm": False}, 4),
    ({"architecture": "alexnet", "channels": [32, 64, 96, 96, 64]}, 0),
    ({"architecture": "vgg", "channels": [32, 64], "convs_per_stage": 2}, 0),
    ({"architecture": "resnet", "channels": [16, 32, 64]}, 0),
])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_forward_shapes(cnn: dict, pad: int, batch_norm: bool) -> None:
    config = from_dict(ImageClassifierConfig, {"cnn": {**cnn, "batch_norm": batch_norm}, "pad": pad}, "model.")
    model = ImageClassifier(config, num_classes=10)
    features = model.encoder(torch.zeros(5, 1, 8 + 2 * pad, 8 + 2 * pad))
    height, width = model.encoder.feature_map_size(8 + 2 * pad, 8 + 2 * pad)
    assert features.shape == (5, config.cnn.channels[-1], height, width)  # the arithmetic matches the layers
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batch_norm


def test_alexnet_map_size() -> None:
    encoder = CNNEncoder(CNNConfig(architecture="alexnet", in_channels=1, channels=(8, 8, 8)))
    assert encoder.feature_map_size(8, 8) == (2, 2)  # 8 -> pool 4 -> pool 2 -> same-size 3x3


def test_lenet_without_padding_is_refused() -> None:
    with pytest.raises(ConfigError, match="pad"):
        from_dict(ImageClassifierConfig, {"cnn": {"architecture": "lenet", "channels": [6, 16]}}, "model.")


def test_split_is_fixed_stratified_and_disjoint() -> None:
    splits = load_splits(DataConfig())
    assert {name: len(labels) for name, (_, labels) in splits.items()} == {"train": 1257, "valid": 180, "test": 360}
    labels = torch.cat([splits[name][1] for name in ("train", "valid", "test")]).tolist()
    indices = split_indices(load_digits().target.tolist(), 0)
    assert sorted(sum(indices.values(), [])) == list(range(1797))  # disjoint, and together the whole dataset
    assert indices == split_indices(load_digits().target.tolist(), 0)  # fixed by the seed
    assert indices["test"] != split_indices(load_digits().target.tolist(), 1)["test"]
    assert sorted(labels) == sorted(load_digits().target.tolist())
    assert torch.bincount(splits["test"][1]).min() >= 35  # stratified: every digit about 36 times in 360
