import math

import numpy as np
import pytest
import torch

from gaussvae.core.channels import TYPES
from gaussvae.core.distributed import Dist
from gaussvae.evaluation.code_storage import Uniform8Bit, as_fp16
from gaussvae.evaluation.gaussian_eval import (
    GaussianEvaluation,
    evaluate,
    rotation_error_deg,
    write_pictures,
)
from gaussvae.evaluation.image_codecs import codec_metrics, encode_size_and_decode, within_budget
from gaussvae.evaluation.per_image import pass_table
from gaussvae.evaluation.pictures import image_grid, square_grid, type_loss_bars
from gaussvae.gaussians.extraction import extract
from gaussvae.vae.loss import channel_mse, type_losses
from gaussvae.vae.model import reconstruct
from gaussvae.vae.model_file import load_model
from gaussvae.vae.normalization import compute_stats, denormalize, normalize
from gaussvae.vae.scores import parameter_scores
from gaussvae.vae.trainer import TrainPaths, train_gaussian_vae
from tests.conftest import make_params


@pytest.fixture(scope="module")
def tiny_fits(tiny_images):
    return extract(tiny_images, make_params(**{"extract.steps": 6}).extract, torch.device("cpu"))


def _train(folder, data, encoding_name: str):
    params = make_params(**{"extract.steps": 6, "train.epochs": 2,
                            "normalize.encoding": encoding_name})
    stats = compute_stats(data.gaussians[data.select("train")], 1e-6,
                          encoding_name=encoding_name)
    paths = TrainPaths(folder / "m.safetensors", folder / "c.pt", folder / "tb", folder / "h.tsv",
                       folder / "t.json")
    train_gaussian_vae(params, data, stats, paths, Dist())
    model, stats, _ = load_model(paths.model, torch.device("cpu"))
    return model, data, stats, params


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_fits):
    return _train(tmp_path_factory.mktemp("trained"), tiny_fits, "raw")


def _flatten(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_eval_metrics_have_every_key_are_finite_and_repeat(trained, tiny_images, tmp_path):
    model, data, stats, params = trained
    evaluation = GaussianEvaluation(model, stats, data, tiny_images, torch.device("cpu"))
    result = evaluate(evaluation, "per_type", params.evaluate)
    m = result.metrics
    flat = dict(_flatten(m))
    for key in ("loss.xy", "loss.scale", "loss.rot", "loss.feat", "loss.total", "kl_nats",
                "active_units", "std_ratio.xy", "std_ratio.rot", "std_ratio.feat",
                "std_ratio.scale", "render.psnr_vs_image", "render.ssim_vs_image",
                "render.psnr_vs_fit", "render.ssim_vs_fit", "fit.psnr_vs_image",
                "render_8bit.psnr_vs_image", "render_with_true.xy", "render_with_true.feat",
                "rot_error_deg"):
        for split in ("test", "val"):
            assert math.isfinite(flat[f"{split}.{key}"]), key
    assert m["samples"]["fd"] >= 0 and m["samples"]["fd_real"] >= 0
    for split in ("test", "val"):  # the code at every storage of the rate-distortion curves
        rd, latent = m[split]["rate_distortion"], model.config.latent_dim
        assert {k: v["bytes"] for k, v in rd.items()} == {
            "2bit": latent / 4, "4bit": latent / 2, "6bit": latent * 0.75, "8bit": latent,
            "fp16": 2 * latent}
        assert rd["fp16"]["psnr"] == m[split]["render"]["psnr_vs_image"]
        # 2 bits a dimension are another code (a tiny model's decoder barely reads it, so no
        # order between the storages is asserted here: test_rate_distortion.py does that)
        assert math.isfinite(rd["2bit"]["psnr"]) and rd["2bit"]["psnr"] != rd["fp16"]["psnr"]
    assert flat["test.fit.psnr_vs_image"] > 15
    again = evaluate(GaussianEvaluation(model, stats, data, tiny_images, torch.device("cpu")),
                     "per_type", params.evaluate)
    assert again.metrics == m
    table = pass_table(result.runs, {"psnr_fp16": "recon_px", "psnr_8bit": "recon8_px"})
    for split in ("test", "val"):  # the per-image table averages to the metric, per split
        rows = np.array(table.splits) == split
        assert np.mean(table.columns["psnr_fp16"][rows]) == pytest.approx(
            m[split]["render"]["psnr_vs_image"], abs=1e-5)
        assert np.mean(table.columns["psnr_8bit"][rows]) == pytest.approx(
            m[split]["render_8bit"]["psnr_vs_image"], abs=1e-5)
    write_pictures(evaluation, result, params.evaluate, tmp_path)
    for name in ("reconstructions", "prior_samples", "interpolation", "type_losses"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_code_is_scored_as_stored(trained, tiny_images):
    # Render metrics decode the float16 code, not the float32 mean: the two differ a little,
    # the 8-bit code more.
    model, data, stats, _ = trained
    evaluation = GaussianEvaluation(model, stats, data, tiny_images, torch.device("cpu"))
    x = normalize(torch.from_numpy(data.gaussians[data.select("test")]), stats)
    pred32, mu, _ = reconstruct(model, x)
    pred16, _, _ = reconstruct(model, x, code=as_fp16)
    pred8, _, _ = reconstruct(model, x, code=evaluation.quantizer)
    err16, err8 = (pred16 - pred32).abs().max(), (pred8 - pred32).abs().max()
    assert 0 < err16 < err8
    assert torch.equal(as_fp16(mu), mu.half().float())


def test_8bit_codes_take_256_levels_over_the_training_range():
    mu_train = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, 0.5]])
    q = Uniform8Bit.fit(mu_train)
    out = q(torch.tensor([[-3.0, 0.25], [1.99, 0.999]]))
    assert out[0, 0] == -2.0  # clipped to the range
    assert abs(float(out[0, 1]) - 0.25) <= 0.5 / 255 + 1e-7
    levels = q(torch.linspace(-2, 2, 10_000)[:, None].expand(-1, 2).contiguous())[:, 0]
    assert len(torch.unique(levels)) == 256


