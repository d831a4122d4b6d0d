"""Translation (and any text-to-text task): an encoder-decoder over a parallel corpus, from data to BLEU.

    config = load_config("configs/multi30k_gru.yaml")          # seqlab.tasks
    train(config)                                              # -> runs/multi30k_gru
    loaded = load_model_dir("runs/multi30k_gru")
    Translator(loaded.model, loaded.preprocessing, loaded.config.decode).translate(["Ein Mann ."])
    evaluate(loaded, load_split(loaded.config.data, "test"), loaded.config.decode)   # BLEU, perplexity

The data section is ``seqlab.data.config.DataConfig`` (data sets, tokenizers, vocabularies, token-budget batches);
the models are the RNN and Transformer encoder-decoders of ``seqlab.models.build``.  Training minimises
teacher-forced cross-entropy (``Seq2SeqObjective``) or, with ``train.scheduled_sampling``, feeds the model its own
predictions with a decaying probability (``ScheduledSamplingObjective``); validation reports perplexity and greedy
BLEU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from seqlab.config import RunConfig
from seqlab.contracts import PAD_ID, Seq2SeqBatch
from seqlab.data.config import DataConfig  # noqa: F401  (the task table reads it)
from seqlab.data.pipeline import ParallelCorpus, Preprocessing, make_batches, prepare_parallel
from seqlab.decoding import DecodeConfig, resolve_max_len, search
from seqlab.decoding.config import beam_batch_size, check_decode_sizes
from seqlab.decoding.scoring import score_targets
from seqlab.models.build import MODEL_CONFIGS, build_seq2seq  # noqa: F401  (MODEL_CONFIGS: the task table)
from seqlab.run_dir import LoadedModel, TrainingRun
from seqlab.utils import Progress
from seqlab.train.loss import linear_cross_entropy_sum, token_nll_sum
from seqlab.train.scheduled_sampling import ScheduledSamplingObjective

# What the task table reads (seqlab.tasks): DataConfig, MODEL_CONFIGS (imported above), Preprocessing and these.
DEFAULT_ARCHITECTURE = "rnn"
DEFAULTS: dict[str, Any] = {}
GENERATES = True
SCHEDULED_SAMPLING = True


def build_model(config: RunConfig, pre: Preprocessing) -> torch.nn.Module:
    return build_seq2seq(config.model.architecture, config.model.options, len(pre.src_vocab), len(pre.tgt_vocab))


def prepare(config: RunConfig, device: torch.device) -> TrainingRun:
    """Read and numericalise the corpus (cached), build the model, the objective and the validator."""
    pre, corpora = prepare_parallel(config.data, splits=("train", "valid"))
    valid_batches = make_batches(corpora["valid"], config.data, shuffle=False).epoch_batches(0)
    validate = seq2seq_validator(pre, corpora["valid"].raw, valid_batches, device,
                                 bleu_sentences=config.train.valid_bleu_sentences)
    objective = (Seq2SeqObjective(config.train.label_smoothing) if config.train.scheduled_sampling == "none"
                 else ScheduledSamplingObjective(config.train, decoder_start))
    return TrainingRun(build_model(config, pre), objective, make_batches(corpora["train"], config.data,
                       shuffle=config.data.shuffle), validate, pre,
                       {"train": len(corpora["train"]), "valid": len(corpora["valid"])})


# ------------------------------------------------------------------------------------------------ objectives
class Seq2SeqObjective:
    """Teacher-forced cross-entropy for encoder-decoders: ``loss(model, batch) -> (loss_sum, num_tokens)``."""

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def loss(self, model: torch.nn.Module, batch: Seq2SeqBatch) -> tuple[torch.Tensor, int]:
        if hasattr(model, "target_hidden"):
            # real positions only, and the output projection fused with the loss: no (N, V) logits are kept
            hidden = model.target_hidden(batch.src_ids, batch.src_mask, batch.tgt_in_ids, batch.tgt_mask)  # (N, D)
            output = model.output_layer
            loss = linear_cross_entropy_sum(hidden, output.weight, output.bias, batch.tgt_out_ids[batch.tgt_mask],
                                            self.label_smoothing)
            return loss, batch.num_tgt_tokens
        logits = model(batch.src_ids, batch.src_mask, batch.tgt_in_ids)  # (B, T, V)
        return token_nll_sum(logits, batch.tgt_out_ids, self.label_smoothing), batch.num_tgt_tokens


def decoder_start(model: torch.nn.Module, batch: Seq2SeqBatch) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Where scheduled sampling starts decoding a batch: the state after encoding its sources, and its targets."""
    state = model.init_state(model.encode(batch.src_ids, batch.src_mask), batch.src_mask)
    return state, batch.tgt_in_ids, batch.tgt_out_ids


