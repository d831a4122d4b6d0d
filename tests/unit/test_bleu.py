"""BLEU: corpus BLEU against sacreBLEU's own function and hand counts, d2l's sentence BLEU against the seed's worked
example, the d2l book's outputs and a transcription of d2l's loop, and the ``seqlab bleu`` command."""

import collections
import io
import json
import math
import random

import pytest
import sacrebleu

from seqlab.cli import main
from seqlab.metrics.bleu import BleuResult, corpus_bleu, corpus_bleu_tokens, ngram_precision, sentence_bleu_d2l

HYPS = ["the cat the cat on the mat .", "there is cat on a mat", "a quick brown foxes jump over the lazy dog",
        "Hello, world!"]
REFS = ["the cat is on the mat .", "there is a cat on the mat", "the quick brown fox jumps over the lazy dog",
        "hello world !"]
REFS_2 = ["a cat is on the mat .", "a cat is on the mat", "a fast brown fox jumped over a lazy dog", "Hello, world!"]


# ------------------------------------------------------------------------------------------------ corpus BLEU
def test_corpus_bleu_equals_sacrebleu_corpus_bleu():
    result = corpus_bleu(HYPS, REFS)
    expected = sacrebleu.corpus_bleu(HYPS, [REFS])
    assert isinstance(result, BleuResult)
    assert result.score == pytest.approx(expected.score)
    assert result.precisions == pytest.approx(expected.precisions)
    assert result.bp == pytest.approx(expected.bp)
    assert (result.sys_len, result.ref_len) == (expected.sys_len, expected.ref_len)
    assert result.signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert str(result) == f"{expected} {result.signature}"  # sacreBLEU's own line: precisions, BP, lengths


@pytest.mark.parametrize("tokenize, lowercase", [("13a", True), ("intl", False), ("char", False), ("none", False)])
def test_corpus_bleu_options_equal_sacrebleu(tokenize, lowercase):
    result = corpus_bleu(HYPS, REFS, tokenize=tokenize, lowercase=lowercase)
    expected = sacrebleu.corpus_bleu(HYPS, [REFS], tokenize=tokenize, lowercase=lowercase)
    assert result.score == pytest.approx(expected.score)
    assert f"tok:{tokenize}" in result.signature
    assert ("case:lc" in result.signature) == lowercase


def test_multiple_references_are_given_per_sentence():
    per_sentence = [[a, b] for a, b in zip(REFS, REFS_2)]
    result = corpus_bleu(HYPS, per_sentence)
    expected = sacrebleu.corpus_bleu(HYPS, [REFS, REFS_2])  # sacreBLEU's layout: one stream per reference
    assert result.score == pytest.approx(expected.score)
    assert result.signature.startswith("nrefs:2|")
    assert result.score > corpus_bleu(HYPS, REFS).score  # a second reference can only add matches


def test_a_variable_number_of_references_pads_the_streams():
    per_sentence = [[REFS[0], REFS_2[0]], [REFS[1]], [REFS[2], REFS_2[2]], [REFS[3]]]
    expected = sacrebleu.corpus_bleu(HYPS, [REFS, [REFS_2[0], None, REFS_2[2], None]])
    result = corpus_bleu(HYPS, per_sentence)
    assert result.score == pytest.approx(expected.score)
    assert "nrefs:var" in result.signature


def test_corpus_bleu_by_hand():
    """hyp "a b c d e" vs ref "a b c d f g": matches 4/5, 3/4, 2/3, 1/2; BP = exp(1 - 6/5)."""
    result = corpus_bleu(["a b c d e"], ["a b c d f g"], tokenize="none")
    assert result.precisions == pytest.approx([80.0, 75.0, 200 / 3, 50.0])
    assert result.bp == pytest.approx(math.exp(1 - 6 / 5))
    assert (result.sys_len, result.ref_len) == (5, 6)
    geometric_mean = (0.8 * 0.75 * (2 / 3) * 0.5) ** 0.25
    assert result.score == pytest.approx(100 * math.exp(1 - 6 / 5) * geometric_mean)


def test_perfect_and_disjoint_corpora():
    assert corpus_bleu(REFS, REFS).score == pytest.approx(100.0)
    assert corpus_bleu(["x y z w v"], ["a b c d e"]).score == 0.0


def test_misaligned_or_missing_references_are_refused():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty corpus"):
        corpus_bleu([], [])
    with pytest.raises(ValueError, match="sentence 1 has no reference"):
        corpus_bleu(["a", "b"], [["a"], []])


