import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gaussvae.core.distributed import Dist
from gaussvae.core.errors import TrainingDiverged
from gaussvae.vae.checkpoints import save_torch
from gaussvae.vae.job import gaussian_job
from gaussvae.vae.model import VAEConfig, build_model
from gaussvae.vae.model_file import load_model
from gaussvae.vae.trainer import (
    TrainPaths,
    cosine_lr_factor,
    epoch_order,
    make_trainer,
    seed_noise,
    train_gaussian_vae,
)
from tests.conftest import REPO, make_params, tiny_raw_params

CPU = torch.device("cpu")


def _paths(folder):
    return TrainPaths(folder / "model.safetensors", folder / "ckpt.pt", folder / "tb",
                      folder / "history.tsv", folder / "train.json")


def test_training_writes_everything_and_is_deterministic(tmp_path, tiny_data):
    _, data, stats = tiny_data
    params = make_params(**{"train.epochs": 3})
    runs = []
    for name in ("a", "b"):
        paths = _paths(tmp_path / name)
        runs.append(train_gaussian_vae(params, data, stats, paths, Dist()))
    assert runs[0] == runs[1]
    # byte-identical model files, so DVC sees an unchanged output after an identical rerun
    model_bytes = [(tmp_path / name / "model.safetensors").read_bytes() for name in ("a", "b")]
    assert model_bytes[0] == model_bytes[1]
    paths = _paths(tmp_path / "a")
    assert paths.model.exists() and paths.checkpoint.exists()
    assert "scaler" in torch.load(paths.checkpoint, weights_only=True)  # {} without AMP
    assert any(p.name.startswith("events.out.tfevents") for p in paths.log_dir.iterdir())
    header, *rows = paths.history.read_text().splitlines()
    assert header.split("\t")[:2] == ["epoch", "beta"] and len(rows) == 3
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["epochs_run"] == 3
    assert all(np.isfinite(v) for v in metrics["best"]["val"].values())
    model, loaded_stats, _ = load_model(paths.model, torch.device("cpu"))
    assert np.array_equal(loaded_stats.mean, stats.mean)


def test_palette_model_keeps_its_colour_statistics_in_its_file(tmp_path, tiny_data):
    """A palette model z-scores its colours with the training statistics: they travel in the
    model file, so the loaded model decodes exactly what the trained one did."""
    _, data, stats = tiny_data
    params = make_params(**{"train.epochs": 1, "train.palette_colours": 4})
    paths = _paths(tmp_path)
    train_gaussian_vae(params, data, stats, paths, Dist())
    model, _, file = load_model(paths.model, torch.device("cpu"))
    assert file.model_config["palette_colours"] == 4
    feat_mean = torch.as_tensor(stats.mean)[..., 5:].expand_as(model.palette.feat_mean)
    assert torch.equal(model.palette.feat_mean, feat_mean)
    z = torch.randn(2, params.latent_dim)
    rebuilt = build_model(VAEConfig.from_dict(file.model_config), stats).eval()
    rebuilt.load_state_dict(file.state_dict)
    assert torch.equal(model.decode(z), rebuilt.decode(z))


def test_ranks_share_one_shuffle_and_draw_their_own_noise():
    def order_and_noise(epoch, rank):
        order = epoch_order(21, seed=3, epoch=epoch, rank=rank, world=2)
        seed_noise(3, epoch, rank)
        return order, torch.randn(4)

    (order0, noise0), (order1, noise1) = order_and_noise(5, 0), order_and_noise(5, 1)
    assert len(order0) == len(order1) == 10  # equal shares: every rank runs the same steps
    assert not set(order0.tolist()) & set(order1.tolist())  # disjoint shares of one shuffle
    assert not torch.equal(noise0, noise1)  # each rank its own reparameterization noise
    again, noise_again = order_and_noise(5, 1)
    assert torch.equal(again, order1) and torch.equal(noise_again, noise1)  # resumable
    assert not torch.equal(order_and_noise(6, 0)[0], order0)  # a new shuffle every epoch
    solo = epoch_order(21, seed=3, epoch=5, rank=0, world=1)
    assert sorted(solo.tolist()) == list(range(21))


