"""The dynamic batching worker: answers go to their own requests, batches respect their size and options, one
failing batch fails only its own items, and length-aware batches never pass over the oldest item."""

import asyncio
import threading

import pytest

from seqlab.serve import batching
from seqlab.serve.batching import BatchWorker, _Item


def recording_worker(**options):
    batches = []
    lock = threading.Lock()

    def function(key, items):
        with lock:
            batches.append((key, list(items)))
        if "boom" in items:
            raise RuntimeError("boom")
        return [f"{key}:{item.upper()}" for item in items]

    return BatchWorker(function, **options), batches


def test_answers_go_back_to_their_own_requests_in_order():
    worker, batches = recording_worker(max_batch=4, max_wait_ms=50)

    async def main():
        return await asyncio.gather(*(worker.run("k", [f"a{i}", f"b{i}"]) for i in range(5)))

    results = asyncio.run(main())
    worker.close()
    assert results == [[f"k:A{i}", f"k:B{i}"] for i in range(5)]
    assert all(len(items) <= 4 for _, items in batches) and sum(len(items) for _, items in batches) == 10
    assert any(len(items) > 2 for _, items in batches)  # requests were batched together


def test_items_with_other_options_are_never_batched_together():
    worker, batches = recording_worker(max_batch=16, max_wait_ms=50)
    futures = worker.submit("greedy", ["x", "y"]) + worker.submit("beam", ["z"]) + worker.submit("greedy", ["w"])
    assert [f.result(timeout=10) for f in futures] == ["greedy:X", "greedy:Y", "beam:Z", "greedy:W"]
    worker.close()
    assert all(len({key}) == 1 for key, _ in batches)
    assert sorted(key for key, _ in batches) == ["beam", "greedy"]


def test_a_failing_batch_fails_only_its_items():
    worker, _ = recording_worker(max_batch=8, max_wait_ms=20)
    bad = worker.submit("bad", ["boom", "x"])
    good = worker.submit("good", ["y"])
    assert good[0].result(timeout=10) == "good:Y"
    for future in bad:
        with pytest.raises(RuntimeError, match="boom"):
            future.result(timeout=10)
    assert worker.submit("good", ["z"])[0].result(timeout=10) == "good:Z"  # the worker goes on
    worker.close()


def test_close_answers_what_is_queued():
    worker, _ = recording_worker(max_batch=2, max_wait_ms=1000)
    futures = worker.submit("k", ["a", "b", "c"])
    worker.close()
    assert [f.result(timeout=1) for f in futures] == ["k:A", "k:B", "k:C"]


def test_length_aware_batches_keep_the_oldest_and_its_nearest_lengths():
    worker = BatchWorker(lambda key, items: items, max_batch=3, size_of=len)
    lengths = [5, 1, 9, 4, 6, 20, 5]
    waiting = [_Item("k", "x" * n) for n in lengths]
    chosen = worker._choose(waiting)
    worker.close()
    assert waiting[0] in chosen and len(chosen) == 3
    assert sorted(len(item.payload) for item in chosen) == [4, 5, 5]
    with pytest.raises(ValueError, match="max_batch"):
        BatchWorker(lambda key, items: items, max_batch=0)


def test_an_item_whose_request_was_cancelled_is_not_decoded():
    worker, batches = recording_worker(max_batch=8, max_wait_ms=200)
    kept, dropped = worker.submit("k", ["keep", "drop"])
    assert dropped.cancel()  # as asyncio cancels it when its request task is cancelled
    assert kept.result(timeout=10) == "k:KEEP"
    worker.close()
    assert [items for _, items in batches] == [["keep"]]


def test_after_batch_runs_once_per_decoded_batch():
    calls = []
    worker = BatchWorker(lambda key, items: items, max_batch=2, max_wait_ms=20, after_batch=lambda: calls.append(1))

    async def main():
        return await asyncio.gather(*(worker.run("k", [i]) for i in range(5)))

    assert asyncio.run(main()) == [[i] for i in range(5)]
    worker.close()
    assert len(calls) == 3  # five items in batches of at most two


def resident_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(batching._MALLOC_TRIM is None, reason="malloc_trim is glibc's; other C libraries lack it")
def test_freed_memory_goes_back_to_the_system():
    chunks = [bytearray(b"x" * 65536) for _ in range(3000)]  # ~190 MB of heap, below glibc's mmap threshold
    keep = chunks[-1]  # the top of the heap stays in use, so glibc cannot give the pages back by itself
    del chunks
    held = resident_mb()
    batching.return_freed_memory()
    assert resident_mb() < held - 100, (held, resident_mb())
    assert keep[0] == ord("x")