# ------------------------------------------------------------------------------------------------ BLEU-1..4 on tokens
def test_corpus_bleu_tokens_equals_sacrebleu_per_order():
    hyps = [h.split() for h in HYPS]
    refs = [[a.split(), b.split()] for a, b in zip(REFS, REFS_2)]
    scores = corpus_bleu_tokens(hyps, refs)
    assert list(scores) == ["bleu_1", "bleu_2", "bleu_3", "bleu_4"]
    for n in range(1, 5):
        expected = sacrebleu.BLEU(tokenize="none", max_ngram_order=n).corpus_score(HYPS, [REFS, REFS_2]).score
        assert scores[f"bleu_{n}"] == pytest.approx(expected)
    assert scores["bleu_1"] >= scores["bleu_2"] >= scores["bleu_3"] >= scores["bleu_4"]


def test_corpus_bleu_tokens_by_hand_with_five_references():
    """Caption "a dog runs on grass" against 5 references; only the 3rd shares n-grams, the closest length is 5."""
    hyp = ["a", "dog", "runs", "on", "grass"]
    refs = [["the", "cat"], ["a", "bird", "flies"], ["a", "dog", "runs", "in", "the", "park"],
            ["two", "men", "talk", "loudly", "today", "here"], ["something", "else", "entirely", "x", "y"]]
    scores = corpus_bleu_tokens([hyp], [refs], max_n=2)
    # p_1: a dog runs = 3/5 (on, grass unmatched); p_2: "a dog", "dog runs" = 2/4; ref length 5 (closest): BP = 1.
    assert scores["bleu_1"] == pytest.approx(100 * 3 / 5)
    assert scores["bleu_2"] == pytest.approx(100 * math.sqrt(3 / 5 * 2 / 4))


def test_smoothing_only_matters_where_an_order_has_no_match():
    """The caption figures before the task layer came from unsmoothed sacreBLEU; ``corpus_bleu_tokens`` uses its
    default "exp" smoothing, which changes only an n-gram order without a single match.  So on any corpus where
    every order matches (a 1,000-image test set always does) both give the same BLEU-1..4, and the older Flickr8k
    figure stands; where an order has no match, unsmoothed BLEU is 0 and the smoothed one is not."""
    hyps = [h.split() for h in HYPS]
    refs = [[a.split(), b.split()] for a, b in zip(REFS, REFS_2)]
    smoothed = corpus_bleu_tokens(hyps, refs)
    for n in range(1, 5):
        plain = sacrebleu.BLEU(tokenize="none", max_ngram_order=n, smooth_method="none").corpus_score(HYPS,
                                                                                                  [REFS, REFS_2])
        assert min(plain.counts[:n]) > 0 and smoothed[f"bleu_{n}"] == pytest.approx(plain.score)
    no_trigram = corpus_bleu_tokens([["a", "dog", "x", "runs"]], [[["a", "dog", "runs", "fast"]]], max_n=3)
    plain = sacrebleu.BLEU(tokenize="none", max_ngram_order=3, smooth_method="none").corpus_score(
        ["a dog x runs"], [["a dog runs fast"]])
    assert plain.score == 0 and no_trigram["bleu_3"] > 0


def test_tokens_with_characters_13a_would_split_are_kept_whole():
    assert corpus_bleu_tokens([["don't", "stop"]], [[["don't", "stop"]]], max_n=2)["bleu_2"] == pytest.approx(100)
    assert corpus_bleu_tokens([["dont", "stop"]], [[["don't", "stop"]]], max_n=1)["bleu_1"] == pytest.approx(50)


# ------------------------------------------------------------------------------------------------ d2l sentence BLEU
def d2l_bleu(pred_seq: str, label_seq: str, k: int) -> float:
    """d2l's ``bleu`` (d2l book, "Sequence-to-Sequence Learning"), transcribed as the readable twin."""
    pred_tokens, label_tokens = pred_seq.split(" "), label_seq.split(" ")
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    score = math.exp(min(0, 1 - len_label / len_pred))
    for n in range(1, k + 1):
        num_matches, label_subs = 0, collections.defaultdict(int)
        for i in range(len_label - n + 1):
            label_subs[" ".join(label_tokens[i: i + n])] += 1
        for i in range(len_pred - n + 1):
            if label_subs[" ".join(pred_tokens[i: i + n])] > 0:
                num_matches += 1
                label_subs[" ".join(pred_tokens[i: i + n])] -= 1
        score *= math.pow(num_matches / (len_pred - n + 1), math.pow(0.5, n))
    return score


