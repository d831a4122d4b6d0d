"""``seqlab caption`` and ``seqlab forecast`` end to end on tiny data: train, predict, evaluate, and bad input.

The caption data is a miniature Flickr8k folder (gzipped caption and split files, one tar shard of generated
16x16 JPEGs: red images are "a red square", blue ones "a blue sky").  Commands run through their module's
``add_arguments``/``run`` with the error handling of ``seqlab.cli.main``: a user error is exit 2 and one line.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
import torch
import yaml
from PIL import Image

from seqlab.commands import caption, forecast
from seqlab.data.images import SPLIT_FILES
from seqlab.errors import SeqlabError

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}
CAPTIONS = {"red": ["a red square .", "a red box ."], "blue": ["a blue sky .", "the blue sky ."]}
SPLITS = {"train": 6, "dev": 2, "test": 2}  # images per colour


def invoke(module, argv: list[str], capsys) -> tuple[int, str, str]:
    """Parse and run like ``seqlab.cli.main``: SeqlabError -> 'seqlab: error: ...' and exit code 2."""
    parser = argparse.ArgumentParser(prog="seqlab")
    module.add_arguments(parser)
    try:
        code = module.run(parser.parse_args(argv)) or 0
    except SeqlabError as error:
        print(f"seqlab: error: {error}", file=sys.stderr)
        code = 2
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_error(result: tuple[int, str, str], *fragments: str) -> None:
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("seqlab: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def jpeg_bytes(colour: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(COLOURS[colour]) + rng.integers(-25, 25, (16, 16, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_gz(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


@pytest.fixture(scope="module")
def flickr(tmp_path_factory) -> Path:
    """A data directory holding flickr8k/ in the real layout, with 20 tiny images."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "flickr8k"
    folder.mkdir()
    token_lines, seed = [], 0
    with tarfile.open(folder / "images-000.tar", "w") as shard:
        for split, count in SPLITS.items():
            names = []
            for colour in COLOURS:
                for _ in range(count):
                    name, seed = f"{colour}_{seed}.jpg", seed + 1
                    data = jpeg_bytes(colour, seed)
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    shard.addfile(info, io.BytesIO(data))
                    token_lines += [f"{name}#{k}\t{text}" for k, text in enumerate(CAPTIONS[colour])]
                    names.append(name)
            write_gz(folder / SPLIT_FILES[split], names)
    write_gz(folder / "Flickr8k.token.txt.gz", token_lines)
    (root / "red.jpg").write_bytes(jpeg_bytes("red", 1000))
    (root / "blue.jpg").write_bytes(jpeg_bytes("blue", 1001))
    return root


def caption_config(tmp: Path, data_dir: Path, cache: bool) -> Path:
    config = {"data": {"data_dir": str(data_dir), "image_size": 16, "min_freq": 1, "images_per_batch": 4,
                       "cache_dir": str(tmp / "cache") if cache else ""},
              "model": {"cnn": {"architecture": "vgg", "channels": [8, 16]}, "cell": "gru", "embedding_size": 16,
                        "hidden_size": 32, "dropout": 0.0},
              "train": {"max_epochs": 40, "lr": 0.01, "num_threads": 1, "progress": False, "log_every": 1000},
              "decode": {"beam_size": 2, "max_len": 8}}
    path = tmp / "caption.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def caption_model(flickr, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("caption")
    config = caption_config(tmp, flickr, cache=True)
    parser = argparse.ArgumentParser()
    caption.add_arguments(parser)
    assert caption.run(parser.parse_args(["train", str(config), "--model-dir", str(tmp / "model")])) == 0
    return tmp / "model"


def test_caption_train_writes_a_self_contained_model_dir(caption_model, capsys):
    assert {"best.pt", "last.pt", "config.yaml", "train_log.jsonl"} <= {p.name for p in caption_model.iterdir()}
    assert list((caption_model.parent / "cache").glob("flickr8k_16px_*.npy"))  # train and dev images cached
    log = [json.loads(line) for line in (caption_model / "train_log.jsonl").read_text().splitlines()]
    losses = [record["loss"] for record in log if record["event"] == "validate"]
    assert losses[-1] < losses[0] / 2  # the colour -> caption mapping is learnt


