"""One-to-many conditioned on an image: captioning (Flickr8k) with ``seqlab.models.captioner.Captioner``.

Training sees every (image, caption) pair: 6,000 train images x 5 captions = 30,000 examples per epoch.  Images are
decoded when a batch is collated (``load_images(names) -> (B, 3, H, W) uint8``, e.g. ``TarImageStore.load_batch``)
and normalised with the training set's channel statistics::

    store = TarImageStore.flickr8k()
    batches = caption_batches(read_flickr8k("train"), vocab, store.load_batch, mean, std, batch_size=32)
    task = CaptioningTask()
    task.evaluate(model, dev_batches)          # {"loss", "perplexity"} per caption token (incl. <eos>)

Captions (BLEU against the 5 references) come from the shared search over the model's ``step`` interface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable, Protocol, Sequence

import torch

from seqlab.data.images import CaptionedImage, normalise_images
from seqlab.tasks.batching import Batches, evaluating, pad_ids
from seqlab.train.loss import linear_cross_entropy_sum, token_nll_sum

ImageLoader = Callable[[list[str]], torch.Tensor]


class CaptionVocab(Protocol):
    bos_id: int
    eos_id: int

    def encode(self, tokens: list[str]) -> list[int]: ...


@dataclass
class CaptionBatch:
    """images (B, 3, H, W) float normalised; tgt_in_ids (B, T) = <bos> y_1 .. y_n; tgt_out_ids (B, T) =
    y_1 .. y_n <eos>; tgt_mask (B, T); indices (B,): positions of the (image, caption) pairs.

    Grouped batches (``grouped_caption_batches``) hold each image once: images (I, 3, H, W) and image_index (B,),
    caption row b describing image ``image_index[b]``; indices are then the images' positions."""

    images: torch.Tensor
    tgt_in_ids: torch.Tensor
    tgt_out_ids: torch.Tensor
    tgt_mask: torch.Tensor
    indices: torch.Tensor
    image_index: torch.Tensor | None = None

    @property
    def num_tgt_tokens(self) -> int:
        return int(self.tgt_mask.sum())

    def to(self, device: torch.device | str) -> "CaptionBatch":
        return CaptionBatch(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                               for f in fields(self)})


def caption_pairs(images: Sequence[CaptionedImage], vocab: CaptionVocab) -> list[tuple[str, list[int]]]:
    """Every (image name, caption ids) pair, numericalised once."""
    return [(item.image, vocab.encode(caption)) for item in images for caption in item.captions]


def caption_batches(images: Sequence[CaptionedImage], vocab: CaptionVocab, load_images: ImageLoader,
                    mean: Sequence[float], std: Sequence[float], batch_size: int, shuffle: bool = True,
                    seed: int = 0) -> Batches:
    """Batches of (image, caption) pairs; images are loaded and normalised per batch."""
    pairs = caption_pairs(images, vocab)
    mean, std = tuple(mean), tuple(std)

    def collate(items: list[tuple[str, list[int]]], indices: list[int]) -> CaptionBatch:
        pixels = normalise_images(load_images([name for name, _ in items]), mean, std)  # (B, 3, H, W)
        tgt_in_ids, tgt_mask = pad_ids([[vocab.bos_id, *ids] for _, ids in items])
        tgt_out_ids, _ = pad_ids([[*ids, vocab.eos_id] for _, ids in items])
        return CaptionBatch(pixels, tgt_in_ids, tgt_out_ids, tgt_mask, torch.tensor(indices))

    return Batches(pairs, collate, batch_size, shuffle, seed)


def grouped_caption_batches(images: Sequence[CaptionedImage], vocab: CaptionVocab, load_images: ImageLoader,
                            mean: Sequence[float], std: Sequence[float], images_per_batch: int,
                            shuffle: bool = True, seed: int = 0) -> Batches:
    """Batches of ``images_per_batch`` images with *all* their captions (about 5x as many caption rows).

    An epoch still sees every (image, caption) pair once, but each image is decoded and run through the CNN once
    per batch instead of once per caption: 5x less CNN work on Flickr8k (neuraltalk2's ``seq_per_img``).
    """
    examples = [(item.image, [vocab.encode(caption) for caption in item.captions]) for item in images]
    mean, std = tuple(mean), tuple(std)

    def collate(items: list[tuple[str, list[list[int]]]], indices: list[int]) -> CaptionBatch:
        pixels = normalise_images(load_images([name for name, _ in items]), mean, std)  # (I, 3, H, W)
        captions = [ids for _, image_captions in items for ids in image_captions]  # B caption rows
        image_index = torch.tensor([i for i, (_, image_captions) in enumerate(items) for _ in image_captions])
        tgt_in_ids, tgt_mask = pad_ids([[vocab.bos_id, *ids] for ids in captions])
        tgt_out_ids, _ = pad_ids([[*ids, vocab.eos_id] for ids in captions])
        return CaptionBatch(pixels, tgt_in_ids, tgt_out_ids, tgt_mask, torch.tensor(indices)[image_index],
                            image_index)

    return Batches(examples, collate, images_per_batch, shuffle, seed)


class CaptioningTask:
    """Teacher-forced cross-entropy summed over caption tokens (incl. <eos>); the count is the token count."""

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def loss(self, model: torch.nn.Module, batch: CaptionBatch) -> tuple[torch.Tensor, int]:
        output = getattr(model, "output_layer", None)
        if output is not None:  # the output projection fused with the loss: no (B, T, V) logits are kept
            hidden = model.hidden_states(batch.images, batch.tgt_in_ids, batch.image_index)  # (B, T, D)
            loss = linear_cross_entropy_sum(hidden, output.weight, output.bias, batch.tgt_out_ids,
                                            self.label_smoothing)
            return loss, batch.num_tgt_tokens
        logits = model(batch.images, batch.tgt_in_ids, batch.image_index)  # (B, T, V)
        return token_nll_sum(logits, batch.tgt_out_ids, self.label_smoothing), batch.num_tgt_tokens

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, batches: Sequence[CaptionBatch]) -> dict[str, float]:
        """Per-token NLL (without label smoothing) and perplexity = exp(NLL)."""
        with evaluating(model) as device:
            total, count = 0.0, 0
            for batch in batches:
                batch = batch.to(device)
                logits = model(batch.images, batch.tgt_in_ids, batch.image_index)  # (B, T, V)
                total += float(token_nll_sum(logits, batch.tgt_out_ids))
                count += batch.num_tgt_tokens
        loss = total / max(count, 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}