def test_mean_predictor_scores_std_ratio_zero_and_loss_one():
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(50, 32, 8, generator=gen)
    target = (target - target.mean(dim=(0, 1))) / target.std(dim=(0, 1), unbiased=False)
    pred = torch.zeros_like(target) + 1e-4 * torch.randn(50, 32, 8, generator=gen)
    m = parameter_scores(pred, target, torch.zeros(50, 4), torch.zeros(50), "per_type", TYPES)
    for t in ("xy", "scale", "rot", "feat"):
        assert m["std_ratio"][t] < 0.01
        assert m["loss"][t] == pytest.approx(1.0, abs=0.01)
    assert m["active_units"] == 0
    perfect = parameter_scores(target, target, torch.randn(50, 4), torch.zeros(50), "equal",
                               TYPES)
    assert perfect["loss"]["total"] == 0 and perfect["active_units"] == 4
    assert perfect["std_ratio"]["rot"] == pytest.approx(1.0)


def test_codec_takes_the_highest_quality_within_the_budget(tiny_images):
    img = tiny_images.images[0]
    for fmt in ("WEBP", "JPEG"):
        smallest = encode_size_and_decode(img, fmt, 1)[0]
        budget = smallest + 300
        coded = within_budget(img, fmt, budget)
        assert coded.size <= budget
        # every higher quality is over the budget
        higher = [encode_size_and_decode(img, fmt, q)[0] for q in range(coded.quality + 1, 96)]
        assert all(size > budget for size in higher)
    assert within_budget(img, "JPEG", 10).quality is None  # no JPEG is 10 bytes


def test_an_unreachable_budget_is_reported_not_averaged(tiny_images):
    images = tiny_images.images[:3]
    m = codec_metrics(images, 200)  # JPEG's headers alone are larger
    assert m["jpeg"]["unreachable_images"] == 3 and "psnr" not in m["jpeg"]
    assert m["jpeg"]["smallest_bytes"] > 200


def test_pictures_are_real_pngs(tmp_path, tiny_images):
    grid = image_grid([tiny_images.images[:3]] * 3, ["a", "b", "c"])
    assert grid.size[0] > 3 * 32 * 3 and grid.size[1] > 3 * 32 * 3
    sq = square_grid(tiny_images.images[:5])
    assert np.asarray(sq).std() > 10
    type_loss_bars({"val": {"xy": 0.5, "scale": 0.9, "rot": 1.0, "feat": 0.8},
                    "test": {"xy": 0.6, "scale": 0.9, "rot": 1.1, "feat": 0.7}},
                   tmp_path / "bars.png")
    assert (tmp_path / "bars.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ellipse_model_is_scored_in_stored_channels(tmp_path, tiny_fits, tiny_images):
    model, data, stats, _ = _train(tmp_path, tiny_fits, "ellipse")
    assert stats.encoding == "ellipse"
    evaluation = GaussianEvaluation(model, stats, data, tiny_images, torch.device("cpu"))
    m = evaluation.split_metrics(evaluation.run_split("test"), "per_type")
    fitted = torch.from_numpy(data.gaussians[data.select("test")])
    pred, _, _ = reconstruct(model, normalize(fitted, stats), code=as_fp16)
    decoded = denormalize(pred, stats)
    raw = stats.raw()
    stored = type_losses(channel_mse(normalize(decoded, raw), normalize(fitted, raw)), TYPES)
    encoded = type_losses(channel_mse(pred, normalize(fitted, stats)), stats.types)
    # Losses are those of the stored channels (comparable between a raw and an ellipse run),
    # not of the model's encoded channels, which differ for the shape types.
    for t in ("xy", "scale", "rot", "feat"):
        assert m["loss"][t] == pytest.approx(float(stored[t]), abs=2e-5)
    assert max(abs(m["loss"][t] - float(encoded[t])) for t in ("scale", "rot")) > 1e-2
    assert m["rot_error_deg"] == pytest.approx(rotation_error_deg(decoded, fitted), abs=1e-4)


def test_rotation_error_wraps_at_180_degrees_and_skips_round_gaussians():
    fitted = torch.zeros(1, 4, 8)
    fitted[..., 2] = torch.tensor([0.04, 0.04, 0.02, 0.04])
    fitted[..., 3] = torch.tensor([0.01, 0.01, 0.02, 0.01])  # third is round
    fitted[..., 4] = torch.tensor([0.01, 1.0, 0.5, 2.0])
    decoded = fitted.clone()
    decoded[..., 4] = torch.tensor([math.pi - 0.01, 1.0, 2.0, 2.0])
    err = rotation_error_deg(decoded, fitted)
    assert err == pytest.approx(math.degrees(0.02) / 3, rel=1e-3)
    decoded[0, 3, 4] = 2.0 + math.pi / 2  # perpendicular: the largest error there is
    assert rotation_error_deg(decoded, fitted) == pytest.approx(
        (math.degrees(0.02) + 90.0) / 3, rel=1e-3)
    gen = torch.Generator().manual_seed(0)
    many = torch.zeros(1, 4000, 8)
    many[..., 2], many[..., 3] = 0.04, 0.01
    many[..., 4] = torch.rand(4000, generator=gen) * math.pi
    constant = many.clone()
    constant[..., 4] = 1.0
    assert rotation_error_deg(constant, many) == pytest.approx(45.0, abs=1.5)
