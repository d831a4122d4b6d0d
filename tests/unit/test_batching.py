"""BatchSampler (every example once per epoch, determinism in (seed, epoch), token budget) and collate_pairs
(padding, masks, <bos>/<eos> placement)."""

import numpy as np
import pytest
import torch

from seqlab.data.batching import BatchSampler, collate_pairs
from seqlab.contracts import PAD_ID

RNG = np.random.default_rng(0)
LENGTHS = RNG.integers(1, 40, size=1000)  # 1000 examples of 1..39 tokens


def flat(batches):
    return np.concatenate(batches)


SAMPLERS = {
    "sentences, bucketed": dict(batch_size=32),
    "sentences, unbucketed": dict(batch_size=32, bucket=False),
    "tokens, bucketed": dict(max_tokens=200),
    "tokens, unbucketed": dict(max_tokens=200, bucket=False),
}


@pytest.mark.parametrize("options", SAMPLERS.values(), ids=SAMPLERS.keys())
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_example_exactly_once_per_epoch(options, shuffle):
    sampler = BatchSampler(LENGTHS, shuffle=shuffle, seed=3, **options)
    for epoch in range(3):
        batches = sampler.epoch_batches(epoch)
        assert sorted(flat(batches).tolist()) == list(range(len(LENGTHS)))
        assert all(len(batch) > 0 for batch in batches)


@pytest.mark.parametrize("options", SAMPLERS.values(), ids=SAMPLERS.keys())
def test_epochs_differ_and_seed_epoch_fixes_the_order(options):
    sampler = BatchSampler(LENGTHS, seed=5, **options)
    epoch_0 = [b.tolist() for b in sampler.epoch_batches(0)]
    assert epoch_0 == [b.tolist() for b in BatchSampler(LENGTHS, seed=5, **options).epoch_batches(0)]
    assert epoch_0 != [b.tolist() for b in sampler.epoch_batches(1)]
    assert epoch_0 != [b.tolist() for b in BatchSampler(LENGTHS, seed=6, **options).epoch_batches(0)]
    # not only the batch order changes: the batches themselves are regrouped
    assert {tuple(sorted(b)) for b in epoch_0} != {tuple(sorted(b)) for b in sampler.epoch_batches(1)}


def test_sentence_batches_are_full_except_one():
    sampler = BatchSampler(LENGTHS, batch_size=32)
    sizes = [len(b) for b in sampler.epoch_batches(0)]
    assert sorted(sizes)[1:] == [32] * (len(sizes) - 1) and sorted(sizes)[0] == 1000 - 32 * 31
    assert len(sampler) == len(sizes) == 32


@pytest.mark.parametrize("bucket", [True, False])
def test_token_budget_is_respected(bucket):
    sampler = BatchSampler(LENGTHS, max_tokens=200, bucket=bucket)
    for batch in sampler.epoch_batches(0) + sampler.epoch_batches(1):
        assert len(batch) * LENGTHS[batch].max() <= 200


def test_greedy_token_batches_by_hand():
    """In corpus order with budget 12: [3, 3, 4] costs 3*4 = 12; adding 5 would cost 4*5 = 20."""
    sampler = BatchSampler([3, 3, 4, 5, 2, 6], max_tokens=12, bucket=False, shuffle=False)
    assert [b.tolist() for b in sampler.epoch_batches(0)] == [[0, 1, 2], [3, 4], [5]]


def test_an_over_long_example_forms_a_batch_alone():
    lengths = np.array([5, 5, 50, 5, 5, 5, 60, 5])
    for shuffle in (True, False):
        for bucket in (True, False):
            batches = BatchSampler(lengths, max_tokens=20, bucket=bucket, shuffle=shuffle).epoch_batches(0)
            assert [2] in [b.tolist() for b in batches] and [6] in [b.tolist() for b in batches]
            assert sorted(flat(batches).tolist()) == list(range(8))


