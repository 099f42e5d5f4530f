"""The trained model as a user gets it: the `gaussvae` command on PNGs in a folder, and the
Python API, against what the pipeline's own stages compute."""

import pickle
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from gaussvae.app.api import GaussianModel, PixelModel, load, psnrs
from gaussvae.app.commands import main
from gaussvae.baselines.pixel_job import pixel_job
from gaussvae.core.distributed import Dist
from gaussvae.core.store import read_gaussians
from gaussvae.evaluation.code_storage import as_fp16
from gaussvae.evaluation.gaussian_eval import GaussianEvaluation
from gaussvae.vae.model_file import load_model
from gaussvae.vae.trainer import TrainPaths, make_trainer, train_gaussian_vae
from tests.conftest import make_params, tiny_raw_params

# conftest's tiny_data fits with 4 steps; the model is trained under the same extract settings,
# so `gaussvae` fits a new image exactly as the data it was trained on were fitted.
PARAMS = {"extract.steps": 4, "train.epochs": 2}


def _paths(folder):
    return TrainPaths(folder / "model.safetensors", folder / "ckpt.pt", folder / "tb",
                      folder / "history.tsv", folder / "train.json")


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_data, tiny_images):
    """A tiny Gaussian VAE and pixel baseline, as model files, and the test images as PNGs."""
    folder = tmp_path_factory.mktemp("models")
    _, data, stats = tiny_data
    params = make_params(**PARAMS)
    train_gaussian_vae(params, data, stats, _paths(folder / "gaussian"), Dist())
    pixel = pixel_job(params, tiny_images, torch.device("cpu"))
    make_trainer(params, pixel, Dist()).fit(_paths(folder / "pixel"))
    pngs = folder / "pngs"
    pngs.mkdir()
    test = [i for i, s in enumerate(data.sources) if data.split[i] == 2]
    rows = {s: i for i, s in enumerate(tiny_images.sources)}
    for k, i in enumerate(test):
        image = tiny_images.images[rows[data.sources[i]]]
        Image.fromarray(image).save(pngs / f"test{k}.png")
    return folder / "gaussian" / "model.safetensors", folder / "pixel" / "model.safetensors", \
        pngs


def _run(capsys, *argv):
    main([str(a) for a in argv])
    return capsys.readouterr().out


def test_reconstruct_gives_the_psnr_the_evaluate_stage_computes(models, tiny_data,
                                                                 tiny_images, capsys, tmp_path):
    gaussian, _, pngs = models
    _, data, _ = tiny_data
    out = _run(capsys, "reconstruct", "--model", gaussian, *sorted(pngs.iterdir()),
               "--out", tmp_path)
    printed = [float(x) for x in re.findall(r"reconstruction ([\d.]+) dB", out)]
    model, stats, _ = load_model(gaussian, torch.device("cpu"))
    run = GaussianEvaluation(model, stats, data, tiny_images, torch.device("cpu")) \
        .run_split("test")
    expected = psnrs(run.recon_px, run.originals)
    assert len(printed) == len(expected) > 1
    assert printed == [round(p, 2) for p in expected]
    assert len(list(tmp_path.glob("*.png"))) == len(expected)


def test_encode_then_decode_is_reconstruct(models, capsys, tmp_path):
    gaussian, _, pngs = models
    images = sorted(pngs.iterdir())
    _run(capsys, "encode", "--model", gaussian, *images, "--out", tmp_path / "codes.npy")
    codes = np.load(tmp_path / "codes.npy")
    assert codes.dtype == np.float16 and len(codes) == len(images)
    assert (tmp_path / "codes.sources.txt").read_text().splitlines() == [str(p) for p in images]
    _run(capsys, "decode", "--model", gaussian, tmp_path / "codes.npy", "--out", tmp_path / "d")
    decoded = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / "d").glob("*.png"))])
    model = load(gaussian)
    originals = np.stack([np.asarray(Image.open(p)) for p in images])
    fits = model.fit(originals)
    expected = model.decode_images(as_fp16(model.encode(fits.gaussians).mode()))
    assert np.array_equal(decoded, expected)
    g = read_gaussians(tmp_path / "d" / "gaussians.h5")
    assert g.gaussians.shape == (len(images), 64, 8)
    # the same codes from an HDF5 file, with their sources
    _run(capsys, "encode", "--model", gaussian, *images, "--out", tmp_path / "codes.h5")
    with h5py.File(tmp_path / "codes.h5") as f:
        assert np.array_equal(f["codes"][()], codes)


