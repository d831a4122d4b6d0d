"""seqlab.models.rnn_seq2seq: learning (copy and reversal overfit to 100 %), step == forward for every way of
using attention, reorder, padding invariance, source reversal, the decoder's initial state, tying, config errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqlab.errors import ConfigError
from seqlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig, reverse_within_lengths
from seqlab.nn.attention import ATTENTION_KINDS

VOCAB, BOS, EOS = 10, 1, 2  # ids 3..9 are "words"


def _model(seed: int = 0, **options) -> RNNSeq2Seq:
    defaults = dict(embedding_size=16, hidden_size=32, num_layers=1, dropout=0.0)
    torch.manual_seed(seed)
    return RNNSeq2Seq(RNNSeq2SeqConfig(**{**defaults, **options}), VOCAB, VOCAB)


def _task(reverse: bool, size: int = 12, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Copy (or reverse) sentences of 2..5 words: src (N, 5), src_mask, tgt_in (N, 6), tgt_out (N, 6), tgt_mask."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 6, (size,), generator=generator)
    src = torch.zeros(size, 5, dtype=torch.long)
    tgt_in = torch.zeros(size, 6, dtype=torch.long)
    tgt_out = torch.zeros(size, 6, dtype=torch.long)
    for row, length in enumerate(lengths.tolist()):
        words = torch.randint(3, VOCAB, (length,), generator=generator)
        src[row, :length] = words
        target = words.flip(0) if reverse else words
        tgt_in[row, :length + 1] = torch.cat([torch.tensor([BOS]), target])
        tgt_out[row, :length + 1] = torch.cat([target, torch.tensor([EOS])])
    return src, src != 0, tgt_in, tgt_out, tgt_in != 0


def _token_accuracy_after_training(model: RNNSeq2Seq, task: tuple[torch.Tensor, ...], steps: int) -> float:
    src, src_mask, tgt_in, tgt_out, tgt_mask = task
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = F.cross_entropy(model(src, src_mask, tgt_in)[tgt_mask], tgt_out[tgt_mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predictions = _greedy(model, src, src_mask, steps=tgt_in.size(1))
    return (predictions[tgt_mask] == tgt_out[tgt_mask]).float().mean().item()


def _greedy(model: RNNSeq2Seq, src: torch.Tensor, src_mask: torch.Tensor, steps: int) -> torch.Tensor:
    """Free-running greedy decoding through the step interface (harder than teacher-forced accuracy)."""
    state = model.init_state(model.encode(src, src_mask), src_mask)
    tokens, outputs = torch.full((src.size(0),), BOS), []
    for _ in range(steps):
        log_probs, state = model.step(tokens, state)
        tokens = log_probs.argmax(-1)
        outputs.append(tokens)
    return torch.stack(outputs, dim=1)


def _stepped_log_probs(model: RNNSeq2Seq, src, src_mask, tgt_in) -> torch.Tensor:
    state = model.init_state(model.encode(src, src_mask), src_mask)
    log_probs = []
    for t in range(tgt_in.size(1)):
        step_log_probs, state = model.step(tgt_in[:, t], state)
        log_probs.append(step_log_probs)
    return torch.stack(log_probs, dim=1)


# ------------------------------------------------------------------------------------------------ learning
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_overfits_copy_without_attention(cell):
    assert _token_accuracy_after_training(_model(cell=cell), _task(reverse=False), steps=120) == 1.0


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_overfits_reversal_with_each_attention(kind):
    model = _model(attention=kind, attention_heads=4 if kind == "multihead" else 1, feed_context=False)
    assert _token_accuracy_after_training(model, _task(reverse=True), steps=120) == 1.0


def test_overfits_with_bidirectional_lstm_encoder_and_bridge():
    model = _model(cell="lstm", bidirectional=True, init_decoder="bridge", num_layers=2)
    assert _token_accuracy_after_training(model, _task(reverse=False), steps=120) == 1.0


def test_overfits_copy_with_reversed_source():
    model = _model(reverse_source=True)
    assert _token_accuracy_after_training(model, _task(reverse=False), steps=120) == 1.0


# ------------------------------------------------------------------------------------- step == forward
STEP_CASES = {
    "gru-none-context": dict(num_layers=2),
    "lstm-none-no-context": dict(cell="lstm", num_layers=2, feed_context=False, init_decoder="zero"),
    "gru-output": dict(attention="general", num_layers=2),
    "lstm-input-feeding": dict(cell="lstm", attention="additive", attention_use="input_feeding", num_layers=2),
    "gru-next-layer": dict(attention="multihead", attention_heads=4, attention_use="next_layer", num_layers=3),
    "lstm-next-layer-bi": dict(cell="lstm", attention="key_value", attention_use="next_layer", num_layers=2,
                               bidirectional=True, reverse_source=True),
}


@pytest.mark.parametrize("case", list(STEP_CASES))
@torch.no_grad()
def test_step_gives_the_forward_log_probs(case):
    model = _model(**STEP_CASES[case]).eval()
    src, src_mask, tgt_in, _, tgt_mask = _task(reverse=True, size=4)
    forward = torch.log_softmax(model(src, src_mask, tgt_in), dim=-1)
    stepped = _stepped_log_probs(model, src, src_mask, tgt_in)
    torch.testing.assert_close(stepped[tgt_mask], forward[tgt_mask], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", ["lstm-input-feeding", "gru-next-layer", "gru-none-context"])
@torch.no_grad()
def test_reorder_then_step_equals_step_then_reorder(case):
    model = _model(**STEP_CASES[case]).eval()
    src, src_mask, tgt_in, _, _ = _task(reverse=True, size=3)
    state = model.init_state(model.encode(src, src_mask), src_mask)
    _, state = model.step(tgt_in[:, 0], state)
    index = torch.tensor([1, 1, 0, 2, 0])  # permute, duplicate, expand 3 -> 5 rows (a beam)
    log_probs, next_state = model.step(tgt_in[index, 1], state.reorder(index))
    reference_log_probs, reference_state = model.step(tgt_in[:, 1], state)
    torch.testing.assert_close(log_probs, reference_log_probs[index])
    torch.testing.assert_close(next_state.hidden, reference_state.reorder(index).hidden)
    if next_state.attention is not None:
        torch.testing.assert_close(next_state.attention, reference_state.attention[index])


@pytest.mark.parametrize("case", ["lstm-next-layer-bi", "lstm-input-feeding", "gru-none-context"])
@torch.no_grad()
def test_a_sentence_alone_equals_it_in_a_padded_batch(case):
    model = _model(**STEP_CASES[case]).eval()
    src, src_mask, tgt_in, _, tgt_mask = _task(reverse=True, size=4)
    logits = model(src, src_mask, tgt_in)
    for row in range(4):
        src_length, tgt_length = int(src_mask[row].sum()), int(tgt_mask[row].sum())
        alone = model(src[row:row + 1, :src_length], src_mask[row:row + 1, :src_length],
                      tgt_in[row:row + 1, :tgt_length])
        torch.testing.assert_close(logits[row, :tgt_length], alone[0], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_state_keeps_the_last_attention_weights_for_plots():
    model = _model(attention="additive").eval()
    src, src_mask, tgt_in, _, _ = _task(reverse=True, size=3)
    state = model.init_state(model.encode(src, src_mask), src_mask)
    assert state.attention is None
    _, state = model.step(tgt_in[:, 0], state)
    assert state.attention.shape == src.shape and torch.all(state.attention[~src_mask] == 0)
    torch.testing.assert_close(state.attention.sum(-1), torch.ones(3))


@torch.no_grad()
def test_an_empty_source_decodes_without_nan():
    model = _model(attention="dot").eval()
    src = torch.tensor([[3, 4, 0], [0, 0, 0]])
    log_probs = _stepped_log_probs(model, src, src != 0, torch.tensor([[BOS, 5], [BOS, 6]]))
    assert torch.isfinite(log_probs).all()


# ----------------------------------------------------------------------------------------------- encoder
def test_reverse_within_lengths_reverses_real_positions_only():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    assert reverse_within_lengths(x, torch.tensor([3, 2])).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]
    x3 = torch.arange(8.0).view(2, 2, 2)  # trailing feature dims move with their position
    assert reverse_within_lengths(x3, torch.tensor([2, 1])).tolist() == [[[2, 3], [0, 1]], [[4, 5], [6, 7]]]


@torch.no_grad()
def test_reverse_source_reads_each_sentence_backwards():
    """The encoder's final state equals a plain encoder's on hand-reversed sentences; outputs stay in order."""
    model = _model(reverse_source=True).eval()
    src, src_mask, *_ = _task(reverse=False, size=4)
    memory = model.encode(src, src_mask)
    model.config.reverse_source = False  # the same weights, reading the hand-reversed source forwards
    lengths = src_mask.sum(1)
    reversed_src = torch.stack([torch.cat([row[:n].flip(0), row[n:]]) for row, n in zip(src, lengths)])
    plain = model.encode(reversed_src, src_mask)
    torch.testing.assert_close(memory.hidden, plain.hidden)
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(memory.outputs[row, :n], plain.outputs[row, :n].flip(0))


@torch.no_grad()
def test_decoder_initial_state_per_init_decoder():
    src, src_mask, *_ = _task(reverse=False, size=3)
    last = _model(num_layers=2, init_decoder="last").eval()
    memory = last.encode(src, src_mask)
    state = last.init_state(memory, src_mask)
    torch.testing.assert_close(state.hidden, memory.hidden)  # layer l starts where encoder layer l ended
    torch.testing.assert_close(state.context, memory.hidden[-1])  # c: the top layer's final state (d2l)
    zero = _model(cell="lstm", num_layers=2, init_decoder="zero").eval()
    state = zero.init_state(zero.encode(src, src_mask), src_mask)
    assert torch.all(state.hidden == 0) and torch.all(state.cell == 0)
    bridge = _model(cell="lstm", num_layers=2, bidirectional=True, init_decoder="bridge").eval()
    memory = bridge.encode(src, src_mask)
    state = bridge.init_state(memory, src_mask)
    assert state.hidden.shape == state.cell.shape == (2, 3, 32) and state.context.shape == (3, 64)
    # Layer 1's bridge input: both directions of encoder layer 1 (indices 2, 3 of the (L*dirs, B, H) layout).
    expected = torch.tanh(bridge.bridge_hidden(torch.cat([memory.hidden[2], memory.hidden[3]], dim=-1)))
    torch.testing.assert_close(state.hidden[1], expected)


def test_tied_embeddings_are_one_tensor_with_or_without_a_projection():
    for hidden_size in (16, 32):  # 16 = embedding size: no projection needed
        model = _model(tie_embeddings=True, hidden_size=hidden_size)
        assert model.output.weight is model.tgt_embedding.weight
        assert (model.projection is None) == (hidden_size == 16)
        untied = sum(p.numel() for p in _model(hidden_size=hidden_size).parameters())
        tied = sum(p.numel() for p in model.parameters())
        projection_size = 0 if hidden_size == 16 else hidden_size * 16 + 16  # Linear(H, E)
        assert untied - tied == VOCAB * hidden_size - projection_size  # the (V, H) output matrix is gone
        src, src_mask, tgt_in, *_ = _task(reverse=False, size=2)
        model(src, src_mask, tgt_in).sum().backward()  # one tensor gets both gradients
        assert model.tgt_embedding.weight.grad is model.output.weight.grad


@pytest.mark.parametrize("options, key", [
    (dict(cell="elman"), "cell"), (dict(hidden_size=0), "hidden_size"), (dict(dropout=1.0), "dropout"),
    (dict(attention="cosine"), "attention"), (dict(attention_use="everywhere"), "attention_use"),
    (dict(init_decoder="random"), "init_decoder"), (dict(init="he"), "init"),
    (dict(attention="dot", bidirectional=True), "attention"),
    (dict(attention="multihead", hidden_size=30, attention_heads=4), "attention_heads"),
    (dict(attention="general", attention_use="next_layer", num_layers=1), "attention_use"),
])
def test_config_errors_name_the_key(options, key):
    with pytest.raises(ConfigError, match=f"^{key}: "):
        RNNSeq2SeqConfig(**options)
