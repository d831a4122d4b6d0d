"""``seqlab caption`` and ``seqlab forecast`` end to end on tiny data: train, predict, evaluate, and bad input.

The caption data is a miniature Flickr8k folder (gzipped caption and split files, one tar shard of generated
16x16 JPEGs: red images are "a red square", blue ones "a blue sky").  Commands run through their module's
``add_arguments``/``run`` with the error handling of ``seqlab.cli.main``: a user error is exit 2 and one line.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

import pytest
import sacrebleu
import torch
import yaml

from seqlab.commands import caption, forecast
from seqlab.metrics.bleu import corpus_bleu_tokens
from seqlab.tasks import load_model_dir
from tests.conftest import CAPTIONS, check_one_line_error, invoke, write_gz

def assert_clean_error(result: tuple[int, str, str], *fragments: str) -> None:
    check_one_line_error(result[0], result[2], *fragments)


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
    oracle = sacrebleu.corpus_bleu(hyps, [list(r) for r in zip(*refs)], tokenize="none", force=True)
    assert scores["bleu_4"] == pytest.approx(oracle.score, abs=0.01)
    assert scores["bleu_1"] >= scores["bleu_4"]


def test_corpus_bleu_by_hand():
    """Hand count: hyp 'a b c d' vs refs {'a b c e', 'a b'}: p1 = 3/4, p2 = 2/3, brevity penalty 1."""
    scores = corpus_bleu_tokens([["a", "b", "c", "d"]], [[["a", "b", "c", "e"], ["a", "b"]]], max_n=2)
    assert scores["bleu_1"] == pytest.approx(75.0)
    assert scores["bleu_2"] == pytest.approx(100 * (0.75 * 2 / 3) ** 0.5)


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
    start = json.loads((tmp_path / "model" / "train_log.jsonl").read_text().splitlines()[0])
    assert code == 0 and start["examples"]["train"] == 120 and start["examples"]["test"] == 80
    assert summary["test"]["mse"] < summary["test"]["naive_last_value_mse"]  # a clean sine beats "tomorrow = today"
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
    loaded = load_model_dir(tmp_path / "m")
    mean, std = loaded.preprocessing.mean, loaded.preprocessing.std
    rows = list(csv.DictReader(open(tmp_path / "o.csv")))
    context = torch.tensor([float(rows[i]["observed"]) for i in range(46, 50)])
    with torch.no_grad():
        expected = loaded.model((context.unsqueeze(0) - mean) / std) * std + mean
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
