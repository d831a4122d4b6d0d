r"""seqlab's Transformer against Hugging Face ``MarianMTModel``, JoeyNMT and fairseq, same architecture, on CPU.

Architecture (all): d_model 256, 4 heads, FFN 1024 (ReLU), 3 + 3 layers, post-LN, vocabulary 8000, sinusoidal
positions, embeddings scaled by sqrt(D), source/target/output embeddings one tensor, dropout 0.1 on embeddings and
sub-layer outputs only (none on attention weights or inside the FFN).  Peers, each built in Python:
* ``hf``: Hugging Face ``MarianMTModel`` (transformers 5.23.0, ``attn_implementation="sdpa"``);
* ``joeynmt``: JoeyNMT 2.3.0 ``build_model`` from the config dict its YAML would give; its attention is explicit
  (no SDPA), and it drops attention weights and FFN hidden units at the layer's rate, which ``build_joeynmt``
  switches off to match the others; its searches have no KV cache (every step re-runs the decoder on the prefix);
* ``fairseq``: fairseq 0.12.2 ``TransformerModelBase`` from a ``TransformerConfig``, decoded by its
  ``SequenceGenerator`` (beam 1 for greedy).  Its encoder layers also register zero copies of their weights for a
  BetterTransformer fast path that is unused here: 2.37 M of its parameter count are those, and never trained.
JoeyNMT and fairseq fix their special ids (``<unk> <pad> <s> </s>`` = 0..3, ``<s> <pad> </s> <unk>`` = 0..3), so the
batches are mapped to them (``to_impl_ids``: a permutation of ids 0-3; the weights are random anyway).

Measured, each implementation in its own worker process (so peak RSS is its own, imports included), on ONE thread
(the machine is shared; a single thread's CPU time depends far less on the other jobs than wall time, though
identical steps still vary by up to 20 %, so CPU-time figures are reported beside the wall-clock ones and are the
ones to trust under load):
* training tokens/s: forward + backward + Adam step on one length-bucketed batch of ~4000 target tokens of
  Multi30k de->en (seqlab's own BatchSampler; random ids when the data is absent), median of repeated steps; the
  peers' summed cross-entropy on their (B, T, V) logits, seqlab's as its trainer computes it (``Seq2SeqObjective.loss``:
  real target positions only, output projection fused with the loss, no (N, V) logits).  Then, in the seqlab
  worker, that loss again against two variants, steps alternating so the machine's load falls on all three alike
  ("A/B" rows): the (B, T, V) logits as the peers do, and ``forward(..., tgt_mask=)`` logits of real tokens only;
* model FLOP utilisation: useful matmul FLOPs (real tokens only, counted analytically below) per second against
  the machine's single-thread fp32 matmul peak (a large torch.mm);
* decoding sentences/s (wall and CPU, best of three passes, or fewer once a peer's passes took 90 CPU seconds),
  greedy and beam 5, batch 50, on ``--sentences`` Multi30k test sentences (100 by default; the committed run used
  500), every output forced to the same number of decoder steps (untrained weights would otherwise stop at random
  places, and the models would do different work): <eos> is never chosen (fairseq emits a forced <eos> at its
  last step: ``length - 1`` words + <eos>, the same ``length`` steps);
* peak RSS after the training steps with the implementation's own loss (seqlab's variants come later), and of
  the whole worker.

``--dtype bfloat16`` runs everything in bfloat16 instead, for every implementation alike: training steps under
``torch.autocast`` (fp32 weights and optimiser, as seqlab's ``train.precision: bf16`` and HF's
``Trainer(bf16=True)``), decoding with the weights cast (``model.to(torch.bfloat16)``, as HF's ``torch_dtype=``
and ``seqlab translate --dtype bfloat16``), MFU against the bf16 matmul peak; it writes
``transformer_vs_hf_bf16.json``.  The ``hf_eager`` peer is HF with ``attn_implementation="eager"``: in bf16 on the
CPU PyTorch's flash-attention kernel (HF's SDPA path) is 5-7x slower than in fp32, so HF's own explicit attention
is its faster choice there.

``--peers hf,hf_eager,joeynmt,fairseq`` picks the peers (default: all that import); a peer that is missing or fails is
reported as n/a.  The peers need a separate venv so the main environment's torch stays put; every install is
``--no-deps`` (pip must never pull another torch).  What worked beside torch 2.13.0 on Python 3.11:

    python -m venv --system-site-packages /work/venv-bench
    PIP="/work/venv-bench/bin/pip install --no-deps"
    $PIP transformers==5.23.0 huggingface-hub tokenizers safetensors typer \
        httpx2 httpcore2 anyio truststore h11 "typing_extensions>=4.16"
    # JoeyNMT 2.3.0 (importlib_metadata 9+ needs lazy_importer: pin 8.7; tensorboard: torch.utils.tensorboard)
    $PIP joeynmt==2.3.0 importlib_metadata==8.7.0 zipp==4.1.2 tensorboard==2.21.0 protobuf==7.36.2 \
        absl-py==2.5.1 subword-nmt==0.3.8
    # fairseq 0.12.2: its sdist lacks fairseq/clib/libbase/balanced_assignment.cpp, so the torch C++ extensions
    # (libbase, libnat: BASE layers, non-autoregressive models; not used here) are skipped; and its dataclasses
    # (and hydra-core 1.0.7's) use mutable defaults, which Python 3.11 rejects: patched to default_factory.
    $PIP cython==3.3.1 wheel==0.48.0
    /work/venv-bench/bin/pip download --no-deps --no-binary :all: --no-build-isolation fairseq==0.12.2 -d /tmp/fs
    cd /tmp/fs && tar xzf fairseq-0.12.2.tar.gz && cd fairseq-0.12.2
    sed -i 's/^    from torch.utils import cpp_extension$/    raise ImportError("no torch C++ extensions")/' setup.py
    $PIP --no-build-isolation . && $PIP omegaconf==2.0.6 hydra-core==1.0.7 bitarray==3.12.3
    $PIP --no-build-isolation antlr4-python3-runtime==4.8   # hydra 1.0 wants 4.8, the system site has a newer one
    SP=/work/venv-bench/lib/python3.11/site-packages
    CONFIG=$SP/fairseq/models/transformer/transformer_config.py
    sed -i -E 's/^(\s+\w+): (\w+) = \2\(\)\s*$/\1: \2 = field(default_factory=\2)/' \
        $SP/fairseq/dataclass/configs.py $CONFIG $SP/hydra/conf/__init__.py
    sed -i -E 's/field\(default=(\w+)\(\)\)/field(default_factory=\1)/' $CONFIG
    sed -i 's/FairseqConfig.__dataclass_fields__\[k\].default$/getattr(FairseqConfig(), k)/' \
        $SP/fairseq/dataclass/initialize.py
    /work/venv-bench/bin/python -c "import torch; print(torch.__version__)"      # still 2.13.0+cpu

    cd /work/main      # the repository root; then ~50 minutes on one core (3 rounds, all peers; --peers hf: 20):
    PYTHONPATH=. OMP_NUM_THREADS=1 /work/venv-bench/bin/python benchmarks/transformer_vs_hf.py \
        --sentences 500 --rounds 3

(OpenNMT-py 3.5 is not a peer: it requires torch < 2.3.)  Writes benchmarks/results/transformer_vs_hf.json.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from common import ROOT, git_commit

DATA = ROOT.parent / "shared" / "data" / "multi30k" / "tok"
RESULT = ROOT / "benchmarks" / "results" / "transformer_vs_hf.json"
PAD, BOS, EOS, UNK = 0, 1, 2, 3
DIMS = dict(d_model=256, heads=4, ffn=1024, layers=3, vocab=8000)


# ------------------------------------------------------------------------------------------------ data
def read_lines(name: str) -> list[list[str]]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as handle:
        return [line.split() for line in handle]


def load_corpus(vocab_size: int, seed: int = 0) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """-> (train src ids, train tgt ids, test src ids) from Multi30k de->en, or random ids of Multi30k-like
    lengths when the data is absent.  One shared vocabulary: the most frequent training words (de + en)."""
    if not DATA.exists():
        generator = torch.Generator().manual_seed(seed)

        def random_ids(count: int) -> list[list[int]]:
            lengths = torch.randint(6, 24, (count,), generator=generator).tolist()
            return [torch.randint(4, vocab_size, (n,), generator=generator).tolist() for n in lengths]

        return random_ids(2000), random_ids(2000), random_ids(1000)
    train_de, train_en = read_lines("train.lc.norm.tok.de.gz"), read_lines("train.lc.norm.tok.en.gz")
    counts = collections.Counter(word for sentence in train_de + train_en for word in sentence)
    index = {word: i + 4 for i, (word, _) in enumerate(counts.most_common(vocab_size - 4))}

    def encode(sentences: list[list[str]]) -> list[list[int]]:
        return [[index.get(word, UNK) for word in sentence] for sentence in sentences]

    return encode(train_de), encode(train_en), encode(read_lines("test_2016_flickr.lc.norm.tok.de.gz"))


def pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [PAD] * (width - len(row)) for row in rows])


def training_batch(src: list[list[int]], tgt: list[list[int]], target_tokens: int) -> dict[str, torch.Tensor]:
    """A batch as seqlab's trainer makes them (token budget over the longer side, length-bucketed in shuffled
    chunks): of epoch 0's batches, the one with the median number of target tokens, the budget chosen so that
    this median is about ``target_tokens``."""
    from seqlab.data.batching import BatchSampler

    lengths = [max(len(s), len(t)) + 1 for s, t in zip(src, tgt)]  # <eos> / <bos> included
    budget = target_tokens
    while True:
        batches = BatchSampler(lengths, max_tokens=budget, shuffle=True, seed=1).epoch_batches(0)
        sizes = sorted((sum(len(tgt[i]) + 1 for i in batch), k) for k, batch in enumerate(batches))
        median_tokens, median_index = sizes[len(sizes) // 2]
        if median_tokens >= 0.98 * target_tokens:
            break
        budget += 100
    chosen = [(src[i], tgt[i]) for i in batches[median_index]]
    src_ids = pad([s + [EOS] for s, _ in chosen])
    return {"src_ids": src_ids, "src_mask": src_ids != PAD, "tgt_in": pad([[BOS] + t for _, t in chosen]),
            "tgt_out": pad([t + [EOS] for _, t in chosen])}


# ------------------------------------------------------------------------------------------------ models
# (pad, bos, eos, unk) ids of each implementation; the benchmark's own are seqlab's.
SPECIAL_IDS = {"seqlab": (PAD, BOS, EOS, UNK), "hf": (PAD, BOS, EOS, UNK), "hf_eager": (PAD, BOS, EOS, UNK),
               "joeynmt": (1, 2, 3, 0),
               "fairseq": (1, 0, 2, 3)}


def to_impl_ids(ids: torch.Tensor, impl: str) -> torch.Tensor:
    """The benchmark's ids -> ``impl``'s: its special ids swapped in, words (ids >= 4) unchanged."""
    table = torch.arange(DIMS["vocab"])
    table[[PAD, BOS, EOS, UNK]] = torch.tensor(SPECIAL_IDS[impl])
    return table[ids]


def build_seqlab() -> torch.nn.Module:
    from seqlab.models.transformer import TransformerConfig, TransformerSeq2Seq

    config = TransformerConfig(d_model=DIMS["d_model"], num_heads=DIMS["heads"], ffn_size=DIMS["ffn"],
                               num_encoder_layers=DIMS["layers"], num_decoder_layers=DIMS["layers"], dropout=0.1,
                               positions="sinusoidal", share_embeddings=True, tie_output=True)
    return TransformerSeq2Seq(config, DIMS["vocab"], DIMS["vocab"])


def build_hf(attention: str = "sdpa") -> torch.nn.Module:
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(vocab_size=DIMS["vocab"], d_model=DIMS["d_model"], encoder_layers=DIMS["layers"],
                          decoder_layers=DIMS["layers"], encoder_attention_heads=DIMS["heads"],
                          decoder_attention_heads=DIMS["heads"], encoder_ffn_dim=DIMS["ffn"],
                          decoder_ffn_dim=DIMS["ffn"], activation_function="relu", dropout=0.1,
                          attention_dropout=0.0, activation_dropout=0.0, scale_embedding=True,
                          share_encoder_decoder_embeddings=True, tie_word_embeddings=True, pad_token_id=PAD,
                          eos_token_id=EOS, decoder_start_token_id=BOS, forced_eos_token_id=None,
                          attn_implementation=attention)
    return MarianMTModel(config)


def build_hf_eager() -> torch.nn.Module:
    """HF with its explicit attention: in bfloat16 on the CPU the faster of HF's two (its SDPA path runs
    PyTorch's flash kernel, 5-7x slower in bf16 than in fp32 here); in fp32 the same model as ``hf``."""
    return build_hf("eager")


