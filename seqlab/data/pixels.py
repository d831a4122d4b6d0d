"""Digit images as token sentences, for pixel language models (PixelRNN-style generation, van den Oord et al. 2016).

scikit-learn's bundled digits (1,797 greyscale 8x8 images, grey levels 0..16, 10 classes; no download) are read
through the image classifier's own split (``seqlab.tasks.image_classification.split_indices``: stratified, fixed
by ``split_seed``, 1,257 / 180 / 360), so a pixel LM and a classifier never see each other's test images.

An image is one sentence of 64 pixel tokens ``g0``..``g16`` in raster order (row by row, left to right),
optionally opened by its class token ``<c0>``..``<c9>`` (class-conditional models).  The LM stream puts its usual
boundary token before every sentence, so the boundary plays the part of ``<bos>``::

    <eos> <c3> g0 g0 g5 ... g0 <eos> <c7> g0 ...      (class-conditional)
    <eos> g0 g0 g5 ... g0 <eos> g0 ...                (unconditional)

Bits/pixel count the 64 pixel predictions only: the class token (given, not generated) and the closing
``<eos>`` (always the 65th token, so nearly free) are left out of the average.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from seqlab.errors import DataError

IMAGE_SIZE, NUM_LEVELS, NUM_CLASSES = 8, 17, 10
PIXELS = IMAGE_SIZE * IMAGE_SIZE
PIXEL_TOKENS = tuple(f"g{level}" for level in range(NUM_LEVELS))
CLASS_TOKENS = tuple(f"<c{digit}>" for digit in range(NUM_CLASSES))
_LEVEL_OF = {token: level for level, token in enumerate(PIXEL_TOKENS)}


def image_to_tokens(grey_levels: Sequence[int], label: int | None = None) -> list[str]:
    """64 grey levels (raster order) -> ``[<cL>] g.. g..`` (the class token only when ``label`` is given)."""
    levels = [int(level) for level in np.asarray(grey_levels).reshape(-1)]
    if len(levels) != PIXELS or not all(0 <= level < NUM_LEVELS for level in levels):
        raise DataError(f"an image is {PIXELS} grey levels in 0..{NUM_LEVELS - 1}, got {len(levels)} values")
    head = [] if label is None else [CLASS_TOKENS[int(label)]]
    return head + [PIXEL_TOKENS[level] for level in levels]


def tokens_to_image(tokens: Sequence[str]) -> np.ndarray:
    """``[<cL>] g.. g..`` -> the (8, 8) int array of grey levels; a leading class token is skipped."""
    pixels = list(tokens[1:] if tokens and tokens[0] in CLASS_TOKENS else tokens)
    if len(pixels) != PIXELS or any(token not in _LEVEL_OF for token in pixels):
        raise DataError(f"an image is {PIXELS} pixel tokens g0..g{NUM_LEVELS - 1}, got {pixels[:3]}... "
                        f"({len(pixels)} tokens)")
    return np.asarray([_LEVEL_OF[token] for token in pixels], dtype=np.int64).reshape(IMAGE_SIZE, IMAGE_SIZE)


def digit_splits(split_seed: int = 0, max_images: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train", "valid", "test"}: (grey levels (N, 64) int64, labels (N,) int64), the classifier's split;
    ``max_images`` keeps the first N of each split (tiny runs and tests)."""
    # Imported here: the task layer imports the data layer, not the other way round at import time.
    from seqlab.tasks.image_classification import DataConfig, load_splits

    splits = load_splits(DataConfig(split_seed=split_seed))
    return {name: (pixels[:max_images].long().numpy(), labels[:max_images].long().numpy())
            for name, (pixels, labels) in splits.items()}


def digit_lines(split_seed: int = 0, class_conditional: bool = False,
                max_images: int | None = None) -> dict[str, list[str]]:
    """Every split as text lines, one image per line (what ``LMDataConfig(dataset="digits")`` streams)."""
    return {name: [" ".join(image_to_tokens(image, label if class_conditional else None))
                   for image, label in zip(pixels, labels)]
            for name, (pixels, labels) in digit_splits(split_seed, max_images).items()}


def per_pixel_bits(train_pixels: np.ndarray, test_pixels: np.ndarray) -> float:
    """The independent per-pixel baseline in bits/pixel: each of the 64 positions its own categorical over the 17
    grey levels, add-one smoothed from the training counts, p(x_i = g) = (n_i(g) + 1) / (N + 17).

    (N, P) and (M, P) int grey levels (P = 64 for the digits) -> mean over the M x P test pixels of -log2 p.
    """
    train_pixels, test_pixels = np.asarray(train_pixels), np.asarray(test_pixels)
    positions = train_pixels.shape[1]
    counts = np.ones((positions, NUM_LEVELS))  # (P, 17): the "+1"
    np.add.at(counts, (np.broadcast_to(np.arange(positions), train_pixels.shape), train_pixels), 1)
    probs = counts / counts.sum(1, keepdims=True)
    return float(-np.log2(probs[np.arange(positions), test_pixels]).mean())


def ngram_bits_per_pixel(model, images: Sequence[Sequence[str]]) -> float:
    """A fitted ``seqlab.lm.ngram.NGramLM`` on image sentences -> its bits/pixel on ``images``: the mean of
    -log2 p(pixel | the n-1 tokens before it) over the pixel tokens (not the class token, not ``</s>``)."""
    from seqlab.lm.ngram import encode

    ids, history, _ = encode([list(tokens) for tokens in images], model.index)
    log10_probs = model.token_log10probs(ids, history)
    is_pixel = np.isin(ids, [model.index[token] for token in PIXEL_TOKENS if token in model.index])
    return float(-log10_probs[is_pixel].mean() * np.log2(10))
