"""Image captioning, one-to-many conditioned on an image (Flickr8k): a CNN encoder and an RNN decoder
(``seqlab.models.captioner``), optionally with soft attention over the feature map.

    seqlab train configs/flickr8k_caption.yaml
    seqlab caption runs/flickr8k_caption image.jpg ...       # one caption per image, beam search
    seqlab evaluate runs/flickr8k_caption --split test        # BLEU-1..4 against the 5 references

Training uses the official 6,000 / 1,000 / 1,000 split, reads the JPEGs straight from the tar shards, resizes them
to ``data.image_size`` and normalises them with the training images' channel mean and standard deviation.  With
``data.cache_dir`` every split is decoded once into a uint8 ``.npy`` file that later epochs and runs memory-map.
Every (image, caption) pair is a training example (6,000 x 5 = 30,000 per epoch); a batch holds
``images_per_batch`` images with all their captions, so each image goes through the CNN once per batch.
With ``train.scheduled_sampling`` the decoder is fed its own predictions with a decaying probability
(``caption_start`` starts the shared loop of ``seqlab.train.scheduled_sampling``).
Evaluation reports corpus BLEU-1..4 (``seqlab.metrics.bleu.corpus_bleu_tokens``: cumulative BLEU-n by sacreBLEU,
its default smoothing) of the searched captions against all references of each image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Protocol, Sequence

import torch

from seqlab.config import RunConfig
from seqlab.data.images import (CaptionedImage, ImageLoader, TarImageStore, channel_mean_std, image_loader,
                                normalise_images, read_flickr8k, split_images)
from seqlab.data.vocab import Vocab
from seqlab.decoding import DecodeConfig, search
from seqlab.errors import ConfigError
from seqlab.metrics.bleu import corpus_bleu_tokens
from seqlab.models.captioner import Captioner, CaptionerConfig
from seqlab.run_dir import LoadedModel, TrainingRun
from seqlab.tasks.batching import Batches, evaluating, pad_ids
from seqlab.train.loss import fused_output_layer, linear_cross_entropy_sum, token_nll_sum
from seqlab.train.scheduled_sampling import ScheduledSamplingObjective

# What the task table reads (seqlab.tasks): DataConfig, Preprocessing and these.
MODEL_CONFIGS = {"captioner": CaptionerConfig}
DEFAULT_ARCHITECTURE = "captioner"
DEFAULTS: dict[str, Any] = {"model_dir": "runs/captioner", "decode": {"strategy": "beam", "beam_size": 3,
                                                                      "max_len": 30}}
GENERATES = True
SCHEDULED_SAMPLING = True


@dataclass
class DataConfig:
    data_dir: str = ""  # "" = seqlab.data.datasets.resolve_data_dir(); the data is its flickr8k/ folder
    image_size: int = 64  # images are resized to image_size x image_size (Flickr8k's are 128 x 128)
    cache_dir: str = ""  # "" = decode the JPEGs of every batch; else one uint8 .npy per split there
    lowercase: bool = True
    min_freq: int = 5  # caption words seen fewer times in training become <unk>
    images_per_batch: int = 32  # each with all its (5) captions: about 160 caption rows per update
    max_train_images: int = 0  # 0 = all 6,000; N > 0 = the first N (quick runs, tests)

    def __post_init__(self) -> None:
        for name in ("image_size", "min_freq", "images_per_batch"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.max_train_images < 0:
            raise ConfigError(f"max_train_images: must be >= 0, got {self.max_train_images}")


@dataclass
class Preprocessing:
    """The caption vocabulary and the training images' channel statistics (inputs are normalised by them)."""

    vocab: Vocab
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int = 64
    lowercase: bool = True

    def text_files(self) -> dict[str, Any]:
        return {"vocab.txt": self.vocab}

    def to_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_dict(), "mean": list(self.mean), "std": list(self.std),
                "image_size": self.image_size, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        return cls(Vocab.from_dict(data["vocab"]), tuple(data["mean"]), tuple(data["std"]), int(data["image_size"]),
                   bool(data["lowercase"]))


def build_model(config: RunConfig, pre: Preprocessing) -> torch.nn.Module:
    return Captioner(config.model.options, len(pre.vocab))


def prepare(config: RunConfig, device: torch.device) -> TrainingRun:
    """Flickr8k train (validated on dev: loss / perplexity), images loaded per batch or from the cache."""
    data, data_dir = config.data, config.data.data_dir or None
    train_images = read_flickr8k("train", data_dir, data.lowercase)[:data.max_train_images or None]
    dev_images = read_flickr8k("dev", data_dir, data.lowercase)
    store = TarImageStore.flickr8k(data_dir)
    train_loader, dev_loader = (image_loader(store, [item.image for item in items], data.image_size, data.cache_dir)
                                for items in (train_images, dev_images))
    mean, std = channel_mean_std(split_images(train_loader, [item.image for item in train_images]))
    vocab = Vocab.build((c for item in train_images for c in item.captions), min_freq=data.min_freq)
    pre = Preprocessing(vocab, mean, std, data.image_size, data.lowercase)
    objective = CaptioningObjective(config.train.label_smoothing)
    train_objective = (objective if config.train.scheduled_sampling == "none"
                       else ScheduledSamplingObjective(config.train, caption_start))
    batches = grouped_caption_batches(train_images, vocab, train_loader, mean, std, data.images_per_batch,
                                      seed=config.train.seed)
    dev_batches = grouped_caption_batches(dev_images, vocab, dev_loader, mean, std, data.images_per_batch,
                                          shuffle=False).epoch_batches(0)
    return TrainingRun(build_model(config, pre), train_objective, batches,
                       lambda m: objective.evaluate(m, dev_batches),
                       pre, {"train": len(train_images), "dev": len(dev_images)})


