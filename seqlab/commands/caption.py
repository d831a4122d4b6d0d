"""``seqlab caption``: image captioning on Flickr8k (CNN encoder -> RNN decoder, ``seqlab.models.captioner``).

    seqlab caption train CONFIG.yaml --model-dir DIR [--set section.key=value ...] [--resume]
    seqlab caption predict DIR IMAGE.jpg ...          (or the shorthand: seqlab caption DIR IMAGE.jpg ...)
    seqlab caption evaluate DIR [--split test] [--out HYPS.tsv]

Training uses the official 6,000 / 1,000 / 1,000 split, reads the JPEGs straight from the tar shards, resizes them
to ``data.image_size`` and normalises them with the training images' channel mean and standard deviation.  With
``data.cache_dir`` every split is decoded once into a uint8 ``.npy`` file (6,000 x 3 x 64 x 64 = 74 MB) that later
epochs and runs memory-map instead of decoding JPEGs again.  The model directory is self-contained: the resolved
config, vocabulary and normalisation statistics travel inside every checkpoint.

Evaluation reports corpus BLEU-1..4 of beam-search captions against all references of each image (cumulative
BLEU-n with uniform weights, no smoothing, as the captioning literature reports it).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image, UnidentifiedImageError

from seqlab.config import from_dict, load_yaml, merge, parse_overrides, to_dict
from seqlab.data.images import CaptionedImage, TarImageStore, channel_mean_std, normalise_images, read_flickr8k
from seqlab.data.vocab import Vocab
from seqlab.decoding.beam import beam_search
from seqlab.decoding.config import DecodeConfig
from seqlab.decoding.greedy import greedy_search
from seqlab.errors import CheckpointError, ConfigError, DataError, SeqlabError
from seqlab.models.captioner import Captioner, CaptionerConfig
from seqlab.tasks.captioning import CaptioningTask, grouped_caption_batches
from seqlab.train.checkpoint import find_checkpoint, load_checkpoint
from seqlab.train.trainer import Progress, Trainer, TrainConfig
from seqlab.utils import atomic_write

HELP = "image captioning (Flickr8k): train, caption images with beam search, BLEU-1..4 on a split"
ACTIONS = ("train", "predict", "evaluate")
ImageLoader = Callable[[list[str]], torch.Tensor]


@dataclass
class CaptionDataConfig:
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
class CaptionRunConfig:
    """The YAML file: four sections, each the dataclass of its component."""

    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    model: CaptionerConfig = field(default_factory=CaptionerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=lambda: DecodeConfig(strategy="beam", beam_size=3, max_len=30))


def load_run_config(raw: dict[str, Any]) -> CaptionRunConfig:
    """Plain dict (YAML + overrides) -> typed config; unknown sections and keys fail naming the key."""
    known = [name for name in CaptionRunConfig.__dataclass_fields__]
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (sections: {', '.join(known)})"
            raise ConfigError(f"{key}: unknown key{hint}")
    decode = merge(to_dict(CaptionRunConfig().decode), raw.get("decode") or {})
    return CaptionRunConfig(data=from_dict(CaptionDataConfig, raw.get("data"), "data."),
                            model=from_dict(CaptionerConfig, raw.get("model"), "model."),
                            train=from_dict(TrainConfig, raw.get("train"), "train."),
                            decode=from_dict(DecodeConfig, decode, "decode."))


# ------------------------------------------------------------------------------------------------ images
def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> uint8 (B, 3, size, size); antialiased so downsampling averages, not aliases."""
    if images.shape[-2:] == (size, size):
        return images
    resized = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)