def test_seed_worked_example():
    """Seed 001 (d2l slides, "BLEU"): label A B C D E F, prediction A B B C D -> p_n = 4/5, 3/4, 1/3, 0."""
    pred, label = "A B B C D".split(), "A B C D E F".split()
    assert [ngram_precision(pred, label, n) for n in (1, 2, 3, 4)] == pytest.approx([4 / 5, 3 / 4, 1 / 3, 0.0])
    assert sentence_bleu_d2l(pred, label, k=4) == 0.0  # p_4 = 0 zeroes the product
    brevity = math.exp(1 - 6 / 5)  # len_label 6 > len_pred 5
    expected_k3 = brevity * (4 / 5) ** (1 / 2) * (3 / 4) ** (1 / 4) * (1 / 3) ** (1 / 8)
    assert sentence_bleu_d2l(pred, label, k=3) == pytest.approx(expected_k3)


@pytest.mark.parametrize("prediction, label, expected", [
    ("va !", "va !", 1.000),
    ("j'ai perdu .", "j'ai perdu .", 1.000),
    ("il est riche .", "il est calme .", 0.658),
    ("je suis en retard ?", "je suis chez moi .", 0.447),
    ("va <unk> !", "va !", 0.000),
])
def test_d2l_book_examples(prediction, label, expected):
    """The printed outputs of the d2l book's seq2seq section (k=2, three decimals)."""
    assert round(sentence_bleu_d2l(prediction.split(), label.split(), k=2), 3) == expected


def test_sentence_bleu_d2l_equals_the_d2l_loop_on_random_sentences():
    rng = random.Random(0)
    for _ in range(300):
        k = rng.randint(1, 4)
        pred = [rng.choice("abcd") for _ in range(rng.randint(k, 9))]
        label = [rng.choice("abcd") for _ in range(rng.randint(1, 9))]
        assert sentence_bleu_d2l(pred, label, k) == pytest.approx(d2l_bleu(" ".join(pred), " ".join(label), k))


def test_sentence_bleu_d2l_where_d2l_divides_by_zero():
    assert sentence_bleu_d2l([], ["a", "b"], k=2) == 0.0
    assert sentence_bleu_d2l(["a"], ["a"], k=2) == 0.0  # no bigram in the prediction
    assert sentence_bleu_d2l(["a"], ["a"], k=1) == 1.0
    with pytest.raises(ValueError):
        sentence_bleu_d2l(["a"], ["a"], k=0)


# ------------------------------------------------------------------------------------------------ seqlab bleu
@pytest.fixture
def files(tmp_path):
    for name, lines in (("hyp", HYPS), ("ref", REFS), ("ref2", REFS_2), ("short", REFS[:3])):
        (tmp_path / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return tmp_path


def test_bleu_command_prints_the_score_and_signature(files, capsys):
    assert main(["bleu", str(files / "hyp"), str(files / "ref")]) == 0
    expected = sacrebleu.corpus_bleu(HYPS, [REFS])
    out = capsys.readouterr().out.strip()
    assert out == f"{expected} nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{sacrebleu.__version__}"


def test_bleu_command_json_multiple_references_and_options(files, capsys):
    argv = ["bleu", str(files / "hyp"), str(files / "ref"), str(files / "ref2"), "--lowercase", "--tokenize", "intl",
            "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    expected = sacrebleu.corpus_bleu(HYPS, [REFS, REFS_2], lowercase=True, tokenize="intl")
    assert result["bleu"] == round(expected.score, 2)
    assert result["sentences"] == 4 and result["sys_len"] == expected.sys_len
    assert result["signature"].startswith("nrefs:2|case:lc|eff:no|tok:intl")


def test_bleu_command_named_options(files, capsys):
    assert main(["bleu", "--hyp", str(files / "hyp"), "--ref", str(files / "ref")]) == 0
    assert f"BLEU = {sacrebleu.corpus_bleu(HYPS, [REFS]).score:.2f} " in capsys.readouterr().out


def test_bleu_command_reads_hypotheses_from_stdin(files, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(line + "\r\n" for line in HYPS)))
    assert main(["bleu", "-", str(files / "ref")]) == 0
    assert f"BLEU = {sacrebleu.corpus_bleu(HYPS, [REFS]).score:.2f} " in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("one line\n"))
    assert main(["bleu", "-", str(files / "ref")]) == 2
    assert capsys.readouterr().err == f"seqlab: error: line counts differ: - has 1 lines, {files / 'ref'} has 4\n"


def test_bleu_command_line_count_mismatch_is_one_line_naming_files_and_counts(files, capsys):
    assert main(["bleu", str(files / "hyp"), str(files / "ref"), str(files / "short")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"seqlab: error: line counts differ: {files / 'hyp'} has 4 lines, "
                            f"{files / 'short'} has 3\n")


def test_bleu_command_missing_files(files, capsys):
    assert main(["bleu", str(files / "hyp")]) == 2
    assert "at least one reference file" in capsys.readouterr().err
    assert main(["bleu", str(files / "hyp"), str(files / "nope")]) == 2
    assert capsys.readouterr().err == f"seqlab: error: {files / 'nope'}: no such file\n"
