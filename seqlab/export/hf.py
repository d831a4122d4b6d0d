"""``--format hf``: a Hugging Face ``MarianMTModel`` directory with its ``MarianTokenizer``.

    model = MarianMTModel.from_pretrained(OUT)        # or AutoModelForSeq2SeqLM
    tokenizer = AutoTokenizer.from_pretrained(OUT)    # source.spm, target.spm, vocab.json
    model.generate(**tokenizer(["Ein Mann ."], return_tensors="pt"))

Marian's architecture is seqlab's post-LN Transformer with sinusoidal positions and one tied embedding table, so
the weights copy over one for one (seqlab's fused Q|K|V and K|V projections split into q/k/v), with one catch:
the position table.  Marian does not keep its sinusoid table in the checkpoint: ``from_pretrained`` rebuilds it
(``MarianSinusoidalPositionalEmbedding.create_weight``) with every sine first and every cosine after it,

    Marian  p_t = [sin(t w_0) .. sin(t w_{D/2-1}), cos(t w_0) .. cos(t w_{D/2-1})]
    seqlab  p_t = [sin(t w_0), cos(t w_0), sin(t w_1), cos(t w_1), ...]            (interleaved)

so a copied seqlab table is lost on reload (logits 9.5 apart, measured).  Instead the whole model is written in
permuted coordinates: model dimension j of the export is seqlab's dimension ``PERM[j]`` = 0, 2, 4, .., 1, 3, ..
Every weight that reads the residual stream has its input columns permuted, every one that writes it its output
rows, LayerNorm its gains and biases, the embedding table its columns.  LayerNorm, the residual sums and the
attention heads (which live in the projections' other side) do not care about the order, so the permuted network
computes the same function, and Marian's own table is then exactly seqlab's, permuted.

The generation config carries seqlab's start/end ids (<bos> = 2 starts the decoder, <eos> = 3 ends it).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from seqlab.run_dir import LoadedModel


def write(loaded: LoadedModel, out: Path, quantization: str | None = None) -> None:
    """The model (safetensors), its configs and the tokenizer files, into the directory ``out``."""
    from transformers import GenerationConfig

    marian = marian_from_seqlab(loaded.model, len(loaded.preprocessing.tgt_vocab))
    decode = loaded.config.decode
    marian.generation_config = GenerationConfig(
        decoder_start_token_id=BOS, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, forced_eos_token_id=None,
        max_new_tokens=decode.max_len, num_beams=decode.beam_size if decode.strategy == "beam" else 1)
    marian.save_pretrained(out)
    write_tokenizer(loaded.preprocessing, out)


PAD, BOS, EOS = 0, 2, 3  # seqlab.data.vocab's fixed ids


def residual_permutation(d_model: int) -> torch.Tensor:
    """(D,) PERM: dimension j of the exported model is seqlab's PERM[j] (sines first, then cosines)."""
    return torch.cat([torch.arange(0, d_model, 2), torch.arange(1, d_model, 2)])


def marian_config(config, vocab_size: int):
    """The ``MarianConfig`` of a seqlab ``TransformerConfig`` (post-LN, sinusoidal, tied: checked by the caller)."""
    from transformers import MarianConfig

    return MarianConfig(
        vocab_size=vocab_size, d_model=config.d_model, encoder_layers=config.num_encoder_layers,
        decoder_layers=config.num_decoder_layers, encoder_attention_heads=config.num_heads,
        decoder_attention_heads=config.num_heads, encoder_ffn_dim=config.ffn_size, decoder_ffn_dim=config.ffn_size,
        activation_function=config.activation, max_position_embeddings=config.max_positions, scale_embedding=True,
        share_encoder_decoder_embeddings=True, tie_word_embeddings=True, pad_token_id=PAD, eos_token_id=EOS,
        bos_token_id=BOS, decoder_start_token_id=BOS, forced_eos_token_id=None, dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0)


