"""seqlab.models.tagger + seqlab.tasks.tagging: the CRF against enumeration, padding invariance, chunk F1 by hand,
learnability with and without the CRF."""

import itertools
import random

import pytest
import torch

from seqlab.data.tagged import TaggedSentence
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.models.tagger import CRF, Tagger, TaggerConfig
from seqlab.metrics.classification import chunk_f1, chunks
from seqlab.tasks.tagging import (Preprocessing, TaggingObjective, collate_inputs, split_pos_tokens,
                                  tagging_batches)


def brute_force(crf: CRF, emissions: torch.Tensor, length: int) -> tuple[torch.Tensor, list[int]]:
    """log Z and the best path of one sentence by scoring all T^n tag sequences."""
    num_tags = emissions.size(-1)
    mask = torch.ones(1, length, dtype=torch.bool)
    paths = list(itertools.product(range(num_tags), repeat=length))
    scores = torch.stack([crf.score(emissions[None, :length], torch.tensor([p]), mask)[0] for p in paths])
    return torch.logsumexp(scores, 0), list(paths[int(scores.argmax())])


def test_crf_forward_algorithm_and_viterbi_equal_enumeration():
    torch.manual_seed(0)
    crf = CRF(3)
    torch.nn.init.normal_(crf.transitions)
    torch.nn.init.normal_(crf.start)
    torch.nn.init.normal_(crf.end)
    emissions = torch.randn(3, 4, 3)
    lengths = [4, 2, 1]
    mask = torch.arange(4)[None, :] < torch.tensor(lengths)[:, None]
    log_z = crf.log_partition(emissions, mask)
    best = crf.viterbi(emissions, mask)
    for row, length in enumerate(lengths):
        expected_log_z, expected_best = brute_force(crf, emissions[row], length)
        torch.testing.assert_close(log_z[row], expected_log_z)
        assert best[row] == expected_best


def test_crf_probabilities_sum_to_one():
    torch.manual_seed(1)
    crf = CRF(2)
    emissions = torch.randn(1, 3, 2)
    mask = torch.ones(1, 3, dtype=torch.bool)
    paths = torch.tensor(list(itertools.product(range(2), repeat=3)))  # (8, 3)
    log_probs = crf.log_likelihood(emissions.expand(8, 3, 2), paths, mask.expand(8, 3))
    torch.testing.assert_close(log_probs.exp().sum(), torch.tensor(1.0))


@pytest.mark.parametrize("crf", [False, True])
def test_outputs_do_not_depend_on_padding(crf):
    torch.manual_seed(0)
    model = Tagger(TaggerConfig(embedding_size=6, hidden_size=5, dropout=0.0, crf=crf), 15, 4).eval()
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    mask = ids != 0
    torch.testing.assert_close(model(ids, mask)[1, :2], model(ids[1:, :2], mask[1:, :2])[0])
    tags = torch.tensor([[1, 2, 3, 0], [2, 1, 0, 0]])
    together = model.loss_sum(ids, mask, tags)
    apart = model.loss_sum(ids[:1], mask[:1], tags[:1]) + model.loss_sum(ids[1:, :2], mask[1:, :2], tags[1:, :2])
    torch.testing.assert_close(together, apart)
    assert [len(p) for p in model.decode(ids, mask)] == [4, 2]


def test_chunks_and_f1_follow_conlleval_by_hand():
    assert chunks(["B-NP", "I-NP", "O", "B-VP"]) == {("NP", 0, 2), ("VP", 3, 4)}
    assert chunks(["I-NP", "I-NP", "B-NP", "I-VP"]) == {("NP", 0, 2), ("NP", 2, 3), ("VP", 3, 4)}  # I- can start
    gold = [["B-NP", "I-NP", "O", "B-VP"], ["B-PP", "B-NP"]]  # 4 gold chunks
    predicted = [["B-NP", "I-NP", "O", "B-NP"], ["B-PP", "B-NP"]]  # 4 predicted, 3 correct
    assert chunk_f1(gold, predicted) == pytest.approx(2 * 3 / (4 + 4))
    assert chunk_f1(gold, gold) == 1.0


