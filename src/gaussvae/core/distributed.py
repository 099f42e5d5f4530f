"""This process's place among the processes torchrun started, and the collectives train and
extract use.

torchrun (torch.distributed's elastic launcher) starts one process per GPU, on one machine or on
several (its rendezvous), and sets RANK, LOCAL_RANK and WORLD_SIZE. Without torchrun the same
code runs as a world of one where every collective returns its input, so the single-process path
has no special cases. The backend follows the device the process computes on, not whether a GPU
exists: NCCL moves CUDA tensors only, gloo CPU tensors (``train.device: cpu`` on a GPU host).
Objects travel through the process group, never through files: machines need not share a
filesystem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as td

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    """Rank, world size and device of this process; ``grouped`` under torchrun (collectives go
    through the process group), ``owner`` when this process started the group."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    grouped: bool = False
    owner: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that decides, reads checkpoints and writes outputs."""
        return self.rank == 0

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over every rank, in place."""
        if self.grouped:
            td.all_reduce(tensor, op=td.ReduceOp.SUM)
        return tensor

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (what the others pass is ignored)."""
        if not self.grouped:
            return obj
        box = [obj]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.grouped:
            return [obj]
        out: list[Any] = [None] * self.world
        td.all_gather_object(out, obj)
        return out

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj``, in rank order, on rank 0; None on the others."""
        if not self.grouped:
            return [obj]
        out: list[Any] | None = [None] * self.world if self.is_main else None
        td.gather_object(obj, out, dst=0)
        return out

    def close(self) -> None:
        """Wait for every rank, then end the group if this process started it."""
        if self.owner:
            td.barrier()
            td.destroy_process_group()


def setup_distributed(device: torch.device) -> Dist:
    """This process under torchrun, its group started with the backend ``device`` needs (a CUDA
    device becomes this process's own GPU, LOCAL_RANK); a world of one without torchrun."""
    if "WORLD_SIZE" not in os.environ:
        return Dist(device=device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owner = not td.is_initialized()
    if owner:
        td.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(td.get_rank(), td.get_world_size(), device, grouped=True, owner=owner)
