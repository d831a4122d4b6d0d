"""``--models DIR ... --ensemble mean|vote`` end to end on tiny models trained here: predict (classify, tag,
caption), evaluate, generate and score, members of different architectures, and the one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqlab import cli
from seqlab.ensemble import load_members
from seqlab.tasks import build_config, classification, train
from tests.conftest import check_one_line_error
from tests.integration.test_tasks import RECIPES, TRAIN, write_lines


def train_member(tmp: Path, flickr: Path, task: str, name: str, seed: int, model: dict | None = None,
                 data: dict | None = None) -> str:
    """A tiny model of ``task`` (test_tasks' recipe) trained for 6 steps with ``seed`` -> its directory.  ``model``
    updates the recipe's model section, or replaces it when it names another architecture."""
    raw = RECIPES[task](tmp, flickr)
    raw["model"] = model if model and "architecture" in model else {**raw["model"], **(model or {})}
    raw["data"].update(data or {})
    raw.update(model_dir=str(tmp / name), train={**TRAIN, "max_steps": 6, "seed": seed})
    train(build_config(raw))
    return str(tmp / name)


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory, flickr) -> list[str]:
    """Three classifiers of one vocabulary: two GRUs (seeds 1, 2) and a CNN."""
    tmp = tmp_path_factory.mktemp("classifiers")
    return [train_member(tmp, flickr, "classification", "gru1", 1),
            train_member(tmp, flickr, "classification", "gru2", 2),
            train_member(tmp, flickr, "classification", "cnn", 3, {"encoder": "cnn", "kernel_sizes": [2, 3],
                                                                    "num_filters": 4})]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def by_hand(model_dirs: list[str], sentences: list[list[str]], how: str) -> list[str]:
    """The ensemble's labels from the members' own logits: argmax of the mean softmax, or the most votes (ties to
    the higher mean probability)."""
    members = load_members(model_dirs)
    pre = members[0].preprocessing
    labels = []
    for sentence in sentences:
        ids = torch.tensor([pre.encode(sentence)])
        with torch.no_grad():
            probs = torch.stack([torch.softmax(m.model(ids, ids != 0)[0], -1) for m in members])  # (M, C)
        mean = probs.mean(0)
        votes = torch.bincount(probs.argmax(-1), minlength=len(pre.labels)).float()
        labels.append(pre.labels[int((votes + mean).argmax()) if how == "vote" else int(mean.argmax())])
    return labels


@pytest.mark.parametrize("how", ["mean", "vote"])
def test_classify_predict_and_evaluate_with_three_members_of_two_architectures(classifiers, tmp_path, capsys, how):
    lines = ["good film number 3", "bad film", "film number 8", "good bad"]
    source = write_lines(tmp_path / "in.txt", lines)
    code, out, err = run_cli(["predict", classifiers[0], source, "--models", *classifiers[1:], "--ensemble", how],
                             capsys)
    assert code == 0, err
    assert out.splitlines() == by_hand(classifiers, [line.split() for line in lines], how)
    code, out, err = run_cli(["evaluate", "--models", *classifiers, "--ensemble", how], capsys)
    assert code == 0, err
    assert '"accuracy"' in out and '"examples": 24' in out


def test_an_ensemble_of_one_model_twice_scores_as_the_model(classifiers, capsys):
    _, alone, _ = run_cli(["evaluate", classifiers[0]], capsys)
    _, twice, _ = run_cli(["evaluate", classifiers[0], "--models", classifiers[0]], capsys)
    accuracy = [line for line in alone.splitlines() if "accuracy" in line]
    assert accuracy == [line for line in twice.splitlines() if "accuracy" in line]


def test_members_with_another_vocabulary_are_a_one_line_error_naming_both(classifiers, tmp_path, flickr, capsys):
    other = train_member(tmp_path, flickr, "classification", "lowercased", 1, data={"lowercase": True})
    rows = [f"{'pos' if i % 2 else 'neg'}\tGreat Film {i}" for i in range(8)]
    path = write_lines(tmp_path / "other.tsv", rows)
    other_words = train_member(tmp_path, flickr, "classification", "other_words", 1,
                               data={"train_file": path, "valid_file": path, "test_file": path})
    for member in (other, other_words):
        code, _, err = run_cli(["evaluate", classifiers[0], "--models", member], capsys)
        check_one_line_error(code, err, member, classifiers[0], "one vocabulary")