def test_resume_restores_the_gradient_scaler(tmp_path, tiny_data):
    """Under mixed precision the scaler's scale and growth count are part of the state: resumed
    without them, the first steps after a resume would be scaled differently."""
    _, data, stats = tiny_data
    params, paths = make_params(), _paths(tmp_path)
    train_gaussian_vae(params, data, stats, paths, Dist())
    ckpt = torch.load(paths.checkpoint, weights_only=True)
    ckpt["finished"] = False
    ckpt["scaler"] = {"scale": 1024.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                      "growth_interval": 2000, "_growth_tracker": 7}
    save_torch(paths.checkpoint, ckpt)
    trainer = make_trainer(params, gaussian_job(params, data, stats, None, None, CPU), Dist())
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=1.0)
    assert trainer.config_hash() == ckpt["config_hash"]
    state = trainer.resume(paths.checkpoint, ckpt["config_hash"])
    assert state.epoch == 2
    assert trainer.scaler.get_scale() == 1024.0 and trainer.scaler._get_growth_tracker() == 7


def test_max_beta_changes_the_model(tmp_path, tiny_data):
    _, data, stats = tiny_data
    a = train_gaussian_vae(make_params(**{"max_beta": 0.0}), data, stats, _paths(tmp_path / "a"),
              Dist())
    b = train_gaussian_vae(make_params(**{"max_beta": 50.0}), data, stats, _paths(tmp_path / "b"),
              Dist())
    assert a["best"]["val"] != b["best"]["val"]


def test_render_loss_trains_and_changes_the_model(tmp_path, tiny_data):
    _, data, stats = tiny_data
    cpu = Dist()
    plain = train_gaussian_vae(make_params(), data, stats, _paths(tmp_path / "a"), cpu)
    with_render = train_gaussian_vae(make_params(**{"train.render_loss_weight": 10.0}), data,
                                     stats, _paths(tmp_path / "b"), cpu)
    assert np.isfinite(with_render["best"]["val"]["recon"])
    assert with_render["best"]["val"] != plain["best"]["val"]


def test_grid_architecture_trains_saves_and_reloads(tmp_path, tiny_data):
    _, data, stats = tiny_data
    paths = _paths(tmp_path)
    metrics = train_gaussian_vae(make_params(**{"train.arch": "conv2d_grid"}), data, stats, paths,
                    Dist())
    assert np.isfinite(metrics["best"]["val"]["recon"])
    model, _, _ = load_model(paths.model, torch.device("cpu"))
    assert type(model).__name__ == "GridVAE"


def test_nan_loss_stops_with_epoch_and_step(tmp_path, tiny_data):
    _, shared, stats = tiny_data
    data = dataclasses.replace(shared, gaussians=shared.gaussians.copy())  # others share it
    data.gaussians[data.select("train")[0], 0, 0] = np.nan
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step \d+"):
        train_gaussian_vae(make_params(**{"train.batch_size": 64}), data, stats, _paths(tmp_path),
              Dist())


