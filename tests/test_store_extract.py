import hashlib
import math

import numpy as np
import pytest
import torch

from gaussvae.core.store import read_gaussians, read_images, write_gaussians, write_images
from gaussvae.gaussians.extraction import dense_gap_warnings, extract, extract_metrics, file_attrs
from gaussvae.gaussians.render import RenderSpec
from gaussvae.vae.normalization import compute_stats, denormalize, normalize
from tests.conftest import make_params


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_images_round_trip_and_are_byte_stable(tmp_path, tiny_images):
    write_images(tmp_path / "a.h5", tiny_images)
    write_images(tmp_path / "b.h5", tiny_images)
    assert _sha(tmp_path / "a.h5") == _sha(tmp_path / "b.h5")
    back = read_images(tmp_path / "a.h5")
    assert np.array_equal(back.images, tiny_images.images)
    assert back.sources == tiny_images.sources
    assert back.attrs["image_size"] == 32


def test_extraction_is_self_describing_and_byte_stable(tmp_path, tiny_images):
    cfg = make_params(**{"extract.steps": 5}).extract
    first = extract(tiny_images, cfg, torch.device("cpu"))
    second = extract(tiny_images, cfg, torch.device("cpu"))
    write_gaussians(tmp_path / "a.h5", first)
    write_gaussians(tmp_path / "b.h5", second)
    assert _sha(tmp_path / "a.h5") == _sha(tmp_path / "b.h5")
    back = read_gaussians(tmp_path / "a.h5")
    assert back.gaussians.shape == (40, 64, 8) and back.gaussians.dtype == np.float32
    for key in ("schema_version", "image_size", "num_gaussians", "ordering", "renderer",
                "fit_settings", "package_version", "channel_ranges"):
        assert key in back.attrs, key
    assert back.attrs["fit_settings"]["steps"] == 5
    assert np.isfinite(back.psnr).all() and back.psnr.min() > 15


def test_extract_metrics_report_each_split(tiny_images):
    cfg = make_params(**{"extract.steps": 2}).extract
    result = extract(tiny_images, cfg, torch.device("cpu"))
    m = extract_metrics(result, seconds=2.0, images=tiny_images)
    assert set(m) >= {"train", "val", "test", "images_per_second", "seconds", "images_skipped"}
    assert m["images_per_second"] == 20.0
    assert m["test"]["psnr"]["min"] <= m["test"]["psnr"]["p5"] <= m["test"]["psnr"]["mean"]
    # the dense reference's PSNR of the same images, and its gap to the stored one
    test = m["test"]
    assert test["dense_psnr"]["images"] == test["images"]
    stored = float(result.psnr[result.select("test")].mean())
    assert test["dense_psnr"]["gap"] == pytest.approx(stored - test["dense_psnr"]["mean"],
                                                      abs=2e-3)


def test_a_file_of_another_schema_is_a_one_line_error(tmp_path, tiny_images):
    import h5py

    from gaussvae.core.errors import StaleFileError

    data = extract(tiny_images, make_params(**{"extract.steps": 1}).extract, torch.device("cpu"))
    write_gaussians(tmp_path / "g.h5", data)
    with h5py.File(tmp_path / "g.h5", "r+") as f:
        f.attrs["schema_version"] = 1
    with pytest.raises(StaleFileError) as info:
        read_gaussians(tmp_path / "g.h5")
    assert str(info.value) == (f"{tmp_path / 'g.h5'}: schema version 1, this code reads 4; "
                               "re-run extract (dvc repro extract)")


def test_normalize_then_denormalize_is_identity_and_uses_train_stats(rng):
    g = rng.normal(3.0, 2.0, size=(10, 16, 8)).astype(np.float32)
    stats = compute_stats(g, 1e-6)
    x = torch.from_numpy(g)
    z = normalize(x, stats)
    assert torch.allclose(z.mean(dim=(0, 1)), torch.zeros(8), atol=1e-4)
    assert torch.allclose(z.std(dim=(0, 1), unbiased=False), torch.ones(8), atol=1e-3)
    assert torch.allclose(denormalize(z, stats), x, atol=1e-5)
    const = np.zeros((2, 4, 8), dtype=np.float32)
    assert (compute_stats(const, 1e-3).std == np.float32(1e-3)).all()