def test_tag_predict_mean_and_vote(tmp_path, flickr, capsys):
    taggers = [train_member(tmp_path, flickr, "tagging", f"tagger{seed}", seed, {"crf": False}) for seed in (1, 2, 3)]
    source = write_lines(tmp_path / "in.txt", ["the cat sat .", "a dog ran"])
    for how in ("mean", "vote"):
        code, out, err = run_cli(["predict", taggers[0], source, "--models", *taggers[1:], "--ensemble", how], capsys)
        assert code == 0, err
        assert [len(line.split()) for line in out.splitlines()] == [4, 3]
        assert all("/" in token for token in out.split())
    crf = train_member(tmp_path, flickr, "tagging", "crf", 1)
    code, _, err = run_cli(["tag", "evaluate", crf, "--models", taggers[0]], capsys)
    check_one_line_error(code, err, "CRF", "--ensemble vote")
    # A CRF tagger thrice votes its own Viterbi tags; beside two plain taggers it is one vote of three.
    _, alone, _ = run_cli(["predict", crf, source], capsys)
    code, thrice, err = run_cli(["predict", crf, source, "--models", crf, crf, "--ensemble", "vote"], capsys)
    assert code == 0, err
    assert thrice == alone
    code, out, err = run_cli(["tag", "evaluate", crf, "--models", *taggers[:2], "--ensemble", "vote"], capsys)
    assert code == 0, err
    assert '"accuracy"' in out


@pytest.fixture(scope="module")
def lms(tmp_path_factory, flickr) -> list[str]:
    """An LSTM and a Transformer language model of one vocabulary."""
    tmp = tmp_path_factory.mktemp("lms")
    transformer = {"architecture": "transformer", "d_model": 8, "num_heads": 2, "ffn_size": 16,
                   "num_decoder_layers": 1}
    return [train_member(tmp, flickr, "lm", "lstm", 1), train_member(tmp, flickr, "lm", "transformer", 2, transformer)]


def test_generate_with_an_lstm_and_a_transformer(lms, capsys):
    for how in ("mean", "vote"):
        code, out, err = run_cli(["generate", "--models", *lms, "--ensemble", how, "--prompt", "the cat",
                                  "--max-tokens", "3"], capsys)
        assert code == 0, err
        assert len(out.splitlines()) == 1


def test_score_lm_ensemble_is_at_least_the_members_mean_log_prob(lms, tmp_path, capsys):
    # Per token log((p1 + p2) / 2) >= (log p1 + log p2) / 2 (Jensen), with equality only where p1 = p2: so the
    # ensemble's total beats the members' mean total; a product of experts or a sum would not.
    import json

    source = write_lines(tmp_path / "s.txt", ["the cat sat on the log", "the dog sat"])
    scores = []
    for argv in (["score", lms[0]], ["score", lms[1]], ["score", "--models", *lms]):
        code, out, err = run_cli([*argv, "--lm", "-i", source], capsys)
        assert code == 0, err
        scores.append([json.loads(line)["log_prob"] for line in out.splitlines()])
    for first, second, ensemble in zip(*scores):
        assert ensemble > (first + second) / 2
    _, twice, _ = run_cli(["score", lms[0], "--models", lms[0], "--lm", "-i", source], capsys)
    assert [json.loads(line)["log_prob"] for line in twice.splitlines()] == pytest.approx(scores[0], abs=1e-3)
    code, _, err = run_cli(["score", "--models", *lms, "--ensemble", "vote", "--lm", "-i", source], capsys)
    check_one_line_error(code, err, "--ensemble mean")
    code, _, err = run_cli(["evaluate", "--models", *lms], capsys)
    check_one_line_error(code, err, "lm ensemble", "seqlab score")


def test_caption_predict_mean_and_vote(tmp_path, flickr, capsys):
    captioners = [train_member(tmp_path, flickr, "captioning", f"captioner{seed}", seed) for seed in (1, 2, 3)]
    images = [str(flickr / "red.jpg"), str(flickr / "blue.jpg")]
    for how in ("mean", "vote"):
        code, out, err = run_cli(["caption", "predict", captioners[0], *images, "--models", *captioners[1:],
                                  "--ensemble", how], capsys)
        assert code == 0, err
        assert [line.split("\t")[0] for line in out.splitlines()] == images
    code, _, err = run_cli(["evaluate", captioners[0], "--models", captioners[1], "--ensemble", "vote"], capsys)
    check_one_line_error(code, err, "vote on whole outputs", "--ensemble mean")


def test_translate_with_an_rnn_and_a_transformer(tmp_path, flickr, capsys):
    transformer = {"architecture": "transformer", "d_model": 8, "num_heads": 2, "ffn_size": 16,
                   "num_encoder_layers": 1, "num_decoder_layers": 1}
    members = [train_member(tmp_path, flickr, "translation", "rnn", 1),
               train_member(tmp_path, flickr, "translation", "transformer", 2, transformer)]
    source = write_lines(tmp_path / "in.txt", ["he is calm .", "go ."])
    code, out, err = run_cli(["translate", "--models", *members, "-i", source, "--beam", "2"], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 2
    code, out, err = run_cli(["evaluate", "--models", *members, "--json"], capsys)
    assert code == 0, err
    assert '"bleu"' in out
