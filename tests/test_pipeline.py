"""End to end: the real dvc binary on a copy of this repository in a temporary git repo."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, tiny_raw_params

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _run(args, cwd, env):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    if not (BIN / "dvc").exists():
        pytest.fail(f"dvc is not installed beside {sys.executable}; pip install -e '.[test]'")
    work = tmp_path_factory.mktemp("pipeline") / "repo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = REPO / rel
        if src.is_file() and not rel.startswith(("data/", "metrics/")) and rel != "dvc.lock":
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / rel)
    raw = tiny_raw_params()
    raw["train"]["symmetries"] = 4  # the symmetries stage and augmented batches, for real
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    # The sample metric's network on a few paintings (its recipe trains on thousands).
    stages = work / "baselines/dvc.yaml"
    stages.write_text(stages.read_text().replace("--metrics metrics/feature_net.json",
                                                 "--metrics metrics/feature_net.json "
                                                 "--images 64 --epochs 1"))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1"}
    _run(["git", "init", "-q"], work, env)
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "tiny copy"], work, env)
    return work, env


def test_repro_then_experiment_then_metrics_diff(repo):
    work, env = repo
    _run(["dvc", "repro"], work, env)
    _run(["dvc", "repro", "baselines/dvc.yaml"], work, env)
    for out in ("data/images.h5", "data/gaussians.h5", "data/norm_stats.json",
                "data/train/model.safetensors", "metrics/train.json", "metrics/eval.json",
                "metrics/extract.json", "metrics/codecs.json", "metrics/plots/reconstructions.png",
                "metrics/plots/prior_samples.png", "metrics/plots/type_losses.png",
                "metrics/plots/interpolation.png", "baselines/metrics/eval.json",
                "baselines/metrics/plots/reconstructions.png", "baselines/metrics/pca.json",
                "baselines/metrics/samples.json", "baselines/metrics/plots/sample_metric.png",
                "baselines/metrics/rate_distortion.json", "baselines/metrics/rate_distortion.tsv",
                "baselines/metrics/plots/rate_distortion.png"):
        assert (work / out).exists(), out
    events = list((work / "data/train/tensorboard").glob("events.out.tfevents*"))
    assert events and events[0].stat().st_size > 0
    status = _run(["dvc", "status"], work, env)
    assert "up to date" in status, status
    # `dvc plots show` draws each picture and each curve once.
    _run(["dvc", "plots", "show", "-o", "shown"], work, env)
    page = (work / "shown" / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 8 and len(set(images)) == 8, images  # 4 of evaluate, 4 of baselines
    divs = re.findall(r'<div id = "([^"]+)"', page)
    assert len(divs) == len(set(divs)) == 4, divs
    baseline = json.loads((work / "metrics/eval.json").read_text())

    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "baseline run"], work, env)
    _run(["dvc", "exp", "run", "-S", "max_beta=0.1"], work, env)
    assert yaml.safe_load((work / "params.yaml").read_text())["max_beta"] == 0.1

    diff = json.loads(_run(["dvc", "metrics", "diff", "--json"], work, env))
    changed = {f"{path}:{key}" for path, entries in diff.items() for key, d in entries.items()
               if d.get("old") != d.get("new")}
    # beta weighs KL, so KL must move; after 2 tiny epochs the losses may agree to 5 digits.
    assert "metrics/eval.json:test.kl_nats" in changed, changed
    assert any(k.startswith("metrics/train.json:best.val") for k in changed), changed
    after = json.loads((work / "metrics/eval.json").read_text())
    assert after["test"]["kl_nats"] != baseline["test"]["kl_nats"]

    show = json.loads(_run(["dvc", "exp", "show", "--json"], work, env))
    assert show, "dvc exp show --json printed nothing"
    # the baseline's metrics travel with every experiment, so results tables can use them
    files = show[0]["data"]["metrics"]
    assert files["baselines/metrics/eval.json"]["data"]["test"]["render"]["psnr_vs_image"] > 5


def test_bad_param_fails_the_stage_with_a_one_line_error(repo):
    work, env = repo
    raw = yaml.safe_load((work / "params.yaml").read_text())
    raw["max_beta"] = -1
    bad = work / "bad_params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = subprocess.run([sys.executable, "stages/train.py", "--params", str(bad),
                             "--gaussians", "x", "--stats", "x", "--model", "x",
                             "--checkpoint", "x", "--logdir", "x", "--history", "x",
                             "--metrics", "x"], cwd=work, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {bad}: max_beta must be a number >= 0 (0 = plain autoencoder), got -1.0")