def test_fit_then_render_reproduces_the_fit(models, capsys, tmp_path):
    _, _, pngs = models
    params_file = tmp_path / "params.yaml"
    raw = tiny_raw_params()
    raw["extract"]["steps"] = 4
    params_file.write_text(yaml.safe_dump(raw))
    images = sorted(pngs.iterdir())
    _run(capsys, "fit", *images, "--out", tmp_path / "g.h5", "--params", params_file,
         "--png", tmp_path / "fits")
    fits = read_gaussians(tmp_path / "g.h5")
    _run(capsys, "render", tmp_path / "g.h5", "--out", tmp_path / "r")
    rendered = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / "r").glob("*"))])
    originals = np.stack([np.asarray(Image.open(p)) for p in images])
    assert np.allclose(psnrs(rendered, originals), fits.psnr, atol=0.05)
    assert rendered.tobytes() == np.stack(
        [np.asarray(Image.open(p)) for p in sorted((tmp_path / "fits").glob("*"))]).tobytes()
    _run(capsys, "render", tmp_path / "g.h5", "--out", tmp_path / "big", "--size", 96)
    big = np.asarray(Image.open(sorted((tmp_path / "big").glob("*"))[0]))
    assert big.shape == (96, 96, 3)
    small = np.asarray(Image.fromarray(big).resize((32, 32), Image.Resampling.BOX))
    assert psnrs(small[None], originals[:1])[0] > 20  # the same picture, three times larger


def test_sample_and_interpolate(models, capsys, tmp_path):
    gaussian, _, pngs = models
    _run(capsys, "sample", "--model", gaussian, "-n", 3, "--seed", 1, "--out", tmp_path / "s")
    assert len(list((tmp_path / "s").glob("*.png"))) == 3
    a, b = sorted(pngs.iterdir())[:2]
    _run(capsys, "interpolate", "--model", gaussian, a, b, "--steps", 4, "--out", tmp_path / "i")
    steps = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "i").glob("00*.png"))]
    assert len(steps) == 4 and (tmp_path / "i" / "strip.png").exists()
    assert not np.array_equal(steps[0], steps[-1])


def test_the_pixel_baseline_encodes_decodes_reconstructs_and_samples(models, capsys, tmp_path):
    _, pixel, pngs = models
    model = load(pixel)
    assert isinstance(model, PixelModel)
    images = sorted(pngs.iterdir())
    _run(capsys, "encode", "--model", pixel, *images, "--out", tmp_path / "c.npy")
    _run(capsys, "decode", "--model", pixel, tmp_path / "c.npy", "--out", tmp_path / "d")
    out = _run(capsys, "reconstruct", "--model", pixel, *images, "--out", tmp_path / "r")
    originals = np.stack([np.asarray(Image.open(p)) for p in images])
    decoded = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / "d").glob("*"))])
    printed = [float(x) for x in re.findall(r"reconstruction ([\d.]+) dB", out)]
    assert printed == [round(p, 2) for p in psnrs(decoded, originals)]
    _run(capsys, "sample", "--model", pixel, "-n", 2, "--out", tmp_path / "s")
    assert len(list((tmp_path / "s").glob("*.png"))) == 2


def test_the_python_api_round_trips(models):
    gaussian, _, pngs = models
    model = load(gaussian, device="cpu")
    assert isinstance(model, GaussianModel) and model.latent_dim == 16
    images = np.stack([np.asarray(Image.open(p)) for p in sorted(pngs.iterdir())])
    fits = model.fit(images)
    posterior = model.encode(fits.gaussians)
    assert posterior.mode().shape == (len(images), 16)
    torch.manual_seed(0)
    assert not torch.equal(posterior.sample(), posterior.mode())
    decoded = model.decode(posterior.mode())
    assert decoded.shape == fits.gaussians.shape
    assert model.render(decoded, size=64).shape == (len(images), 64, 64, 3)


def _cli(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "gaussvae.app.commands", *map(str, argv)],
                          cwd=cwd, capture_output=True, text=True)


def test_errors_are_one_line(models, tmp_path):
    gaussian, pixel, pngs = models
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    marker = tmp_path / "marker"
    crafted = tmp_path / "model.safetensors"
    crafted.write_bytes(pickle.dumps(_Plant(marker)))
    cases = [
        (("reconstruct", "--model", gaussian, tmp_path / "missing.png", "--out", tmp_path),
         "missing.png"),
        (("reconstruct", "--model", gaussian, not_an_image, "--out", tmp_path), "notes.png"),
        (("reconstruct", "--model", gaussian, tmp_path / "notes.txt", "--out", tmp_path),
         "not an image file"),
        (("encode", "--model", pixel, tmp_path / "g.h5", "--out", tmp_path / "c.npy"),
         "pixel baseline"),
        (("sample", "--model", crafted, "--out", tmp_path), "never loaded"),
        (("decode", "--model", gaussian, pngs / "test0.png", "--out", tmp_path),
         "not a codes file"),
    ]
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "g.h5").write_bytes(b"")
    for argv, words in cases:
        result = _cli(*argv, cwd=tmp_path)
        assert result.returncode == 2, (argv, result.stderr[-500:])
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, \
            result.stderr
        assert words in result.stderr, (words, result.stderr)
    assert not marker.exists()


class _Plant:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))