def toy_sentences(count: int, seed: int) -> list[TaggedSentence]:
    """Chunks: a determiner 'the'/'a' starts an NP that runs over the following nouns; verbs are their own VP.
    The tag of a noun depends on its left context (B-NP after a verb, I-NP after 'the' or a noun)."""
    rng = random.Random(seed)
    nouns, verbs = [f"n{i}" for i in range(6)], [f"v{i}" for i in range(4)]
    sentences = []
    for _ in range(count):
        words, tags = [], []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.5:
                words.append(rng.choice(["the", "a"]))
                tags.append("B-NP")
            else:
                words.append(rng.choice(verbs))
                tags.append("B-VP")
            if tags[-1] == "B-NP" or rng.random() < 0.5:
                for position in range(rng.randint(1, 2)):
                    words.append(rng.choice(nouns))
                    tags.append("I-NP" if tags[-1] in ("B-NP", "I-NP") else "B-NP")
        sentences.append(TaggedSentence(words, ["X"] * len(words), tags))
    return sentences


@pytest.mark.parametrize("crf", [False, True])
def test_learns_a_toy_chunking_task(crf):
    torch.manual_seed(0)
    tag_names = ["O", "B-NP", "I-NP", "B-VP", "I-VP"]
    train, test = toy_sentences(150, seed=1), toy_sentences(60, seed=2)
    vocab = Vocab.build([s.words for s in train])
    model = Tagger(TaggerConfig(embedding_size=16, hidden_size=16, dropout=0.0, crf=crf), len(vocab), len(tag_names))
    task = TaggingObjective(tag_names)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    pre = Preprocessing(vocab, tag_names)
    batches = tagging_batches(train, pre, batch_size=15, seed=0)
    for epoch in range(10):
        for batch in batches.epoch_batches(epoch):
            loss_sum, count = task.loss(model, batch)
            optimizer.zero_grad()
            (loss_sum / count).backward()
            optimizer.step()
    scores = task.evaluate(model, tagging_batches(test, pre, 30, shuffle=False).epoch_batches(0))
    assert scores["accuracy"] > 0.97 and scores["chunk_f1"] > 0.95


def test_loss_count_is_the_number_of_tokens_and_unknown_tags_fail():
    vocab = Vocab.build([["a", "b"]])
    sentences = [TaggedSentence(["a", "b"], ["X", "X"], ["B-NP", "I-NP"]), TaggedSentence(["a"], ["X"], ["O"])]
    batch = tagging_batches(sentences, Preprocessing(vocab, ["O", "B-NP", "I-NP"]), 2, shuffle=False).epoch_batches(0)[0]
    model = Tagger(TaggerConfig(embedding_size=4, hidden_size=4), len(vocab), 3)
    assert TaggingObjective(["O", "B-NP", "I-NP"]).loss(model, batch)[1] == 3
    # Batches are length-sorted even without shuffling (less padding); ``indices`` say which sentence is which.
    assert batch.indices.tolist() == [1, 0]
    assert batch.tags.tolist() == [[0, 0], [1, 2]] and batch.mask.tolist() == [[True, False], [True, True]]
    with pytest.raises(DataError, match="I-LST"):
        tagging_batches([TaggedSentence(["a"], ["X"], ["I-LST"])], Preprocessing(vocab, ["O"]), 2)


@pytest.mark.parametrize("changes,key", [({"cell": "tcn"}, "cell"), ({"hidden_size": 0}, "hidden_size"),
                                         ({"dropout": 1.5}, "dropout"), ({"init": "ones"}, "init")])
def test_config_errors_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=f"^{key}"):
        TaggerConfig(**changes)


# ------------------------------------------------------------------------------------------------ optional inputs
def rich_pre(train: list[TaggedSentence]) -> Preprocessing:
    words = [s.words for s in train]
    return Preprocessing(Vocab.build(words), ["O", "B-NP", "I-NP", "B-VP", "I-VP"],
                         chars=Vocab.build(list(w) for s in words for w in s),
                         pos=Vocab.build(s.pos_tags for s in train))


def rich_tagger(pre: Preprocessing, crf: bool = False, **changes) -> Tagger:
    config = TaggerConfig(embedding_size=6, hidden_size=5, dropout=0.0, crf=crf, char_embedding_size=4,
                          char_filters=3, pos_embedding_size=3, **changes)
    return Tagger(config, len(pre.vocab), len(pre.labels), len(pre.chars), len(pre.pos))


