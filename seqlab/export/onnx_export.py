"""``--format onnx``: the encoder and one cached decoder step as two ONNX graphs, for ONNX Runtime.

    encoder.onnx       src_ids (B, S) int64, src_mask (B, S) bool
                       -> memory_keys, memory_values (L, B, H, S, Dh): every decoder layer's cross-attention K/V
    decoder_step.onnx  tokens (B,) int64, position (1,) int64, past_keys, past_values (L, B, H, t, Dh),
                       memory_keys, memory_values, src_mask
                       -> log_probs (B, V), keys, values (L, B, H, t+1, Dh): the cache with this step appended

plus ``seqlab_onnx.json`` (ids of <bos>/<eos>, sizes) and the sentencepiece models.  The search stays outside the
graphs: ``OnnxRuntimeModel`` wraps the two sessions in seqlab's decoding interface (encode / init_state / step /
reorder), so seqlab's own greedy and beam searches drive ONNX Runtime, and the tests compare it with seqlab.

``DecoderStep`` is the step written out for export: one position through seqlab's own layers, its K/V
concatenated to the cache (``torch.cat``: an exported graph has no in-place buffer like ``KVCache``).  Both
graphs use the padded (not the packed) layout, whose shapes do not depend on the data.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seqlab.contracts import TensorState
from seqlab.nn.transformer import attention_reference, merge_heads, padding_to_attention_mask, split_heads
from seqlab.run_dir import LoadedModel

OPSET = 18


class Encoder(nn.Module):
    """src_ids (B, S), src_mask (B, S) -> memory_keys, memory_values (L, B, H, S, Dh)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src_ids: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        memory = self.model.encode(src_ids, src_mask)  # (B, S, D)
        keys, values = zip(*self.model.decoder.project_memory(memory))
        return torch.stack(keys), torch.stack(values)


class DecoderStep(nn.Module):
    """One decoding step over an explicit cache (shapes in the module docstring)."""

    def __init__(self, model):
        super().__init__()
        self.decoder = model.decoder
        embedding = self.decoder.embedding
        codes = embedding.position_codes(embedding.max_positions)
        self.register_buffer("positions", torch.zeros(embedding.max_positions, embedding.d_model)
                             if codes is None else codes.detach().clone(), persistent=False)

    def forward(self, tokens, position, past_keys, past_values, memory_keys, memory_values, src_mask):
        embedding = self.decoder.embedding
        x = embedding.embedding(tokens[:, None]) * embedding.scale + self.positions[position][:, None]  # (B, 1, D)
        mask = padding_to_attention_mask(src_mask)  # (B, 1, 1, S)
        keys, values = [], []
        for index, layer in enumerate(self.decoder.layers):
            def attend_self(h, index=index, layer=layer):
                attention = layer.self_attention
                q, k, v = (split_heads(part, attention.num_heads) for part in attention.qkv(h).chunk(3, dim=-1))
                k = torch.cat([past_keys[index], k], dim=2)  # (B, H, t+1, Dh)
                v = torch.cat([past_values[index], v], dim=2)
                keys.append(k)
                values.append(v)
                return attention.out(merge_heads(attention_reference(q, k, v)))

            x = layer.self_attention_block(x, attend_self)
            x = layer.cross_attention_block(x, lambda h, index=index, layer=layer: layer.cross_attention(
                h, (memory_keys[index], memory_values[index]), mask))
            x = layer.feed_forward_block(x, layer.feed_forward)
        logits = self.decoder.output(self.decoder.final_norm(x)[:, 0])  # (B, V)
        return torch.log_softmax(logits.float(), dim=-1), torch.stack(keys), torch.stack(values)


