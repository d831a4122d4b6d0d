"""``seqlab train`` on the digits as pixel sentences, end to end: a tiny class-conditional LSTM on 40 images per
split writes a model directory, learns something (beats uniform grey levels) and is sampled as images."""

import json
import math

import pytest

from seqlab.tasks import load_model_dir
from seqlab.tasks.language_model import sample_images
from tests.integration.test_cli import ROOT, seqlab


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("pixel") / "model"
    result = seqlab("train", ROOT / "configs/digits_pixel_lstm.yaml", f"--set=model_dir={model_dir}",
                    "--set=data.max_images=40", "--set=data.batch_size=4", "--set=model.hidden_size=32",
                    "--set=train.max_epochs=12", "--set=train.num_threads=1", "--set=train.progress=false")
    assert result.returncode == 0, result.stderr
    return model_dir, json.loads(result.stdout.strip().splitlines()[-1])


def test_training_reports_test_bits_per_pixel_below_uniform_grey_levels(run):
    model_dir, summary = run
    start = json.loads((model_dir / "train_log.jsonl").read_text().splitlines()[0])
    assert start["task"] == "lm" and start["examples"]["train"] == 1 + 40 * 66  # <eos>, then <c?> + 64 + <eos>
    assert summary["test"]["images"] == 40 and summary["test"]["pixels"] == 40 * 64
    assert summary["test"]["bits_per_pixel"] < math.log2(17) - 0.5


def test_the_trained_model_samples_one_image_per_class(run):
    loaded = load_model_dir(run[0])
    images = sample_images(loaded.model, loaded.preprocessing, list(range(10)), seed=0)
    assert images.shape == (10, 8, 8) and 0 <= images.min() and images.max() <= 16
    assert (images == 0).mean() > 0.3  # the digits' background is blank: a trained model draws mostly g0
