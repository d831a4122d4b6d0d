"""``seqlab train`` / ``evaluate`` / ``predict`` end to end for image_classification on the digits: a few steps of
a tiny LeNet write a model directory, then it is scored and used; bad input is exit 2 and one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from seqlab.commands import evaluate, predict, train
from tests.conftest import check_one_line_error, invoke


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("digits")
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs/digits_lenet.yaml").read_text())
    config["model_dir"] = str(tmp / "model")
    config["train"].update(max_epochs=1, max_steps=5, progress=False, log_every=1000)
    path = tmp / "digits.yaml"
    path.write_text(yaml.safe_dump(config))
    code = train.run(_parse(train, [str(path)]))
    assert code in (0, None)
    return tmp / "model"


def _parse(module, argv: list[str]):
    import argparse

    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_train_writes_a_model_dir_with_its_parameter_count(model_dir: Path) -> None:
    start = json.loads((model_dir / "train_log.jsonl").read_text().splitlines()[0])
    assert start["task"] == "image_classification" and start["parameters"] == 2742
    assert start["examples"] == {"train": 1257, "valid": 180, "test": 360}
    assert (model_dir / "labels.txt").read_text().split() == [str(i) for i in range(10)]


def test_evaluate_prints_test_accuracy(model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = invoke(evaluate, [str(model_dir)], capsys)
    scores = json.loads(out)
    assert code == 0 and scores["examples"] == 360 and 0.0 <= scores["accuracy"] <= 1.0


def test_predict_split_and_csv(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = invoke(predict, [str(model_dir), "--split", "test"], capsys)
    assert code == 0 and len(out.split()) == 360 and set(out.split()) <= {str(i) for i in range(10)}
    csv = tmp_path / "two.csv"
    csv.write_text("0," * 63 + "16\n" + ",".join(["8"] * 64) + "\n")
    code, out, _ = invoke(predict, [str(model_dir), "--csv", str(csv)], capsys)
    assert code == 0 and len(out.split()) == 2


@pytest.mark.parametrize("text, fragment", [("1,2,3\n", "expected 64"), ("a,b\n", "not a comma-separated"),
                                            (",".join(["17"] * 64) + "\n", "0..16"), ("", "no images")])
def test_bad_csv_is_one_line_error(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, text: str,
                                   fragment: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    code, _, err = invoke(predict, [str(model_dir), "--csv", str(csv)], capsys)
    check_one_line_error(code, err, fragment)


def test_missing_csv_and_unknown_split(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = invoke(predict, [str(model_dir), "--csv", str(tmp_path / "none.csv")], capsys)
    check_one_line_error(code, err, "cannot read")
    code, _, err = invoke(predict, [str(model_dir), "--split", "dev"], capsys)
    check_one_line_error(code, err, "--split")
