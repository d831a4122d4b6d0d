"""Pixel LMs on the 8x8 digits (seqlab.data.pixels, the digits side of the LM task): image <-> tokens, the
classifier's split, the stream layout, bits/pixel and the per-pixel baseline by hand, class-conditional sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqlab.data.pixels import (CLASS_TOKENS, PIXEL_TOKENS, PIXELS, digit_lines, digit_splits, image_to_tokens,
                                ngram_bits_per_pixel, per_pixel_bits, tokens_to_image)
from seqlab.data.streams import LMDataConfig
from seqlab.errors import ConfigError, DataError
from seqlab.models.build import LM_CONFIGS, build_lm
from seqlab.tasks import image_classification
from seqlab.tasks.language_model import bits_per_pixel, prepare_lm, sample_images


@pytest.fixture(scope="module")
def conditional():
    """(Preprocessing, streams) of 5 images per split, class-conditional."""
    return prepare_lm(LMDataConfig(dataset="digits", class_conditional=True, max_images=5))


def test_an_image_survives_tokens_and_back_with_or_without_its_class():
    image = np.arange(PIXELS) % 17
    tokens = image_to_tokens(image, label=7)
    assert tokens[0] == "<c7>" and tokens[1:4] == ["g0", "g1", "g2"] and len(tokens) == 65
    assert (tokens_to_image(tokens) == image.reshape(8, 8)).all()
    assert (tokens_to_image(image_to_tokens(image)) == image.reshape(8, 8)).all()
    assert tokens_to_image(tokens)[2, 1] == image[17]  # raster order: row 2, column 1 is pixel 17


@pytest.mark.parametrize("bad", [np.zeros(63), np.full(64, 17), np.full(64, -1)])
def test_an_image_that_is_not_64_grey_levels_is_refused(bad):
    with pytest.raises(DataError, match="64 grey levels"):
        image_to_tokens(bad)


def test_tokens_that_are_not_64_pixels_are_refused():
    with pytest.raises(DataError, match="64 pixel tokens"):
        tokens_to_image(["<c1>"] + ["g0"] * 63 + ["<eos>"])


def test_the_split_is_the_image_classifiers():
    ours = digit_splits(split_seed=3)
    theirs = image_classification.load_splits(image_classification.DataConfig(split_seed=3))
    assert {name: len(labels) for name, (_, labels) in ours.items()} == {"train": 1257, "valid": 180, "test": 360}
    for name, (pixels, labels) in ours.items():
        assert (pixels == theirs[name][0].numpy()).all() and (labels == theirs[name][1].numpy()).all()
    assert not (ours["test"][0][:20] == digit_splits(split_seed=0)["test"][0][:20]).all()  # the seed matters


def test_lines_carry_the_class_token_only_when_class_conditional():
    pixels, labels = digit_splits(max_images=2)["valid"]
    with_class, without = digit_lines(class_conditional=True, max_images=2), digit_lines(max_images=2)
    assert with_class["valid"][0].split() == [CLASS_TOKENS[labels[0]], *without["valid"][0].split()]
    assert without["valid"][1].split() == image_to_tokens(pixels[1])


def test_the_stream_is_boundary_class_pixels_per_image(conditional):
    pre, streams = conditional
    assert len(streams["train"]) == 1 + 5 * 66 and all(token in pre.vocab for token in PIXEL_TOKENS + CLASS_TOKENS)
    first = [pre.vocab.tokens[i] for i in streams["train"][:67]]
    assert first[0] == "<eos>" and first[1] in CLASS_TOKENS and first[66] == "<eos>"
    assert first[2:66] == digit_lines(class_conditional=True, max_images=5)["train"][0].split()[1:]


def test_class_conditional_is_refused_outside_the_digits():
    with pytest.raises(ConfigError, match="only for dataset digits"):
        LMDataConfig(dataset="ptb", class_conditional=True)


class UniformOverPixels(torch.nn.Module):
    """Scripted LM: uniform over the 17 grey levels, next to nothing on every other token (class, <eos>), so
    averaging a non-pixel position into bits/pixel would blow the figure up."""

    def __init__(self, vocab):
        super().__init__()
        self.logits = torch.full((len(vocab),), -1e4)
        self.logits[vocab.encode(list(PIXEL_TOKENS))] = 0.0

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits.expand(*ids.shape, -1)


def test_bits_per_pixel_of_a_uniform_model_is_log2_17(conditional):
    pre, _ = conditional
    images = [line.split() for line in digit_lines(class_conditional=True, max_images=5)["test"]]
    scores = bits_per_pixel(UniformOverPixels(pre.vocab), pre, images, batch_size=2)
    assert scores["bits_per_pixel"] == pytest.approx(math.log2(17)) and scores["pixels"] == 5 * 64


def test_per_pixel_baseline_by_hand_on_two_tiny_images():
    train, test = np.array([[0, 1], [0, 2]]), np.array([[0, 3]])
    # position 0: g0 seen twice, (2 + 1) / (2 + 17); position 1: g3 never seen, (0 + 1) / (2 + 17)
    expected = -(math.log2(3 / 19) + math.log2(1 / 19)) / 2
    assert per_pixel_bits(train, test) == pytest.approx(expected)


def test_ngram_bits_per_pixel_leaves_the_class_token_out():
    from seqlab.lm.ngram import NGramLM

    lines = digit_lines(class_conditional=True, max_images=30)
    train, test = ([line.split() for line in lines[s]] for s in ("train", "test"))
    model = NGramLM.fit(train, order=1, smoothing="add-k", k=1.0)
    # a unigram model: every pixel's probability is its add-one frequency among the training tokens
    counts = {word: sum(t.count(word) for t in train) for word in model.vocab}
    total = sum(len(t) + 1 for t in train) + len(model.vocab) - 1  # + </s> per sentence; <s> is not predicted
    expected = -np.mean([math.log2((counts[w] + 1) / total) for t in test for w in t[1:]])
    assert ngram_bits_per_pixel(model, test) == pytest.approx(expected)


class ClassToLevel(torch.nn.Module):
    """Scripted stepping LM: after <cD>, grey level D is likely and <eos> far likelier still."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab
        self.class_ids = torch.tensor(vocab.encode(list(CLASS_TOKENS)))
        self.pixel_ids = torch.tensor(vocab.encode(list(PIXEL_TOKENS)))

    def init_state(self, batch_size: int, device=None) -> torch.Tensor:
        return torch.zeros(batch_size, dtype=torch.long)

    def step(self, tokens: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        is_class = (tokens[:, None] == self.class_ids).any(1)
        state = torch.where(is_class, (tokens[:, None] == self.class_ids).long().argmax(1), state)
        logits = torch.zeros(len(tokens), len(self.vocab))
        logits[:, self.vocab.eos_id] = 60.0
        logits[torch.arange(len(tokens)), self.pixel_ids[state]] = 40.0
        return torch.log_softmax(logits, -1), state


def test_class_conditional_sampling_forces_the_class_and_draws_64_pixels(conditional):
    pre, _ = conditional
    images = sample_images(ClassToLevel(pre.vocab), pre, [3, 9, 0], seed=1)
    assert images.shape == (3, 8, 8)
    assert (images[0] == 3).all() and (images[1] == 9).all() and (images[2] == 0).all()


@pytest.mark.parametrize("architecture, options", [
    ("rnn", {"cell": "lstm", "embedding_size": 8, "hidden_size": 8, "num_layers": 1}),
    ("transformer", {"d_model": 16, "num_heads": 2, "ffn_size": 16, "num_decoder_layers": 1})])
def test_sampling_runs_both_lm_families_to_valid_grey_levels(conditional, architecture, options):
    pre, _ = conditional
    torch.manual_seed(0)
    model = build_lm(architecture, LM_CONFIGS[architecture](**options), len(pre.vocab))
    images = sample_images(model, pre, list(range(10)), seed=0)
    assert images.shape == (10, 8, 8) and images.min() >= 0 and images.max() <= 16
    assert len(np.unique(images)) > 3  # an untrained model spreads its mass: not one constant grey


def test_sampling_refuses_a_mix_of_classes_and_none(conditional):
    pre, _ = conditional
    with pytest.raises(ConfigError, match="not mixed"):
        sample_images(ClassToLevel(pre.vocab), pre, [3, None])
