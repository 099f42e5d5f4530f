import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from gaussvae.atomic import write_json
from gaussvae.errors import TrainingDiverged
from gaussvae.extract import extract
from gaussvae.model import load_model
from gaussvae.normalize import compute_stats
from gaussvae.store import read_gaussians, write_gaussians
from gaussvae.train import TrainPaths, train
from tests.conftest import REPO, make_params, tiny_raw_params


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, tiny_images):
    cfg = make_params(**{"extract.steps": 4}).extract
    data = extract(tiny_images, cfg, torch.device("cpu"))
    folder = tmp_path_factory.mktemp("data")
    write_gaussians(folder / "g.h5", data)
    stats = compute_stats(data.gaussians[data.select("train")], 1e-6)
    write_json(folder / "stats.json", stats.to_json())
    return folder, read_gaussians(folder / "g.h5"), stats


def _paths(folder):
    return TrainPaths(folder / "model.pt", folder / "ckpt.pt", folder / "tb",
                      folder / "history.tsv", folder / "train.json")


def test_training_writes_everything_and_is_deterministic(tmp_path, tiny_data):
    _, data, stats = tiny_data
    params = make_params(**{"train.epochs": 3})
    runs = []
    for name in ("a", "b"):
        paths = _paths(tmp_path / name)
        runs.append(train(params, data, stats, paths, torch.device("cpu")))
    assert runs[0] == runs[1]
    # byte-identical model files, so DVC sees an unchanged output after an identical rerun
    model_bytes = [(tmp_path / name / "model.pt").read_bytes() for name in ("a", "b")]
    assert model_bytes[0] == model_bytes[1]
    paths = _paths(tmp_path / "a")
    assert paths.model.exists() and paths.checkpoint.exists()
    assert any(p.name.startswith("events.out.tfevents") for p in paths.log_dir.iterdir())
    header, *rows = paths.history.read_text().splitlines()
    assert header.split("\t")[:2] == ["epoch", "beta"] and len(rows) == 3
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["epochs_run"] == 3
    assert all(np.isfinite(v) for v in metrics["best"]["val"].values())
    model, loaded_stats, _ = load_model(paths.model, torch.device("cpu"))
    assert np.array_equal(loaded_stats.mean, stats.mean)


def test_max_beta_changes_the_model(tmp_path, tiny_data):
    _, data, stats = tiny_data
    a = train(make_params(**{"max_beta": 0.0}), data, stats, _paths(tmp_path / "a"),
              torch.device("cpu"))
    b = train(make_params(**{"max_beta": 50.0}), data, stats, _paths(tmp_path / "b"),
              torch.device("cpu"))
    assert a["best"]["val"] != b["best"]["val"]


def test_render_loss_trains_and_changes_the_model(tmp_path, tiny_data):
    _, data, stats = tiny_data
    plain = train(make_params(), data, stats, _paths(tmp_path / "a"), torch.device("cpu"))
    with_render = train(make_params(**{"train.render_loss_weight": 10.0}), data, stats,
                        _paths(tmp_path / "b"), torch.device("cpu"))
    assert np.isfinite(with_render["best"]["val"]["recon"])
    assert with_render["best"]["val"] != plain["best"]["val"]


def test_grid_architecture_trains_saves_and_reloads(tmp_path, tiny_data):
    _, data, stats = tiny_data
    paths = _paths(tmp_path)
    metrics = train(make_params(**{"train.arch": "conv2d_grid"}), data, stats, paths,
                    torch.device("cpu"))
    assert np.isfinite(metrics["best"]["val"]["recon"])
    model, _, _ = load_model(paths.model, torch.device("cpu"))
    assert type(model).__name__ == "GridVAE"


def test_nan_loss_stops_with_epoch_and_step(tmp_path, tiny_data):
    _, data, stats = tiny_data
    data.gaussians = data.gaussians.copy()
    data.gaussians[data.select("train")[0], 0, 0] = np.nan
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step \d+"):
        train(make_params(**{"train.batch_size": 64}), data, stats, _paths(tmp_path),
              torch.device("cpu"))