def read_image_file(path: str | Path, size: int) -> torch.Tensor:
    """A JPEG/PNG/... on disk -> uint8 (3, size, size) RGB."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))  # (H, W, 3)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: not a readable image ({error})") from None
    return resize_images(torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0), size)[0]


def cached_split(store: TarImageStore, names: Sequence[str], size: int, cache_dir: Path) -> np.ndarray:
    """All images of ``names`` as one uint8 (N, 3, size, size) array, memory-mapped from ``cache_dir``.

    The file name hashes the image list and size, so a different split or size never reads a stale cache; the
    file is written atomically, so a killed run leaves no half-written cache behind.
    """
    key = hashlib.sha1(("\n".join(names) + f"|{size}").encode()).hexdigest()[:12]
    path = cache_dir / f"flickr8k_{size}px_{len(names)}_{key}.npy"
    if not path.is_file():
        pixels = np.empty((len(names), 3, size, size), dtype=np.uint8)
        for start in range(0, len(names), 256):  # decode in chunks: one batched resize per 256 images
            chunk = list(names[start:start + 256])
            pixels[start:start + len(chunk)] = resize_images(store.load_batch(chunk), size).numpy()
        with atomic_write(path, "wb") as handle:
            np.save(handle, pixels)
    return np.load(path, mmap_mode="r")


def image_loader(store: TarImageStore, names: Sequence[str], data: CaptionDataConfig) -> ImageLoader:
    """names -> uint8 (B, 3, S, S): from the .npy cache when ``data.cache_dir`` is set, else decoded per call."""
    missing = next((name for name in names if name not in store), None)
    if missing is not None:
        raise DataError(f"image {missing!r}: listed in the split but not in any images-*.tar shard")
    if not data.cache_dir:
        return lambda batch: resize_images(store.load_batch(batch), data.image_size)
    pixels = cached_split(store, names, data.image_size, Path(data.cache_dir))
    rows = {name: row for row, name in enumerate(names)}
    return lambda batch: torch.from_numpy(np.stack([pixels[rows[name]] for name in batch]))


def split_images(loader: ImageLoader, names: Sequence[str], chunk: int = 256):
    """Yield the images of ``names`` one by one, loading ``chunk`` at a time (for statistics)."""
    for start in range(0, len(names), chunk):
        yield from loader(list(names[start:start + chunk]))


# ------------------------------------------------------------------------------------------------ training
def train_captioner(config: CaptionRunConfig, model_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train on Flickr8k train, validate (dev loss / perplexity) every epoch; best.pt and last.pt in model_dir."""
    model_dir = Path(model_dir)
    _check_model_dir(model_dir, config, resume)
    torch.manual_seed(config.train.seed)
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    data = config.data
    data_dir = data.data_dir or None
    train_images = read_flickr8k("train", data_dir, data.lowercase)
    train_images = train_images[:data.max_train_images or None]
    dev_images = read_flickr8k("dev", data_dir, data.lowercase)
    store = TarImageStore.flickr8k(data_dir)
    train_loader = image_loader(store, [item.image for item in train_images], data)
    dev_loader = image_loader(store, [item.image for item in dev_images], data)
    mean, std = channel_mean_std(split_images(train_loader, [item.image for item in train_images]))
    vocab = Vocab.build((c for item in train_images for c in item.captions), min_freq=data.min_freq)
    model = Captioner(config.model, len(vocab))
    task = CaptioningTask(config.train.label_smoothing)
    batches = grouped_caption_batches(train_images, vocab, train_loader, mean, std, data.images_per_batch,
                                      seed=config.train.seed)
    dev_batches = grouped_caption_batches(dev_images, vocab, dev_loader, mean, std, data.images_per_batch,
                                          shuffle=False).epoch_batches(0)
    extra = {"config": _config_dict(config), "vocab": vocab.to_dict(), "mean": list(mean), "std": list(std)}
    trainer = Trainer(model, task, config.train, model_dir, extra=extra,
                      validate=lambda m: task.evaluate(m, dev_batches))
    if resume:
        trainer.resume()
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(model_dir / "config.yaml") as handle:
        yaml.safe_dump(extra["config"], handle, sort_keys=False)
    progress: Progress = trainer.fit(batches)
    return {"model_dir": str(model_dir), "steps": progress.step, "epochs": progress.epoch,
            "best_dev_loss": progress.best_metric, "stop": progress.stop_reason, "vocab_size": len(vocab),
            "train_images": len(train_images), "minutes": round(progress.elapsed_seconds / 60, 2)}


def _config_dict(config: CaptionRunConfig) -> dict[str, Any]:
    return {name: to_dict(getattr(config, name)) for name in ("data", "model", "train", "decode")}


def _check_model_dir(model_dir: Path, config: CaptionRunConfig, resume: bool) -> None:
    """Refuse to overwrite a trained model silently, or to resume one trained with another config."""
    last = model_dir / "last.pt"
    if resume:
        if not last.is_file():
            raise CheckpointError(f"{model_dir}: nothing to resume (no last.pt)")
        if load_checkpoint(last)["extra"].get("config") != _config_dict(config):
            raise CheckpointError(f"{model_dir}: --resume with a config that differs from the saved config.yaml")
    elif last.is_file():
        raise CheckpointError(f"{model_dir}: already holds a trained model; use --resume or another --model-dir")