def build_joeynmt() -> torch.nn.Module:
    """JoeyNMT's ``build_model`` on the config dict its YAML ``model:`` section would give."""
    from types import SimpleNamespace

    from joeynmt.model import build_model
    from joeynmt.transformer_layers import MultiHeadedAttention, PositionwiseFeedForward
    from joeynmt.vocabulary import Vocabulary

    pad, bos, eos, unk = SPECIAL_IDS["joeynmt"]
    specials = SimpleNamespace(unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                               sep_token=None, lang_tags=[], unk_id=unk, pad_id=pad, bos_id=bos, eos_id=eos)
    vocab = Vocabulary([f"w{i}" for i in range(4, DIMS["vocab"])], specials)  # one vocabulary for both sides
    side = dict(type="transformer", num_layers=DIMS["layers"], num_heads=DIMS["heads"], hidden_size=DIMS["d_model"],
                ff_size=DIMS["ffn"], dropout=0.1, layer_norm="post", activation="relu",
                embeddings=dict(embedding_dim=DIMS["d_model"], scale=True, dropout=0.1))
    model = build_model({"encoder": side, "decoder": side, "tied_embeddings": True, "tied_softmax": True},
                        vocab, vocab)
    # JoeyNMT also drops attention weights and FFN hidden units at the layer rate; the others (and the paper) do not.
    for module in model.modules():
        if isinstance(module, MultiHeadedAttention):
            module.dropout = torch.nn.Identity()
        elif isinstance(module, PositionwiseFeedForward):
            module.pwff_layer[2] = torch.nn.Identity()  # Linear, ReLU, [Dropout], Linear, Dropout
    return model


