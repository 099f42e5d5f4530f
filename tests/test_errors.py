"""What a user can get wrong ends in one line naming the file or key and the fix, and no file
the project reads can run code."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from gaussvae.baselines.pixel_vae import load_pixel_model
from gaussvae.core.atomic import read_json
from gaussvae.core.device import resolve_device
from gaussvae.core.errors import StaleFileError, UserError
from gaussvae.core.store import read_gaussians
from gaussvae.vae.model import VAEConfig, build_model
from gaussvae.vae.model_file import load_model, save_model_file
from gaussvae.vae.normalization import NormStats
from tests.conftest import REPO, make_params


class _Plant:
    """Unpickling this creates the file named: a stand-in for any code in a crafted file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _one_line(err: Exception) -> str:
    message = str(err)
    assert "\n" not in message and message
    return message


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line():
    with pytest.raises(UserError) as err:
        resolve_device("cuda")
    assert "train.device" in _one_line(err.value)


def test_stats_of_another_version_are_one_line():
    with pytest.raises(StaleFileError) as err:
        NormStats.from_json({"mean": [0.0]})
    assert "re-run the normalize stage" in _one_line(err.value)


def test_files_that_are_not_what_they_claim_are_one_line(tmp_path):
    junk = tmp_path / "gaussians.h5"
    junk.write_text("not an HDF5 file")
    with pytest.raises(StaleFileError) as err:
        read_gaussians(junk)
    assert str(junk) in _one_line(err.value)
    bad_json = tmp_path / "stats.json"
    bad_json.write_text("{")
    with pytest.raises(StaleFileError) as err:
        read_json(bad_json)
    assert str(bad_json) in _one_line(err.value)


def _model_file(path, params):
    config = VAEConfig.from_params(params, params.extract.num_gaussians)
    model = build_model(config)
    stats = {"encoding": "raw", "channels": [], "types": {}, "mean": [0.0] * 8,
             "std": [1.0] * 8, "raw_channels": ["x", "y", "scale_x", "scale_y", "rot", "r", "g",
                                                 "b"], "raw_mean": [0.0] * 8, "raw_std": [1.0] * 8}
    save_model_file(path, "gaussian_vae", config.to_dict(), model.state_dict(), stats,
                    params.model_dump())
    return model


def test_a_crafted_model_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    crafted = tmp_path / "model.pt"
    torch.save({"model_config": {}, "state_dict": _Plant(marker), "norm_stats": {},
                "params": {}}, crafted)
    with pytest.raises(StaleFileError) as err:
        load_model(crafted, torch.device("cpu"))
    assert str(crafted) in _one_line(err.value) and "never loaded" in str(err.value)
    assert not marker.exists()
    # the stage says the same in one line, exit code 2, and the marker still does not exist
    result = subprocess.run([sys.executable, str(REPO / "stages" / "evaluate.py"), "--params",
                             str(REPO / "params.yaml"), "--images", "x", "--gaussians", "x",
                             "--model", str(crafted), "--metrics", "m.json", "--plots", "p",
                             "--per-image", "i.tsv"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not marker.exists()


def test_truncated_and_foreign_model_files_are_one_line(tmp_path):
    params = make_params()
    good = tmp_path / "model.safetensors"
    model = _model_file(good, params)
    loaded, _, _ = load_model(good, torch.device("cpu"))
    z = torch.zeros(1, params.latent_dim)
    assert torch.equal(loaded.decode(z), model.eval().decode(z))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(StaleFileError) as err:
        load_model(truncated, torch.device("cpu"))
    assert str(truncated) in _one_line(err.value)
    with pytest.raises(StaleFileError, match="holds the Gaussian VAE's model") as err:
        load_pixel_model(good, torch.device("cpu"))
    _one_line(err.value)
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(StaleFileError):
        load_model(tmp_path / "array.npy", torch.device("cpu"))


def test_model_files_of_another_format_or_version_are_one_line(tmp_path):
    from safetensors.torch import save_file

    tensors = {"w": torch.zeros(2)}
    plain = tmp_path / "plain.safetensors"
    save_file(tensors, str(plain))
    newer = tmp_path / "newer.safetensors"
    save_file(tensors, str(newer), metadata={"gaussvae": json.dumps(
        {"format": "gaussvae-model", "format_version": 99, "kind": "gaussian_vae"})})
    for path, words in ((plain, "not a GaussVAE model file"), (newer, "format version 99")):
        with pytest.raises(StaleFileError, match=words) as err:
            load_model(path, torch.device("cpu"))
        assert str(path) in _one_line(err.value)
    bare = tmp_path / "bare.safetensors"
    marker = tmp_path / "marker"
    bare.write_bytes(pickle.dumps(_Plant(marker)))
    with pytest.raises(StaleFileError, match="never loaded"):
        load_model(bare, torch.device("cpu"))
    assert not marker.exists()
