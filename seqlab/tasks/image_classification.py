"""Image classification with the CNN encoders of ``seqlab.nn.cnn`` (CS182 seed 002), on scikit-learn's bundled
digits: 1,797 greyscale 8x8 images, grey levels 0..16, 10 classes; shipped inside scikit-learn, no download.

    seqlab train configs/digits_lenet.yaml                # -> runs/digits_lenet, test accuracy of the best model
    seqlab evaluate runs/digits_lenet --split test        # {"accuracy", "loss", "examples"}
    seqlab predict runs/digits_lenet --split test         # one label per image; or --csv F (64 grey levels a line)

Split (fixed by ``data.split_seed``): a stratified 360-image test set, then a stratified 180-image validation set
of the rest, leaving 1,257 for training (scikit-learn's ``train_test_split``).  Inputs, as the seed describes:
scaled to [0, 1] (divided by 16), then standardised with the mean and standard deviation of the training pixels;
both numbers are kept in the model directory so prediction reads raw grey levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.config import RunConfig
from seqlab.errors import ConfigError, DataError
from seqlab.metrics.classification import accuracy
from seqlab.nn.cnn import CNNConfig, CNNEncoder, _map_size
from seqlab.nn.init import INIT_SCHEMES, init_weights
from seqlab.run_dir import LoadedModel, TrainingRun
from seqlab.tasks.batching import Batches, evaluating

IMAGE_SIZE, MAX_GREY = 8, 16.0
SPLIT_SIZES = {"test": 360, "valid": 180}  # the rest (1,257) trains


@dataclass
class ImageClassifierConfig:
    """A CNN encoder, global average pooling and one linear layer over the classes.

    ``pad`` zero-pads every (standardised) image on each side before the CNN, as LeNet-5 padded 28x28 MNIST to
    32x32: two 5x5 valid convs need at least 16x16, so the LeNet recipe pads 8x8 digits by 4.
    """

    cnn: CNNConfig = field(default_factory=lambda: CNNConfig(in_channels=1, channels=(32, 64)))
    pad: int = 0
    dropout: float = 0.0
    init: str = "default"  # a scheme of seqlab.nn.init for the whole net ("default": PyTorch's Kaiming-uniform convs)
    init_bias: float = 0.0  # biases' start (not uniform/default); 0.1: the seed's ReLU advice

    def __post_init__(self) -> None:
        if isinstance(self.cnn, dict):
            self.cnn = CNNConfig(**self.cnn)
        self.cnn = replace(self.cnn, in_channels=1)  # a grey image has one channel, whatever the section says
        if self.pad < 0:
            raise ConfigError(f"pad: must be >= 0, got {self.pad}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")
        if self.init not in INIT_SCHEMES:
            raise ConfigError(f"init: must be one of {', '.join(INIT_SCHEMES)}, got {self.init!r}")
        try:  # refuse a net whose windows do not fit the padded image now, not at the first batch
            _map_size(self.cnn, IMAGE_SIZE + 2 * self.pad)
        except ValueError as error:
            raise ConfigError(f"cnn: {error} ({IMAGE_SIZE}x{IMAGE_SIZE} digits, pad {self.pad}); "
                              f"raise model.pad or use fewer stages") from error


class ImageClassifier(nn.Module):
    """images (B, 1, 8, 8) standardised -> class logits (B, C)."""

    def __init__(self, config: ImageClassifierConfig, num_classes: int):
        super().__init__()
        self.pad = config.pad
        self.encoder = CNNEncoder(config.cnn)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(self.encoder.out_channels, num_classes)
        init_weights(self, config.init, bias=config.init_bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encoder(F.pad(images, [self.pad] * 4))  # (B, D, H', W'); 0 = the training mean
        return self.output(self.dropout(features.mean(dim=(2, 3))))  # (B, D) -> (B, C)


# What the task table reads (seqlab.tasks): DataConfig, Preprocessing and these.
MODEL_CONFIGS = {"cnn_classifier": ImageClassifierConfig}
DEFAULT_ARCHITECTURE = "cnn_classifier"
DEFAULTS: dict[str, Any] = {"model_dir": "runs/digits", "train": {"early_stopping_metric": "accuracy"}}
GENERATES = False
SCHEDULED_SAMPLING = False


@dataclass
class DataConfig:
    dataset: str = "digits"  # sklearn.datasets.load_digits, the only one for now
    split_seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.dataset != "digits":
            raise ConfigError(f"dataset: must be digits, got {self.dataset!r}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size: must be > 0, got {self.batch_size}")


@dataclass
class Preprocessing:
    """The label names (id order) and the training pixels' mean and std after scaling to [0, 1]."""

    labels: list[str]
    mean: float
    std: float

    def normalise(self, grey_levels: torch.Tensor) -> torch.Tensor:
        """(N, 64) grey levels 0..16 -> (N, 1, 8, 8) standardised."""
        scaled = grey_levels.float() / MAX_GREY
        return ((scaled - self.mean) / self.std).view(-1, 1, IMAGE_SIZE, IMAGE_SIZE)

    def text_files(self) -> dict[str, Any]:
        return {"labels.txt": self.labels}

    def to_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        return cls(list(data["labels"]), float(data["mean"]), float(data["std"]))


def split_indices(labels: Sequence[int], split_seed: int) -> dict[str, list[int]]:
    """{"train", "valid", "test"}: indices into the dataset, stratified by digit, fixed by ``split_seed``."""
    from sklearn.model_selection import train_test_split

    everything = list(range(len(labels)))
    rest, test = train_test_split(everything, test_size=SPLIT_SIZES["test"], stratify=labels,
                                  random_state=split_seed)
    train, valid = train_test_split(rest, test_size=SPLIT_SIZES["valid"], stratify=[labels[i] for i in rest],
                                    random_state=split_seed)
    return {"train": train, "valid": valid, "test": test}


