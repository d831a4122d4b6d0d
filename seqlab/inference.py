"""Using a trained encoder-decoder: load a model directory, translate lines, score a corpus.

A model directory holds ``best.pt`` / ``last.pt`` (self-contained: weights, resolved config, vocabularies and
tokenizers, the sentencepiece model bytes included), ``config.yaml`` and ``train_log.jsonl``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seqlab.config import Config, build_config
from seqlab.data.pipeline import Preprocessing
from seqlab.decoding.beam import beam_search
from seqlab.decoding.config import DecodeConfig
from seqlab.decoding.greedy import greedy_search
from seqlab.decoding.sampling import sample
from seqlab.errors import CheckpointError
from seqlab.contracts import PAD_ID, Seq2SeqBatch
from seqlab.models.build import build_seq2seq
from seqlab.precision import parse_dtype
from seqlab.train.checkpoint import find_checkpoint, load_checkpoint
from seqlab.train.loss import corpus_nll


@dataclass
class LoadedModel:
    model: torch.nn.Module
    preprocessing: Any  # data.pipeline.Preprocessing (translation) or lm.neural.Preprocessing (lm)
    config: Config
    checkpoint: Path


def load_model_dir(model_dir: str | Path, which: str = "best", device: str | torch.device = "cpu",
                   dtype: str | torch.dtype | None = None) -> LoadedModel:
    """Rebuild the model of ``model_dir`` from its checkpoint alone (no data files needed).  ``dtype``
    ("float32" | "bfloat16", or None for the checkpoint's): the weights' dtype for inference (seqlab.precision)."""
    dtype = parse_dtype(dtype)
    path = find_checkpoint(model_dir, which)
    payload = load_checkpoint(path)
    extra = payload.get("extra") or {}
    if "config" not in extra or "preprocessing" not in extra:
        raise CheckpointError(f"{path}: checkpoint lacks its config or vocabularies")
    config = build_config(extra["config"])
    if config.task == "lm":
        from seqlab.lm.neural import Preprocessing as LMPreprocessing
        from seqlab.models.build import build_lm

        preprocessing = LMPreprocessing.from_dict(extra["preprocessing"])
        model = build_lm(config.model.architecture, config.model.options, len(preprocessing.vocab))
    else:
        preprocessing = Preprocessing.from_dict(extra["preprocessing"])
        model = build_seq2seq(config.model.architecture, config.model.options, len(preprocessing.src_vocab),
                              len(preprocessing.tgt_vocab))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the saved config ({str(error).splitlines()[0]})") from None
    model.to(device=device, dtype=dtype).eval()
    return LoadedModel(model, preprocessing, config, path)


@dataclass
class Translation:
    text: str
    tokens: list[str]
    score: float = 0.0
    nbest: list[tuple[str, float]] = field(default_factory=list)
    attention: torch.Tensor | None = None  # (T_out, S_src) weights, when the model has attention
    src_tokens: list[str] = field(default_factory=list)


class Translator:
    """Batched translation of raw lines with any seq2seq model and any search strategy.

    Lines are sorted by length into batches (less padding), then put back in input order.  An empty input line
    gives an empty output line without touching the model.
    """

    def __init__(self, model: torch.nn.Module, preprocessing: Preprocessing, decode: DecodeConfig,
                 device: str | torch.device = "cpu", batch_size: int = 64):
        self.model, self.pre, self.decode_config = model, preprocessing, decode
        self.device, self.batch_size = torch.device(device), batch_size
        self.generator = torch.Generator().manual_seed(decode.seed if decode.seed is not None else 0)

    def translate(self, lines: list[str], return_attention: bool = False) -> list[Translation]:
        encoded = [self.pre.encode_src(line) if line.strip() else None for line in lines]
        results: list[Translation] = [Translation("", []) for _ in lines]
        order = sorted((i for i, ids in enumerate(encoded) if ids is not None), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            for index, translation in zip(chunk, self._translate_batch([encoded[i] for i in chunk],
                                                                        return_attention)):
                translation.src_tokens = self.pre.src_tokenizer.encode(lines[index])
                results[index] = translation
        return results

    @torch.no_grad()
    def _translate_batch(self, sources: list, return_attention: bool) -> list[Translation]:
        src_ids, src_mask = pad_sources(sources, self.device)
        memory = self.model.encode(src_ids, src_mask)
        state = self.model.init_state(memory, src_mask)
        max_len = self._max_len(src_mask.sum(1))
        cfg, vocab = self.decode_config, self.pre.tgt_vocab
        if cfg.strategy == "beam":
            hyps = beam_search(self.model, state, len(sources), vocab.bos_id, vocab.eos_id, cfg, max_len,
                               return_attention=return_attention)
            return [self._from_hypotheses(h) for h in hyps]
        if cfg.strategy == "sample":
            result = sample(self.model, state, len(sources), vocab.bos_id, vocab.eos_id, max_len, cfg.temperature,
                            cfg.top_k, cfg.top_p, self.generator)
        else:
            result = greedy_search(self.model, state, len(sources), vocab.bos_id, vocab.eos_id, max_len,
                                   return_attention=return_attention)
        attention = result.attention if return_attention and result.attention is not None else None
        return [Translation(self.pre.decode_tgt(ids), vocab.decode(ids), float(score),
                            attention=None if attention is None else attention[i])
                for i, (ids, score) in enumerate(zip(result.tokens, result.scores))]

    def _from_hypotheses(self, hypotheses: list) -> Translation:
        best = hypotheses[0]
        vocab = self.pre.tgt_vocab
        return Translation(self.pre.decode_tgt(best.tokens), vocab.decode(best.tokens), float(best.score),
                           nbest=[(self.pre.decode_tgt(h.tokens), float(h.score)) for h in hypotheses],
                           attention=getattr(best, "attention", None))

    def _max_len(self, src_lengths: torch.Tensor) -> int | torch.Tensor:
        cfg = self.decode_config
        if cfg.max_len_ratio > 0:
            return torch.clamp(torch.ceil(src_lengths.float() * cfg.max_len_ratio).long() + 5, max=cfg.max_len)
        return cfg.max_len


def pad_sources(sources: list, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """List of 1-d int arrays -> src_ids (B, S) padded with PAD_ID, src_mask (B, S) True on real tokens."""
    longest = max(len(s) for s in sources)
    src_ids = torch.full((len(sources), max(longest, 1)), PAD_ID, dtype=torch.long)
    for row, ids in enumerate(sources):
        src_ids[row, :len(ids)] = torch.as_tensor(ids, dtype=torch.long)
    return src_ids.to(device), (src_ids != PAD_ID).to(device)


def perplexity_of(model: torch.nn.Module, batches: list[Seq2SeqBatch], device: str | torch.device) -> dict[str, float]:
    nll, count = corpus_nll(model, batches, device)
    loss = nll / max(count, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "tokens": count}


def make_seq2seq_validator(preprocessing: Preprocessing, raw_pairs: list[tuple[str, str]],
                           batches: list[Seq2SeqBatch], device: str | torch.device,
                           bleu_sentences: int = 0, decode: DecodeConfig | None = None):
    """A ``validate(model)`` for the Trainer: teacher-forced loss/ppl on ``batches`` and greedy corpus BLEU on the
    first ``bleu_sentences`` pairs of ``raw_pairs`` (0 = all)."""
    from seqlab.metrics.bleu import corpus_bleu

    decode = decode or DecodeConfig(strategy="greedy")

    def validate(model: torch.nn.Module) -> dict[str, Any]:
        metrics = perplexity_of(model, batches, device)
        pairs = raw_pairs[:bleu_sentences] if bleu_sentences else raw_pairs
        model.eval()
        hyps = [t.text for t in Translator(model, preprocessing, decode, device).translate([s for s, _ in pairs])]
        metrics["bleu"] = corpus_bleu(hyps, [t for _, t in pairs]).score
        return metrics

    return validate


@torch.no_grad()
def score_pairs(loaded: LoadedModel, pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[float]]:
    """Forced decoding: log p(target | source) of every pair (natural log, <eos> included), in input order."""
    from seqlab.data.pipeline import ParallelCorpus, make_batches
    from seqlab.decoding.scoring import score_targets

    corpus = ParallelCorpus.from_pairs(pairs, loaded.preprocessing)
    scores = [0.0] * len(pairs)
    loaded.model.eval()
    for batch in make_batches(corpus, loaded.config.data, shuffle=False).epoch_batches(0):
        values = score_targets(loaded.model, batch.src_ids, batch.src_mask, batch.tgt_in_ids, batch.tgt_out_ids,
                               batch.tgt_mask)
        for index, value in zip(batch.indices.tolist(), values.tolist()):
            scores[index] = value
    return pairs, scores
