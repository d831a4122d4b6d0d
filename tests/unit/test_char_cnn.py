"""seqlab.nn.char_cnn and the classifier's character features: shapes, padding invariance, the gradient reaching the
character table, the task's spellings and their round trip, and a word-unseen learnability test."""

import random

import pytest
import torch

from seqlab.data.labelled import LabelledExample
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError
from seqlab.models.classifier import ClassifierConfig, build_classifier
from seqlab.nn.char_cnn import CharCNN
from seqlab.tasks.classification import ClassificationObjective, Preprocessing, classification_batches


def spelled(words: list[list[int]], width: int) -> torch.Tensor:
    """One sentence's words as character ids, zero-padded to ``width`` characters: (1, S, width)."""
    return torch.tensor([[chars + [0] * (width - len(chars)) for chars in words]])


def test_shape_and_padding_words_are_zero():
    torch.manual_seed(0)
    encoder = CharCNN(num_chars=10, char_embedding_size=4, num_filters=6, width=3)
    char_ids = torch.tensor([[[4, 5, 6, 0], [7, 0, 0, 0], [0, 0, 0, 0]]])  # the third word is sentence padding
    vectors = encoder(char_ids)
    assert vectors.shape == (1, 3, 6)
    assert torch.equal(vectors[0, 2], torch.zeros(6))
    assert vectors[0, :2].abs().sum() > 0


@pytest.mark.parametrize("width", [2, 3, 5])
def test_a_word_vector_does_not_depend_on_character_padding(width):
    """Every window touching a real character is kept, the others never win the max - whatever the padding."""
    torch.manual_seed(1)
    encoder = CharCNN(num_chars=12, char_embedding_size=5, num_filters=7, width=width)
    with torch.no_grad():
        encoder.convolution.bias.fill_(0.5)  # windows over padding alone would score relu(0.5) > 0 if kept
    words = [[3, 4, 5, 6, 7], [8], [9, 10]]
    tight = encoder(spelled(words, 5))
    loose = encoder(spelled(words, 11))
    torch.testing.assert_close(tight, loose)
    alone = encoder(spelled([[8]], 1))  # a one-letter word narrower than the filter still has windows
    torch.testing.assert_close(tight[0, 1], alone[0, 0])


def test_the_gradient_reaches_the_character_table_only_where_characters_were_read():
    torch.manual_seed(2)
    encoder = CharCNN(num_chars=10, char_embedding_size=4, num_filters=6, width=3)
    encoder(torch.tensor([[[4, 5, 0], [6, 0, 0]]])).sum().backward()
    grad = encoder.embedding.weight.grad
    assert all(grad[c].abs().sum() > 0 for c in (4, 5, 6))
    assert torch.equal(grad[[0, 1, 2, 3, 7, 8, 9]], torch.zeros(7, 4))  # padding and unread characters


@pytest.mark.parametrize("encoder", ["cnn", "gru"])
def test_words_unknown_to_the_vocabulary_differ_by_spelling(encoder):
    """Both sentences are one <unk> word for the word embedding: only their spellings can tell them apart."""
    torch.manual_seed(3)
    config = ClassifierConfig(encoder=encoder, embedding_size=6, hidden_size=6, num_filters=5, dropout=0.0,
                              char_embedding_size=4, char_filters=5)
    model = build_classifier(config, vocab_size=8, num_classes=2, char_vocab_size=10).eval()
    ids, mask = torch.tensor([[1], [1]]), torch.tensor([[True], [True]])
    logits = model(ids, mask, torch.tensor([[[4, 5]], [[6, 7]]]))
    assert not torch.allclose(logits[0], logits[1])
    with pytest.raises(ValueError, match="char_ids"):
        model(ids, mask)


def test_config_checks_for_characters():
    with pytest.raises(ConfigError, match="^char_embedding_size"):
        ClassifierConfig(encoder="transformer", hidden_size=8, num_heads=2, char_embedding_size=4)
    with pytest.raises(ConfigError, match="^char_embedding_size"):
        ClassifierConfig(char_embedding_size=-1)
    with pytest.raises(ConfigError, match="^char_embedding_size"):
        build_classifier(ClassifierConfig(char_embedding_size=4), 8, 2)  # no character vocabulary given
    assert not ClassifierConfig().uses_chars  # off by default: old recipes and checkpoints are unchanged