@pytest.mark.parametrize("crf", [False, True])
def test_spelling_and_pos_inputs_do_not_depend_on_padding(crf):
    torch.manual_seed(0)
    train = [TaggedSentence(["the", "cats"], ["DT", "NNS"], ["B-NP", "I-NP"]),
             TaggedSentence(["a", "dog", "barked", "loudly"], ["DT", "NN", "VBD", "RB"], ["B-NP", "I-NP", "B-VP", "O"])]
    pre = rich_pre(train)
    model = rich_tagger(pre, crf).eval()
    batch = tagging_batches(train, pre, 2, shuffle=False).epoch_batches(0)[0]
    assert batch.char_ids.shape == (2, 4, 6) and batch.pos_ids.shape == (2, 4)  # "barked", "loudly": 6 letters
    alone = tagging_batches(train[:1], pre, 1, shuffle=False).epoch_batches(0)[0]
    short = batch.indices.tolist().index(0)
    torch.testing.assert_close(model(batch.ids, batch.mask, *batch.extra())[short, :2],
                               model(alone.ids, alone.mask, *alone.extra())[0])
    together = model.loss_sum(batch.ids, batch.mask, batch.tags, *batch.extra())
    apart = sum(model.loss_sum(b.ids, b.mask, b.tags, *b.extra())
                for b in (alone, tagging_batches(train[1:], pre, 1, shuffle=False).epoch_batches(0)[0]))
    torch.testing.assert_close(together, apart)
    with pytest.raises(ValueError, match="char_ids"):
        model(batch.ids, batch.mask)


def test_an_unseen_word_is_spelled_and_the_pos_input_changes_the_output():
    torch.manual_seed(0)
    train = [TaggedSentence(["dogs", "bark"], ["NNS", "VBP"], ["B-NP", "B-VP"])]
    pre = rich_pre(train)
    model = rich_tagger(pre).eval()
    unseen, other = pre.inputs(["barks", "dogs"], ["VBZ", "NNS"]), pre.inputs(["sbark", "dogs"], ["VBZ", "NNS"])
    assert unseen.ids[0] == other.ids[0] == 1  # both <unk> as words ...
    first, second = collate_inputs([unseen]), collate_inputs([other])
    # ... but their spellings differ, so the tagger sees two different words
    assert not torch.allclose(model(first.ids, first.mask, *first.extra()), model(second.ids, second.mask,
                                                                                    *second.extra()))
    swapped = collate_inputs([pre.inputs(["barks", "dogs"], ["NNS", "NNS"])])
    assert not torch.allclose(model(first.ids, first.mask, *first.extra()), model(swapped.ids, swapped.mask,
                                                                                    *swapped.extra()))
    with pytest.raises(DataError, match="word/POS"):
        pre.inputs(["dogs"], None)


def test_word_dropout_trains_unk_and_is_off_in_evaluation():
    torch.manual_seed(0)
    model = Tagger(TaggerConfig(embedding_size=4, hidden_size=4, dropout=0.0, word_dropout=0.5), 10, 3)
    ids = torch.tensor([[4, 5, 6, 7, 8, 9, 4, 5, 0, 0]])
    mask = ids != 0
    model.train()
    embedded = model.embed(ids, mask)
    unk = model.embedding.weight[1]
    replaced = (embedded == unk).all(-1)[0]
    assert 0 < int(replaced.sum()) < 8 and not replaced[8:].any()  # some words, never the padding
    model.eval()
    torch.testing.assert_close(model.embed(ids, mask), model.embedding(ids))


def test_split_pos_tokens_and_its_error():
    assert split_pos_tokens([["the/DT", "1/2/CD"]]) == ([["the", "1/2"]], [["DT", "CD"]])
    with pytest.raises(DataError, match="sentence 2: token 'cat' is not word/POS"):
        split_pos_tokens([["a/DT"], ["cat"]])


@pytest.mark.parametrize("changes,key", [({"char_embedding_size": -1}, "char_embedding_size"),
                                         ({"pos_embedding_size": -2}, "pos_embedding_size"),
                                         ({"word_dropout": 1.0}, "word_dropout"), ({"char_width": 0}, "char_width")])
def test_optional_input_config_errors_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=f"^{key}"):
        TaggerConfig(**changes)
