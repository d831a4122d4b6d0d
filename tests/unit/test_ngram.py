"""Count-based n-gram LMs: hand counts on a ten-word corpus, KenLM as the oracle for ARPA scores, PTB anchors.

The ten-word corpus, padded as the model sees it (one ``<s>`` is enough for a bigram model)::

    <s> a b a c </s>      <s> b a b </s>      <s> c a b </s>

bigram counts: <s>a 1, <s>b 1, <s>c 1, ab 3, ba 2, ac 1, ca 1, b</s> 2, c</s> 1;
predicted unigrams: a 4, b 4, c 2, </s> 3 (13 tokens); the vocabulary without <s> is <unk> </s> a b c: |V| = 5.
Continuation counts N1+(. w) (distinct left neighbours): a 3 (<s> b c), b 2, c 2, </s> 2, <unk> 0; sum 9.
"""

import math
import warnings

import numpy as np
import pytest

from seqlab.errors import CheckpointError, ConfigError, DataError
from seqlab.lm.ngram import NGramLM

CORPUS = [["a", "b", "a", "c"], ["b", "a", "b"], ["c", "a", "b"]]
V = 5  # <unk> </s> a b c
ESTIMATORS = [("mle", {}), ("add-k", {"k": 0.5}), ("kn", {}), ("kn", {"discount": 0.75}), ("mkn", {})]


