"""The decoding protocol (seqlab/contracts.py) over every model that generates but is not an encoder-decoder: the
RNN and Transformer language models and the image captioner.  Search drives them all through ``init_state`` /
``step`` / ``state.reorder``; here each is held to its own teacher-forced ``forward``, to reorder, to
distributions that sum to one, and to a weights round trip (the encoder-decoders: test_models.py).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch

from seqlab.contracts import StepModel

VOCAB, BOS = 17, 1
Decoder = tuple[torch.nn.Module, Callable[[int], Any], Callable[[torch.Tensor], torch.Tensor]]


def rnn_lm(cell: str) -> Callable[[], Decoder]:
    def build() -> Decoder:
        from seqlab.models.rnn_lm import RNNLM, RNNLMConfig

        model = RNNLM(RNNLMConfig(cell=cell, embedding_size=8, hidden_size=16, num_layers=2), VOCAB).eval()
        return model, lambda b: model.init_state(b), lambda tokens: model(tokens)[0]
    return build


def transformer_lm() -> Decoder:
    from seqlab.models.transformer import TransformerConfig, TransformerLM

    config = TransformerConfig(d_model=16, num_heads=2, ffn_size=32, num_decoder_layers=2, dropout=0.0)
    model = TransformerLM(config, VOCAB).eval()
    return model, lambda b: model.init_state(b), lambda tokens: model(tokens, tokens != 0)


def captioner(attention: bool) -> Callable[[], Decoder]:
    def build() -> Decoder:
        from seqlab.models.captioner import Captioner, CaptionerConfig
        from seqlab.nn.cnn import CNNConfig

        config = CaptionerConfig(cnn=CNNConfig(architecture="vgg", channels=[4, 8]), cell="gru", embedding_size=8,
                                 hidden_size=16, attention=attention, attention_size=8, dropout=0.0)
        model = Captioner(config, VOCAB).eval()
        images = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))

        def init_state(batch_size: int) -> Any:
            return model.init_state(model.encode(images[:batch_size]))

        return model, init_state, lambda tokens: model(images[:tokens.size(0)], tokens)
    return build


DECODERS = {"rnn-lm-lstm": rnn_lm("lstm"), "rnn-lm-gru": rnn_lm("gru"), "transformer-lm": transformer_lm,
            "captioner": captioner(False), "captioner-attention": captioner(True)}


@pytest.fixture(params=list(DECODERS))
def decoder(request) -> Decoder:
    torch.manual_seed(0)
    return DECODERS[request.param]()


def tokens() -> torch.Tensor:
    """(3, 5) token ids, <bos> first, no padding."""
    ids = torch.randint(3, VOCAB, (3, 5), generator=torch.Generator().manual_seed(1))
    ids[:, 0] = BOS
    return ids


@torch.no_grad()
def test_step_equals_teacher_forcing_and_sums_to_one(decoder):
    model, init_state, forced = decoder
    assert isinstance(model, StepModel)
    ids, state, stepped = tokens(), init_state(3), []
    for t in range(ids.size(1)):
        log_probs, state = model.step(ids[:, t], state)
        stepped.append(log_probs)
    stepped = torch.stack(stepped, dim=1)  # (B, T, V)
    torch.testing.assert_close(stepped.exp().sum(-1), torch.ones(3, 5))
    torch.testing.assert_close(stepped, torch.log_softmax(forced(ids).float(), -1), rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_reorder_picks_rows(decoder):
    model, init_state, _ = decoder
    ids = tokens()
    _, state = model.step(ids[:, 0], init_state(3))
    reference, _ = model.step(ids[:, 1], state)
    index = torch.tensor([2, 2, 0, 1, 0])  # permute, duplicate and expand 3 -> 5 rows
    log_probs, _ = model.step(ids[index, 1], state.reorder(index))
    torch.testing.assert_close(log_probs, reference[index], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_weights_round_trip(decoder, tmp_path):
    model, _, forced = decoder
    torch.save(model.state_dict(), tmp_path / "model.pt")
    before = forced(tokens())
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    assert not torch.allclose(forced(tokens()), before)
    model.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert torch.equal(forced(tokens()), before)