@torch.no_grad()
def perplexity_of(model: torch.nn.Module, batches: list[Seq2SeqBatch], device: str | torch.device) -> dict[str, float]:
    """Teacher-forced per-token NLL (no label smoothing) and its exp over ``batches``, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        total += float(token_nll_sum(model(batch.src_ids, batch.src_mask, batch.tgt_in_ids), batch.tgt_out_ids))
        count += batch.num_tgt_tokens
    model.train(was_training)
    loss = total / max(count, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "tokens": count}


def seq2seq_validator(pre: Preprocessing, raw_pairs: list[tuple[str, str]], batches: list[Seq2SeqBatch],
                      device: str | torch.device, bleu_sentences: int = 0, decode: DecodeConfig | None = None):
    """A ``validate(model)`` for the Trainer: teacher-forced loss/ppl on ``batches`` and greedy corpus BLEU on the
    first ``bleu_sentences`` pairs of ``raw_pairs`` (0 = all)."""
    from seqlab.metrics.bleu import corpus_bleu  # sacreBLEU: imported when a run validates, not at start-up

    decode = decode or DecodeConfig(strategy="greedy")

    def validate(model: torch.nn.Module) -> dict[str, Any]:
        metrics = perplexity_of(model, batches, device)
        pairs = raw_pairs[:bleu_sentences] if bleu_sentences else raw_pairs
        model.eval()
        hyps = [t.text for t in Translator(model, pre, decode, device).translate([s for s, _ in pairs])]
        metrics["bleu"] = corpus_bleu(hyps, [t for _, t in pairs]).score
        return metrics

    return validate


# ------------------------------------------------------------------------------------------------ using a model
@dataclass
class Translation:
    text: str
    tokens: list[str]
    score: float = 0.0
    nbest: list[tuple[str, float]] = field(default_factory=list)
    attention: torch.Tensor | None = None  # (T_out, S_src) weights, when the model has attention
    src_tokens: list[str] = field(default_factory=list)
    # every n-best hypothesis's output tokens and attention, in nbest's order (the best first)
    nbest_tokens: list[list[str]] = field(default_factory=list)
    nbest_attention: list[torch.Tensor | None] = field(default_factory=list)


class Translator:
    """Batched translation of raw lines with any seq2seq model and any search strategy.

    Lines are sorted by length into batches (less padding), then put back in input order.  An empty input line
    gives an empty output line without touching the model.
    """

    def __init__(self, model: torch.nn.Module, preprocessing: Preprocessing, decode: DecodeConfig,
                 device: str | torch.device = "cpu", batch_size: int = 64, progress: str | None = None):
        check_decode_sizes(decode, len(preprocessing.tgt_vocab), batch_size)
        self.model, self.pre, self.decode_config = model, preprocessing, decode
        # a wide beam gets fewer sentences per search call, so memory stays bounded (MAX_BEAM_ROWS)
        self.device, self.batch_size = torch.device(device), beam_batch_size(decode, batch_size)
        self.generator = torch.Generator().manual_seed(decode.seed if decode.seed is not None else 0)
        self.progress = progress  # a label turns on the progress report on stderr (seqlab.utils.Progress)

    def translate(self, lines: list[str], return_attention: bool = False) -> list[Translation]:
        encoded = [self.pre.encode_src(line) if line.strip() else None for line in lines]
        results: list[Translation] = [Translation("", []) for _ in lines]
        order = sorted((i for i, ids in enumerate(encoded) if ids is not None), key=lambda i: len(encoded[i]))
        progress = Progress(len(order), self.progress)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            for index, translation in zip(chunk, self._translate_batch([encoded[i] for i in chunk],
                                                                        return_attention)):
                translation.src_tokens = self.pre.src_tokenizer.encode(lines[index])
                results[index] = translation
            progress.update(len(chunk))
        progress.close()
        return results

    @torch.no_grad()
    def _translate_batch(self, sources: list, return_attention: bool) -> list[Translation]:
        src_ids, src_mask = pad_sources(sources, self.device)
        state = self.model.init_state(self.model.encode(src_ids, src_mask), src_mask)
        max_len = resolve_max_len(self.decode_config, src_mask.sum(1))
        vocab = self.pre.tgt_vocab
        rows = search(self.model, state, len(sources), vocab.bos_id, vocab.eos_id, self.decode_config, max_len,
                      generator=self.generator, return_attention=return_attention)
        return [self._translation(hypotheses) for hypotheses in rows]

    def _translation(self, hypotheses: list) -> Translation:
        best = hypotheses[0]
        return Translation(self.pre.decode_tgt(best.tokens), self.pre.tgt_vocab.decode(best.tokens), best.score,
                           nbest=[(self.pre.decode_tgt(h.tokens), h.score) for h in hypotheses],
                           attention=best.attention,
                           nbest_tokens=[self.pre.tgt_vocab.decode(h.tokens) for h in hypotheses],
                           nbest_attention=[h.attention for h in hypotheses])


def pad_sources(sources: list, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """List of 1-d int arrays -> src_ids (B, S) padded with PAD_ID, src_mask (B, S) True on real tokens."""
    longest = max(len(s) for s in sources)
    src_ids = torch.full((len(sources), max(longest, 1)), PAD_ID, dtype=torch.long)
    for row, ids in enumerate(sources):
        src_ids[row, :len(ids)] = torch.as_tensor(ids, dtype=torch.long)
    return src_ids.to(device), (src_ids != PAD_ID).to(device)


def evaluate(loaded: LoadedModel, pairs: list[tuple[str, str]], decode: DecodeConfig, device: str = "cpu",
             batch_size: int = 64, progress: str | None = None) -> tuple[list[str], Any, dict[str, float]]:
    """(hypotheses, sacreBLEU's corpus BLEU, teacher-forced perplexity) of ``pairs``; ``progress``: a label for
    the progress report on stderr."""
    from seqlab.metrics.bleu import corpus_bleu  # sacreBLEU: imported when a model is scored, not at start-up

    translator = Translator(loaded.model, loaded.preprocessing, decode, device, batch_size, progress)
    hyps = [t.text for t in translator.translate([s for s, _ in pairs])]
    corpus = ParallelCorpus.from_pairs(pairs, loaded.preprocessing)
    batches = make_batches(corpus, loaded.config.data, shuffle=False).epoch_batches(0)
    return hyps, corpus_bleu(hyps, [t for _, t in pairs]), perplexity_of(loaded.model, batches, device)


@torch.no_grad()
def score_pairs(loaded: LoadedModel, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Forced decoding: log p(target | source) of every pair (natural log, <eos> included), in input order, as
    ``{"src", "tgt", "log_prob", "tokens", "per_token"}`` (the same fields ``language_model.score_sentences`` gives)."""
    corpus = ParallelCorpus.from_pairs(pairs, loaded.preprocessing)
    records: list[dict[str, Any]] = [{} for _ in pairs]
    loaded.model.eval()
    for batch in make_batches(corpus, loaded.config.data, shuffle=False).epoch_batches(0):
        values = score_targets(loaded.model, batch.src_ids, batch.src_mask, batch.tgt_in_ids, batch.tgt_out_ids,
                               batch.tgt_mask)
        for index, value, length in zip(batch.indices.tolist(), values.tolist(), batch.tgt_mask.sum(1).tolist()):
            records[index] = {"log_prob": value, "tokens": int(length), "per_token": value / max(int(length), 1)}
    return [{"src": source, "tgt": target, **record} for (source, target), record in zip(pairs, records)]