def _stage_cmd(folder, params_file):
    return [sys.executable, str(REPO / "stages" / "train.py"), "--params", str(params_file),
            "--gaussians", str(folder / "g.h5"), "--stats", str(folder / "stats.json"),
            "--model", "model.pt", "--checkpoint", "ckpt.pt", "--logdir", "tb",
            "--history", "history.tsv", "--metrics", "train.json"]


def test_killed_training_resumes_to_the_same_metrics(tmp_path, tiny_data):
    folder, _, _ = tiny_data
    raw = tiny_raw_params()
    raw["train"].update(epochs=30, early_stopping_patience=100)
    raw["prepare"]["num_images"] = 40
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    straight = tmp_path / "straight"
    straight.mkdir()
    subprocess.run(_stage_cmd(folder, params_file), cwd=straight, env=env, check=True,
                   capture_output=True)

    killed = tmp_path / "killed"
    killed.mkdir()
    proc = subprocess.Popen(_stage_cmd(folder, params_file), cwd=killed, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "ckpt.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and torch.load(ckpt, weights_only=False)["epoch"] >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    epoch_at_kill = torch.load(ckpt, weights_only=False)["epoch"]
    assert 3 <= epoch_at_kill < 30
    assert not (killed / "train.json").exists()

    resumed = subprocess.run(_stage_cmd(folder, params_file), cwd=killed, env=env, check=True,
                             capture_output=True, text=True)
    assert "resuming from" in resumed.stderr
    assert json.loads((killed / "train.json").read_text()) == json.loads(
        (straight / "train.json").read_text())
    assert (killed / "history.tsv").read_text() == (straight / "history.tsv").read_text()


@pytest.mark.slow
def test_two_process_ddp_training_on_cpu(tmp_path, tiny_data):
    """The torchrun path (DistributedDataParallel, gloo on CPU) trains and writes metrics."""
    folder, _, _ = tiny_data
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(tiny_raw_params()))
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [torchrun, "--standalone", "--nproc_per_node=2", *_stage_cmd(folder, params_file)[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "train.json").read_text())
    assert metrics["epochs_run"] == 2
    assert all(np.isfinite(v) for v in metrics["best"]["val"].values())


def test_kept_model_was_trained_at_max_beta(tmp_path, tiny_data):
    # With early epochs at a smaller beta, selection ignores them: the kept model's epoch is
    # one trained at max_beta, even if a warm-up epoch had the lower validation loss.
    _, data, stats = tiny_data
    params = make_params(**{"train.epochs": 5, "train.beta_warmup_epochs": 3,
                            "max_beta": 5000.0, "train.early_stopping_patience": 10})
    metrics = train(params, data, stats, _paths(tmp_path), torch.device("cpu"))
    history = _history(tmp_path / "history.tsv")
    assert metrics["best_epoch"] >= 4 and metrics["best_epoch_beta"] == 5000.0
    assert history[metrics["best_epoch"] - 1]["beta"] == 5000.0
    # the run did have warm-up epochs to choose from
    assert [r["beta"] < 5000.0 for r in history] == [True, True, True, False, False]


def test_a_budget_inside_the_warm_up_says_so(tmp_path, tiny_data, caplog):
    _, data, stats = tiny_data
    params = make_params(**{"train.epochs": 2, "train.beta_warmup_epochs": 5})
    with caplog.at_level("WARNING"):
        metrics = train(params, data, stats, _paths(tmp_path), torch.device("cpu"))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "ends before the beta warm-up completes" in warnings[0]
    assert metrics["best_epoch"] == 2 and metrics["best_epoch_beta"] < params.max_beta


def _history(path):
    header, *rows = path.read_text().splitlines()
    names = header.split("\t")
    return [dict(zip(names, map(float, row.split("\t")), strict=True)) for row in rows]
