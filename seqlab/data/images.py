"""Flickr8k (Hodosh, Young & Hockenmaier 2013): captions, splits, and images read straight from the tar shards.

``<data_dir>/flickr8k`` holds ``Flickr8k.token.txt.gz`` (``<image>.jpg#<k>\\t<caption>``, 5 captions per image,
already tokenised), ``Flickr_8k.{train,dev,test}Images.txt.gz`` (6,000 / 1,000 / 1,000 names) and
``images-00{0..3}.tar`` (8,091 JPEGs, 128x128 RGB).  One caption line names ``2258277193_586949ec62.jpg.1``, a
defect of the original file with no image: it is skipped.

Images are never extracted: ``TarImageStore`` indexes the shards once (name -> byte offset) and reads a JPEG with
one seek, so it is cheap to create in every data-loader worker.  Pixels are normalised per channel with the mean
and standard deviation of the training images (``channel_mean_std``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from seqlab.data.labelled import dataset_folder
from seqlab.errors import DataError
from seqlab.utils import atomic_write

ImageLoader = Callable[[list[str]], torch.Tensor]  # image names -> uint8 (B, 3, H, W)

SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt.gz", "dev": "Flickr_8k.devImages.txt.gz",
               "test": "Flickr_8k.testImages.txt.gz"}
CAPTION_FILE = "Flickr8k.token.txt.gz"
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # a fallback when the training-set statistics are not computed
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class CaptionedImage:
    """An image file name and its reference captions (token lists, usually 5)."""

    image: str
    captions: list[list[str]]


def read_captions(data_dir: str | Path | None = None, lowercase: bool = True) -> dict[str, list[list[str]]]:
    """image name -> its captions as token lists, in file order; names without a ".jpg" suffix are skipped."""
    path = dataset_folder("flickr8k", data_dir) / CAPTION_FILE
    captions: dict[str, list[list[str]]] = {}
    for number, line in enumerate(_read_gz_lines(path), start=1):
        key, tab, caption = line.partition("\t")
        image, hash_sign, _ = key.partition("#")
        if not tab or not hash_sign or not caption.strip():
            raise DataError(f"{path}:{number}: expected '<image>#<k>\\t<caption>', got {line[:60]!r}")
        if not image.endswith(".jpg"):  # the known bogus "....jpg.1" entry: it has no image
            continue
        captions.setdefault(image, []).append((caption.lower() if lowercase else caption).split())
    return captions


def read_split(split: str, data_dir: str | Path | None = None) -> list[str]:
    """The image names of ``split`` ("train", "dev" or "test"), in file order."""
    if split not in SPLIT_FILES:
        raise DataError(f"flickr8k split: must be one of {', '.join(SPLIT_FILES)}, got {split!r}")
    return [line.strip() for line in _read_gz_lines(dataset_folder("flickr8k", data_dir) / SPLIT_FILES[split])
            if line.strip()]


def read_flickr8k(split: str, data_dir: str | Path | None = None, lowercase: bool = True) -> list[CaptionedImage]:
    """The images of ``split`` with their captions; an image of the split without captions is a DataError."""
    captions = read_captions(data_dir, lowercase)
    missing = [name for name in read_split(split, data_dir) if name not in captions]
    if missing:
        raise DataError(f"flickr8k {split}: {len(missing)} images have no caption, e.g. {missing[0]}")
    return [CaptionedImage(name, captions[name]) for name in read_split(split, data_dir)]


def _read_gz_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


class TarImageStore:
    """Random access to the JPEGs inside uncompressed tar shards: ``store.load(name) -> (3, H, W) uint8``."""

    def __init__(self, shards: Iterable[str | Path]):
        self.index: dict[str, tuple[Path, int, int]] = {}  # name -> (shard, data offset, size)
        for shard in shards:
            shard = Path(shard)
            try:
                with tarfile.open(shard) as archive:
                    for member in archive.getmembers():
                        if member.isfile():
                            self.index[member.name] = (shard, member.offset_data, member.size)
            except (OSError, tarfile.TarError) as error:
                raise DataError(f"{shard}: not a readable tar file: {error}") from None

    @classmethod
    def flickr8k(cls, data_dir: str | Path | None = None) -> "TarImageStore":
        folder = dataset_folder("flickr8k", data_dir)
        shards = sorted(folder.glob("images-*.tar"))
        if not shards:
            raise DataError(f"{folder}: no images-*.tar shards")
        return cls(shards)

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, name: str) -> bool:
        return name in self.index

    def read_bytes(self, name: str) -> bytes:
        if name not in self.index:
            raise DataError(f"image {name!r}: not in any shard")
        shard, offset, size = self.index[name]
        with open(shard, "rb") as handle:  # one seek: the tar is uncompressed, members are contiguous bytes
            handle.seek(offset)
            return handle.read(size)

    def load(self, name: str) -> torch.Tensor:
        """-> (3, H, W) uint8 RGB."""
        with Image.open(io.BytesIO(self.read_bytes(name))) as image:
            pixels = np.asarray(image.convert("RGB"))  # (H, W, 3)
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1)  # (3, H, W)

    def load_batch(self, names: list[str]) -> torch.Tensor:
        """-> (B, 3, H, W) uint8; all images must have one size (Flickr8k's are all 128x128)."""
        return torch.stack([self.load(name) for name in names])


def channel_mean_std(images: Iterable[torch.Tensor]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images (3, H, W) scaled to [0, 1], over every pixel.

    Accumulates sums in float64 so thousands of images do not lose precision.
    """
    total = torch.zeros(3, dtype=torch.float64)
    total_sq = torch.zeros(3, dtype=torch.float64)
    count = 0
    for image in images:
        pixels = image.to(torch.float64).div(255).flatten(1)  # (3, H*W)
        total += pixels.sum(1)
        total_sq += pixels.pow(2).sum(1)
        count += pixels.size(1)
    if count == 0:
        raise DataError("channel_mean_std: no images")
    mean = total / count
    std = (total_sq / count - mean.pow(2)).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def normalise_images(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32 (x / 255 - mean) / std per channel."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255 - mean_t) / std_t


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


def image_loader(store: TarImageStore, names: Sequence[str], size: int, cache_dir: str = "") -> ImageLoader:
    """names -> uint8 (B, 3, S, S): from the .npy cache in ``cache_dir`` when set, else decoded per call."""
    missing = next((name for name in names if name not in store), None)
    if missing is not None:
        raise DataError(f"image {missing!r}: listed in the split but not in any images-*.tar shard")
    if not cache_dir:
        return lambda batch: resize_images(store.load_batch(batch), size)
    pixels = cached_split(store, names, size, Path(cache_dir))
    rows = {name: row for row, name in enumerate(names)}
    return lambda batch: torch.from_numpy(np.stack([pixels[rows[name]] for name in batch]))


def split_images(loader: ImageLoader, names: Sequence[str], chunk: int = 256):
    """Yield the images of ``names`` one by one, loading ``chunk`` at a time (for statistics)."""
    for start in range(0, len(names), chunk):
        yield from loader(list(names[start:start + chunk]))
