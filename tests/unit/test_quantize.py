"""int8 inference (seqlab.quantize) against its readable reference, the fp32 model.

Tolerances, measured on the tiny trained Transformer of ``tests/conftest.py`` (d_model 64, where 8-bit rounding
weighs more than at d_model 256): at the tokens fp32 greedy search chose, |log p_int8 - log p_fp32| averages
0.03 (largest 0.5); held here at mean < 0.1, largest < 1.5.  Greedy outputs: 53/60 identical; held at >= 75 %.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqlab.commands import evaluate, generate, score, translate
from seqlab.decoding import DecodeConfig
from seqlab.errors import ConfigError
from seqlab.models.build import build_lm, build_seq2seq
from seqlab.models.rnn_seq2seq import RNNSeq2SeqConfig
from seqlab.models.transformer import TransformerConfig
from seqlab.quantize import Int8Linear, is_quantized, quantize_int8
from seqlab.tasks import load_model_dir
from seqlab.tasks.language_model import LMObjective
from seqlab.tasks.translation import Translator, pad_sources
from seqlab.data.streams import LMBatch
from tests.conftest import check_one_line_error, invoke


def test_int8_linear_is_close_to_the_fp32_linear():
    torch.manual_seed(0)
    linear = nn.Linear(256, 1024)
    x = torch.randn(50, 7, 256)
    with torch.no_grad():
        reference, quantized = linear(x), Int8Linear.from_linear(linear)(x)
    assert quantized.shape == reference.shape and quantized.dtype == torch.float32
    # 8-bit weights (per row) x 7-bit activations: a few per cent of the output's range
    assert float((quantized - reference).abs().max()) < 0.03 * float(reference.abs().max())


def test_quantize_swaps_every_linear_and_keeps_the_tied_embedding_fp32():
    torch.manual_seed(0)
    config = TransformerConfig(d_model=32, num_heads=2, ffn_size=64, num_encoder_layers=1, num_decoder_layers=1,
                               share_embeddings=True)
    model = build_seq2seq("transformer", config, 40, 40).eval()
    table = model.src_embedding.embedding.weight.detach().clone()
    quantize_int8(model)
    assert is_quantized(model) and not any(isinstance(m, nn.Linear) for m in model.modules())
    assert isinstance(model.decoder.output, Int8Linear)
    assert torch.equal(model.src_embedding.embedding.weight, table)  # the look-up table is untouched


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
def test_quantized_models_still_decode_and_score(architecture):
    """Every model family steps and scores with int8 linear layers (RNN cells stay fp32)."""
    torch.manual_seed(0)
    options = (TransformerConfig(d_model=32, num_heads=2, ffn_size=64, num_encoder_layers=1, num_decoder_layers=1)
               if architecture == "transformer" else
               RNNSeq2SeqConfig(cell="gru", embedding_size=16, hidden_size=32, attention="additive"))
    model = build_seq2seq(architecture, options, 30, 30).eval()
    src = torch.randint(4, 30, (3, 6))
    mask = torch.ones(3, 6, dtype=torch.bool)
    tgt = torch.randint(4, 30, (3, 5))
    with torch.no_grad():
        reference = torch.log_softmax(model(src, mask, tgt), -1)
        quantize_int8(model)
        quantized = torch.log_softmax(model(src, mask, tgt), -1)
        log_probs, _ = model.step(tgt[:, 0], model.init_state(model.encode(src, mask), mask))
    assert quantized.shape == reference.shape and log_probs.shape == (3, 30)
    assert float((quantized - reference).abs().max()) < 0.1  # random weights: near-uniform distributions


def test_an_int8_language_model_takes_the_unfused_loss():
    """The LM loss fuses the output projection when it is an nn.Linear; an int8 one is run as it is."""
    torch.manual_seed(0)
    model = build_lm("transformer", TransformerConfig(d_model=32, num_heads=2, ffn_size=64, num_decoder_layers=1), 30)
    inputs = torch.randint(4, 30, (2, 6))
    batch = LMBatch(inputs, torch.randint(4, 30, (2, 6)), True)
    with torch.no_grad():
        reference, count = LMObjective().loss(model.eval(), batch)
        quantized, _ = LMObjective().loss(quantize_int8(model), batch)
    assert count == 12 and abs(float(quantized) - float(reference)) < 0.05 * float(reference)


def _greedy_texts(loaded, sources: list[str]) -> list[str]:
    decode = DecodeConfig(strategy="greedy", max_len=30)
    return [t.text for t in Translator(loaded.model, loaded.preprocessing, decode).translate(sources)]


def test_int8_log_probs_and_greedy_outputs_agree_with_fp32(tiny_transformer):
    fp32, int8 = load_model_dir(tiny_transformer), load_model_dir(tiny_transformer, quantize="int8")
    assert is_quantized(int8.model) and not is_quantized(fp32.model)
    sources = (tiny_transformer.parent / "valid.en").read_text(encoding="utf-8").splitlines()
    ours, theirs = _greedy_texts(fp32, sources), _greedy_texts(int8, sources)
    assert sum(a == b for a, b in zip(ours, theirs)) >= 0.75 * len(sources)
    pre = fp32.preprocessing
    src_ids, src_mask = pad_sources([pre.encode_src(s) for s in sources], torch.device("cpu"))
    tgt_in, tgt_mask = pad_sources([[pre.tgt_vocab.bos_id, *pre.tgt_ids(t).tolist()] for t in ours],
                                   torch.device("cpu"))
    tgt_out, _ = pad_sources([[*pre.tgt_ids(t).tolist(), pre.tgt_vocab.eos_id] for t in ours], torch.device("cpu"))
    with torch.no_grad():
        picked = [torch.log_softmax(m.model(src_ids, src_mask, tgt_in), -1).gather(2, tgt_out[:, :, None])[:, :, 0]
                  for m in (fp32, int8)]
    difference = (picked[0] - picked[1])[tgt_mask].abs()
    assert float(difference.mean()) < 0.1 and float(difference.max()) < 1.5


def test_quantize_int8_on_the_commands(tiny_transformer, tmp_path, capsys):
    source = tiny_transformer.parent / "valid.en"
    code, out, err = invoke(translate, [str(tiny_transformer), "-i", str(source), "--quantize", "int8"], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == len(source.read_text(encoding="utf-8").splitlines())
    code, out, err = invoke(score, [str(tiny_transformer), "--src", str(source), "--tgt",
                                    str(tiny_transformer.parent / "valid.fr"), "--quantize", "int8"], capsys)
    assert code == 0 and '"log_prob"' in out, err
    code, out, err = invoke(evaluate, [str(tiny_transformer), "--quantize", "int8", "--json"], capsys)
    assert code == 0 and '"bleu"' in out, err


@pytest.mark.parametrize("module", [translate, evaluate, generate, score])
def test_a_bad_quantize_value_is_a_one_line_error(module, tiny_transformer, capsys):
    code, _, err = invoke(module, [str(tiny_transformer), "--quantize", "int4"], capsys)
    check_one_line_error(code, err, "quantize", "int4")


def test_int8_off_the_cpu_or_in_bfloat16_is_refused(tiny_transformer):
    with pytest.raises(ConfigError, match="CPU only"):
        load_model_dir(tiny_transformer, device="meta", quantize="int8")
    with pytest.raises(ConfigError, match="float32"):
        load_model_dir(tiny_transformer, dtype="bfloat16", quantize="int8")