def write(loaded: LoadedModel, out: Path, quantization: str | None = None) -> None:
    model = copy.deepcopy(loaded.model).eval()
    model.config.remove_padding = False  # the padded layout: shapes that do not depend on the data
    config, vocab = model.config, loaded.preprocessing.tgt_vocab
    layers, heads, head_dim = config.num_decoder_layers, config.num_heads, config.d_model // config.num_heads
    src_ids = torch.tensor([[5, 6, 7, 3], [5, 6, 3, 0]])
    src_mask = src_ids != 0
    past = torch.zeros(layers, 2, heads, 3, head_dim)
    memory = torch.zeros(layers, 2, heads, 4, head_dim)
    batch, source, step = "batch", "source_length", "past_length"
    # The TorchScript exporter (dynamo=False): it traces seqlab's layers as they are.  Its warnings name the
    # Python branches it froze (the decoding-step attention path, the sinusoid table's length check): both
    # take the same side for every input the graphs accept.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder(model), (src_ids, src_mask), str(out / "encoder.onnx"), dynamo=False,
                          opset_version=OPSET, input_names=["src_ids", "src_mask"],
                          output_names=["memory_keys", "memory_values"],
                          dynamic_axes={"src_ids": {0: batch, 1: source}, "src_mask": {0: batch, 1: source},
                                        "memory_keys": {1: batch, 3: source}, "memory_values": {1: batch, 3: source}})
        torch.onnx.export(DecoderStep(model), (torch.tensor([2, 2]), torch.tensor([3]), past, past, memory, memory,
                                               src_mask), str(out / "decoder_step.onnx"), dynamo=False,
                          opset_version=OPSET,
                          input_names=["tokens", "position", "past_keys", "past_values", "memory_keys",
                                       "memory_values", "src_mask"],
                          output_names=["log_probs", "keys", "values"],
                          dynamic_axes={"tokens": {0: batch}, "past_keys": {1: batch, 3: step},
                                        "past_values": {1: batch, 3: step}, "memory_keys": {1: batch, 3: source},
                                        "memory_values": {1: batch, 3: source}, "src_mask": {0: batch, 1: source},
                                        "log_probs": {0: batch}, "keys": {1: batch}, "values": {1: batch}})
    info = {"bos_id": vocab.bos_id, "eos_id": vocab.eos_id, "pad_id": vocab.pad_id, "vocab_size": len(vocab),
            "num_decoder_layers": layers, "num_heads": heads, "head_dim": head_dim,
            "max_positions": config.max_positions}
    (out / "seqlab_onnx.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    pre = loaded.preprocessing
    for name, tokenizer in (("source.spm", pre.src_tokenizer), ("target.spm", pre.tgt_tokenizer)):
        if hasattr(tokenizer, "save_model"):
            tokenizer.save_model(out / name)


# ------------------------------------------------------------------------------------------------ running it
@dataclass
class OnnxState(TensorState):
    """The decoder state between ONNX steps: caches (L, B, H, t, Dh) with the batch on dim 1."""

    past_keys: torch.Tensor
    past_values: torch.Tensor
    memory_keys: torch.Tensor
    memory_values: torch.Tensor
    src_mask: torch.Tensor
    position: int

    batch_dims = {"past_keys": 1, "past_values": 1, "memory_keys": 1, "memory_values": 1}


class OnnxRuntimeModel:
    """An exported directory behind seqlab's decoding interface, so ``seqlab.decoding.search`` drives it."""

    def __init__(self, directory: str | Path, threads: int = 1):
        import onnxruntime

        directory = Path(directory)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.info = json.loads((directory / "seqlab_onnx.json").read_text(encoding="utf-8"))
        self.encoder = onnxruntime.InferenceSession(str(directory / "encoder.onnx"), options,
                                                    providers=["CPUExecutionProvider"])
        self.decoder = onnxruntime.InferenceSession(str(directory / "decoder_step.onnx"), options,
                                                    providers=["CPUExecutionProvider"])

    def encode(self, src_ids: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any]:
        keys, values = self.encoder.run(None, {"src_ids": src_ids.numpy(), "src_mask": src_mask.numpy()})
        return torch.from_numpy(keys), torch.from_numpy(values), src_mask

    def init_state(self, memory, src_mask: torch.Tensor) -> OnnxState:
        keys, values, _ = memory
        layers, batch, heads, _, head_dim = keys.shape
        empty = torch.zeros(layers, batch, heads, 0, head_dim)
        return OnnxState(empty, empty, keys, values, src_mask, 0)

    def step(self, tokens: torch.Tensor, state: OnnxState) -> tuple[torch.Tensor, OnnxState]:
        feeds = {"tokens": tokens.numpy(), "position": np.array([state.position]),
                 "past_keys": state.past_keys.numpy(), "past_values": state.past_values.numpy(),
                 "memory_keys": state.memory_keys.numpy(), "memory_values": state.memory_values.numpy(),
                 "src_mask": state.src_mask.numpy()}
        log_probs, keys, values = self.decoder.run(None, feeds)
        return torch.from_numpy(log_probs), OnnxState(torch.from_numpy(keys), torch.from_numpy(values),
                                                      state.memory_keys, state.memory_values, state.src_mask,
                                                      state.position + 1)
