"""``seqlab classify`` and ``seqlab tag`` end to end on tiny files: train, predict, evaluate, and bad input.

The commands run in-process through ``seqlab.cli.main`` (the real error handling: one ``seqlab: error:`` line,
exit 2), with the two commands added to its table for the test in case the lead has not registered them yet.
Oracles: evaluate's accuracy must equal a hand count over predict's output; chunk F1 equals the task module's
conlleval F1 and a hand count; the model directory must work after the training files are gone.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from seqlab import cli
from seqlab.tasks.tagging import score_tags
from seqlab.metrics.classification import chunk_f1
from tests.conftest import check_one_line_error

FILLERS = "the a film movie plot story actors it was is very quite really".split()


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Module-scoped (the trained-model fixtures are), so a plain ``monkeypatch`` cannot be used."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(cli.COMMANDS, "classify", "seqlab.commands.classify")
        patch.setitem(cli.COMMANDS, "tag", "seqlab.commands.tag")
        yield


def seqlab(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()  # drop anything printed before
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


assert_clean_error = check_one_line_error


# ------------------------------------------------------------------------------------------------ classification
def polarity_lines(count: int, seed: int) -> list[str]:
    """``label<TAB>text``: the label is given away by "good" or "bad" among random filler words."""
    rng = random.Random(seed)
    lines = []
    for index in range(count):
        label = "pos" if index % 2 else "neg"
        words = rng.sample(FILLERS, 4) + ["good" if label == "pos" else "bad"]
        rng.shuffle(words)
        lines.append(f"{label}\t{' '.join(words)}")
    return lines


def write_config(path: Path, section: str, data: dict, model: dict, epochs: int) -> Path:
    config = {"task": section, "data": {"dataset": "files", **data}, "model": model,
              "train": {"lr": 0.01, "max_epochs": epochs, "progress": False, "num_threads": 1,
                        "early_stopping_metric": "accuracy"}}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def classify_files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("classify")
    for split, count, seed in (("train", 80, 1), ("valid", 10, 2), ("test", 20, 3)):
        (root / f"{split}.tsv").write_text("\n".join(polarity_lines(count, seed)) + "\n", encoding="utf-8")
    data = {name: str(root / f"{name}.tsv") for name in ("train", "valid", "test")}
    write_config(root / "config.yaml", "classification",
                 {"train_file": data["train"], "valid_file": data["valid"], "test_file": data["test"],
                  "batch_size": 8},
                 {"encoder": "gru", "embedding_size": 16, "hidden_size": 16, "dropout": 0.0}, epochs=12)
    return root


@pytest.fixture(scope="module")
def classifier_dir(classify_files, tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("classifier") / "model"
    code = cli.main(["classify", "train", str(classify_files / "config.yaml"), "--model-dir", str(model_dir)])
    assert code == 0
    return model_dir


def test_classify_train_writes_a_self_contained_model_dir(classifier_dir):
    expected = {"best.pt", "last.pt", "config.yaml", "vocab.txt", "labels.txt", "train_log.jsonl"}
    assert expected <= {path.name for path in classifier_dir.iterdir()}
    config = yaml.safe_load((classifier_dir / "config.yaml").read_text())
    assert config["task"] == "classification" and config["model"]["encoder"] == "gru"
    assert (classifier_dir / "labels.txt").read_text().split() == ["neg", "pos"]


def test_classify_predict_learns_the_keyword_and_evaluate_agrees_with_a_hand_count(
        capsys, classify_files, classifier_dir, tmp_path):
    test_lines = (classify_files / "test.tsv").read_text().splitlines()
    gold = [line.split("\t")[0] for line in test_lines]
    (tmp_path / "input.txt").write_text("".join(line.split("\t")[1] + "\n" for line in test_lines))
    code, out, _ = seqlab(capsys, "classify", "predict", classifier_dir, tmp_path / "input.txt")
    predicted = out.splitlines()
    assert code == 0 and len(predicted) == len(gold)
    hand_accuracy = sum(g == p for g, p in zip(gold, predicted)) / len(gold)
    assert hand_accuracy >= 0.9  # "good"/"bad" decides the label; 12 epochs are plenty
    code, out, _ = seqlab(capsys, "classify", "evaluate", classifier_dir, "--split", "test")
    scores = json.loads(out)
    assert code == 0 and scores["examples"] == len(gold)
    assert scores["accuracy"] == pytest.approx(hand_accuracy)
    assert 0.0 <= scores["macro_f1"] <= 1.0


def test_classify_predict_works_without_the_training_files_and_writes_output(
        capsys, classify_files, classifier_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQLAB_DATA", str(tmp_path / "nowhere"))
    (tmp_path / "in.txt").write_text("good film\nthe plot was bad\n\n")
    code, out, _ = seqlab(capsys, "classify", "predict", classifier_dir, tmp_path / "in.txt",
                          "--output", tmp_path / "out.txt")
    assert code == 0 and out == ""
    labels = (tmp_path / "out.txt").read_text().splitlines()
    assert labels[:2] == ["pos", "neg"] and len(labels) == 3  # an empty line still gets a line


def test_classify_evaluate_on_a_file_matches_the_split(capsys, classify_files, classifier_dir):
    by_split = json.loads(seqlab(capsys, "classify", "evaluate", classifier_dir, "--split", "test")[1])
    by_file = json.loads(seqlab(capsys, "classify", "evaluate", classifier_dir, "--file",
                                classify_files / "test.tsv")[1])
    assert by_file["accuracy"] == by_split["accuracy"] and by_file["loss"] == pytest.approx(by_split["loss"])


def test_classify_bad_inputs_give_one_line_errors(capsys, classify_files, classifier_dir, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("pos\tgood film\nneg\tbad film\nno tab on this line\n")
    config = write_config(tmp_path / "bad.yaml", "classification", {"train_file": str(bad)}, {}, epochs=1)
    assert_clean_error(*seqlab(capsys, "classify", "train", config, "--model-dir", tmp_path / "m")[::2],
                       f"{bad}:3:")
    missing = write_config(tmp_path / "missing.yaml", "classification",
                           {"train_file": str(tmp_path / "absent.tsv")}, {}, epochs=1)
    assert_clean_error(*seqlab(capsys, "classify", "train", missing, "--model-dir", tmp_path / "m")[::2],
                       "absent.tsv", "no such file")
    typo = write_config(tmp_path / "typo.yaml", "classification", {"train_file": str(bad)}, {"hiden_size": 8}, 1)
    assert_clean_error(*seqlab(capsys, "classify", "train", typo)[::2], "model.hiden_size", "hidden_size")
    assert_clean_error(*seqlab(capsys, "classify", "predict", tmp_path / "no_model", bad)[::2], "no_model")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"good film\ncaf\xe9 bad\n")
    assert_clean_error(*seqlab(capsys, "classify", "predict", classifier_dir, latin)[::2], f"{latin}:2:")
    assert_clean_error(*seqlab(capsys, "classify", "train", config, "--model-dir", classifier_dir)[::2],
                       "already holds a trained model")


# ------------------------------------------------------------------------------------------------ tagging
SENTENCES = [  # word POS chunk
    "the DT B-NP cat NN I-NP sat VBD B-VP on IN B-PP the DT B-NP mat NN I-NP . . O",
    "a DT B-NP dog NN I-NP ran VBD B-VP to TO B-PP the DT B-NP park NN I-NP . . O",
    "the DT B-NP big JJ I-NP dog NN I-NP sat VBD B-VP . . O",
    "a DT B-NP cat NN I-NP ran VBD B-VP on IN B-PP a DT B-NP mat NN I-NP . . O",
]


def conll_text(sentences: list[str]) -> str:
    blocks = []
    for sentence in sentences:
        fields = sentence.split()
        blocks.append("".join(f"{w} {p} {c}\n" for w, p, c in zip(fields[::3], fields[1::3], fields[2::3])))
    return "\n".join(blocks) + "\n"


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tag")
    (root / "train.conll").write_text(conll_text(SENTENCES * 8))
    (root / "test.conll").write_text(conll_text(SENTENCES))
    config = write_config(root / "config.yaml", "tagging",
                          {"train_file": str(root / "train.conll"), "test_file": str(root / "test.conll"),
                           "valid_file": str(root / "test.conll"), "batch_size": 4},
                          {"cell": "gru", "embedding_size": 16, "hidden_size": 16, "dropout": 0.0, "crf": True},
                          epochs=10)
    config_data = yaml.safe_load(config.read_text())
    config_data["train"]["early_stopping_metric"] = "chunk_f1"
    config.write_text(yaml.safe_dump(config_data))
    assert cli.main(["tag", "train", str(config), "--model-dir", str(root / "model")]) == 0
    return root


def test_tag_predict_writes_token_slash_tag_and_evaluate_agrees_with_a_hand_count(capsys, tagger_dir, tmp_path):
    gold_sentences = [s.split() for s in SENTENCES]
    words = [fields[::3] for fields in gold_sentences]
    gold = [fields[2::3] for fields in gold_sentences]
    (tmp_path / "in.txt").write_text("".join(" ".join(w) + "\n" for w in words) + "\n")
    code, out, _ = seqlab(capsys, "tag", "predict", tagger_dir / "model", tmp_path / "in.txt")
    lines = out.split("\n")[:-1]
    assert code == 0 and len(lines) == len(words) + 1 and lines[-1] == ""  # the blank line stays blank
    predicted = [[pair.rsplit("/", 1)[1] for pair in line.split()] for line in lines[:-1]]
    assert [[pair.rsplit("/", 1)[0] for pair in line.split()] for line in lines[:-1]] == words
    flat = [(g, p) for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps, strict=True)]
    hand_accuracy = sum(g == p for g, p in flat) / len(flat)
    assert hand_accuracy >= 0.9  # the training set is these sentences, repeated
    code, out, _ = seqlab(capsys, "tag", "evaluate", tagger_dir / "model", "--split", "test")
    scores = json.loads(out)
    assert code == 0 and scores["tokens"] == len(flat)
    assert scores["accuracy"] == pytest.approx(hand_accuracy)
    assert scores["chunk_f1"] == pytest.approx(chunk_f1(gold, predicted))


def test_score_tags_counts_chunks_like_conlleval():
    gold = [["B-NP", "I-NP", "O", "B-VP", "B-PP", "B-NP"]]  # chunks: NP(0,2) VP(3,4) PP(4,5) NP(5,6)
    predicted = [["B-NP", "I-NP", "O", "B-VP", "I-VP", "I-NP"]]  # NP(0,2) VP(3,5) NP(5,6): 2 correct of 3
    scores = score_tags(gold, predicted, "chunk")
    assert scores["chunk_precision"] == pytest.approx(2 / 3) and scores["chunk_recall"] == pytest.approx(2 / 4)
    assert scores["chunk_f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert set(score_tags(gold, predicted, "pos")) == {"accuracy"}


def test_tag_bad_inputs_give_one_line_errors(capsys, tagger_dir, tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("the DT B-NP\ncat NN\n")
    config = write_config(tmp_path / "bad.yaml", "tagging", {"train_file": str(bad)}, {}, epochs=1)
    assert_clean_error(*seqlab(capsys, "tag", "train", config, "--model-dir", tmp_path / "m")[::2], f"{bad}:2:")
    assert_clean_error(*seqlab(capsys, "tag", "evaluate", tagger_dir / "model", "--file", bad)[::2], f"{bad}:2:")
    assert_clean_error(*seqlab(capsys, "tag", "evaluate", tagger_dir / "model", "--file", tmp_path / "gone")[::2],
                       "gone", "no such file")
    wrong_task = write_config(tmp_path / "task.yaml", "classification", {"train_file": str(bad)}, {}, epochs=1)
    assert_clean_error(*seqlab(capsys, "tag", "train", wrong_task)[::2], "task:")


def test_a_tagger_directory_is_not_a_classifier(capsys, tagger_dir, tmp_path):
    (tmp_path / "in.txt").write_text("the cat\n")
    assert_clean_error(*seqlab(capsys, "classify", "predict", tagger_dir / "model", tmp_path / "in.txt")[::2],
                       "'tagging' model")


def test_a_tagger_that_spells_words_and_reads_pos_tags_end_to_end(capsys, tmp_path):
    (tmp_path / "train.conll").write_text(conll_text(SENTENCES * 8))
    data = {"train_file": str(tmp_path / "train.conll"), "valid_file": str(tmp_path / "train.conll"), "batch_size": 4}
    model = {"cell": "gru", "embedding_size": 8, "hidden_size": 8, "dropout": 0.0, "crf": True,
             "char_embedding_size": 4, "char_filters": 6, "pos_embedding_size": 4, "word_dropout": 0.1}
    config = write_config(tmp_path / "config.yaml", "tagging", data, model, epochs=6)
    assert cli.main(["train", str(config), "--model-dir", str(tmp_path / "model")]) == 0
    assert {"chars.txt", "pos.txt"} <= {p.name for p in (tmp_path / "model").iterdir()}
    # An unseen word ("bird") with its POS tag; the model reads the tokens as word/POS.
    (tmp_path / "in.txt").write_text("the/DT bird/NN sat/VBD ./.\n")
    code, out, _ = seqlab(capsys, "tag", "predict", tmp_path / "model", tmp_path / "in.txt")
    assert code == 0 and out.split() == ["the/DT/B-NP", "bird/NN/I-NP", "sat/VBD/B-VP", "././O"]
    (tmp_path / "plain.txt").write_text("the bird sat\n")
    assert_clean_error(*seqlab(capsys, "tag", "predict", tmp_path / "model", tmp_path / "plain.txt")[::2],
                       "token 'the' is not word/POS")
    code, out, _ = seqlab(capsys, "evaluate", tmp_path / "model", "--file", tmp_path / "train.conll")
    assert code == 0 and json.loads(out)["accuracy"] > 0.9
    pos_config = write_config(tmp_path / "pos.yaml", "tagging", {**data, "column": "pos"}, model, epochs=1)
    assert_clean_error(*seqlab(capsys, "train", pos_config, "--model-dir", tmp_path / "m2")[::2],
                       "model.pos_embedding_size")
