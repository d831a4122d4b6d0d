"""Pixel language models on scikit-learn's 8x8 digits (seed 003, PixelRNN-style): test bits/pixel of a
class-conditional LSTM and Transformer LM (configs/digits_pixel_*.yaml) and of an unconditional LSTM (the
ablation), against an independent per-pixel categorical and pixel n-grams; a 10 x 8 grid of sampled images.

    nice -n 5 python benchmarks/digits_pixel_lm.py [--minutes 4]

Every model trains on ONE thread on the classifier's fixed split (1,257 / 180 / 360, split_seed 0); the best
checkpoint (by validation perplexity of the token stream) is scored on the 360 test images.  Bits/pixel: the mean
over the 64 pixel positions of -log2 p(pixel | everything before it in the image); the class token and <eos> are
not averaged.  The samples come from the class-conditional model with the lower validation bits/pixel (class token
forced, 64 pixels drawn at temperature 1), and a logistic-regression classifier of the real training digits
says how many samples it reads as their forced class.  Writes benchmarks/results/digits_pixel_lm.json and
docs/digits_pixel_samples.png.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time

import numpy as np
import torch

from common import ROOT, git_commit, machine, write_result

RUNS = {  # name -> (recipe, extra overrides)
    "lstm_class_conditional": ("configs/digits_pixel_lstm.yaml", []),
    "transformer_class_conditional": ("configs/digits_pixel_transformer.yaml", []),
    "lstm_unconditional": ("configs/digits_pixel_lstm.yaml", ["data.class_conditional=false"]),
}
SAMPLES_PER_CLASS = 8


def train_one(recipe: str, extra: list[str], model_dir: str, minutes: float) -> tuple[dict, object]:
    """Train a recipe with the overrides; its figures and the loaded best model."""
    from seqlab.data.streams import split_lines
    from seqlab.tasks import load_config, load_model_dir, train
    from seqlab.tasks.language_model import bits_per_pixel

    config = load_config(ROOT / recipe, [f"model_dir={model_dir}", f"train.max_minutes={minutes}",
                                         "train.num_threads=1", "train.progress=false", *extra])
    started = time.perf_counter()
    summary = train(config, overwrite=True)
    loaded = load_model_dir(model_dir)
    valid = [line.split() for line in split_lines(config.data)["valid"]]
    record = {"config": recipe, "overrides": extra, "parameters": sum(p.numel() for p in loaded.model.parameters()),
              "epochs": summary["epochs"], "steps": summary["steps"], "stop_reason": summary["stop_reason"],
              "valid_bits_per_pixel": round(bits_per_pixel(loaded.model, loaded.preprocessing, valid)
                                            ["bits_per_pixel"], 4),
              "test_bits_per_pixel": round(summary["test"]["bits_per_pixel"], 4),
              "wall_seconds": round(time.perf_counter() - started, 1)}
    return record, loaded


def baselines() -> dict:
    """Per-pixel categoricals (add-one; also one per class) and Kneser-Ney pixel n-grams, test bits/pixel."""
    from seqlab.data.pixels import digit_lines, digit_splits, ngram_bits_per_pixel, per_pixel_bits
    from seqlab.lm.ngram import NGramLM

    splits = digit_splits()
    (train_pixels, train_labels), (test_pixels, test_labels) = splits["train"], splits["test"]
    per_class = sum(per_pixel_bits(train_pixels[train_labels == c], test_pixels[test_labels == c])
                    * int((test_labels == c).sum()) for c in range(10)) / len(test_labels)
    result = {"per_pixel_independent": round(per_pixel_bits(train_pixels, test_pixels), 4),
              "per_pixel_independent_per_class": round(per_class, 4), "uniform": round(float(np.log2(17)), 4)}
    for conditional in (False, True):
        lines = digit_lines(class_conditional=conditional)
        train_tokens, test_tokens = ([line.split() for line in lines[s]] for s in ("train", "test"))
        for order in (3, 5, 9):
            model = NGramLM.fit(train_tokens, order=order, smoothing="mkn")
            name = f"ngram_{order}_mkn{'_class_conditional' if conditional else ''}"
            result[name] = round(ngram_bits_per_pixel(model, test_tokens), 4)
    return result


def sample_agreement(images: np.ndarray, labels: list[int]) -> dict:
    """How often a classifier of real digits reads the forced class in the samples: a check that the class token
    steers the images, not only the likelihood.  The classifier (scikit-learn's logistic regression on the training
    pixels) is scored on the real test images too, for scale."""
    from sklearn.linear_model import LogisticRegression

    from seqlab.data.pixels import digit_splits

    splits = digit_splits()
    classifier = LogisticRegression(max_iter=5000).fit(splits["train"][0] / 16.0, splits["train"][1])
    predicted = classifier.predict(images.reshape(len(images), -1) / 16.0)
    return {"samples_read_as_their_class": round(float((predicted == np.asarray(labels)).mean()), 4),
            "classifier_test_accuracy_on_real_images": round(classifier.score(splits["test"][0] / 16.0,
                                                                              splits["test"][1]), 4)}


def save_grid(images: np.ndarray, path) -> None:
    """(10 * 8, 8, 8) grey levels, class-major -> one PNG: a row per class, 8 samples a row."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(10, SAMPLES_PER_CLASS, figsize=(SAMPLES_PER_CLASS * 0.8, 10 * 0.8))
    for index, axis in enumerate(axes.flat):
        axis.imshow(images[index], cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
        axis.set_xticks([]), axis.set_yticks([])
        if index % SAMPLES_PER_CLASS == 0:
            axis.set_ylabel(str(index // SAMPLES_PER_CLASS), rotation=0, labelpad=10)
    figure.suptitle("pixel LM samples, class token forced (rows: digit 0..9)", fontsize=9)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="train.max_minutes of each model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from seqlab.tasks.language_model import sample_images

    started, results, loaded = time.perf_counter(), {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (recipe, extra) in RUNS.items():
            results[name], loaded[name] = train_one(recipe, extra, f"{tmp}/{name}", args.minutes)
            print(name, results[name], flush=True)
    base = baselines()
    print("baselines", base, flush=True)
    # The sampler is chosen on validation bits/pixel, so no choice here looks at the test images.
    sampler = min((n for n in RUNS if "class_conditional" in n), key=lambda n: results[n]["valid_bits_per_pixel"])
    labels = [digit for digit in range(10) for _ in range(SAMPLES_PER_CLASS)]
    images = sample_images(loaded[sampler].model, loaded[sampler].preprocessing, labels, seed=0)
    save_grid(images, ROOT / "docs" / "digits_pixel_samples.png")
    agreement = sample_agreement(images, labels)
    print("samples", agreement, flush=True)
    print(f"{'model':34s} test bits/pixel")
    for name, figure in [*((n, r["test_bits_per_pixel"]) for n, r in results.items()), *base.items()]:
        print(f"{name:34s} {figure:.3f}")
    record = {"command": "nice -n 5 python " + shlex.join(["benchmarks/digits_pixel_lm.py", *sys.argv[1:]]),
              "commit": git_commit(), "machine": machine(), "wall_seconds": round(time.perf_counter() - started, 1),
              "split": {"train": 1257, "valid": 180, "test": 360, "split_seed": 0},
              "metric": "test bits/pixel: mean over the 64 pixel positions of -log2 p(pixel | earlier tokens of "
                        "the image); class token and <eos> not averaged",
              "models": results, "baselines": base,
              "samples": {"path": "docs/digits_pixel_samples.png", "model": sampler, "chosen_by": "valid bits/pixel",
                          "per_class": SAMPLES_PER_CLASS, "temperature": 1.0, "seed": 0, **agreement}}
    print(write_result("digits_pixel_lm", record))


if __name__ == "__main__":
    main()