# ------------------------------------------------------------------------------------------------ inference
@dataclass
class LoadedCaptioner:
    model: Captioner
    vocab: Vocab
    config: CaptionRunConfig
    mean: tuple[float, ...]
    std: tuple[float, ...]


def load_captioner(model_dir: str | Path, which: str = "best") -> LoadedCaptioner:
    """A trained model directory -> the model in eval mode with its vocabulary, config and pixel statistics."""
    path = find_checkpoint(model_dir, which)
    payload = load_checkpoint(path)
    extra = payload.get("extra", {})
    if not {"config", "vocab", "mean", "std"} <= set(extra):
        raise CheckpointError(f"{path}: not a captioning checkpoint (trained by another command?)")
    config = load_run_config(extra["config"])
    vocab = Vocab.from_dict(extra["vocab"])
    model = Captioner(config.model, len(vocab))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not match the saved config ({str(error).splitlines()[0]})") from None
    return LoadedCaptioner(model.eval(), vocab, config, tuple(extra["mean"]), tuple(extra["std"]))


@torch.no_grad()
def caption_images(loaded: LoadedCaptioner, images: torch.Tensor, decode: DecodeConfig,
                   batch_size: int = 50) -> list[list[str]]:
    """uint8 images (N, 3, S, S) -> one caption (token list) per image, by beam search (or greedy)."""
    captions: list[list[str]] = []
    vocab, model = loaded.vocab, loaded.model
    for start in range(0, images.size(0), batch_size):
        pixels = normalise_images(images[start:start + batch_size], loaded.mean, loaded.std)  # (B, 3, S, S)
        state = model.init_state(model.encode(pixels))
        if decode.strategy == "greedy":
            result = greedy_search(model, state, pixels.size(0), vocab.bos_id, vocab.eos_id, decode.max_len)
            captions += [vocab.decode(row) for row in result.tokens]
        else:
            beam_config = DecodeConfig(**{**vars(decode), "strategy": "beam", "nbest": 1})
            hypotheses = beam_search(model, state, pixels.size(0), vocab.bos_id, vocab.eos_id, beam_config,
                                     decode.max_len)
            captions += [vocab.decode(row[0].tokens) for row in hypotheses]
    return captions


def corpus_bleu(hypotheses: list[list[str]], references: list[list[list[str]]], max_n: int = 4) -> dict[str, float]:
    """Cumulative BLEU-1..max_n (x100) of tokenised captions against every reference of each image, by sacreBLEU.

    No tokenisation (captions are tokenised already) and no smoothing, as coco-caption computes it.  Images may
    have different numbers of references: sacreBLEU skips the ``None`` padding.
    """
    import sacrebleu  # imported here: only evaluation needs it

    streams = max(len(refs) for refs in references)
    ref_streams = [[" ".join(refs[k]) if k < len(refs) else None for refs in references] for k in range(streams)]
    hyp_lines = [" ".join(tokens) for tokens in hypotheses]
    return {f"bleu{n}": sacrebleu.BLEU(tokenize="none", max_ngram_order=n, smooth_method="none", force=True)
            .corpus_score(hyp_lines, ref_streams).score for n in range(1, max_n + 1)}


def evaluate_split(loaded: LoadedCaptioner, split: str, decode: DecodeConfig,
                   data_dir: str | None = None) -> tuple[dict[str, Any], list[CaptionedImage], list[list[str]]]:
    """Caption every image of a Flickr8k split -> (BLEU-1..4 and counts, the images, their captions)."""
    data = loaded.config.data
    data_dir = data_dir or data.data_dir or None
    items = read_flickr8k(split, data_dir, data.lowercase)
    names = [item.image for item in items]
    loader = image_loader(TarImageStore.flickr8k(data_dir), names, data)
    images = torch.cat([loader(names[start:start + 250]) for start in range(0, len(names), 250)])
    hypotheses = caption_images(loaded, images, decode)
    scores = corpus_bleu(hypotheses, [item.captions for item in items])
    scores.update(split=split, images=len(items), beam_size=decode.beam_size if decode.strategy != "greedy" else 1,
                  mean_length=sum(map(len, hypotheses)) / max(len(hypotheses), 1))
    return scores, items, hypotheses