def test_bucketing_without_shuffle_sorts_by_length_and_saves_padding():
    sampler = BatchSampler(LENGTHS, batch_size=32, shuffle=False)
    order = flat(sampler.epoch_batches(0))
    assert np.all(np.diff(LENGTHS[order]) >= 0)

    def padding(batches):
        return sum(len(b) * LENGTHS[b].max() - LENGTHS[b].sum() for b in batches)

    bucketed = padding(BatchSampler(LENGTHS, batch_size=32).epoch_batches(0))
    unbucketed = padding(BatchSampler(LENGTHS, batch_size=32, bucket=False).epoch_batches(0))
    assert bucketed < unbucketed / 3


def test_no_shuffle_no_bucket_is_corpus_order():
    batches = BatchSampler(LENGTHS, batch_size=100, bucket=False, shuffle=False).epoch_batches(7)
    assert flat(batches).tolist() == list(range(1000))


def test_bad_sizes_and_empty_corpus():
    with pytest.raises(ValueError):
        BatchSampler(LENGTHS, batch_size=0)
    with pytest.raises(ValueError):
        BatchSampler(LENGTHS, max_tokens=-1)
    assert BatchSampler([], batch_size=4).epoch_batches(0) == []
    assert BatchSampler([], max_tokens=10).epoch_batches(0) == []


# ------------------------------------------------------------------------------------------------ collate_pairs
SRC = [np.array([5, 6, 7]), np.array([8]), np.array([9, 10, 11, 12, 13]), np.array([], dtype=np.int64)]
TGT = [np.array([20, 21]), np.array([22, 23, 24, 25]), np.array([26]), np.array([0, 27])]  # a literal id 0


def test_collate_pairs_shapes_masks_and_special_tokens():
    indices = [2, 0, 3, 1]
    batch = collate_pairs(SRC, TGT, indices, bos_id=2, eos_id=3)
    assert batch.src_ids.shape == (4, 6) and batch.tgt_in_ids.shape == batch.tgt_out_ids.shape == (4, 5)
    assert batch.indices.tolist() == indices
    for row, i in enumerate(indices):
        src, tgt = SRC[i].tolist(), TGT[i].tolist()
        assert batch.src_mask[row].sum() == len(src) + 1
        assert batch.src_ids[row, :len(src) + 1].tolist() == src + [3]  # the source ends with <eos>
        assert batch.tgt_mask[row].sum() == len(tgt) + 1
        assert batch.tgt_in_ids[row, :len(tgt) + 1].tolist() == [2] + tgt  # starts with <bos>
        assert batch.tgt_out_ids[row, :len(tgt) + 1].tolist() == tgt + [3]  # ends with <eos>
        # masks are a prefix of True, and everything after it is padding
        assert batch.src_mask[row].tolist() == [True] * (len(src) + 1) + [False] * (6 - len(src) - 1)
        assert torch.all(batch.src_ids[row][~batch.src_mask[row]] == PAD_ID)
        assert torch.all(batch.tgt_in_ids[row][~batch.tgt_mask[row]] == PAD_ID)
        assert torch.all(batch.tgt_out_ids[row][~batch.tgt_mask[row]] == PAD_ID)
    assert batch.num_tgt_tokens == sum(len(TGT[i]) + 1 for i in indices)


def test_collate_pairs_dtypes_and_a_literal_pad_id_stays_a_real_token():
    batch = collate_pairs(SRC, TGT, [3])
    assert batch.src_ids.dtype == torch.long and batch.src_mask.dtype == torch.bool
    assert batch.tgt_out_ids[0].tolist() == [0, 27, 3] and batch.tgt_mask[0].tolist() == [True, True, True]
    assert batch.src_ids[0].tolist() == [3]  # an empty source is just <eos>


def test_sampler_and_collate_together_cover_the_corpus_once():
    lengths = [max(len(s), len(t)) + 2 for s, t in zip(SRC, TGT)]
    seen = []
    for indices in BatchSampler(lengths, max_tokens=14).epoch_batches(0):
        batch = collate_pairs(SRC, TGT, indices)
        assert batch.src_ids.shape[0] * max(batch.src_ids.shape[1], batch.tgt_in_ids.shape[1]) <= 14 or \
            len(indices) == 1
        seen += batch.indices.tolist()
    assert sorted(seen) == [0, 1, 2, 3]