def fit(order, smoothing, sentences=CORPUS, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny corpora fall back to KenLM's discounts; tested on its own below
        return NGramLM.fit(sentences, order, smoothing, **kwargs)


def small_corpus():
    """~300 sentences from a fixed random bigram chain: enough for every discount to be estimated."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    sentences = []
    for _ in range(300):
        length = int(rng.integers(1, 12))
        start = int(rng.integers(0, 30))
        sentences.append([words[(start + int(step)) % 30] for step in np.cumsum(rng.integers(0, 4, length))])
    return sentences


# ---------------------------------------------------------------------------------------------------- hand counts


def test_mle_is_the_seed_ratio_of_counts():
    model = fit(2, "mle")
    assert model.prob("b", ["a"]) == pytest.approx(3 / 4)  # n(a, b) / n(a)
    assert model.prob("</s>", ["b"]) == pytest.approx(2 / 4)
    assert model.prob("a", ["<s>"]) == pytest.approx(1 / 3)
    assert model.prob("c", ["b"]) == 0.0  # unseen after a seen context: MLE gives nothing
    assert math.exp(model.sentence_logprob(["a", "b"])) == pytest.approx(1 / 3 * 3 / 4 * 2 / 4)
    assert fit(1, "mle").prob("a") == pytest.approx(4 / 13)
    assert fit(1, "mle").prob("zzz") == 0.0  # <unk> never seen in training


def test_add_k_and_laplace():
    laplace = fit(2, "add-k", k=1.0)
    assert laplace.prob("b", ["a"]) == pytest.approx((3 + 1) / (4 + V))
    assert laplace.prob("</s>", ["a"]) == pytest.approx(1 / (4 + V))
    assert laplace.prob("zzz", ["a"]) == pytest.approx(1 / (4 + V))  # OOV scored as <unk>
    assert laplace.prob("a", ["<s>"]) == pytest.approx((1 + 1) / (3 + V))
    assert laplace.prob("a", ["zzz"]) == pytest.approx(1 / V)  # unseen context: (0 + k) / (0 + k V)
    assert fit(1, "add-k", k=0.5).prob("a") == pytest.approx((4 + 0.5) / (13 + 0.5 * V))
    assert fit(2, "add-k", k=2.0).prob("a", ["b"]) == pytest.approx((2 + 2) / (4 + 2 * V))


def test_kneser_ney_with_fixed_discount():
    model = fit(2, "kn", discount=0.75)
    gamma_1 = 0.75 * 4 / 9  # four unigram types with a continuation count
    unigram = {w: (c - 0.75) / 9 + gamma_1 / V for w, c in {"a": 3, "b": 2, "c": 2, "</s>": 2}.items()}
    assert model.prob("a") == pytest.approx(unigram["a"])  # continuation count, not the raw 4 / 13
    assert model.prob("zzz") == pytest.approx(gamma_1 / V)  # the uniform floor of the lowest order
    gamma_a = 0.75 * 2 / 4  # context a: ab 3, ac 1
    assert model.prob("b", ["a"]) == pytest.approx((3 - 0.75) / 4 + gamma_a * unigram["b"])
    assert model.prob("</s>", ["a"]) == pytest.approx(gamma_a * unigram["</s>"])
    assert model.prob("a", ["zzz"]) == pytest.approx(unigram["a"])  # unseen context: the unigram alone


def test_kneser_ney_estimates_one_discount_per_order():
    model = fit(2, "kn")
    # bigrams: n1 = 6 (<s>a <s>b <s>c ac ca c</s>), n2 = 2 (ba b</s>): D = n1 / (n1 + 2 n2) = 0.6
    assert model.info["discounts"][1] == pytest.approx([0.6] * 3)


def test_modified_kneser_ney_discounts_and_probabilities():
    with pytest.warns(UserWarning, match="order 1: .*adjusted count 1"):
        model = NGramLM.fit(CORPUS, 2, "mkn")
    # unigram continuation counts 3 2 2 2 hold no 1: D1 undefined, KenLM's fallback 0.5 1 1.5 is used
    assert model.info["discounts"][0] == [0.5, 1.0, 1.5]
    # bigrams: n1 = 6, n2 = 2, n3 = 1, n4 = 0; Y = 6 / 10; D_k = k - (k + 1) Y n_{k+1} / n_k
    y = 6 / (6 + 2 * 2)
    assert model.info["discounts"][1] == pytest.approx([1 - 2 * y * 2 / 6, 2 - 3 * y * 1 / 2, 3 - 4 * y * 0 / 1])
    gamma_1 = (1.5 + 1 + 1 + 1) / 9  # a has count 3 (D3+ = 1.5), b c </s> count 2 (D2 = 1)
    p_a = (3 - 1.5) / 9 + gamma_1 / V
    assert model.prob("a") == pytest.approx(p_a)
    d2 = 2 - 3 * y / 2
    gamma_b = (d2 + d2) / 4  # context b: ba 2, b</s> 2
    assert model.prob("a", ["b"]) == pytest.approx((2 - d2) / 4 + gamma_b * p_a)


def test_discount_fallback_can_be_refused():
    with pytest.raises(DataError, match="order 1: Kneser-Ney discount"):
        NGramLM.fit(CORPUS, 2, "mkn", discount_fallback=False)


def test_only_one_leading_bos_is_stored():
    model = fit(3, "kn")
    assert "<s> a b" in model.ngrams(3) and "<s> <s> a" not in model.ngrams(3)
    assert sorted(model.ngrams(2)) == sorted(["<s> a", "<s> b", "<s> c", "a b", "b a", "a c", "c a", "b </s>",
                                              "c </s>"])


# ----------------------------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("smoothing, kwargs", ESTIMATORS)
def test_every_seen_context_sums_to_one(smoothing, kwargs):
    model = fit(3, smoothing, **kwargs)
    contexts = [[], ["zzz"]] + [name.split() for n in (1, 2) for name in model.ngrams(n)]
    for context in contexts:
        distribution = model.distribution(context)
        assert distribution.sum() == pytest.approx(1.0), context
        assert distribution[model.index["<s>"]] == 0.0


@pytest.mark.parametrize("smoothing, kwargs", ESTIMATORS)
def test_distribution_rows_agree_with_backoff_lookup(smoothing, kwargs):
    """Two implementations of back-off: whole rows (generation) and per-token lookup (scoring)."""
    model = fit(3, smoothing, **kwargs)
    for context in (["<s>"], ["<s>", "a"], ["a", "b"], ["c", "zzz"], ["b"]):
        row = model.distribution(context)
        for word in ("<unk>", "</s>", "a", "b", "c"):
            assert row[model.index[word]] == pytest.approx(model.prob(word, context), abs=1e-12)


@pytest.mark.parametrize("smoothing", ["mle", "add-k", "kn", "mkn"])
def test_uniform_model_perplexity_is_vocabulary_size(smoothing):
    # every one of <unk> a b c </s> occurs equally often: a unigram model is uniform over the 5 of them
    model = fit(1, smoothing, sentences=[["a", "b", "c", "<unk>"]] * 4)
    result = model.perplexity([["b", "a"], ["zzz", "c", "a", "a"]])
    assert result.perplexity == pytest.approx(5.0)
    assert (result.tokens, result.sentences, result.oovs) == (8, 2, 1)  # words + one </s> per sentence


def test_perplexity_counts_end_of_sentence_and_oovs():
    model = fit(2, "kn")
    test = [["a", "b"], ["c", "zzz", "a"]]
    result = model.perplexity(test)
    total = sum(model.sentence_log10prob(sentence) for sentence in test)
    assert result.log10_prob == pytest.approx(total)
    assert result.perplexity == pytest.approx(10 ** (-total / 7))
    assert result.oovs == 1
    without = total - model.log10prob("zzz", ["c"])
    assert result.perplexity_without_oovs == pytest.approx(10 ** (-without / 6))
    assert model.logprob("b", ["a"]) == pytest.approx(model.log10prob("b", ["a"]) * math.log(10))


# ----------------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("smoothing, kwargs", ESTIMATORS)
def test_arpa_round_trip_keeps_sentence_scores(tmp_path, smoothing, kwargs):
    model = fit(3, smoothing, sentences=small_corpus(), **kwargs)
    model.to_arpa(tmp_path / "model.arpa")
    loaded = NGramLM.from_arpa(tmp_path / "model.arpa")
    for sentence in small_corpus()[:40] + [["w1", "zzz", "w2"], ["w29", "w0", "w7"], []]:
        np.testing.assert_allclose(loaded.sentence_log10prob(sentence), model.sentence_log10prob(sentence),
                                   atol=1e-6)


def test_arpa_header_and_errors(tmp_path):
    model = fit(2, "kn")
    model.to_arpa(tmp_path / "model.arpa")
    text = (tmp_path / "model.arpa").read_text()
    assert text.startswith("\\data\\\nngram 1=6\nngram 2=9\n")
    assert "\n-99.0000000\t<s>\t" in text  # <s> is never predicted; it has a back-off weight as a context
    (tmp_path / "bad.arpa").write_text(text.replace("ngram 2=9", "ngram 2=10"))
    with pytest.raises(DataError, match="bad.arpa: .*declares"):
        NGramLM.from_arpa(tmp_path / "bad.arpa")
    (tmp_path / "orphan.arpa").write_text(text.replace("\ta b\n", "\ta zzz\n"))
    with pytest.raises(DataError, match="'zzz' is not among the 1-grams"):
        NGramLM.from_arpa(tmp_path / "orphan.arpa")
    with pytest.raises(DataError, match="no such ARPA file"):
        NGramLM.from_arpa(tmp_path / "missing.arpa")


@pytest.mark.parametrize("smoothing", ["add-k", "kn", "mkn"])
def test_kenlm_scores_our_arpa_files_the_same(tmp_path, smoothing):
    kenlm = pytest.importorskip("kenlm")
    sentences = small_corpus()
    model = fit(4, smoothing, sentences=sentences)
    model.to_arpa(tmp_path / "model.arpa")
    oracle = kenlm.Model(str(tmp_path / "model.arpa"))
    for sentence in sentences[:50] + [["w3", "oov", "w4", "w5"], ["w5", "w4", "w3"], ["oov"]]:
        assert model.sentence_log10prob(sentence) == pytest.approx(
            oracle.score(" ".join(sentence), bos=True, eos=True), abs=1e-4)


def test_save_load_round_trip(tmp_path):
    model = fit(3, "mkn", sentences=small_corpus())
    model.save(tmp_path / "model.npz")
    loaded = NGramLM.load(tmp_path / "model.npz")
    assert (loaded.vocab, loaded.smoothing, loaded.info) == (model.vocab, model.smoothing, model.info)
    for sentence in small_corpus()[:20]:
        assert loaded.sentence_log10prob(sentence) == model.sentence_log10prob(sentence)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="junk.npz: not a seqlab n-gram model"):
        NGramLM.load(tmp_path / "junk.npz")
    with pytest.raises(CheckpointError, match="no such"):
        NGramLM.load(tmp_path / "missing.npz")


# ----------------------------------------------------------------------------------------------- generation


def test_generation_is_seeded_and_follows_seen_bigrams():
    model = fit(2, "mle")  # MLE gives unseen bigrams zero probability: every sampled step must be a seen one
    seen = {tuple(name.split()) for name in model.ngrams(2)}
    samples = [model.generate(["b"], max_len=30, seed=seed) for seed in range(20)]
    assert samples[3] == model.generate(["b"], max_len=30, seed=3)
    assert len({tuple(s) for s in samples}) > 1
    for words in samples:
        assert words[0] == "b"
        padded = ["<s>", *words, "</s>"] if len(words) < 30 else ["<s>", *words]
        assert all(pair in seen for pair in zip(padded, padded[1:])), words
    with pytest.raises(ConfigError, match="temperature"):
        model.generate([], temperature=0.0)


def test_low_temperature_picks_the_most_likely_word():
    model = fit(2, "kn", sentences=[["x", "y"]] * 20 + [["x", "z"]])
    assert all(model.generate(["x"], max_len=2, seed=s, temperature=0.05) == ["x", "y"] for s in range(10))


# ----------------------------------------------------------------------------------------------- errors, CLI


def test_bad_arguments_raise_config_errors():
    for kwargs, key in [({"order": 0}, "order"), ({"smoothing": "good-turing"}, "smoothing"),
                        ({"smoothing": "add-k", "k": 0.0}, "k"), ({"discount": 1.5}, "discount"),
                        ({"min_count": 0}, "min_count")]:
        with pytest.raises(ConfigError, match=f"^{key}: "):
            NGramLM.fit(CORPUS, **kwargs)
    with pytest.raises(DataError, match="no training sentences"):
        NGramLM.fit([], 2, "kn")


def test_min_count_maps_rare_words_to_unk():
    model = fit(2, "kn", min_count=3)
    assert "c" not in model.index  # c occurs twice
    assert model.prob("c", ["a"]) == model.prob("<unk>", ["a"]) > model.prob("zzz", ["b"])


def test_cli_builds_evaluates_saves_and_generates(tmp_path, capsys):
    from seqlab.cli import main

    train = tmp_path / "train.txt"
    train.write_text("\n".join(" ".join(s) for s in small_corpus()) + "\n")
    assert main(["lm", "ngram", "--order", "3", "--smoothing", "kn", "--train", str(train), "--eval", str(train),
                 "--arpa", str(tmp_path / "m.arpa"), "--save", str(tmp_path / "m.npz")]) == 0
    built = capsys.readouterr().out
    expected = fit(3, "kn", sentences=small_corpus()).perplexity(small_corpus()).perplexity
    assert f"perplexity {expected:.2f}" in built and "0 OOVs" in built
    for model_file in ("m.npz", "m.arpa"):
        assert main(["lm", "ngram", "--load", str(tmp_path / model_file), "--eval", str(train)]) == 0
        assert f"perplexity {expected:.2f}" in capsys.readouterr().out
    assert main(["lm", "ngram", "--load", str(tmp_path / "m.npz"), "--generate", "--prefix", "w1 w2",
                 "--num", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert len(lines) == 2 and all(line.startswith("w1 w2") for line in lines)


def test_cli_errors_are_one_line(tmp_path, capsys):
    from seqlab.cli import main

    assert main(["lm", "ngram", "--train", str(tmp_path / "missing.txt"), "--eval", "x"]) == 2
    assert capsys.readouterr().err.strip() == f"seqlab: error: {tmp_path / 'missing.txt'}: no such file"
    assert main(["lm", "ngram", "--eval", "x"]) == 2
    assert "exactly one of --train FILE or --load MODEL" in capsys.readouterr().err
    (tmp_path / "tiny.txt").write_text("a b\n")
    assert main(["lm", "ngram", "--train", str(tmp_path / "tiny.txt"), "--no-discount-fallback",
                 "--eval", str(tmp_path / "tiny.txt")]) == 2
    assert capsys.readouterr().err.startswith("seqlab: error: order 1: Kneser-Ney discount")


# ----------------------------------------------------------------------------------------------- real data


def test_ptb_trigram_modified_kneser_ney_matches_kenlm_anchor():
    from seqlab.data.corpora import read_lines
    from seqlab.data.datasets import resolve_data_dir

    root = resolve_data_dir() / "ptb"
    if not (root / "ptb.train.txt.gz").is_file():
        pytest.skip(f"PTB not found under {root}")
    train = [line.split() for line in read_lines(root / "ptb.train.txt.gz")]
    test = [line.split() for line in read_lines(root / "ptb.test.txt.gz")]
    result = NGramLM.fit(train, 3, "mkn").perplexity(test)
    assert (result.tokens, result.oovs) == (82430, 0)
    assert result.perplexity == pytest.approx(148.28, abs=0.01)  # KenLM lmplz -o 3 on the same files