def test_batches_carry_spellings_aligned_with_the_words_and_preprocessing_round_trips():
    chars = Vocab.build([list("abcdef")])
    pre = Preprocessing(Vocab.build([["ab", "cde"]]), ["neg", "pos"], lowercase=True, chars=chars)
    examples = [LabelledExample(["AB", "zzz", "f"], "pos"), LabelledExample(["cde"], "neg")]
    batch = classification_batches(examples, pre, batch_size=2, shuffle=False).epoch_batches(0)[0]
    assert batch.char_ids.shape == (*batch.ids.shape, 3)  # (B, S, W): W = the longest word, "zzz"
    row = batch.indices.tolist().index(0)
    assert batch.char_ids[row, 0].tolist() == chars.encode(["a", "b"]) + [0]  # lowercased, like the words
    assert batch.char_ids[row, 1].tolist() == [1, 1, 1]  # unseen characters are <unk>, not padding
    assert batch.ids[row, 1] == 1  # ... while the word itself is <unk>
    assert torch.equal(batch.char_ids[1 - row, 1:], torch.zeros(2, 3, dtype=torch.long))  # padding words
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    assert Preprocessing.from_dict(Preprocessing(pre.vocab, pre.labels).to_dict()).chars is None


def suffix_examples(count: int, seed: int) -> list[LabelledExample]:
    """One random made-up word per sentence; the label is its last letter (a "-z" word or a "-q" word)."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        label = rng.choice("zq")
        stem = "".join(rng.choice("abcdefgh") for _ in range(rng.randint(3, 6)))
        examples.append(LabelledExample([stem + label], label))
    return examples


@pytest.mark.parametrize("char_embedding_size,expect_learned", [(8, True), (0, False)])
def test_spelling_classifies_words_never_seen_in_training(char_embedding_size, expect_learned):
    """Test words are all new: at the word level every one is <unk>, so only the character CNN can learn."""
    torch.manual_seed(4)
    train, test = suffix_examples(300, seed=5), suffix_examples(100, seed=6)
    train_words = {e.tokens[0] for e in train}
    test = [e for e in test if e.tokens[0] not in train_words]
    chars = Vocab.build([list(e.tokens[0]) for e in train]) if char_embedding_size else None
    pre = Preprocessing(Vocab.build([e.tokens for e in train]), ["q", "z"], chars=chars)
    config = ClassifierConfig(encoder="cnn", embedding_size=8, num_filters=8, kernel_sizes=(1,), dropout=0.0,
                              char_embedding_size=char_embedding_size, char_filters=8, char_width=2)
    model = build_classifier(config, len(pre.vocab), 2, len(chars) if chars else 0)
    optimizer, task = torch.optim.Adam(model.parameters(), lr=0.02), ClassificationObjective()
    batches = classification_batches(train, pre, batch_size=30, seed=0)
    for epoch in range(15):
        for batch in batches.epoch_batches(epoch):
            optimizer.zero_grad()
            loss, count = task.loss(model, batch)
            (loss / count).backward()
            optimizer.step()
    accuracy = task.evaluate(model, classification_batches(test, pre, 50, shuffle=False).epoch_batches(0))["accuracy"]
    assert len(test) > 50
    if expect_learned:
        assert accuracy > 0.95
    else:
        assert accuracy < 0.75  # one <unk> vector for every test word: one answer for all of them


def test_a_trained_character_model_directory_reloads_and_classifies_unseen_words(tmp_path):
    """The hand-over: the character vocabulary is saved with the model and rebuilt on load, so a reloaded model
    spells words (even ones unseen in training) as the trained one did."""
    from seqlab.tasks import build_config, load_model_dir, train
    from seqlab.tasks.classification import classify

    rows = [f"{'pos' if i % 2 else 'neg'}\t{'goodly' if i % 2 else 'badly'} film {i}" for i in range(24)]
    path = tmp_path / "labelled.tsv"
    path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    config = build_config({
        "task": "classification", "model_dir": str(tmp_path / "model"),
        "data": {"dataset": "files", "train_file": str(path), "valid_file": str(path), "batch_size": 4},
        "model": {"encoder": "cnn", "embedding_size": 8, "num_filters": 4, "dropout": 0.0,
                  "char_embedding_size": 4, "char_filters": 6},
        "train": {"max_steps": 6, "num_threads": 1, "progress": False, "tensorboard": False, "device": "cpu"}})
    train(config)
    loaded = load_model_dir(tmp_path / "model")
    assert loaded.preprocessing.chars is not None and "y" in loaded.preprocessing.chars
    assert loaded.model.chars is not None
    sentences = [["goodly", "film"], ["neverseen", "zyx"], []]
    labels = classify(loaded, sentences, batch_size=2)
    assert len(labels) == 3 and set(labels) <= {"neg", "pos"}
    batch = classification_batches([LabelledExample(sentences[1], "neg")], loaded.preprocessing, 1,
                                   shuffle=False).epoch_batches(0)[0]
    assert batch.ids.tolist() == [[1, 1]]  # both words are <unk> ...
    assert (batch.char_ids[0] != 0).sum(1).tolist() == [9, 3]  # ... but every character of them is spelled