# ------------------------------------------------------------------------------------------------ the CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("usage by action:\n"
                     "  seqlab caption train CONFIG.yaml --model-dir DIR [--set data.image_size=64] [--resume]\n"
                     "  seqlab caption predict DIR IMAGE [IMAGE ...]   (shorthand: seqlab caption DIR IMAGE ...)\n"
                     "  seqlab caption evaluate DIR [--split test] [--out HYPS.tsv]")
    parser.add_argument("action", metavar="ACTION|DIR",
                        help="train, predict or evaluate; a model directory means 'predict DIR IMAGE ...'")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="train: CONFIG.yaml; predict: DIR IMAGE ...; "
                        "evaluate: DIR")
    train = parser.add_argument_group("train")
    train.add_argument("--model-dir", help="where checkpoints, config.yaml and train_log.jsonl go")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.max_epochs=1 (repeatable)")
    train.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/last.pt")
    decode = parser.add_argument_group("predict and evaluate")
    decode.add_argument("--beam-size", type=int, help="beam size (default: the config's decode.beam_size)")
    decode.add_argument("--max-len", type=int, help="most words per caption, <eos> included")
    decode.add_argument("--checkpoint", choices=("best", "last"), default="best")
    decode.add_argument("--split", default="test", choices=("train", "dev", "test"), help="evaluate: which split")
    decode.add_argument("--data-dir", help="evaluate: the data directory (default: the one trained on)")
    decode.add_argument("--out", help="evaluate: write '<image>\\t<caption>' lines here; predict: instead of stdout")


def run(args: argparse.Namespace) -> int:
    action, paths = args.action, list(args.paths)
    if action not in ACTIONS:  # the shorthand ``seqlab caption DIR IMAGE ...``
        action, paths = "predict", [action, *paths]
    if action == "train":
        return _run_train(args, paths)
    if not paths:
        raise SeqlabError(f"caption {action}: expected a model directory")
    loaded = load_captioner(paths[0], args.checkpoint)
    decode = _decode_config(loaded.config.decode, args)
    if action == "predict":
        return _run_predict(loaded, paths[1:], decode, args.out)
    if len(paths) != 1:
        raise SeqlabError(f"caption evaluate: expected one model directory, got {len(paths)} paths")
    scores, items, hypotheses = evaluate_split(loaded, args.split, decode, args.data_dir)
    if args.out:
        _write_captions(args.out, [item.image for item in items], hypotheses)
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in scores.items()}))
    return 0


def _run_train(args: argparse.Namespace, paths: list[str]) -> int:
    if len(paths) != 1:
        raise SeqlabError(f"caption train: expected one CONFIG.yaml, got {len(paths)} paths")
    if not args.model_dir:
        raise SeqlabError("caption train: --model-dir is required")
    config = load_run_config(merge(load_yaml(paths[0]), parse_overrides(args.overrides)))
    print(json.dumps(train_captioner(config, args.model_dir, resume=args.resume)))
    return 0


def _run_predict(loaded: LoadedCaptioner, image_paths: list[str], decode: DecodeConfig, out: str | None) -> int:
    if not image_paths:
        raise SeqlabError("caption predict: expected at least one image file after the model directory")
    size = loaded.config.data.image_size
    images = torch.stack([read_image_file(path, size) for path in image_paths])  # all read before any decoding
    captions = caption_images(loaded, images, decode)
    if out:
        _write_captions(out, image_paths, captions)
    else:
        sys.stdout.write("".join(f"{path}\t{' '.join(c)}\n" for path, c in zip(image_paths, captions)))
    return 0


def _decode_config(base: DecodeConfig, args: argparse.Namespace) -> DecodeConfig:
    changes = {key: value for key, value in (("beam_size", args.beam_size), ("max_len", args.max_len))
               if value is not None}
    return from_dict(DecodeConfig, {**to_dict(base), **changes}, "decode.")


def _write_captions(path: str, names: Sequence[str], captions: list[list[str]]) -> None:
    with atomic_write(path) as handle:
        handle.write("".join(f"{name}\t{' '.join(caption)}\n" for name, caption in zip(names, captions)))