def _stage_cmd(folder, params_file):
    return [sys.executable, str(REPO / "stages" / "train.py"), "--params", str(params_file),
            "--gaussians", str(folder / "g.h5"), "--stats", str(folder / "stats.json"),
            "--model", "model.safetensors", "--checkpoint", "ckpt.pt", "--logdir", "tb",
            "--history", "history.tsv", "--metrics", "train.json"]


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every process below it (torchrun starts its workers in sessions
    of their own, so killing its process group would leave them running)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    todo = [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        with contextlib.suppress(ProcessLookupError):
            os.kill(current, signal.SIGKILL)


def _kill_when(proc, ckpt, min_epoch, kill):
    """Wait until the checkpoint holds ``min_epoch`` epochs, then ``kill()``; the epoch it
    holds afterwards."""
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["epoch"] >= min_epoch:
            kill()
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    return torch.load(ckpt, weights_only=True)["epoch"]


def test_killed_training_resumes_to_the_same_metrics(tmp_path, tiny_data):
    folder, _, _ = tiny_data
    raw = tiny_raw_params()
    raw["train"].update(epochs=30, early_stopping_patience=100)
    raw["prepare"]["num_images"] = 40
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}

    straight = tmp_path / "straight"
    straight.mkdir()
    subprocess.run(_stage_cmd(folder, params_file), cwd=straight, env=env, check=True,
                   capture_output=True)

    killed = tmp_path / "killed"
    killed.mkdir()
    proc = subprocess.Popen(_stage_cmd(folder, params_file), cwd=killed, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    epoch_at_kill = _kill_when(proc, killed / "ckpt.pt", 3,
                               lambda: proc.send_signal(signal.SIGKILL))
    assert 3 <= epoch_at_kill < 30
    assert not (killed / "train.json").exists()

    resumed = subprocess.run(_stage_cmd(folder, params_file), cwd=killed, env=env, check=True,
                             capture_output=True, text=True)
    assert "resuming from" in resumed.stderr
    assert json.loads((killed / "train.json").read_text()) == json.loads(
        (straight / "train.json").read_text())
    assert (killed / "history.tsv").read_text() == (straight / "history.tsv").read_text()


@pytest.mark.slow
def test_two_process_ddp_training_resumes_after_sigkill(tmp_path, tiny_data):
    """The torchrun path (DistributedDataParallel, gloo on CPU): every process of a 2-process
    run is SIGKILLed; the rerun resumes (rank 0 reads the checkpoint and sends it to rank 1)
    and ends with the uninterrupted 2-process run's metrics and history."""
    folder, _, _ = tiny_data
    raw = tiny_raw_params()
    raw["train"].update(epochs=30, early_stopping_patience=100)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [torchrun, "--standalone", "--nproc_per_node=2", *_stage_cmd(folder, params_file)[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    straight = tmp_path / "straight"
    straight.mkdir()
    result = subprocess.run(cmd, cwd=straight, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((straight / "train.json").read_text())
    assert metrics["epochs_run"] == 30
    assert all(np.isfinite(v) for v in metrics["best"]["val"].values())

    killed = tmp_path / "killed"
    killed.mkdir()
    proc = subprocess.Popen(cmd, cwd=killed, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    epoch_at_kill = _kill_when(proc, killed / "ckpt.pt", 3, lambda: kill_tree(proc.pid))
    assert 3 <= epoch_at_kill < 30
    assert not (killed / "train.json").exists()
    resumed = subprocess.run(cmd, cwd=killed, env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr
    assert json.loads((killed / "train.json").read_text()) == metrics
    assert (killed / "history.tsv").read_text() == (straight / "history.tsv").read_text()

def test_kept_model_was_trained_at_max_beta(tmp_path, tiny_data):
    # With early epochs at a smaller beta, selection ignores them: the kept model's epoch is
    # one trained at max_beta, even if a warm-up epoch had the lower validation loss.
    _, data, stats = tiny_data
    params = make_params(**{"train.epochs": 5, "train.beta_warmup_epochs": 3,
                            "max_beta": 5000.0, "train.early_stopping_patience": 10})
    metrics = train_gaussian_vae(params, data, stats, _paths(tmp_path), Dist())
    history = _history(tmp_path / "history.tsv")
    assert metrics["best_epoch"] >= 4 and metrics["best_epoch_beta"] == 5000.0
    assert history[metrics["best_epoch"] - 1]["beta"] == 5000.0
    # the run did have warm-up epochs to choose from
    assert [r["beta"] < 5000.0 for r in history] == [True, True, True, False, False]


def test_a_budget_inside_the_warm_up_says_so(tmp_path, tiny_data, caplog):
    _, data, stats = tiny_data
    params = make_params(**{"train.epochs": 2, "train.beta_warmup_epochs": 5})
    with caplog.at_level("WARNING"):
        metrics = train_gaussian_vae(params, data, stats, _paths(tmp_path), Dist())
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "ends before the beta warm-up completes" in warnings[0]
    assert metrics["best_epoch"] == 2 and metrics["best_epoch_beta"] < params.max_beta


def _history(path):
    header, *rows = path.read_text().splitlines()
    names = header.split("\t")
    return [dict(zip(names, map(float, row.split("\t")), strict=True)) for row in rows]


def test_an_epoch_visits_every_example_once_under_a_drawn_symmetry():
    order = epoch_order(50, 0, 3, 0, 1, symmetries=8)
    assert sorted((order // 8).tolist()) == list(range(50))  # each example once
    assert len(set((order % 8).tolist())) > 4  # under various symmetries
    again = epoch_order(50, 0, 3, 0, 1, symmetries=8)
    assert torch.equal(order, again) and not torch.equal(order, epoch_order(50, 0, 4, 0, 1, 8))


def test_cosine_schedule_warms_up_then_decays_to_zero():
    factors = [cosine_lr_factor(s, 100, 10) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0  # linear over 10 steps
    assert all(a >= b for a, b in zip(factors[9:], factors[10:], strict=False))
    assert factors[55] == pytest.approx(0.5) and factors[-1] < 0.001


def test_a_cosine_run_ends_near_zero_learning_rate(tmp_path, tiny_data):
    _, data, stats = tiny_data
    params = make_params(**{"train.epochs": 4, "train.lr_schedule": "cosine",
                            "train.lr_warmup_epochs": 1})
    train_gaussian_vae(params, data, stats, _paths(tmp_path), Dist())
    header, *rows = (tmp_path / "history.tsv").read_text().splitlines()
    lr = [float(r.split("\t")[header.split("\t").index("lr")]) for r in rows]
    base = params.train.learning_rate
    assert lr[0] == pytest.approx(base)  # the warm-up's last step
    assert lr[0] > lr[1] > lr[2] > lr[3] and lr[3] < 0.1 * base