def load_splits(data: DataConfig) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train", "valid", "test"}: (grey levels (N, 64) float, labels (N,) long)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels, labels = torch.tensor(digits.data, dtype=torch.float32), torch.tensor(digits.target)
    return {name: (pixels[ids], labels[ids]) for name, ids in split_indices(labels.tolist(), data.split_seed).items()}


def build_model(config: RunConfig, pre: Preprocessing) -> nn.Module:
    return ImageClassifier(config.model.options, len(pre.labels))


def prepare(config: RunConfig, device: torch.device) -> TrainingRun:
    splits = load_splits(config.data)
    scaled = splits["train"][0] / MAX_GREY
    pre = Preprocessing([str(i) for i in range(10)], float(scaled.mean()), float(scaled.std()))
    objective = ImageObjective()
    valid_batches = image_batches(*splits["valid"], pre, config.data.batch_size, shuffle=False).epoch_batches(0)

    def validate(model: nn.Module) -> dict[str, float]:
        return objective.evaluate(model, valid_batches)

    batches = image_batches(*splits["train"], pre, config.data.batch_size, shuffle=True, seed=config.train.seed)
    model = build_model(config, pre)
    print(f"image_classification: {config.model.options.cnn.architecture}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    return TrainingRun(model, objective, batches, validate, pre, {k: len(v[1]) for k, v in splits.items()})


def evaluate(loaded: LoadedModel, split: str = "test", batch_size: int = 64) -> dict[str, Any]:
    """Accuracy and mean cross-entropy of a trained model on a split of its dataset."""
    splits = load_splits(loaded.config.data)
    if split not in splits:
        raise DataError(f"split: must be one of {', '.join(splits)}, got {split!r}")
    batches = image_batches(*splits[split], loaded.preprocessing, batch_size, shuffle=False)
    return {"examples": len(splits[split][1]), **ImageObjective().evaluate(loaded.model, batches.epoch_batches(0))}


def test_scores(loaded: LoadedModel, config: RunConfig) -> dict[str, Any]:
    return evaluate(loaded, "test", config.data.batch_size)


@torch.no_grad()
def classify_images(loaded: LoadedModel, grey_levels: torch.Tensor, batch_size: int = 64) -> list[str]:
    """(N, 64) raw grey levels 0..16 (row-major 8x8) -> the predicted label of each image."""
    if grey_levels.dim() != 2 or grey_levels.size(1) != IMAGE_SIZE * IMAGE_SIZE:
        raise DataError(f"expected {IMAGE_SIZE * IMAGE_SIZE} grey levels per image, got shape "
                        f"{tuple(grey_levels.shape)}")
    images, predicted = loaded.preprocessing.normalise(grey_levels), []
    with evaluating(loaded.model) as device:
        for start in range(0, len(images), batch_size):
            predicted += loaded.model(images[start:start + batch_size].to(device)).argmax(-1).tolist()
    return [loaded.preprocessing.labels[i] for i in predicted]


def read_pixel_csv(path: str) -> torch.Tensor:
    """A CSV of 64 grey levels (0..16) per line -> (N, 64); a malformed line is a DataError naming it."""
    rows = []
    try:
        handle = open(path, encoding="utf-8")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = [float(value) for value in line.split(",")]
            except ValueError:
                raise DataError(f"{path}:{number}: not a comma-separated list of numbers") from None
            if len(row) != IMAGE_SIZE * IMAGE_SIZE or not all(0 <= v <= MAX_GREY for v in row):
                raise DataError(f"{path}:{number}: expected 64 grey levels in 0..16, got {len(row)} values")
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no images")
    return torch.tensor(rows)


# ------------------------------------------------------------------------------------------------ batches and loss
@dataclass
class ImageBatch:
    """images (B, 1, 8, 8) standardised, labels (B,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device | str) -> "ImageBatch":
        return ImageBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def image_batches(grey_levels: torch.Tensor, labels: torch.Tensor, pre: Preprocessing, batch_size: int,
                  shuffle: bool = True, seed: int = 0) -> Batches:
    images = pre.normalise(grey_levels)  # normalise once, (N, 1, 8, 8)
    examples = list(zip(images, labels.tolist()))

    def collate(items: list[tuple[torch.Tensor, int]], indices: list[int]) -> ImageBatch:
        return ImageBatch(torch.stack([image for image, _ in items]), torch.tensor([label for _, label in items]))

    return Batches(examples, collate, batch_size, shuffle, seed)


class ImageObjective:
    """Cross-entropy summed over the images of a batch; the count is the number of images."""

    def loss(self, model: nn.Module, batch: ImageBatch) -> tuple[torch.Tensor, int]:
        return F.cross_entropy(model(batch.images).float(), batch.labels, reduction="sum"), batch.labels.numel()

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Sequence[ImageBatch]) -> dict[str, float]:
        with evaluating(model) as device:
            total, gold, predicted = 0.0, [], []
            for batch in batches:
                batch = batch.to(device)
                logits = model(batch.images)  # (B, C)
                total += float(F.cross_entropy(logits.float(), batch.labels, reduction="sum"))
                gold += batch.labels.tolist()
                predicted += logits.argmax(-1).tolist()
        return {"loss": total / max(len(gold), 1), "accuracy": accuracy(gold, predicted)}
