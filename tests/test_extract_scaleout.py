"""Extraction in chunks: resumable after SIGKILL, and spread over processes by torchrun, with
the file a single uninterrupted process writes."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from gaussvae.core.store import write_gaussians, write_images
from gaussvae.gaussians.chunks import Chunk, ChunkStore, discard_chunks
from gaussvae.gaussians.extraction import _fit_chunks, chunk_ranges, extract, run_key
from tests.conftest import REPO, make_params, tiny_raw_params

# Slow enough per batch (many steps, no early plateau stop) for a kill to land mid-run.
LONG_FIT = {"extract.steps": 120, "extract.plateau_patience": 1000}


@pytest.fixture
def one_thread():
    """The in-test reference fit on one thread, like the processes it is compared with (on a
    busy machine a second thread can cost more than it gives; the fit's bits do not depend on
    the thread count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_chunks_are_whole_batches_from_the_start():
    assert chunk_ranges(40, 8, 20) == [range(0, 16), range(16, 32), range(32, 40)]
    assert chunk_ranges(10, 16, 4) == [range(0, 10)]  # at least one batch
    assert chunk_ranges(0, 8, 8) == []


def test_resume_folder_reuses_saved_chunks_and_drops_other_runs(tmp_path, tiny_images):
    cfg = make_params(**{"extract.steps": 3}).extract
    cpu = torch.device("cpu")
    plain = extract(tiny_images, cfg, cpu)
    stale = tmp_path / "chunks" / ("0" * 16)
    stale.mkdir(parents=True)
    chunked = extract(tiny_images, cfg, cpu, resume_dir=tmp_path / "chunks", chunk_images=16)
    assert np.array_equal(chunked.gaussians, plain.gaussians)
    assert np.array_equal(chunked.psnr, plain.psnr)
    assert not stale.exists()
    key = run_key(tiny_images, cfg, cpu, 16)
    saved = ChunkStore(tmp_path / "chunks", key).open()
    assert sorted(saved) == [0, 16, 32]
    # A saved chunk is taken as it is, not fitted again.
    store = ChunkStore(tmp_path / "chunks", key)
    store.save(16, Chunk(saved[16].gaussians, np.full(16, -1.0, np.float32)))
    again = extract(tiny_images, cfg, cpu, resume_dir=tmp_path / "chunks", chunk_images=16)
    assert (again.psnr[16:32] == -1).all() and np.array_equal(again.psnr[:16], plain.psnr[:16])
    # Other settings are another run: nothing of this one is reused.
    assert run_key(tiny_images, make_params(**{"extract.steps": 4}).extract, cpu, 16) != key
    discard_chunks(tmp_path / "chunks")
    assert not (tmp_path / "chunks").exists()


def test_ordering_on_several_threads_gives_the_same_chunks(tmp_path, tiny_images):
    """On a GPU the batches are ordered on several threads, finishing in any order; each chunk
    is still saved complete and the result is the same."""
    cfg = make_params(**{"extract.steps": 2}).extract
    cpu = torch.device("cpu")
    chunks = chunk_ranges(40, cfg.batch_size, 16)
    one = _fit_chunks(tiny_images, cfg, cpu, chunks, None, None, 40, workers=1)
    store = ChunkStore(tmp_path, "1" * 16)
    four = _fit_chunks(tiny_images, cfg, cpu, chunks, store, None, 40, workers=4)
    saved = store.open()
    for start, chunk in one.items():
        assert np.array_equal(four[start].gaussians, chunk.gaussians)
        assert np.array_equal(saved[start].gaussians, chunk.gaussians)


def _write_inputs(folder, tiny_images, **overrides):
    raw = tiny_raw_params()
    for key, value in overrides.items():
        section, name = key.split(".")
        raw[section][name] = value
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))
    write_images(folder / "images.h5", tiny_images)
    return make_params(**overrides).extract


def _stage_args(folder, out, *extra):
    return [str(REPO / "stages" / "extract.py"), "--params", str(folder / "params.yaml"),
            "--images", str(folder / "images.h5"), "--out", str(out), "--chunk-images", "8",
            *extra]


def test_killed_extraction_resumes_from_its_chunks(tmp_path, tiny_images, one_thread):
    cfg = _write_inputs(tmp_path, tiny_images, **LONG_FIT)
    out, resume = tmp_path / "g.h5", tmp_path / "chunks"
    cmd = [sys.executable, *_stage_args(tmp_path, out, "--resume", str(resume))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(list(resume.glob("*/chunk-*.npz"))) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "extraction ended before it could be killed"
    assert not out.exists()  # no output, not even half of one
    done_at_kill = len(list(resume.glob("*/chunk-*.npz")))
    assert 2 <= done_at_kill < 5

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert f"{done_at_kill} of 5 chunks already fitted" in resumed.stderr
    write_gaussians(tmp_path / "straight.h5", extract(tiny_images, cfg, torch.device("cpu")))
    assert _sha(out) == _sha(tmp_path / "straight.h5")
    assert not resume.exists()  # a finished run leaves no chunks behind


@pytest.mark.slow
def test_two_process_extraction_writes_the_single_process_file(tmp_path, tiny_images,
                                                               one_thread):
    cfg = _write_inputs(tmp_path, tiny_images)
    out = tmp_path / "g.h5"
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    result = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2",
                             *_stage_args(tmp_path, out)], cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "on 2 process(es)" in result.stdout
    write_gaussians(tmp_path / "single.h5", extract(tiny_images, cfg, torch.device("cpu")))
    assert _sha(out) == _sha(tmp_path / "single.h5")