def build_fairseq() -> torch.nn.Module:
    """fairseq's ``TransformerModelBase`` from a ``TransformerConfig``, as ``--arch transformer`` with flags."""
    from types import SimpleNamespace

    from fairseq.data import Dictionary
    from fairseq.models.transformer import TransformerConfig, TransformerModelBase

    dictionary = Dictionary()  # <s> <pad> </s> <unk>, then the words
    for i in range(4, DIMS["vocab"]):
        dictionary.add_symbol(f"w{i}")
    config = TransformerConfig(dropout=0.1, attention_dropout=0.0, activation_dropout=0.0, activation_fn="relu",
                               share_all_embeddings=True)  # also ties the output projection
    for side in (config.encoder, config.decoder):
        side.embed_dim, side.ffn_embed_dim = DIMS["d_model"], DIMS["ffn"]
        side.layers, side.attention_heads = DIMS["layers"], DIMS["heads"]
        side.normalize_before, side.learned_pos = False, False  # post-LN, sinusoidal
    config.decoder.input_dim = config.decoder.output_dim = DIMS["d_model"]
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return TransformerModelBase.build_model(config, task)


# ------------------------------------------------------------------------------------------------ training losses
def summed_cross_entropy(logits: torch.Tensor, tgt_out: torch.Tensor, pad_id: int) -> torch.Tensor:
    """logits (B, T, V), tgt_out (B, T) -> cross-entropy summed over real target tokens."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1), ignore_index=pad_id,
                           reduction="sum")


def loss_seqlab(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """What seqlab's trainer runs, ``Seq2SeqObjective.loss``: real target positions only, the output projection fused
    with the cross-entropy (``linear_cross_entropy_sum``: no (N, V) logits kept)."""
    from seqlab.contracts import Seq2SeqBatch
    from seqlab.tasks.translation import Seq2SeqObjective

    tgt_mask = batch["tgt_out"] != PAD
    seq2seq_batch = Seq2SeqBatch(batch["src_ids"], batch["src_mask"], batch["tgt_in"], batch["tgt_out"], tgt_mask,
                                 torch.arange(batch["src_ids"].size(0)))
    return Seq2SeqObjective().loss(model, seq2seq_batch)[0]


def loss_seqlab_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Like the peers: (B, T, V) logits, then the summed cross-entropy."""
    logits = model(batch["src_ids"], batch["src_mask"], batch["tgt_in"])
    return summed_cross_entropy(logits, batch["tgt_out"], PAD)


