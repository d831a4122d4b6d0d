"""Data-parallel training on PyTorch's own engine (``torch.distributed`` + ``DistributedDataParallel``).

Launch N worker processes, each holding a full copy of the model::

    torchrun --nproc_per_node 2 -m seqlab train CONFIG.yaml      # or:  seqlab train CONFIG.yaml --nproc 2

Every worker builds the same batches (they are deterministic in the seed and epoch) and takes every N-th row of
each one (``shard``), so an update of N workers sees the same sentences as one process does and a recipe keeps its
meaning (batch size, learning rate) whatever N is.  Losses are sums with a token count (STYLE habit 12): the
workers add their sums and counts, each scales its backward by N / (total count), and DDP's gradient *average*
then equals the gradient of (summed loss / total tokens) over the whole batch — exactly what one process computes.

The trainer touches this module in three named places: ``Distributed.wrap`` (the model, once), ``reduce_step``
(the sums, every update) and ``broadcast`` (validation results and the wall-clock limit, decided on worker 0,
so that all workers stop at the same update).  Only worker 0 writes files.

Without ``WORLD_SIZE`` in the environment (or with ``WORLD_SIZE=1``) everything here is a no-op.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
from typing import Any, Iterator

import torch
import torch.distributed as dist

from seqlab.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Distributed:
    """Who this process is among the workers; ``Distributed()`` is the single-process case."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Distributed":
        """Read torchrun's variables and join the process group (gloo on the CPU, NCCL on CUDA)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls()
        if "RANK" not in os.environ:
            raise ConfigError(f"WORLD_SIZE={world_size} but no RANK: start the workers with torchrun or --nproc")
        info = cls(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(info.local_rank)
            dist.init_process_group(backend)
        return info

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per worker: cuda -> cuda:LOCAL_RANK; the CPU is shared."""
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Worker 0 runs the block first (it may write a data cache or clear a model directory), then the rest."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """DDP around ``module``: parameters broadcast from worker 0, gradients averaged during backward."""
        if not self.enabled:
            return module
        device_ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

    def shard(self, batch: Any) -> Any:
        """This worker's rows of ``batch``: rows rank, rank + N, rank + 2N, ... of every (B, ...) tensor field.

        Interleaved rows keep a length-sorted batch balanced across workers, and give a language model's worker
        the same stream columns at every chunk (its carried hidden state stays valid)."""
        if not self.enabled:
            return batch
        if hasattr(batch, "shard"):  # a batch whose fields are not all row-aligned splits itself
            return batch.shard(self.rank, self.world_size)
        if not dataclasses.is_dataclass(batch):
            raise ConfigError(f"distributed training: cannot split a batch of type {type(batch).__name__}")
        rows = batch_rows(batch)
        picked = {field.name: _take_rows(getattr(batch, field.name), rows, self.rank, self.world_size)
                  for field in dataclasses.fields(batch)}
        return type(batch)(**picked)

    def reduce_step(self, loss_sum: torch.Tensor, count: int) -> tuple[float, int]:
        """(summed loss, token count) over all workers: one all-reduce of two numbers per update."""
        if not self.enabled:
            return float(loss_sum.detach()), count
        totals = torch.tensor([float(loss_sum.detach()), float(count)], dtype=torch.float64)
        dist.all_reduce(totals)
        return float(totals[0]), int(totals[1])

    def broadcast(self, value: Any) -> Any:
        """Worker 0's ``value`` (plain data) on every worker."""
        if not self.enabled:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def batch_rows(batch: Any) -> int:
    """B of a dataclass batch: the first dimension of its first tensor field."""
    for field in dataclasses.fields(batch):
        value = getattr(batch, field.name)
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return value.size(0)
    raise ConfigError(f"distributed training: {type(batch).__name__} has no tensor to split")


def _take_rows(value: Any, rows: int, rank: int, world_size: int) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.size(0) == rows:
        return value[rank::world_size]
    return value  # flags (an LM chunk's ``first``), scalars: the same on every worker


class LossModule(torch.nn.Module):
    """``task.loss(model, batch)`` as a module's ``forward``: DDP prepares its gradient reduction in ``forward``,
    while the tasks call other methods of the model (``target_hidden``, ``hidden_states``).  A worker whose shard
    of a small batch is empty adds 0 x every parameter, so it still takes part in the reduction."""

    def __init__(self, model: torch.nn.Module, task: Any):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, batch: Any) -> tuple[torch.Tensor, int]:
        if dataclasses.is_dataclass(batch) and batch_rows(batch) == 0:
            return sum(parameter.sum() for parameter in self.model.parameters()) * 0.0, 0
        return self.task.loss(self.model, batch)


# ------------------------------------------------------------------------------------------------ the launcher
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(argv: list[str], nproc: int) -> int:
    """``seqlab ARGV`` in ``nproc`` local worker processes (what ``torchrun --nproc_per_node`` does on one
    machine), each with 1/nproc of the CPU's threads.  Returns the first non-zero exit code; a failing worker
    stops the others, so no worker waits forever for a partner that died."""
    threads = max(1, (os.cpu_count() or 1) // nproc)
    base = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(nproc),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}
    workers = [subprocess.Popen([sys.executable, "-m", "seqlab", *argv],
                                env={**base, "RANK": str(rank), "LOCAL_RANK": str(rank)})
               for rank in range(nproc)]
    code = 0
    try:
        while workers:
            for worker in list(workers):
                status = worker.poll()
                if status is None:
                    continue
                workers.remove(worker)
                if status != 0 and code == 0:
                    code = status if status > 0 else 1  # killed by a signal
                    for other in workers:
                        other.terminate()
            if workers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    workers[0].wait(timeout=0.2)
    finally:
        for worker in workers:
            worker.kill()
    return code