def test_per_position_stats_make_each_index_zero_mean(rng):
    slots = np.linspace(0, 1, 16, dtype=np.float32)
    g = rng.normal(0, 0.01, size=(50, 16, 8)).astype(np.float32)
    g[..., 0] += slots  # x is mostly the slot position, as with grid ordering
    per_channel = compute_stats(g, 1e-6)
    per_position = compute_stats(g, 1e-6, per_position=True)
    assert per_channel.mean.shape == (8,) and per_position.mean.shape == (16, 8)
    x = torch.from_numpy(g)
    z = normalize(x, per_position)
    assert torch.allclose(z.mean(dim=0), torch.zeros(16, 8), atol=1e-4)
    assert torch.allclose(denormalize(z, per_position), x, atol=1e-5)
    # Per channel, x's spread is the slots'; per position it is the jitter around each slot.
    assert float(per_channel.std[0]) > 0.2 and float(per_position.std[:, 0].max()) < 0.02
    from gaussvae.vae.normalization import NormStats

    back = NormStats.from_json(per_position.to_json())
    assert np.array_equal(back.mean, per_position.mean)


def test_ellipse_stats_round_trip_and_keep_stored_statistics(tiny_images):
    data = extract(tiny_images, make_params(**{"extract.steps": 2}).extract, torch.device("cpu"))
    g = data.gaussians
    from gaussvae.vae.normalization import NormStats

    stats = compute_stats(g, 1e-6, encoding_name="ellipse")
    x = torch.from_numpy(g)
    z = normalize(x, stats)
    assert torch.allclose(z.mean(dim=(0, 1)), torch.zeros(8), atol=1e-4)
    back_x = denormalize(z, stats)
    # Fits are canonical, so all but rot come back exactly; rot is the same modulo pi, and only
    # where the Gaussian has an orientation (a round one's rot is arbitrary, e.g. clamped at a
    # scale bound on both axes).
    others = [0, 1, 2, 3, 5, 6, 7]
    assert torch.allclose(back_x[..., others], x[..., others], atol=1e-5)
    turn = torch.remainder(back_x[..., 4] - x[..., 4] + math.pi / 2, math.pi) - math.pi / 2
    oriented = x[..., 2] > 1.01 * x[..., 3]
    assert oriented.any() and float(turn[oriented].abs().max()) < 1e-4
    raw = compute_stats(g, 1e-6)
    assert np.allclose(stats.raw().mean, raw.mean) and not np.allclose(stats.mean, raw.mean)
    back = NormStats.from_json(stats.to_json())
    assert back.encoding == "ellipse" and np.array_equal(back.raw_std, stats.raw_std)
    with pytest.raises(ValueError, match="re-run the normalize stage"):
        NormStats.from_json({"channels": [], "mean": [], "std": []})


def test_a_dense_gap_beyond_the_limit_warns_in_one_line():
    metrics = {"train": {"dense_psnr": {"gap": 0.01}}, "val": {"dense_psnr": {"gap": -0.45}},
               "test": {"dense_psnr": {"gap": 0.31}}}
    lines = dense_gap_warnings(metrics)
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert lines[0].startswith("warning: val fits score -0.45 dB") and "extract.window" in lines[0]
    assert dense_gap_warnings({"train": {"dense_psnr": {"gap": 0.29}}}) == []


def test_the_file_records_the_window_and_sigma_range_of_its_size(tiny_images):
    settings = make_params().extract
    attrs = file_attrs(128, settings, [])
    lo, hi = settings.sigma_px(128)
    assert attrs["window"] == settings.window_px(128) and attrs["window"] >= 6 * hi
    assert attrs["scale_range"] == [lo / 128, hi / 128]
    spec = RenderSpec.from_attrs(attrs)
    assert (spec.image_size, spec.window, spec.max_scale) == (128, attrs["window"], hi / 128)
