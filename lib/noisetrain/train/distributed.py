"""Data-parallel training: one process per GPU, each on its shard of the training data.

A launcher starts the processes and tells each who it is through the environment: torchrun
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``; ``MASTER_ADDR`` / ``MASTER_PORT`` of its own store) or
slurm's srun (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``; ``MASTER_ADDR`` /
``MASTER_PORT`` from the job script, or derived when every task runs on one node). Without either,
the run is one plain process: no process group, and every collective here returns at once, so a
one-process run is exactly what it was.

``train.batch_size`` is the whole step's batch: each of N processes takes 1/N of it, and
DistributedDataParallel averages the classifier's gradients, so a step is the whole batch's step.
BatchNorm normalises with each process's own part of the batch (no SyncBatchNorm) and DDP keeps
rank 0's running statistics.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from noisetrain.errors import ConfigError

TORCHRUN = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
SLURM = ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")
LOOPBACK = "127.0.0.1"
# A port every task of a slurm job derives alike from the job id (another job on the node: another port).
SLURM_PORT_BASE, SLURM_PORT_RANGE = 15000, 20000
# Rank 0 alone measures the held-out accuracy and writes checkpoints while the others wait.
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; the collectives every process calls
    alike (no-ops for one process)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    init_method: str = "env://"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes, in one all-reduce."""
        if self.size == 1:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64, device=_comm_device())
        dist.all_reduce(total)
        return total.tolist()

    def average_gradients(self, parameters: Iterable[torch.Tensor]) -> None:
        """Replace each gradient by its mean over the processes (one all-reduce of them all)."""
        if self.size == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.size
        for grad, part in zip(grads, flat.split([g.numel() for g in grads])):
            grad.copy_(part.view_as(grad))

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every process."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """Every process's ``obj``, by rank (its tensors moved to the CPU, where a file keeps them)."""
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, to_cpu(obj))
        return out

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block before the others (a download or a cache the others then read)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The classifier under DistributedDataParallel (itself for one process)."""
        if self.size == 1:
            return model
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


SINGLE = World()


def unwrap(model: nn.Module) -> nn.Module:
    """The module DDP wraps: for what one process does alone (held-out accuracy, the model file,
    ANT's generator steps against the fixed classifier)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def world_from_env(env: Mapping[str, str] | None = None) -> World:
    """The world torchrun or srun describe in ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    if any(key in env for key in TORCHRUN):
        rank, size, local_rank = _ints(env, TORCHRUN, "torchrun")
        if size > 1:
            missing = [key for key in ("MASTER_ADDR", "MASTER_PORT") if not env.get(key)]
            if missing:
                raise ConfigError(f"{' and '.join(missing)} not set while WORLD_SIZE={size}: launch with torchrun "
                                  "(it sets them), or set them to rank 0's host and a free port")
        return World(rank, size, local_rank, "env://")
    if any(key in env for key in SLURM):
        rank, size, local_rank = _ints(env, SLURM, "srun")
        if size == 1:
            return SINGLE
        return World(rank, size, local_rank, f"tcp://{_slurm_address(env)}")
    return SINGLE


def _ints(env: Mapping[str, str], keys: tuple[str, str, str], launcher: str) -> tuple[int, int, int]:
    """(rank, world size, local rank) from ``keys``, checked."""
    missing = [key for key in keys if key not in env]
    if missing:
        raise ConfigError(f"{launcher}'s process environment is incomplete: {', '.join(missing)} not set "
                          f"(a distributed run needs all of {', '.join(keys)})")
    try:
        rank, size, local_rank = (int(env[key]) for key in keys)
    except ValueError:
        raise ConfigError(f"{launcher}'s {', '.join(f'{k}={env[k]!r}' for k in keys)} are not all integers") from None
    if size < 1 or not 0 <= rank < size or local_rank < 0:
        raise ConfigError(f"{launcher}'s {keys[0]}={rank}, {keys[1]}={size}, {keys[2]}={local_rank} do not fit: "
                          f"need 0 <= {keys[0]} < {keys[1]} and {keys[2]} >= 0")
    return rank, size, local_rank


def _slurm_address(env: Mapping[str, str]) -> str:
    """host:port of rank 0's store: MASTER_ADDR / MASTER_PORT, else this node and a port from the job id."""
    nodes = env.get("SLURM_STEP_NUM_NODES", env.get("SLURM_NNODES"))
    host = env.get("MASTER_ADDR") or (LOOPBACK if nodes == "1" else None)
    if host is None:
        raise ConfigError("srun started tasks on several nodes but MASTER_ADDR is not set: export "
                          'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1) before srun')
    port = env.get("MASTER_PORT")
    if not port:
        job = env.get("SLURM_JOB_ID", "")
        if not job.isdigit():
            raise ConfigError("srun started several tasks but neither MASTER_PORT nor SLURM_JOB_ID is set: "
                              "export MASTER_PORT=<a free port, the same for every task> before srun")
        port = str(SLURM_PORT_BASE + int(job) % SLURM_PORT_RANGE)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"MASTER_PORT={port!r} is not a port number (1 to 65535)")
    return f"{host}:{port}"


def device_for(world: World, device: torch.device) -> torch.device:
    """This process's device: its own GPU, cuda:LOCAL_RANK, when several processes train on CUDA."""
    if world.size == 1 or device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if world.local_rank >= count:
        raise ConfigError(f"process {world.rank} has local rank {world.local_rank} but its node has {count} GPU(s): "
                          f"start at most {count} processes per node (torchrun --nproc_per_node {count})")
    return torch.device("cuda", world.local_rank)


@contextlib.contextmanager
def joined(world: World, device: torch.device) -> Iterator[World]:
    """Within the block this process is in the world's process group (NCCL on GPUs, gloo on the
    CPU); it leaves the group after. Nothing for one process."""
    if world.size == 1:
        yield world
        return
    options = {}
    if device.type == "cuda":
        torch.cuda.set_device(device)
        options["device_id"] = device  # NCCL's communicator on this GPU from the start
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method=world.init_method,
                            rank=world.rank, world_size=world.size, timeout=TIMEOUT, **options)
    try:
        yield world
    finally:
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    """Where the tensors of a collective live: NCCL's on this process's GPU, gloo's on the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def to_cpu(obj):
    """``obj`` (nested dicts, lists, tuples) with its tensors on the CPU: state to gather and save."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {key: to_cpu(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(value) for value in obj)
    return obj
