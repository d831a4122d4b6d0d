"""Incremental decoding's key/value cache: ``KVCache`` (one layer's keys and values so far) and the ``BufferPool``
its reorders copy into (beam search reorders every layer's cache at every step).
"""

from __future__ import annotations

import weakref

import torch


class BufferPool:
    """Cache buffers that no decoder state refers to any more, kept for the next ``KVCache.reorder`` to copy into.

    Beam search reorders every layer's cache at every step.  Copying into freshly allocated memory first touches
    its pages: page faults, which on this VM made the copy run at 1-7 GB/s against ~15 GB/s into memory used
    before (docs/PERFORMANCE.md, run 8).  A reorder's new buffers are handed back here when the last cache on
    them is gone (``recycle``), and the next reorder takes a pair of the same shape, so a beam search ping-pongs
    between two sets of buffers.  At most ``capacity`` buffers are kept; the pool dies with the decoding.
    """

    def __init__(self, capacity: int = 16):
        self.capacity, self.free = capacity, []

    def take(self, like: torch.Tensor, *shape: int) -> torch.Tensor:
        """A buffer of ``shape`` with ``like``'s dtype and device: a recycled one if the pool has one."""
        for index, buffer in enumerate(self.free):
            if buffer.shape == shape and buffer.dtype == like.dtype and buffer.device == like.device:
                return self.free.pop(index)
        return like.new_empty(shape)

    def recycle(self, owner: "_Written", *buffers: torch.Tensor) -> None:
        """Take ``buffers`` back once ``owner`` (shared by every cache on them) is garbage."""
        weakref.finalize(owner, self._put, buffers)

    def _put(self, buffers: tuple[torch.Tensor, ...]) -> None:
        self.free.extend(buffers[:max(self.capacity - len(self.free), 0)])


class _Written:
    """What every cache on one pair of buffers shares: how many positions any of them has written (a weakref
    target, so the buffers can go back to their ``BufferPool`` when the last such cache is gone)."""

    __slots__ = ("count", "__weakref__")

    def __init__(self, count: int):
        self.count = count


class KVCache:
    """One layer's self-attention keys and values of the positions decoded so far (incremental decoding).

    Stored time-major in buffers of ``capacity`` positions, (capacity, B, H, Dh), so that a decoding step
    appends in place (it writes one position; ``torch.cat`` copied the whole cache at every step: 7-11 % of a
    step, docs/PERFORMANCE.md) and a reorder (beam search) copies the t filled positions of the chosen rows once,
    into buffers from the state's ``BufferPool``.  ``keys`` / ``values`` are (B, H, t, Dh) views, which the
    attention matmuls read without a copy; they are valid while their cache is (a reordered buffer is reused
    once no cache refers to it).

    Caches behave as values: ``append`` writes into the shared buffer only at its first unwritten position
    (``_written`` counts what any cache on the buffer has written), so an older cache stays valid; appending to
    an older cache, past the capacity, or with autograd recording (in-place writes would change tensors saved
    for backward) copies into a new buffer instead.
    """

    def __init__(self, key_buffer: torch.Tensor, value_buffer: torch.Tensor, length: int, written: _Written,
                 pool: BufferPool | None = None):
        self.key_buffer, self.value_buffer, self.length = key_buffer, value_buffer, length
        self._written, self._pool = written, pool

    @classmethod
    def empty(cls, batch_size: int, num_heads: int, head_dim: int, like: torch.Tensor, capacity: int = 32,
              pool: BufferPool | None = None) -> "KVCache":
        """An empty cache on ``like``'s device and dtype; ``pool``: where its reorders take their buffers (one
        per decoder state, shared by its layers)."""
        buffer = like.new_empty(capacity, batch_size, num_heads, head_dim)
        return cls(buffer, torch.empty_like(buffer), 0, _Written(0), pool)

    @property
    def keys(self) -> torch.Tensor:
        return self.key_buffer[:self.length].permute(1, 2, 0, 3)  # (B, H, t, Dh)

    @property
    def values(self) -> torch.Tensor:
        return self.value_buffer[:self.length].permute(1, 2, 0, 3)

    def __iter__(self):  # k, v = cache
        return iter((self.keys, self.values))

    def append(self, k: torch.Tensor, v: torch.Tensor) -> "KVCache":
        """k, v (B, H, T, Dh) of the next T positions -> the cache of length t + T."""
        start, end = self.length, self.length + k.size(2)
        k, v = k.permute(2, 0, 1, 3), v.permute(2, 0, 1, 3)  # (T, B, H, Dh)
        if torch.is_grad_enabled() and (k.requires_grad or v.requires_grad):
            return KVCache(torch.cat([self.key_buffer[:start], k]), torch.cat([self.value_buffer[:start], v]), end,
                           _Written(end), self._pool)
        key_buffer, value_buffer, written = self.key_buffer, self.value_buffer, self._written
        if written.count != start or end > key_buffer.size(0):
            capacity = max(2 * key_buffer.size(0), end)
            key_buffer, value_buffer = self._copy_into(capacity, key_buffer), self._copy_into(capacity, value_buffer)
            written = _Written(start)
        key_buffer[start:end], value_buffer[start:end] = k, v
        written.count = end
        return KVCache(key_buffer, value_buffer, end, written, self._pool)

    def _copy_into(self, capacity: int, buffer: torch.Tensor) -> torch.Tensor:
        grown = buffer.new_empty(capacity, *buffer.shape[1:])
        grown[:self.length] = buffer[:self.length]
        return grown

    def reorder(self, index: torch.Tensor) -> "KVCache":
        """Row i of the result is row ``index[i]``: one copy of the filled positions."""
        old = (self.key_buffer, self.value_buffer)
        if torch.is_grad_enabled() and self.key_buffer.requires_grad:  # out= is not differentiable
            buffers = [buffer[:self.length].index_select(1, index) for buffer in old]
            return KVCache(*buffers, self.length, _Written(self.length), self._pool)
        flats = []  # (capacity, B', H*Dh) each: a faster copy than through the 4-d layout
        for buffer in old:
            flat = buffer.view(buffer.size(0), buffer.size(1), -1)
            shape = (flat.size(0), index.numel(), flat.size(2))
            flats.append(flat.new_empty(shape) if self._pool is None else self._pool.take(flat, *shape))
            torch.index_select(flat[:self.length], 1, index, out=flats[-1][:self.length])
        written = _Written(self.length)
        if self._pool is not None:
            self._pool.recycle(written, *flats)
        buffers = [flat.view(flat.size(0), flat.size(1), *buffer.shape[2:]) for flat, buffer in zip(flats, old)]
        return KVCache(*buffers, self.length, written, self._pool)