def test_caption_predict_and_shorthand(caption_model, flickr, capsys):
    images = [str(flickr / "red.jpg"), str(flickr / "blue.jpg")]
    code, out, _ = invoke(caption, ["predict", str(caption_model), *images], capsys)
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert [path for path, _ in lines] == images
    assert "red" in lines[0][1] and "blue" in lines[1][1]
    assert invoke(caption, [str(caption_model), *images, "--beam-size", "1"], capsys)[1] == out  # shorthand


def test_caption_evaluate_matches_sacrebleu(caption_model, flickr, tmp_path, capsys):
    out_file = tmp_path / "hyps.tsv"
    code, out, _ = invoke(caption, ["evaluate", str(caption_model), "--split", "test", "--out", str(out_file)],
                          capsys)
    scores = json.loads(out)
    assert code == 0 and scores["images"] == 4
    hyps = [line.split("\t")[1] for line in out_file.read_text().splitlines()]
    names = [line.split("\t")[0] for line in out_file.read_text().splitlines()]
    refs = [CAPTIONS[name.split("_")[0]] for name in names]
    oracle = sacrebleu.corpus_bleu(hyps, [list(r) for r in zip(*refs)], tokenize="none", smooth_method="none",
                                   force=True)
    assert scores["bleu4"] == pytest.approx(oracle.score, abs=0.01)
    assert scores["bleu1"] >= scores["bleu4"]


def test_corpus_bleu_by_hand():
    """Hand count: hyp 'a b c d' vs refs {'a b c e', 'a b'}: p1 = 3/4, p2 = 2/3, brevity penalty 1."""
    scores = caption.corpus_bleu([["a", "b", "c", "d"]], [[["a", "b", "c", "e"], ["a", "b"]]], max_n=2)
    assert scores["bleu1"] == pytest.approx(75.0)
    assert scores["bleu2"] == pytest.approx(100 * (0.75 * 2 / 3) ** 0.5)


def test_caption_bad_inputs(caption_model, flickr, tmp_path, capsys):
    assert_clean_error(invoke(caption, [str(caption_model), str(tmp_path / "missing.jpg")], capsys),
                       "missing.jpg", "not found")
    (tmp_path / "text.jpg").write_text("not an image")
    assert_clean_error(invoke(caption, ["predict", str(caption_model), str(tmp_path / "text.jpg")], capsys),
                       "text.jpg", "not a readable image")
    assert_clean_error(invoke(caption, ["evaluate", str(tmp_path / "nothing")], capsys), "no such model directory")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  hiden_size: 3\n")
    assert_clean_error(invoke(caption, ["train", str(bad), "--model-dir", str(tmp_path / "m")], capsys),
                       "model.hiden_size", "hidden_size")


def test_caption_image_listed_but_missing_from_the_shards(flickr, tmp_path, capsys):
    broken = tmp_path / "data"
    (broken / "flickr8k").mkdir(parents=True)
    for item in (flickr / "flickr8k").iterdir():
        (broken / "flickr8k" / item.name).write_bytes(item.read_bytes())
    names = gzip.open(flickr / "flickr8k" / "Flickr_8k.trainImages.txt.gz", "rt").read().split()
    write_gz(broken / "flickr8k" / "Flickr_8k.trainImages.txt.gz", names + ["ghost.jpg"])
    with gzip.open(broken / "flickr8k" / "Flickr8k.token.txt.gz", "at") as handle:
        handle.write("ghost.jpg#0\ta ghost .\n")
    config = caption_config(tmp_path, broken, cache=False)
    assert_clean_error(invoke(caption, ["train", str(config), "--model-dir", str(tmp_path / "m")], capsys),
                       "ghost.jpg", "not in any")