@torch.no_grad()
def marian_from_seqlab(model, vocab_size: int):
    """A ``MarianMTModel`` (eval mode) computing what ``model`` (a ``TransformerSeq2Seq``) computes."""
    from transformers import MarianMTModel

    marian = MarianMTModel(marian_config(model.config, vocab_size)).eval()
    perm = residual_permutation(model.config.d_model)
    marian.model.shared.weight.copy_(model.src_embedding.embedding.weight[:, perm])
    for ours, theirs in zip(model.encoder_layers, marian.model.encoder.layers):
        _copy_attention(theirs.self_attn, ours.attention.qkv, ours.attention.out, perm)
        _copy_norm(theirs.self_attn_layer_norm, ours.attention_block.norm, perm)
        _copy_feed_forward(theirs, ours.feed_forward, ours.feed_forward_block.norm, perm)
    for ours, theirs in zip(model.decoder.layers, marian.model.decoder.layers):
        _copy_attention(theirs.self_attn, ours.self_attention.qkv, ours.self_attention.out, perm)
        _copy_norm(theirs.self_attn_layer_norm, ours.self_attention_block.norm, perm)
        cross = ours.cross_attention
        fused = torch.nn.Linear(cross.query.in_features, 3 * cross.query.out_features)  # q|k|v, as Marian splits
        fused.weight.copy_(torch.cat([cross.query.weight, cross.key_value.weight]))
        fused.bias.copy_(torch.cat([cross.query.bias, cross.key_value.bias]))
        _copy_attention(theirs.encoder_attn, fused, cross.out, perm)
        _copy_norm(theirs.encoder_attn_layer_norm, ours.cross_attention_block.norm, perm)
        _copy_feed_forward(theirs, ours.feed_forward, ours.feed_forward_block.norm, perm)
    marian.final_logits_bias.zero_()  # seqlab's output projection has no bias
    return marian


def _copy_attention(theirs, qkv: torch.nn.Linear, out: torch.nn.Linear, perm: torch.Tensor) -> None:
    """Fused (3D, D) Q|K|V -> q_proj, k_proj, v_proj, each reading the permuted residual (columns permuted);
    the output projection writes it (rows permuted)."""
    for projection, weight, bias in zip((theirs.q_proj, theirs.k_proj, theirs.v_proj), qkv.weight.chunk(3),
                                        qkv.bias.chunk(3)):
        projection.weight.copy_(weight[:, perm])
        projection.bias.copy_(bias)
    theirs.out_proj.weight.copy_(out.weight[perm])
    theirs.out_proj.bias.copy_(out.bias[perm])


def _copy_norm(theirs: torch.nn.LayerNorm, ours: torch.nn.LayerNorm, perm: torch.Tensor) -> None:
    theirs.weight.copy_(ours.weight[perm])
    theirs.bias.copy_(ours.bias[perm])


def _copy_feed_forward(theirs, feed_forward, norm: torch.nn.LayerNorm, perm: torch.Tensor) -> None:
    first, _, second = feed_forward.net  # D -> F reads the residual, F -> D writes it
    theirs.fc1.weight.copy_(first.weight[:, perm])
    theirs.fc1.bias.copy_(first.bias)
    theirs.fc2.weight.copy_(second.weight[perm])
    theirs.fc2.bias.copy_(second.bias[perm])
    _copy_norm(theirs.final_layer_norm, norm, perm)


def write_tokenizer(pre, out: Path) -> None:
    """What ``MarianTokenizer`` reads: source.spm, target.spm (the sentencepiece models), vocab.json (seqlab's
    joint vocabulary: piece -> id) and tokenizer_config.json naming seqlab's special tokens."""
    pre.src_tokenizer.save_model(out / "source.spm")
    pre.tgt_tokenizer.save_model(out / "target.spm")
    vocab = {token: index for index, token in enumerate(pre.tgt_vocab.tokens)}
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=0), encoding="utf-8")
    config = {"tokenizer_class": "MarianTokenizer", "unk_token": "<unk>", "eos_token": "<eos>",
              "pad_token": "<pad>", "bos_token": "<bos>", "model_max_length": 1024, "separate_vocabs": False}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