def loss_seqlab_packed(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits of real target tokens only, (N, V): the loss never touches padding."""
    tgt_mask = batch["tgt_out"] != PAD
    logits = model(batch["src_ids"], batch["src_mask"], batch["tgt_in"], tgt_mask=tgt_mask)  # (N, V)
    return F.cross_entropy(logits, batch["tgt_out"][tgt_mask], reduction="sum")


def loss_hf(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(input_ids=batch["src_ids"], attention_mask=batch["src_mask"].long(),
                   decoder_input_ids=batch["tgt_in"]).logits
    return summed_cross_entropy(logits, batch["tgt_out"], PAD)


def loss_joeynmt(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``Model._encode_decode`` through the public ``forward(return_type=...)``; masks are (B, 1, length)."""
    pad = SPECIAL_IDS["joeynmt"][0]
    src_mask = batch["src_mask"].unsqueeze(1)
    memory, _, _, _ = model(return_type="encode", src=batch["src_ids"], src_length=batch["src_mask"].sum(1),
                            src_mask=src_mask)
    logits, _, _, _ = model(return_type="decode", encoder_output=memory, encoder_hidden=None, src_mask=src_mask,
                            trg_input=batch["tgt_in"], unroll_steps=batch["tgt_in"].size(1),
                            trg_mask=(batch["tgt_in"] != pad).unsqueeze(1))
    return summed_cross_entropy(logits, batch["tgt_out"], pad)


def loss_fairseq(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits, _ = model(batch["src_ids"], batch["src_mask"].sum(1), batch["tgt_in"])
    return summed_cross_entropy(logits, batch["tgt_out"], SPECIAL_IDS["fairseq"][0])


# ------------------------------------------------------------------------------------------------ searches
# Each: src_ids (B, S) in the implementation's ids, src_mask (B, S) True = real token; every output ``length`` steps.
@torch.no_grad()
def decode_seqlab(model, src_ids: torch.Tensor, src_mask: torch.Tensor, length: int, beam_size: int) -> None:
    """seqlab's own searches; <eos> is never chosen, so every output has ``length`` tokens."""
    from seqlab.decoding.beam import beam_search
    from seqlab.decoding.config import DecodeConfig
    from seqlab.decoding.greedy import greedy_search

    state = model.init_state(model.encode(src_ids, src_mask), src_mask)
    if beam_size == 1:
        greedy_search(model, state, src_ids.size(0), BOS, -1, length)  # eos -1: no token ends a row
        return
    # min_len = length forbids <eos> throughout; the step budget (last argument) stops the search at length.
    config = DecodeConfig(strategy="beam", beam_size=beam_size, min_len=length, max_len=length + 1)
    beam_search(model, state, src_ids.size(0), BOS, EOS, config, length)


@torch.no_grad()
def decode_hf(model, src_ids: torch.Tensor, src_mask: torch.Tensor, length: int, beam_size: int) -> None:
    model.generate(src_ids, attention_mask=src_mask.long(), num_beams=beam_size, do_sample=False,
                   max_new_tokens=length, min_new_tokens=length)


@torch.no_grad()
def decode_joeynmt(model, src_ids: torch.Tensor, src_mask: torch.Tensor, length: int, beam_size: int) -> None:
    """JoeyNMT's ``search.greedy`` / ``search.beam_search`` (what ``search.search`` calls after encoding)."""
    from joeynmt.search import beam_search, greedy

    src_mask = src_mask.unsqueeze(1)  # (B, 1, S)
    memory, _, _, _ = model(return_type="encode", src=src_ids, src_length=src_mask.sum(-1).squeeze(1),
                            src_mask=src_mask)
    if beam_size == 1:
        greedy(src_mask, length, model, memory, None, min_output_length=length)
    else:
        beam_search(model, beam_size, memory, None, src_mask, length, alpha=1.0, min_output_length=length)


@torch.no_grad()
def decode_fairseq(model, src_ids: torch.Tensor, src_mask: torch.Tensor, length: int, beam_size: int) -> None:
    """fairseq's ``SequenceGenerator`` (its greedy is beam 1).  It forces <eos> at the step after ``max_len_b``
    words: ``length - 1`` words + <eos> make the same ``length`` decoder steps as the others."""
    from fairseq.sequence_generator import SequenceGenerator

    generator = SequenceGenerator([model], model.decoder.dictionary, beam_size=beam_size, max_len_a=0,
                                  max_len_b=length - 1, min_len=length - 1)
    generator.generate([model], {"net_input": {"src_tokens": src_ids, "src_lengths": src_mask.sum(1)}})


# (label, module to import, builder, training loss, search) of every implementation; seqlab first.
Impl = collections.namedtuple("Impl", "label module build loss decode")
IMPLS = {"seqlab": Impl("seqlab", "seqlab", build_seqlab, loss_seqlab, decode_seqlab),
         "hf": Impl("HF Marian", "transformers", build_hf, loss_hf, decode_hf),
         "hf_eager": Impl("HF eager", "transformers", build_hf_eager, loss_hf, decode_hf),
         "joeynmt": Impl("JoeyNMT", "joeynmt", build_joeynmt, loss_joeynmt, decode_joeynmt),
         "fairseq": Impl("fairseq", "fairseq", build_fairseq, loss_fairseq, decode_fairseq)}
PEERS = [name for name in IMPLS if name != "seqlab"]


# ------------------------------------------------------------------------------------------------ measurements
def time_training(model, loss_function, batch: dict[str, torch.Tensor], steps: int,
                  dtype: torch.dtype = torch.float32) -> tuple[list[float], list[float]]:
    """-> (wall seconds, process CPU seconds) of each timed step, after two warm-up steps (allocator, kernels)."""
    return time_training_interleaved(model, {"": loss_function}, batch, steps, warmup=2, dtype=dtype)[""]


DECODE_BUDGET_CPU_SECONDS = 90  # no further pass after this: one pass of a slow peer already averages out noise


def time_decoding(impl: str, model, sentences: list[list[int]], beam_size: int, length: int,
                  batch_size: int) -> tuple[float, float] | tuple[None, None]:
    """(sentences per wall second, per CPU second) over all ``sentences`` in batches, the best of (up to) three
    passes; None if this search is not available."""
    model.eval()
    decode = IMPLS[impl].decode
    padded = [pad([s + [EOS] for s in sentences[i:i + batch_size]]) for i in range(0, len(sentences), batch_size)]
    batches = [(to_impl_ids(src_ids, impl), src_ids != PAD) for src_ids in padded]
    try:
        decode(model, batches[0][0][:2], batches[0][1][:2], 2, beam_size)  # warm-up
    except ImportError as error:
        print(f"[{impl}] beam {beam_size} skipped: {error}", file=sys.stderr)
        return None, None
    walls, cpus = [], []
    for _ in range(3):  # best of three: the pass least disturbed by other jobs
        wall, cpu = time.perf_counter(), time.process_time()
        for src_ids, src_mask in batches:
            decode(model, src_ids, src_mask, length, beam_size)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if sum(cpus) > DECODE_BUDGET_CPU_SECONDS:
            break
    print(f"[{impl}] beam {beam_size}: {len(cpus)} pass(es), CPU seconds {[round(c, 1) for c in cpus]}",
          file=sys.stderr)
    return len(sentences) / min(walls), len(sentences) / min(cpus)


def matmul_peak_gflops(size: int = 2048, repeats: int = 7, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s per CPU second of a large square torch.mm (2 n^3 FLOPs) in ``dtype``, best of ``repeats``: the
    usable peak of this many threads.  CPU time, like the MFU figures, so other jobs' load does not lower it."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = min(_cpu_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _cpu_timed(function) -> float:
    start = time.process_time()
    function()
    return time.process_time() - start


def training_flops(src_lens: torch.Tensor, tgt_lens: torch.Tensor) -> float:
    """Matmul FLOPs of one training step (backward = 2 x forward) for sentences of these lengths (B,).

    Per source token and encoder layer: QKV + out (4 D^2) and FFN (2 D F) multiply-adds, attention 2 S D.
    Per target token and decoder layer: self QKV + out (4 D^2), cross Q + out (2 D^2), FFN (2 D F), self
    attention 2 T D, cross attention 2 S D; cross K/V (2 D^2) per source token and decoder layer; output D V.
    Real lengths give the useful FLOPs (MFU); the padded widths repeated B times give the FLOPs of a padded run.
    """
    d, f, layers, v = DIMS["d_model"], DIMS["ffn"], DIMS["layers"], DIMS["vocab"]
    s, t = src_lens.double(), tgt_lens.double()
    encoder = (s * layers * (4 * d * d + 2 * d * f + 2 * s * d)).sum()
    decoder = (t * layers * (6 * d * d + 2 * d * f + 2 * t * d + 2 * s * d) + s * layers * 2 * d * d).sum()
    output = t.sum() * d * v
    return float(3 * 2 * (encoder + decoder + output))  # multiply-add = 2 FLOPs; fwd + bwd = 3 x fwd


def time_training_interleaved(model, loss_functions: dict, batch: dict[str, torch.Tensor], steps: int,
                              warmup: int = 1, dtype: torch.dtype = torch.float32,
                              ) -> dict[str, tuple[list[float], list[float]]]:
    """Forward + backward + Adam steps for several losses of one model, their steps alternating (after
    ``warmup`` untimed rounds), so that the other jobs' load falls on all of them alike:
    {name: (wall seconds, CPU seconds)}.  ``dtype`` bfloat16: the loss under ``torch.autocast`` (fp32 weights),
    what seqlab's ``train.precision: bf16`` and HF's ``Trainer(bf16=True)`` do on the CPU."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)  # PyTorch defaults for all
    times = {name: ([], []) for name in loss_functions}
    for step in range(steps + warmup):
        for name, loss_function in loss_functions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                loss = loss_function(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= warmup:
                times[name][0].append(time.perf_counter() - wall)
                times[name][1].append(time.process_time() - cpu)
    return times


def training_figures(timed: tuple[list[float], list[float]], batch: dict[str, torch.Tensor], real_tgt: torch.Tensor,
                     suffix: str = "") -> dict:
    """Figures of the timed steps (wall, CPU seconds) on ``batch``; ``real_tgt`` (B, T): True at real target
    tokens (the batch may be in another implementation's ids)."""
    walls, cpus = timed
    target_tokens = int(real_tgt.sum())
    useful = training_flops(batch["src_mask"].sum(1), real_tgt.sum(1))
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {f"step_seconds{suffix}": walls, f"step_cpu_seconds{suffix}": cpus,
            f"median_step_seconds{suffix}": wall, f"median_step_cpu_seconds{suffix}": cpu,
            f"train_tokens_per_second{suffix}": target_tokens / wall,
            f"train_tokens_per_cpu_second{suffix}": target_tokens / cpu,
            f"useful_gflops_per_cpu_second{suffix}": useful / cpu / 1e9}


def run_worker(impl: str, args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train_src, train_tgt, test_src = load_corpus(DIMS["vocab"])
    batch = training_batch(train_src, train_tgt, args.batch_tokens)
    real_tgt = batch["tgt_out"] != PAD
    impl_batch = {key: value if key == "src_mask" else to_impl_ids(value, impl) for key, value in batch.items()}
    model = IMPLS[impl].build()
    dtype = getattr(torch, args.dtype)
    (b, s), t = batch["src_ids"].shape, batch["tgt_in"].size(1)
    target_tokens = int(real_tgt.sum())
    sentences = test_src[:args.sentences]
    result = {"impl": impl, "sentences": len(sentences), "target_tokens_per_batch": target_tokens,
              "batch_shape": [[b, s], [b, t]],
              "target_padding_fraction": 1 - target_tokens / (b * t),
              "source_padding_fraction": 1 - int(batch["src_mask"].sum()) / (b * s),
              **training_figures(time_training(model, IMPLS[impl].loss, impl_batch, args.steps, dtype), batch,
                                 real_tgt)}
    # peak RSS of the training steps with the implementation's own loss (the variants below come after it)
    result["peak_rss_mib_training"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if impl == "seqlab":  # its three losses against each other, steps alternating (after the RSS reading)
        variants = {"_fused_ab": loss_seqlab, "_logits": loss_seqlab_logits, "_packed_loss": loss_seqlab_packed}
        timed = time_training_interleaved(model, variants, batch, args.steps, dtype=dtype)
        for suffix in variants:
            result.update(training_figures(timed[suffix], batch, real_tgt, suffix))
    model.to(dtype)  # decoding in bfloat16: the weights cast, as HF's torch_dtype= and seqlab's --dtype do
    for name, beam_size in (("greedy", 1), ("beam5", 5)):
        wall, cpu = time_decoding(impl, model, sentences, beam_size, args.decode_length, 50)
        result.update({f"{name}_sentences_per_second": wall, f"{name}_sentences_per_cpu_second": cpu})
    result.update({
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "parameters": sum(p.numel() for p in model.parameters()),
        # HF's sinusoid tables and fairseq's unused fast-path copies are parameters that never get a gradient
        "trained_parameters": sum(p.numel() for p in model.parameters() if p.grad is not None),
        "version": package_version(IMPLS[impl].module), "loadavg_after": os.getloadavg(),
    })
    return result


def package_version(module: str) -> str | None:
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------------------------ report
def launch(impl: str, args: argparse.Namespace) -> dict | None:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--worker", impl, "--out", out.name, "--steps", str(args.steps),
                   "--batch-tokens", str(args.batch_tokens), "--sentences", str(args.sentences),
                   "--decode-length", str(args.decode_length), "--threads", str(args.threads),
                   "--dtype", args.dtype]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if subprocess.run(command, env=env).returncode != 0:
            print(f"[{impl}] worker failed (is {IMPLS[impl].module} installed? see this file's docstring)")
            return None
        return json.loads(Path(out.name).read_text())


def importable_peers(requested: list[str]) -> list[str]:
    """The requested peers whose library imports in this interpreter; the others are reported as n/a."""
    found = [name for name in requested if importlib.util.find_spec(IMPLS[name].module) is not None]
    for name in sorted(set(requested) - set(found)):
        print(f"[{name}] {IMPLS[name].module} is not installed in {sys.executable}: n/a (see the docstring)")
    return found


def median_of_rounds(workers: list[dict | None]) -> dict | None:
    """One implementation's figures over the rounds: the median of every number, lists joined, the rest from
    the first round; ``rounds`` counts the workers that finished."""
    finished = [worker for worker in workers if worker]
    if not finished:
        return None
    combined = {"rounds": len(finished)}
    for key, value in finished[0].items():
        values = [worker[key] for worker in finished if key in worker]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and None not in values:
            combined[key] = statistics.median(values)
            if len(values) > 1 and isinstance(value, float):
                combined[f"{key}_by_round"] = values
        elif isinstance(value, list) and key.startswith("step_"):
            combined[key] = [x for v in values for x in v]
        else:
            combined[key] = value
    return combined


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


# (label, seqlab key, peer key): seqlab's first training rows are its trainer's loss (fused projection +
# cross-entropy); the "A/B" rows time it again with its (B,T,V)-logits and packed-logits variants, their steps
# alternating in one worker (the fair comparison between the three), against the peers' only path.
ROWS = [("train tok/s (wall)", "train_tokens_per_second", "train_tokens_per_second"),
        ("train tok/CPU-s", "train_tokens_per_cpu_second", "train_tokens_per_cpu_second"),
        ("  A/B: fused, wall", "train_tokens_per_second_fused_ab", "train_tokens_per_second"),
        ("  A/B: fused, CPU", "train_tokens_per_cpu_second_fused_ab", "train_tokens_per_cpu_second"),
        ("  (B,T,V) logits, wall", "train_tokens_per_second_logits", "train_tokens_per_second"),
        ("  (B,T,V) logits, CPU", "train_tokens_per_cpu_second_logits", "train_tokens_per_cpu_second"),
        ("  packed logits, wall", "train_tokens_per_second_packed_loss", "train_tokens_per_second"),
        ("  packed logits, CPU", "train_tokens_per_cpu_second_packed_loss", "train_tokens_per_cpu_second"),
        ("greedy sent/s", "greedy_sentences_per_second", "greedy_sentences_per_second"),
        ("greedy sent/CPU-s", "greedy_sentences_per_cpu_second", "greedy_sentences_per_cpu_second"),
        ("beam-5 sent/s", "beam5_sentences_per_second", "beam5_sentences_per_second"),
        ("beam-5 sent/CPU-s", "beam5_sentences_per_cpu_second", "beam5_sentences_per_cpu_second"),
        ("peak RSS MiB, training", "peak_rss_mib_training", "peak_rss_mib_training"),
        ("  whole worker", "peak_rss_mib", "peak_rss_mib"), ("parameters", "parameters", "parameters"),
        ("  trained", "trained_parameters", "trained_parameters"),
        ("MFU", "mfu", "mfu"), ("  A/B: fused", "mfu_fused_ab", "mfu"), ("  (B,T,V) logits", "mfu_logits", "mfu"),
        ("  packed logits", "mfu_packed_loss", "mfu")]


def fmt(x: float | None, percent: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:.1%}" if percent else f"{x:,.3f}" if isinstance(x, float) and x < 10 else f"{x:,.0f}"


def print_table(results: dict[str, dict | None], peak: float, dtype: str) -> dict[str, dict[str, float | None]]:
    """Print the comparison, one column per implementation and one seqlab/peer ratio per peer;
    -> the ratios by peer and seqlab key."""
    seqlab = results.get("seqlab") or {}
    peers = {name: results.get(name) or {} for name in PEERS}
    print(f"\n{'':24}" + "".join(f"{IMPLS[name].label:>12}" for name in IMPLS)
          + "".join(f"{'seqlab/' + IMPLS[name].label.replace(' Marian', '').replace(' ', '-'):>16}"
                    for name in PEERS))
    ratios = {name: {} for name in PEERS}
    for label, key, peer_key in ROWS:
        cells = [fmt(result.get(column_key), key.startswith("mfu"))
                 for result, column_key in [(seqlab, key)] + [(peers[name], peer_key) for name in PEERS]]
        for name in PEERS:
            ratios[name][key] = ratio(seqlab.get(key), peers[name].get(peer_key))
        print(f"{label:24}" + "".join(f"{cell:>12}" for cell in cells)
              + "".join(f"{fmt(ratios[name][key]):>16}" for name in PEERS))
    print(f"MFU: useful FLOPs per CPU second / {peak:.1f} GFLOP/s ({dtype} torch.mm peak of one thread)")
    return ratios


def write_report(args: argparse.Namespace, requested: list[str], results: dict, ratios: dict, peaks: list[float],
                 start: float, load_before: tuple[float, float, float]) -> None:
    """The JSON record of a run (command, commit, machine, figures), written atomically; printed where it went."""
    peak = max(peaks)
    threads_variable = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
    report = {
        "command": " ".join(["PYTHONPATH=.", *threads_variable, sys.executable, *sys.argv]), "commit": git_commit(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "torch_threads": args.threads,
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                    "note": "shared 2-core machine; other jobs may run beside it (see loadavg)"},
        "dtype": args.dtype, "matmul_peak_gflops": peak, "matmul_peak_measurements": peaks,
        "wall_seconds": time.time() - start,
        "dims": DIMS, "peers_requested": requested, "ratios_seqlab_over_hf": ratios["hf"],
        "ratios_seqlab_over_peers": ratios, "results": results,
    }
    from seqlab.utils import atomic_write

    result_path = RESULT if args.dtype == "float32" else RESULT.with_name(f"{RESULT.stem}_bf16.json")
    with atomic_write(result_path) as handle:
        handle.write(json.dumps(report, indent=2) + "\n")
    print(f"load average before {load_before}, after {report['machine']['loadavg_after']}; wrote {result_path}")
    print("reproduce:", report["command"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=7, help="timed training steps (after 2 warm-up steps)")
    parser.add_argument("--batch-tokens", type=int, default=4000, help="target tokens of the training batch")
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--decode-length", type=int, default=25, help="every output has this many tokens")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the machine is shared)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="run every worker this many times, order alternating; figures are the medians")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated, of {','.join(PEERS)} (default: all; those not installed are n/a)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="bfloat16: training under autocast and decoding with bf16 weights, for every "
                             "implementation; MFU against the bf16 matmul peak; writes transformer_vs_hf_bf16.json")
    parser.add_argument("--worker", choices=list(IMPLS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    requested = [name.strip() for name in args.peers.split(",") if name.strip()]
    if set(requested) - set(PEERS):
        parser.error(f"--peers: unknown {sorted(set(requested) - set(PEERS))}; choose from {PEERS}")
    torch.set_num_threads(args.threads)
    if args.worker:
        Path(args.out).write_text(json.dumps(run_worker(args.worker, args)))
        return 0
    start, load_before = time.time(), os.getloadavg()
    dtype = getattr(torch, args.dtype)
    peaks = [matmul_peak_gflops(dtype=dtype)]
    order = ["seqlab", *importable_peers(requested)]
    rounds = []
    for round_index in range(args.rounds):  # alternate the order, so drifting load hits every implementation
        print(f"round {round_index + 1} of {args.rounds}", file=sys.stderr)
        rounds.append({impl: launch(impl, args) for impl in (order if round_index % 2 == 0 else order[::-1])})
    results = {impl: median_of_rounds([each[impl] for each in rounds]) for impl in order}
    results.update({name: None for name in PEERS if name not in results})  # not requested or not installed
    peaks.append(matmul_peak_gflops(dtype=dtype))  # before and after: the best is the least disturbed by other jobs
    peak = max(peaks)
    for result in results.values():
        for suffix in ("", "_fused_ab", "_logits", "_packed_loss"):
            if result and f"useful_gflops_per_cpu_second{suffix}" in result:
                result[f"mfu{suffix}"] = result[f"useful_gflops_per_cpu_second{suffix}"] / peak
    ratios = print_table(results, peak, args.dtype)
    write_report(args, requested, results, ratios, peaks, start, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
