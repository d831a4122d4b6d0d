"""Data-parallel training (seqlab/train/distributed.py): two gloo workers take the same updates as one process.

Each worker takes every second row of a batch; the summed losses and token counts are added across workers, so
the averaged gradient is the single-process gradient of the whole batch.  The oracle is the ordinary one-process
Trainer on the same batches: after the same updates the weights must agree (float reassociation only).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from seqlab.data.streams import LMBatch
from seqlab.tasks.language_model import LMObjective
from seqlab.contracts import Seq2SeqBatch
from seqlab.models.build import build_lm, build_seq2seq
from seqlab.models.rnn_lm import RNNLMConfig
from seqlab.models.rnn_seq2seq import RNNSeq2SeqConfig
from seqlab.models.transformer import TransformerConfig
from seqlab.train.distributed import Distributed, LossModule, free_port
from seqlab.tasks.translation import Seq2SeqObjective
from seqlab.train.trainer import TrainConfig, Trainer

VOCAB, BOS = 17, 2


def seq2seq_batch(lengths: list[tuple[int, int]], seed: int) -> Seq2SeqBatch:
    """Right-padded random pairs with these (source, target) lengths; targets start with <bos>."""
    generator = torch.Generator().manual_seed(seed)
    src_lens, tgt_lens = torch.tensor(lengths).T
    src_mask = torch.arange(int(src_lens.max()))[None] < src_lens[:, None]
    tgt_mask = torch.arange(int(tgt_lens.max()))[None] < tgt_lens[:, None]
    src = torch.randint(4, VOCAB, src_mask.shape, generator=generator).masked_fill(~src_mask, 0)
    tgt_out = torch.randint(4, VOCAB, tgt_mask.shape, generator=generator).masked_fill(~tgt_mask, 0)
    tgt_in = torch.cat([torch.full((len(lengths), 1), BOS), tgt_out[:, :-1]], dim=1).masked_fill(~tgt_mask, 0)
    return Seq2SeqBatch(src, src_mask, tgt_in, tgt_out, tgt_mask, torch.arange(len(lengths)))


def lm_batches() -> list[LMBatch]:
    """Two consecutive BPTT chunks of a 5-column stream: the LSTM carries its state from the first."""
    stream = torch.randint(4, VOCAB, (5, 13), generator=torch.Generator().manual_seed(3))
    return [LMBatch(stream[:, 0:6], stream[:, 1:7], first=True), LMBatch(stream[:, 6:12], stream[:, 7:13], False)]


# Seven pairs (uneven shards: 4 + 3 rows), then one pair (worker 1's shard is empty).
SEQ2SEQ_BATCHES = [seq2seq_batch([(5, 4), (3, 6), (6, 2), (2, 3), (4, 4), (1, 5), (6, 6)], seed=1),
                   seq2seq_batch([(4, 3)], seed=2)]
CASES = {
    "transformer": lambda: build_seq2seq("transformer", TransformerConfig(
        d_model=32, num_heads=4, ffn_size=64, num_encoder_layers=2, num_decoder_layers=2, dropout=0.0), VOCAB, VOCAB),
    "gru-additive": lambda: build_seq2seq("rnn", RNNSeq2SeqConfig(
        cell="gru", attention="additive", embedding_size=16, hidden_size=24, num_layers=2, dropout=0.0),
        VOCAB, VOCAB),
    "lstm-lm": lambda: build_lm("rnn", RNNLMConfig(cell="lstm", embedding_size=16, hidden_size=24), VOCAB),
}


def train_case(case: str, model_dir: Path, workers: Distributed, rows=lambda batch: batch) -> dict[str, torch.Tensor]:
    """Two SGD updates (gradient clipping on) of a fresh model on ``rows`` of each batch; returns its weights."""
    torch.manual_seed(0)
    model = CASES[case]()
    task, batches = (LMObjective(), lm_batches()) if case.endswith("-lm") else (Seq2SeqObjective(0.1), SEQ2SEQ_BATCHES)
    config = TrainConfig(optimizer="sgd", lr=0.5, clip_norm=0.5, progress=False)
    trainer = Trainer(model, task, config, model_dir, distributed=workers)
    for batch in batches:
        trainer.train_step(rows(batch))
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def worker(rank: int, world_size: int, port: int, case: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    workers = Distributed.from_env()
    weights = train_case(case, Path(out), workers)
    # every worker holds the same weights: DDP's averaged gradients and identical optimiser steps
    torch.save(weights, Path(out) / f"weights-{rank}.pt")
    workers.close()


@pytest.mark.parametrize("case", list(CASES))
def test_two_workers_update_like_one_process(case, tmp_path):
    mp.spawn(worker, args=(2, free_port(), case, str(tmp_path)), nprocs=2, join=True)
    alone = train_case(case, tmp_path / "alone", Distributed())
    for rank in range(2):
        together = torch.load(tmp_path / f"weights-{rank}.pt", weights_only=True)
        for name, value in alone.items():
            torch.testing.assert_close(together[name], value, rtol=1e-5, atol=1e-6, msg=f"{case}: {name}")


def test_the_updates_are_not_trivially_equal(tmp_path):
    """The oracle is live: one update on worker 0's rows alone (what forgetting the all-reduce would give)
    moves the weights elsewhere."""
    alone = train_case("transformer", tmp_path / "a", Distributed())
    half = train_case("transformer", tmp_path / "b", Distributed(), rows=Distributed(0, 2).shard)
    differences = [float((half[name] - value).abs().max()) for name, value in alone.items()]
    assert max(differences) > 1e-3


def test_shard_takes_interleaved_rows_and_keeps_flags():
    batch = lm_batches()[1]
    shards = [Distributed(rank, 2).shard(batch) for rank in range(2)]
    assert shards[0].inputs.tolist() == batch.inputs[[0, 2, 4]].tolist()
    assert shards[1].targets.tolist() == batch.targets[[1, 3]].tolist()
    assert all(shard.first is False for shard in shards)
    assert Distributed().shard(batch) is batch  # one process: untouched


def test_an_empty_shard_still_gives_every_parameter_a_gradient():
    model = CASES["transformer"]()
    empty = Distributed(1, 2).shard(SEQ2SEQ_BATCHES[1])
    loss, count = LossModule(model, Seq2SeqObjective())(empty)
    loss.backward()
    assert count == 0 and float(loss.detach()) == 0.0
    assert all(parameter.grad is not None and not parameter.grad.any() for parameter in model.parameters())


def test_a_grouped_caption_batch_is_split_by_image_with_all_its_captions():
    from seqlab.tasks.captioning import CaptionBatch

    images = torch.arange(3.0).view(3, 1, 1, 1)  # image i holds the value i
    image_index = torch.tensor([0, 0, 1, 2, 2, 2])
    ids = torch.arange(6).view(6, 1)  # caption row r holds r
    batch = CaptionBatch(images, ids, ids + 10, torch.ones(6, 1, dtype=torch.bool), torch.tensor([7, 7, 8, 9, 9, 9]),
                         image_index)
    parts = [batch.shard(rank, 2) for rank in range(2)]
    assert [p.images.flatten().tolist() for p in parts] == [[0.0, 2.0], [1.0]]
    assert [p.tgt_in_ids.flatten().tolist() for p in parts] == [[0, 1, 3, 4, 5], [2]]
    for part in parts:  # every caption still points at its own image
        assert part.images[part.image_index].flatten().tolist() == [float(image_index[r]) for r in
                                                                    part.tgt_in_ids.flatten().tolist()]
    assert parts[0].indices.tolist() == [7, 7, 9, 9, 9]
