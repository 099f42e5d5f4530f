"""Ranks agree: two CPU processes (gloo) started here rather than by torchrun, so that a rank
that hangs is seen as a hang (torchrun would kill it when its peer fails), each rank's outcome
can be read back, and each rank can be given its own data or its own disk."""

import dataclasses
import json
import os
import socket
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from gaussvae.core.distributed import setup_distributed
from gaussvae.core.errors import TrainingDiverged
from gaussvae.gaussians.chunks import Chunk, ChunkStore
from gaussvae.gaussians.extraction import extract, run_key
from gaussvae.vae.trainer import TrainPaths, train_gaussian_vae
from tests.conftest import make_params

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_ranks(fn, world: int, args: tuple, timeout: float = 180.0) -> None:
    """Run fn(rank, port, world, *args) in ``world`` processes; fail if they do not all end."""
    ctx = mp.start_processes(fn, args=(_free_port(), world, *args), nprocs=world, join=False)
    deadline = time.time() + timeout
    while not ctx.join(timeout=1.0):
        if time.time() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"ranks still running after {timeout:.0f}s: a rank is waiting forever")


def _join_group(rank: int, port: int, world: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)


def _train_and_report(rank, port, world, params, data_per_rank, stats, folder):
    """train_gaussian_vae() on this rank's data; writes what happened to folder/rank<r>.json."""
    _join_group(rank, port, world)
    paths = TrainPaths(*(folder / f"{name}" for name in
                         ("model.safetensors", "ckpt.pt", "tb", "history.tsv", "train.json")))
    dist = setup_distributed(torch.device("cpu"))
    try:
        metrics = train_gaussian_vae(params, data_per_rank[rank], stats, paths, dist)
        outcome = {"metrics": metrics}
    except TrainingDiverged as err:
        outcome = {"diverged": str(err)}
    dist.close()
    (folder / f"rank{rank}.json").write_text(json.dumps(outcome))


def _outcomes(folder, world):
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(world)]


def test_nan_on_one_rank_stops_every_rank_at_the_same_step(tmp_path, tiny_data):
    _, data, stats = tiny_data
    data = dataclasses.replace(data, gaussians=data.gaussians.copy())
    data.gaussians[data.select("train")[5], 0, 0] = np.nan  # in one rank's share only
    _run_ranks(_train_and_report, 2, (make_params(), [data, data], stats, tmp_path))
    messages = [o.get("diverged") for o in _outcomes(tmp_path, 2)]
    assert messages[0] is not None and messages[0] == messages[1], messages
    assert "loss became nan on one of 2 processes at epoch 1, step" in messages[0]


def test_every_rank_follows_rank_0s_validation(tmp_path, tiny_data):
    """Rank 1's validation data is NaN (as if its GPU's numbers differed): deciding for itself,
    it would cut the learning rate and stop at epoch 2 while rank 0 went on, and the ranks
    would wait for each other forever. Rank 0 decides, so the run is the one where both ranks
    hold the same data."""
    _, data, stats = tiny_data
    other = dataclasses.replace(data, gaussians=data.gaussians.copy())
    other.gaussians[other.select("val")] = np.nan
    params = make_params(**{"train.epochs": 4, "train.early_stopping_patience": 2,
                            "train.lr_patience": 1})
    runs = []
    for name, rank1_data in (("same", data), ("other", other)):
        folder = tmp_path / name
        folder.mkdir()
        _run_ranks(_train_and_report, 2, (params, [data, rank1_data], stats, folder))
        outcomes = _outcomes(folder, 2)
        assert outcomes[1] == {"metrics": {}}, outcomes[1]
        runs.append({**outcomes[0]["metrics"], "history": (folder / "history.tsv").read_text()})
    assert runs[0]["epochs_run"] == 4
    assert runs[0] == runs[1]


def _extract_and_report(rank, port, world, images, settings, folders, out):
    """extract() on this rank with its own resume folder (machines that share no disk)."""
    _join_group(rank, port, world)
    dist = setup_distributed(torch.device("cpu"))
    result = extract(images, settings, dist.device, resume_dir=folders[rank], chunk_images=8,
                     dist=dist)
    dist.close()
    if rank == 0:
        np.save(out, result.psnr)
    else:
        assert result is None


def test_ranks_without_a_shared_disk_resume_from_each_others_chunks(tmp_path, tiny_images):
    """Rank 0's disk holds chunk 8-16, rank 1's chunks 8-16 and 24-32, each marked by its PSNR:
    every saved chunk is delivered once, by the lowest rank that has it, and not fitted again;
    the others are fitted and gathered in order."""
    settings = make_params(**{"extract.steps": 3}).extract
    cpu = torch.device("cpu")
    single = extract(tiny_images, settings, cpu)
    key = run_key(tiny_images, settings, cpu, 8)
    folders = [tmp_path / "rank0", tmp_path / "rank1"]
    marks = {(0, 8): 100.0, (1, 8): 101.0, (1, 24): 124.0}
    for (rank, start), mark in marks.items():
        ChunkStore(folders[rank], key).save(start, Chunk(
            single.gaussians[start:start + 8], np.full(8, mark, np.float32)))
    _run_ranks(_extract_and_report, 2, (tiny_images, settings, folders, tmp_path / "psnr.npy"))
    psnr = np.load(tmp_path / "psnr.npy")
    expected = single.psnr.copy()
    expected[8:16], expected[24:32] = 100.0, 124.0
    assert np.array_equal(psnr, expected)
