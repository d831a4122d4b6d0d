"""seqlab.nn.cnn: the seed's size arithmetic, a conv against its sliding-window definition, the three families."""

import pytest
import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.nn.cnn import CNNConfig, CNNEncoder, ResidualBlock, conv_block, output_size


def test_output_size_reproduces_the_seed_examples():
    assert output_size(32, 5) == 28  # LeNet C1: 32x32, 5x5 valid conv -> 28x28
    assert output_size(28, 2, stride=2) == 14  # S2: 2x2 pooling halves
    assert output_size(10, 2, stride=2) == 5  # S4: 10x10 -> 5x5
    assert output_size(128, 3, padding=1) == 128  # zero padding keeps the size
    assert output_size(227, 11, stride=4) == 55  # AlexNet conv1: "55x55x96"
    assert output_size(55, 3, stride=2) == 27  # then 3x3 max pool, stride 2: "27x27x96"
    with pytest.raises(ValueError):
        output_size(3, 5)


def test_output_size_matches_pytorch_for_many_settings():
    for size, kernel, padding, stride in [(7, 3, 0, 2), (8, 3, 1, 2), (9, 4, 2, 3), (5, 5, 0, 1), (6, 1, 0, 4)]:
        conv = nn.Conv2d(1, 1, kernel, stride, padding)
        assert conv(torch.zeros(1, 1, size, size)).shape[-1] == output_size(size, kernel, padding, stride)


def test_conv_equals_its_sliding_window_definition():
    """out[i, j] = Σ_{a, b} x[s*i + a - p, s*j + b - p] w[a, b] + bias, with x = 0 outside the image."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)
    image = torch.randn(1, 1, 6, 5)
    padded = nn.functional.pad(image, (1, 1, 1, 1))[0, 0]
    weight, bias = conv.weight[0, 0].detach(), conv.bias[0].detach()
    expected = torch.tensor([[float((padded[2 * i:2 * i + 3, 2 * j:2 * j + 3] * weight).sum() + bias)
                              for j in range(output_size(5, 3, 1, 2))] for i in range(output_size(6, 3, 1, 2))])
    torch.testing.assert_close(conv(image)[0, 0], expected)


def test_lenet_sizes_follow_the_seed():
    encoder = CNNEncoder(CNNConfig(architecture="lenet", in_channels=1, channels=(6, 16), batch_norm=False))
    images = torch.randn(2, 1, 32, 32)
    first_conv = encoder.layers[0](images)
    assert first_conv.shape == (2, 6, 28, 28)  # C1
    assert encoder.layers[1](first_conv).shape == (2, 6, 14, 14)  # S2
    assert encoder(images).shape == (2, 16, 5, 5)  # C3 10x10 -> S4 5x5
    assert encoder.feature_map_size(32, 32) == (5, 5)


@pytest.mark.parametrize("architecture", ["lenet", "alexnet", "vgg", "resnet"])
@pytest.mark.parametrize("height,width", [(64, 64), (37, 50)])
def test_feature_map_size_matches_the_network(architecture, height, width):
    config = CNNConfig(architecture=architecture, channels=(4, 8), convs_per_stage=2)
    encoder = CNNEncoder(config).eval()
    features = encoder(torch.randn(1, 3, height, width))
    assert features.shape == (1, 8, *encoder.feature_map_size(height, width))
    assert encoder.out_channels == 8


def test_residual_block_is_the_identity_path_when_its_branch_is_zero():
    torch.manual_seed(0)
    block = ResidualBlock(4, 4).eval()
    nn.init.zeros_(block.residual[-1].weight)  # last batch norm's gain: F(x) = 0 + beta = 0
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(block(x), torch.relu(x))


def test_residual_block_projects_the_shortcut_when_the_shape_changes():
    block = ResidualBlock(4, 8, stride=2)
    assert block(torch.randn(2, 4, 9, 9)).shape == (2, 8, 5, 5)
    assert isinstance(block.shortcut, nn.Sequential)


def test_conv_block_without_batch_norm_has_a_bias_and_applies_relu():
    block = conv_block(3, 5, 3, 1, batch_norm=False)
    assert block[0].bias is not None and len(block) == 2
    assert (block(torch.randn(2, 3, 8, 8)) >= 0).all()
    assert conv_block(3, 5, 3, 1)[0].bias is None  # batch norm re-centres: the bias would be wasted


@pytest.mark.parametrize("changes,key", [({"architecture": "googlenet"}, "architecture"), ({"channels": ()}, "channels"),
                                         ({"channels": (8, 0)}, "channels"), ({"convs_per_stage": 0}, "convs_per"),
                                         ({"dropout": 1.0}, "dropout"), ({"in_channels": 0}, "in_channels")])
def test_config_errors_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=f"^{key}"):
        CNNConfig(**changes)