@torch.no_grad()
def caption(loaded: LoadedModel, images: torch.Tensor, decode: DecodeConfig, batch_size: int = 50) -> list[list[str]]:
    """uint8 images (N, 3, S, S) -> one caption (token list) per image, by the decode config's search."""
    captions: list[list[str]] = []
    pre, model = loaded.preprocessing, loaded.model
    for start in range(0, images.size(0), batch_size):
        pixels = normalise_images(images[start:start + batch_size], pre.mean, pre.std)  # (B, 3, S, S)
        state = model.init_state(model.encode(pixels))
        rows = search(model, state, pixels.size(0), pre.vocab.bos_id, pre.vocab.eos_id, decode, decode.max_len)
        captions += [pre.vocab.decode(hypotheses[0].tokens) for hypotheses in rows]
    return captions


def evaluate(loaded: LoadedModel, split: str, decode: DecodeConfig,
             data_dir: str | None = None) -> tuple[dict[str, Any], list[CaptionedImage], list[list[str]]]:
    """Caption every image of a Flickr8k split -> (BLEU-1..4 and counts, the images, their captions)."""
    data = loaded.config.data
    data_dir = data_dir or data.data_dir or None
    items = read_flickr8k(split, data_dir, data.lowercase)
    names = [item.image for item in items]
    loader = image_loader(TarImageStore.flickr8k(data_dir), names, data.image_size, data.cache_dir)
    images = torch.cat([loader(names[start:start + 250]) for start in range(0, len(names), 250)])
    hypotheses = caption(loaded, images, decode)
    scores: dict[str, Any] = corpus_bleu_tokens(hypotheses, [item.captions for item in items])
    scores.update(split=split, images=len(items), beam_size=decode.beam_size if decode.strategy == "beam" else 1,
                  mean_length=sum(map(len, hypotheses)) / max(len(hypotheses), 1))
    return scores, items, hypotheses


# ------------------------------------------------------------------------------------------------ batches and loss
class CaptionVocab(Protocol):
    bos_id: int
    eos_id: int

    def encode(self, tokens: list[str]) -> list[int]: ...


@dataclass
class CaptionBatch:
    """images (B, 3, H, W) float normalised; tgt_in_ids (B, T) = <bos> y_1 .. y_n; tgt_out_ids (B, T) =
    y_1 .. y_n <eos>; tgt_mask (B, T); indices (B,): positions of the (image, caption) pairs.

    Grouped batches (``grouped_caption_batches``) hold each image once: images (I, 3, H, W) and image_index (B,),
    caption row b describing image ``image_index[b]``; indices (B,) are then the images' positions, per row."""

    images: torch.Tensor
    tgt_in_ids: torch.Tensor
    tgt_out_ids: torch.Tensor
    tgt_mask: torch.Tensor
    indices: torch.Tensor
    image_index: torch.Tensor | None = None

    @property
    def num_tgt_tokens(self) -> int:
        return int(self.tgt_mask.sum())

    def shard(self, rank: int, world_size: int) -> "CaptionBatch":
        """One DDP worker's part: images rank, rank + N, ... with all their captions (a grouped batch's image
        rows and caption rows differ in number, so rows cannot be dealt out one by one)."""
        if self.image_index is None:
            keep = torch.arange(rank, self.tgt_in_ids.size(0), world_size)
            return CaptionBatch(self.images[keep], self.tgt_in_ids[keep], self.tgt_out_ids[keep], self.tgt_mask[keep],
                                self.indices[keep])
        images = torch.arange(rank, self.images.size(0), world_size)
        rows = torch.isin(self.image_index, images).nonzero().squeeze(1)
        new_position = torch.full((self.images.size(0),), -1, dtype=torch.long)
        new_position[images] = torch.arange(images.numel())
        return CaptionBatch(self.images[images], self.tgt_in_ids[rows], self.tgt_out_ids[rows], self.tgt_mask[rows],
                            self.indices[rows], new_position[self.image_index[rows]])

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


def caption_start(model: torch.nn.Module, batch: CaptionBatch) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Where scheduled sampling starts decoding a batch: every caption row's state (its image through the CNN
    once per batch, as in teacher forcing), and the captions."""
    return model.start_state(batch.images, batch.image_index), batch.tgt_in_ids, batch.tgt_out_ids


class CaptioningObjective:
    """Teacher-forced cross-entropy summed over caption tokens (incl. <eos>); the count is the token count."""

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def loss(self, model: torch.nn.Module, batch: CaptionBatch) -> tuple[torch.Tensor, int]:
        output = fused_output_layer(model)
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
