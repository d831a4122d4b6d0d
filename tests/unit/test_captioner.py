"""seqlab.models.captioner + seqlab.tasks.captioning: teacher forcing equals step-by-step decoding, state
reordering, the image reaches the initial state, and a toy captioning task is learnt end to end."""

import pytest
import torch

from seqlab.data.images import CaptionedImage
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError
from seqlab.models.captioner import Captioner, CaptionerConfig
from seqlab.nn.cnn import CNNConfig
from seqlab.tasks.captioning import CaptioningObjective, caption_batches

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
CAPTIONS = {"red": "a red square", "green": "a green square on grass", "blue": "the blue sky"}


def small_config(**changes) -> CaptionerConfig:
    options = dict(cnn=CNNConfig(architecture="vgg", channels=(8, 16)), embedding_size=12, hidden_size=16,
                   attention_size=8, dropout=0.0)
    return CaptionerConfig(**{**options, **changes})


def colour_image(name: str) -> torch.Tensor:
    """A 16x16 uint8 image of one colour with a little deterministic texture, (3, 16, 16)."""
    colour = name.split("_")[0]
    seed = int(name.split("_")[1])
    noise = torch.randint(-20, 20, (3, 16, 16), generator=torch.Generator().manual_seed(seed))
    return (torch.tensor(COLOURS[colour]).view(3, 1, 1) + noise).clamp(0, 255).to(torch.uint8)


def load_images(names: list[str]) -> torch.Tensor:
    return torch.stack([colour_image(name) for name in names])


def teacher_forcing_equals_steps(model: Captioner, images: torch.Tensor, tgt_in_ids: torch.Tensor) -> None:
    logits = model(images, tgt_in_ids)  # (B, T, V)
    state = model.init_state(model.encode(images, None), None)
    for t in range(tgt_in_ids.size(1)):
        log_probs, state = model.step(tgt_in_ids[:, t], state)
        torch.testing.assert_close(log_probs, logits[:, t].log_softmax(-1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell,attention,layers", [("gru", False, 1), ("lstm", False, 2), ("lstm", True, 1),
                                                   ("gru", True, 2)])
def test_forward_equals_step_by_step(cell, attention, layers):
    torch.manual_seed(0)
    model = Captioner(small_config(cell=cell, attention=attention, num_layers=layers), 11).eval()
    teacher_forcing_equals_steps(model, torch.randn(3, 3, 16, 16), torch.randint(1, 11, (3, 5)))


def test_initial_state_comes_from_the_image():
    torch.manual_seed(0)
    model = Captioner(small_config(cell="lstm", num_layers=2), 11).eval()
    state = model.init_state(model.encode(torch.randn(2, 3, 16, 16)))
    assert state.hidden.shape == (2, 2, 16) and state.cell.shape == (2, 2, 16)  # (L, B, H)
    assert not torch.allclose(state.hidden[:, 0], state.hidden[:, 1])  # two images, two initial states
    with_attention = Captioner(small_config(attention=True), 11).eval()
    memory = with_attention.encode(torch.randn(2, 3, 16, 16))
    assert memory.features.shape == (2, 16, 16)  # (B, N = 4x4 positions, F = 16 channels)


@pytest.mark.parametrize("attention", [False, True])
def test_state_reorder_picks_rows(attention):
    """Reordering then stepping equals stepping then reordering (what beam search relies on)."""
    torch.manual_seed(0)
    model = Captioner(small_config(cell="lstm", attention=attention), 11).eval()
    state = model.init_state(model.encode(torch.randn(2, 3, 16, 16)))
    index = torch.tensor([1, 1, 0])  # expand to 3 rows, as a beam does
    tokens = torch.tensor([4, 4, 5])
    reordered_first, _ = model.step(tokens, state.reorder(index))
    stepped, _ = model.step(tokens[[2, 0]], state)  # row 0 with token 5, row 1 with token 4
    torch.testing.assert_close(reordered_first[[0, 2]], stepped[[1, 0]])


def toy_images(per_colour: int, start: int) -> list[CaptionedImage]:
    return [CaptionedImage(f"{colour}_{start + i}", [CAPTIONS[colour].split()])
            for colour in COLOURS for i in range(per_colour)]


def greedy(model: Captioner, images: torch.Tensor, vocab: Vocab, max_length: int = 8) -> list[list[str]]:
    state = model.init_state(model.encode(images))
    tokens = torch.full((images.size(0),), vocab.bos_id)
    outputs = []
    for _ in range(max_length):
        log_probs, state = model.step(tokens, state)
        tokens = log_probs.argmax(-1)
        outputs.append(tokens)
    return [vocab.decode(row) for row in torch.stack(outputs, 1).tolist()]


@pytest.mark.parametrize("attention", [False, True])
def test_learns_to_caption_coloured_squares(attention):
    torch.manual_seed(0)
    train, test = toy_images(8, start=0), toy_images(2, start=100)
    vocab = Vocab.build([c for item in train for c in item.captions])
    mean, std = (0.5, 0.5, 0.5), (0.3, 0.3, 0.3)
    batches = caption_batches(train, vocab, load_images, mean, std, batch_size=8, seed=0)
    model = Captioner(small_config(cell="gru", attention=attention), len(vocab))
    task = CaptioningObjective()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(15):
        for batch in batches.epoch_batches(epoch):
            loss_sum, count = task.loss(model, batch)
            optimizer.zero_grad()
            (loss_sum / count).backward()
            optimizer.step()
    model.eval()
    test_batches = caption_batches(test, vocab, load_images, mean, std, 6, shuffle=False).epoch_batches(0)
    assert task.evaluate(model, test_batches)["perplexity"] < 1.5
    captions = greedy(model, test_batches[0].images, vocab)
    expected = [test[i].captions[0] for i in test_batches[0].indices.tolist()]
    assert captions == expected


def test_caption_batches_shift_targets_and_count_tokens():
    vocab = Vocab.build([["a", "red", "square"]])
    items = [CaptionedImage("red_0", [["a", "red", "square"], ["a", "square"]])]
    batch = caption_batches(items, vocab, load_images, (0.5,) * 3, (0.25,) * 3, 2, shuffle=False).epoch_batches(0)[0]
    assert batch.images.shape == (2, 3, 16, 16) and batch.images.dtype == torch.float32
    assert batch.tgt_in_ids[:, 0].tolist() == [vocab.bos_id] * 2
    assert batch.tgt_out_ids[0].tolist() == vocab.encode(["a", "red", "square"]) + [vocab.eos_id]
    assert batch.tgt_out_ids[1].tolist() == vocab.encode(["a", "square"]) + [vocab.eos_id, 0]
    assert batch.num_tgt_tokens == 4 + 3  # each caption's words plus its <eos>
    expected_pixel = (colour_image("red_0")[0, 0, 0] / 255 - 0.5) / 0.25
    torch.testing.assert_close(batch.images[0, 0, 0, 0], expected_pixel.float())


@pytest.mark.parametrize("changes,key", [({"cell": "cnn"}, "cell"), ({"hidden_size": 0}, "hidden_size"),
                                         ({"dropout": 1.0}, "dropout"), ({"init": "x"}, "init")])
def test_config_errors_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=f"^{key}"):
        CaptionerConfig(**changes)
    assert CaptionerConfig(cnn={"architecture": "resnet", "channels": [4, 8]}).cnn.channels == (4, 8)  # from YAML