# ------------------------------------------------------------------------------------------------ forecast
@pytest.fixture(scope="module")
def series_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("forecast") / "series.csv"
    t = torch.arange(200, dtype=torch.float32)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "level"])
        writer.writerows([int(i), float(v)] for i, v in zip(t, 10 + 3 * torch.sin(0.2 * t)))
    return path


@pytest.mark.parametrize("model", ["mlp", "rnn"])
def test_forecast_train_and_predict(series_csv, tmp_path, capsys, model):
    code, out, _ = invoke(forecast, ["train", "--csv", str(series_csv), "--column", "level", "--model", model,
                                     "--tau", "4", "--hidden-size", "16", "--epochs", "30", "--window", "8",
                                     "--model-dir", str(tmp_path / "model")], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["train_points"] == 120 and summary["test_points"] == 80
    assert summary["test_mse"] < summary["naive_last_value_mse"]  # a clean sine beats "tomorrow = today"
    out_csv, png = tmp_path / "out.csv", tmp_path / "out.png"
    code, _, _ = invoke(forecast, ["predict", str(tmp_path / "model"), "--csv", str(series_csv), "--column",
                                   "level", "--steps", "5", "--out", str(out_csv), "--plot", str(png)], capsys)
    rows = list(csv.DictReader(open(out_csv)))
    context = 4 if model == "mlp" else 8
    assert code == 0 and png.stat().st_size > 1000
    assert len(rows) == 205 and list(rows[0]) == ["index", "observed", "one_step", "5_step", "forecast"]
    assert rows[context - 1]["one_step"] == "" and rows[context]["one_step"] != ""
    assert rows[context + 3]["5_step"] == "" and rows[context + 4]["5_step"] != ""
    assert all(row["forecast"] != "" for row in rows[200:]) and rows[199]["forecast"] == ""
    one_step = [(float(r["one_step"]) - float(r["observed"])) ** 2 for r in rows[context:200]]
    assert sum(one_step) / len(one_step) < 0.5  # in the series' units: standardisation is undone


def test_forecast_one_step_column_equals_the_model(series_csv, tmp_path, capsys):
    """The CSV's 1-step prediction at row t is the model applied to the observed x_{t-τ} .. x_{t-1}."""
    invoke(forecast, ["train", "--csv", str(series_csv), "--epochs", "2", "--model-dir", str(tmp_path / "m")],
           capsys)
    invoke(forecast, ["predict", str(tmp_path / "m"), "--csv", str(series_csv), "--out", str(tmp_path / "o.csv")],
           capsys)
    loaded = forecast.load_forecaster(tmp_path / "m")
    rows = list(csv.DictReader(open(tmp_path / "o.csv")))
    context = torch.tensor([float(rows[i]["observed"]) for i in range(46, 50)])
    with torch.no_grad():
        expected = loaded.model((context.unsqueeze(0) - loaded.mean) / loaded.std) * loaded.std + loaded.mean
    assert float(rows[50]["one_step"]) == pytest.approx(float(expected), rel=1e-5)


def test_forecast_bad_inputs(series_csv, tmp_path, capsys):
    assert_clean_error(invoke(forecast, ["train", "--csv", str(series_csv), "--column", "price", "--model-dir",
                                         str(tmp_path / "m")], capsys), "series.csv:1", "price")
    bad = tmp_path / "bad.csv"
    bad.write_text("value\n1.0\n2.0\nabc\n4.0\n")
    assert_clean_error(invoke(forecast, ["train", "--csv", str(bad), "--model-dir", str(tmp_path / "m")], capsys),
                       "bad.csv:4", "abc")
    assert_clean_error(invoke(forecast, ["train", "--source", "sine", "--tau", "0", "--model-dir",
                                         str(tmp_path / "m")], capsys), "tau")
    assert_clean_error(invoke(forecast, ["predict", str(tmp_path / "none"), "--source", "sine", "--out",
                                         str(tmp_path / "o.csv")], capsys), "no such model directory")
    assert not (tmp_path / "o.csv").exists()
