"""On a CUDA GPU: the CPU's renders, gradients and fit quality; mixed-precision training that
stays finite and resumes after SIGKILL; torchrun on one GPU (NCCL) for extract and train.

Skipped without CUDA. `python bench/gpu_check.py` runs them (`pytest -m gpu`) on a GPU machine.
CUDA is not bit-exact (atomic adds, cuDNN; docs/gpu.md, "Determinism"), so results are compared with
tolerances here, never bytes.
"""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from gaussvae.core.atomic import write_json
from gaussvae.core.distributed import Dist
from gaussvae.core.store import read_gaussians, write_images
from gaussvae.gaussians.dense_render import render_autograd
from gaussvae.gaussians.extraction import extract
from gaussvae.gaussians.render import render
from gaussvae.vae.normalization import compute_stats
from gaussvae.vae.trainer import TrainPaths, train_gaussian_vae
from tests.conftest import REPO, make_params, tiny_raw_params
from tests.test_render import _random_gaussians
from tests.test_train import _kill_when, _stage_cmd

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
CUDA = torch.device("cuda")
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")


def _history(path):
    header, *rows = path.read_text().splitlines()
    return header.split("\t"), [[float(v) for v in row.split("\t")] for row in rows]


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_render_on_cuda_matches_cpu(dtype, atol):
    """Default size: 64 x 64 images, 512 Gaussians, window 9, sigma in the fit's range."""
    g = _random_gaussians(4, 512, (0.4 / 64, 3.0 / 64), dtype=dtype)
    on_cpu = render(g, 64, 9)
    on_cuda = render(g.to(CUDA), 64, 9).cpu()
    assert torch.allclose(on_cuda, on_cpu, atol=atol)


def test_hand_written_backward_on_cuda_matches_autograd_in_float64():
    g = _random_gaussians(3, 64, (0.03, 0.1), seed=1)
    target = torch.rand(3, 16, 16, 3, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(2))

    def grad(renderer, device):
        x = g.to(device).requires_grad_(True)
        loss = ((renderer(x, 16, 7) - target.to(device)) ** 2).sum()
        return torch.autograd.grad(loss, x)[0].cpu()

    hand = grad(render, CUDA)
    assert torch.allclose(hand, grad(render_autograd, CUDA), atol=1e-10)
    assert torch.allclose(hand, grad(render, torch.device("cpu")), atol=1e-10)


def test_fit_on_cuda_reaches_the_cpu_psnr(tiny_images):
    cfg = make_params().extract
    on_cpu = extract(tiny_images, cfg, torch.device("cpu"))
    on_cuda = extract(tiny_images, cfg, CUDA)
    assert abs(float(on_cuda.psnr.mean()) - float(on_cpu.psnr.mean())) < 0.05
    assert np.allclose(on_cuda.psnr, on_cpu.psnr, atol=0.5)


def test_amp_training_stays_finite_and_checkpoints_the_scaler(tmp_path, tiny_data):
    _, data, stats = tiny_data
    paths = TrainPaths(tmp_path / "model.safetensors", tmp_path / "ckpt.pt", tmp_path / "tb",
                       tmp_path / "history.tsv", tmp_path / "train.json")
    params = make_params(**{"train.epochs": 4, "train.device": "cuda"})
    metrics = train_gaussian_vae(params, data, stats, paths, Dist(device=CUDA))
    assert metrics["epochs_run"] == 4
    _, rows = _history(paths.history)
    assert len(rows) == 4 and np.isfinite(rows).all()
    scaler = torch.load(paths.checkpoint, weights_only=True)["scaler"]
    assert scaler["scale"] > 0  # the mixed-precision scaler's state, for an exact resume


def test_killed_amp_training_resumes(tmp_path, tiny_data):
    folder, _, _ = tiny_data
    raw = tiny_raw_params()
    raw["train"].update(epochs=30, early_stopping_patience=100, device="cuda")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen(_stage_cmd(folder, params_file), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    epoch_at_kill = _kill_when(proc, tmp_path / "ckpt.pt", 3,
                               lambda: proc.send_signal(signal.SIGKILL))
    assert 3 <= epoch_at_kill < 30
    resumed = subprocess.run(_stage_cmd(folder, params_file), cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at epoch {epoch_at_kill}" in resumed.stderr  # "resuming from ckpt.pt at epoch k"
    metrics = json.loads((tmp_path / "train.json").read_text())
    assert metrics["epochs_run"] == 30
    _, rows = _history(tmp_path / "history.tsv")
    assert len(rows) == 30 and np.isfinite(rows).all()


def test_torchrun_on_one_gpu_extracts_and_trains(tmp_path, tiny_images):
    raw = tiny_raw_params()
    raw["extract"]["device"] = raw["train"]["device"] = "cuda"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    write_images(tmp_path / "images.h5", tiny_images)
    launch = [TORCHRUN, "--standalone", "--nproc_per_node=1"]
    extracted = subprocess.run(
        [*launch, str(REPO / "stages" / "extract.py"), "--params", "params.yaml",
         "--images", "images.h5", "--out", "g.h5", "--resume", "chunks", "--chunk-images", "8"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert extracted.returncode == 0, extracted.stderr[-2000:]
    assert "on 1 process(es)" in extracted.stdout
    data = read_gaussians(tmp_path / "g.h5")
    on_cpu = extract(tiny_images, make_params().extract, torch.device("cpu"))
    assert abs(float(data.psnr.mean()) - float(on_cpu.psnr.mean())) < 0.05
    assert not (tmp_path / "chunks").exists()

    stats = compute_stats(data.gaussians[data.select("train")], 1e-6)
    write_json(tmp_path / "stats.json", stats.to_json())
    trained = subprocess.run([*launch, *_stage_cmd(tmp_path, tmp_path / "params.yaml")[1:]],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-2000:]
    metrics = json.loads((tmp_path / "train.json").read_text())
    assert metrics["epochs_run"] == 2
    assert all(np.isfinite(v) for v in metrics["best"]["val"].values())
