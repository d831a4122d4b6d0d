"""seqlab.models.classifier + seqlab.tasks.classification: pooling oracles, padding invariance, learnability."""

import random

import pytest
import torch

from seqlab.data.labelled import LabelledExample
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.models.classifier import ClassifierConfig, TextClassifier, build_classifier, masked_pool
from seqlab.tasks.classification import ClassificationObjective, Preprocessing, classification_batches

VOCAB_SIZE = 20


def small_config(**changes) -> ClassifierConfig:
    options = dict(embedding_size=8, hidden_size=8, num_filters=6, num_heads=2, ffn_size=16, dropout=0.0)
    return ClassifierConfig(**{**options, **changes})


def test_masked_pool_against_hand_computed_values():
    states = torch.tensor([[[1.0, -1.0], [3.0, 5.0], [100.0, 100.0]]])  # the last position is padding
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(masked_pool(states, mask, "mean"), torch.tensor([[2.0, 2.0]]))
    torch.testing.assert_close(masked_pool(states, mask, "max"), torch.tensor([[3.0, 5.0]]))
    torch.testing.assert_close(masked_pool(states, mask, "last"), torch.tensor([[3.0, 5.0]]))
    scores = torch.tensor([[0.0, torch.log(torch.tensor(3.0)), 50.0]])  # weights 1/4, 3/4, and 0 for padding
    torch.testing.assert_close(masked_pool(states, mask, "attention", scores), torch.tensor([[2.5, 3.5]]))


ENCODER_POOLINGS = [("lstm", "last"), ("gru", "mean"), ("rnn", "max"), ("lstm", "attention"),
                    ("transformer", "mean"), ("transformer", "last"), ("transformer", "attention"), ("cnn", "max")]


@pytest.mark.parametrize("encoder,pooling", ENCODER_POOLINGS)
def test_logits_do_not_depend_on_padding(encoder, pooling):
    torch.manual_seed(0)
    model = build_classifier(small_config(encoder=encoder, pooling=pooling), VOCAB_SIZE, 3).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9], [4, 11, 0, 0, 0]])
    mask = ids != 0
    batched = model(ids, mask)  # (2, 3)
    alone = model(ids[1:, :2], mask[1:, :2])  # the short sentence without any padding
    more_padding = model(torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], 1),
                         torch.cat([mask, torch.zeros(2, 4, dtype=torch.bool)], 1))
    assert batched.shape == (2, 3)
    torch.testing.assert_close(batched[1:], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched, more_padding, atol=1e-5, rtol=1e-5)


def test_bidirectional_last_state_is_forward_end_and_backward_start():
    """'last' pooling of a biRNN = [forward state after the last token; backward state after the first token]."""
    torch.manual_seed(0)
    model = TextClassifier(small_config(encoder="gru", pooling="last"), VOCAB_SIZE, 2).eval()
    ids = torch.tensor([[3, 4, 5, 0]])
    _, summary = model.encode(ids, ids != 0)
    outputs, _ = model.rnn(model.embedding(ids[:, :3]))  # unpadded: (1, 3, 2H), outputs[..., :H] forward
    expected = torch.cat([outputs[0, 2, :8], outputs[0, 0, 8:]])
    torch.testing.assert_close(summary[0], expected)


def toy_examples(count: int, seed: int) -> list[LabelledExample]:
    """Label = whether "good" or "bad" occurs among filler words: separable, but only by looking at content."""
    rng = random.Random(seed)
    fillers = [f"w{i}" for i in range(12)]
    examples = []
    for _ in range(count):
        label = rng.choice(["pos", "neg"])
        tokens = rng.choices(fillers, k=rng.randint(2, 7))
        tokens.insert(rng.randint(0, len(tokens)), "good" if label == "pos" else "bad")
        examples.append(LabelledExample(tokens, label))
    return examples


@pytest.mark.parametrize("encoder,pooling", [("lstm", "max"), ("gru", "attention"), ("cnn", "max"),
                                             ("transformer", "mean")])
def test_learns_a_separable_toy_task(encoder, pooling):
    torch.manual_seed(0)
    train, test = toy_examples(200, seed=1), toy_examples(100, seed=2)
    vocab = Vocab.build([e.tokens for e in train])
    pre = Preprocessing(vocab, sorted({e.label for e in train}))
    train_batches = classification_batches(train, pre, batch_size=20, seed=0)
    model = build_classifier(small_config(encoder=encoder, pooling=pooling, hidden_size=16), len(vocab), 2)
    task = ClassificationObjective()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(8):
        for batch in train_batches.epoch_batches(epoch):
            loss_sum, count = task.loss(model, batch)
            optimizer.zero_grad()
            (loss_sum / count).backward()
            optimizer.step()
    scores = task.evaluate(model, classification_batches(test, pre, 50, shuffle=False).epoch_batches(0))
    assert scores["accuracy"] > 0.95 and scores["macro_f1"] > 0.95
    assert model.training  # evaluate restores the mode


def test_loss_is_a_sum_over_examples_and_predict_restores_example_order():
    torch.manual_seed(0)
    examples = toy_examples(30, seed=3)
    vocab = Vocab.build([e.tokens for e in examples])
    batches = classification_batches(examples, Preprocessing(vocab, sorted({e.label for e in examples})),
                                     batch_size=7, seed=5).epoch_batches(0)
    model = build_classifier(small_config(encoder="cnn"), len(vocab), 2).eval()
    task = ClassificationObjective()
    batch = batches[0]
    loss_sum, count = task.loss(model, batch)
    mean = torch.nn.functional.cross_entropy(model(batch.ids, batch.mask), batch.labels)
    assert count == batch.labels.numel() == 7
    torch.testing.assert_close(loss_sum, mean * 7)
    predicted = task.predict(model, batches)
    one_by_one = [int(model(torch.tensor([vocab.encode(e.tokens)]), torch.ones(1, len(e.tokens), dtype=torch.bool))
                      .argmax()) for e in examples]
    assert predicted == one_by_one


def test_unknown_test_label_is_a_data_error():
    vocab = Vocab.build([["a"]])
    with pytest.raises(DataError, match="not among"):
        classification_batches([LabelledExample(["a"], "new")], Preprocessing(vocab, ["old"]), 4)


@pytest.mark.parametrize("changes,key", [({"encoder": "mlp"}, "encoder"), ({"pooling": "sum"}, "pooling"),
                                         ({"hidden_size": 0}, "hidden_size"), ({"dropout": -0.1}, "dropout"),
                                         ({"encoder": "transformer", "hidden_size": 10, "num_heads": 4}, "hidden_size"),
                                         ({"init": "zeros"}, "init"), ({"kernel_sizes": ()}, "kernel_sizes")])
def test_config_errors_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=f"^{key}"):
        ClassifierConfig(**changes)


@pytest.mark.parametrize("encoder", ["cnn", "gru"])
def test_embedding_init_range_draws_kim_uniform_vectors_with_a_zero_padding_row(encoder):
    torch.manual_seed(0)
    model = build_classifier(small_config(encoder=encoder, embedding_size=50, embedding_init_range=0.25), 200, 2)
    weight = model.embedding.weight
    assert torch.equal(weight[0], torch.zeros(50))
    assert weight.abs().max() <= 0.25 and weight[1:].abs().max() > 0.24  # uniform, not N(0, 1)
    assert build_classifier(small_config(encoder=encoder, embedding_size=50), 200, 2).embedding.weight.abs().max() > 1
    with pytest.raises(ConfigError, match="^embedding_init_range"):
        small_config(encoder="transformer", embedding_init_range=0.25)
