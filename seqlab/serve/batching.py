"""Dynamic batching: requests that arrive close together are decoded together, by one worker thread per model.

A request is split into items (one per sentence); an item waits at most ``max_wait_ms`` for companions, then the
worker takes up to ``max_batch`` items that share one set of options (a beam-5 sentence is never searched beside a
greedy one) and hands them to the model's function in one call.  Each answer goes back to its own request's
future.  One thread per model keeps PyTorch's intra-op threads from being oversubscribed by concurrent requests;
the event loop only waits.

The function must give an item the same answer whatever it is batched with; the model adapters guarantee that
(see ``seqlab.serve.models``) and ``tests/unit/test_serve_batching.py`` checks it.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

BatchFunction = Callable[[Hashable, list[Any]], list[Any]]  # (options, items) -> one result per item


@dataclass
class _Item:
    options: Hashable
    payload: Any
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class BatchWorker:
    """One model's queue and decoding thread.  ``submit`` from any thread; ``await run(...)`` from the loop."""

    def __init__(self, function: BatchFunction, max_batch: int = 64, max_wait_ms: float = 10.0,
                 on_batch: Callable[[int], None] | None = None, size_of: Callable[[Any], int] | None = None,
                 after_batch: Callable[[], None] | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch: must be >= 1, got {max_batch}")
        self.function, self.max_batch, self.max_wait = function, max_batch, max_wait_ms / 1000.0
        self.on_batch = on_batch or (lambda size: None)
        self.after_batch = after_batch or (lambda: None)
        self.size_of = size_of  # an item's length: a batch then holds items of similar lengths (less padding)
        self.queue: queue.Queue[_Item | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="seqlab-batch-worker", daemon=True)
        self.thread.start()

    def depth(self) -> int:
        return self.queue.qsize()

    def submit(self, options: Hashable, payloads: Sequence[Any]) -> list[Future]:
        items = [_Item(options, payload) for payload in payloads]
        for item in items:
            self.queue.put(item)
        return [item.future for item in items]

    async def run(self, options: Hashable, payloads: Sequence[Any]) -> list[Any]:
        """The results of ``payloads`` (in order), decoded in whatever batches the worker forms."""
        futures = [asyncio.wrap_future(future) for future in self.submit(options, payloads)]
        return list(await asyncio.gather(*futures))

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self.queue.put(None)
        self.thread.join()

    def _loop(self) -> None:
        waiting: list[_Item] = []  # taken off the queue, not yet decoded (other options than the last batch's)
        while True:
            if not waiting:
                item = self.queue.get()
                if item is None:
                    return
                waiting.append(item)
            deadline = waiting[0].arrived + self.max_wait
            stop = False
            while len(waiting) < self.max_batch * 4:  # gather what arrives before the oldest item's deadline
                try:
                    item = self.queue.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                waiting.append(item)
            waiting = self._decode_next(waiting)
            while stop and waiting:  # close(): what was queued before it is answered, then the thread ends
                waiting = self._decode_next(waiting)
            if stop:
                return

    def _decode_next(self, waiting: list[_Item]) -> list[_Item]:
        """Decode the next batch of ``waiting``; return the items left waiting."""
        batch = self._choose(waiting)
        chosen = set(map(id, batch))
        self._decode(batch[0].options, batch)
        return [item for item in waiting if id(item) not in chosen]

    def _choose(self, waiting: list[_Item]) -> list[_Item]:
        """The next batch: the oldest item and up to ``max_batch - 1`` others with its options; with ``size_of``,
        the run of neighbours in length around the oldest whose lengths are closest (the oldest is never passed
        over, so no item waits behind a stream of better-fitting ones)."""
        oldest = waiting[0]
        same = [item for item in waiting if item.options == oldest.options]
        if self.size_of is None or len(same) <= self.max_batch:
            return same[: self.max_batch]
        same.sort(key=lambda item: self.size_of(item.payload))
        sizes = [self.size_of(item.payload) for item in same]
        at = same.index(oldest)
        starts = range(max(0, at - self.max_batch + 1), min(at, len(same) - self.max_batch) + 1)
        best = min(starts, key=lambda start: sizes[start + self.max_batch - 1] - sizes[start])
        return same[best: best + self.max_batch]

    def _decode(self, options: Hashable, batch: list[_Item]) -> None:
        # an item whose request is gone (the client left, or shutdown's grace period cancelled it) is not decoded
        batch = [item for item in batch if item.future.set_running_or_notify_cancel()]
        if not batch:
            return
        self.on_batch(len(batch))
        try:
            results = self.function(options, [item.payload for item in batch])
        except Exception as error:  # the requests in this batch fail; the worker (and other requests) go on
            for item in batch:
                item.future.set_exception(error)
            return
        for item, result in zip(batch, results):
            item.future.set_result(result)
        self.after_batch()


def return_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing elsewhere).  A batch's
    tensors are freed when it is answered, but glibc keeps the pages of the decoding thread's arena for reuse, so
    a server's resident memory would rise to its largest batch and stay there; trimming after each batch (well
    under a millisecond beside a batch's second of decoding) keeps it at what is live."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


_LIBC = ctypes.util.find_library("c")
_MALLOC_TRIM = getattr(ctypes.CDLL(_LIBC), "malloc_trim", None) if _LIBC else None
