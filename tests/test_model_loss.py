import pytest
import torch

from gaussvae.core.channels import TYPES
from gaussvae.core.params import GRID_ARCHS, Arch, allowed, load_params
from gaussvae.gaussians.slots import grid_cells
from gaussvae.vae.loss import Objective, beta_at, channel_mse, reconstruction, type_losses
from gaussvae.vae.model import (
    MODELS,
    DiagonalGaussian,
    GridVAE,
    ResBlock,
    SequenceVAE,
    SlotGrid,
    VAEConfig,
    build_model,
    count_parameters,
)
from tests.conftest import REPO


def _cfg(**kw) -> VAEConfig:
    base = dict(arch="conv1d", num_gaussians=64, latent_dim=8, encoder_filters=(8, 16),
                decoder_filters=(16, 8), kernel_size=5, resnet_blocks=1,
                bottleneck_channels=4, logvar_min=-10.0, logvar_max=10.0)
    base.update(kw)
    return VAEConfig(**base)


@pytest.mark.parametrize("arch", ["conv1d", "resnet_conv1d", "conv2d_grid", "resnet_conv2d_grid"])
def test_shapes_and_mode_is_deterministic(arch):
    model = build_model(_cfg(arch=arch)).eval()
    x = torch.randn(3, 64, 8)
    pred, post = model(x, sample=False)
    assert pred.shape == (3, 64, 8) and post.mu.shape == (3, 8)
    again, _ = model(x, sample=False)
    assert torch.equal(pred, again)


def test_encoder_keeps_positions_no_global_pooling():
    # Moving one Gaussian's features to another index must change the code.
    model = SequenceVAE(_cfg()).eval()
    x = torch.zeros(1, 64, 8)
    x[0, 3] = 1.0
    y = torch.zeros(1, 64, 8)
    y[0, 40] = 1.0
    assert not torch.allclose(model.encode(x).mu, model.encode(y).mu, atol=1e-4)


def test_slot_grid_round_trip_puts_vertical_neighbours_next_to_each_other():
    n = 512
    grid = SlotGrid(n, multiple=8)
    assert (grid.height, grid.width) == (24, 24)  # 23 rows of 22 or 23 slots, padded to 8
    seq = torch.arange(n, dtype=torch.float32).reshape(1, n, 1)
    assert torch.equal(grid.to_sequence(grid.to_grid(seq)), seq)
    img = grid.to_grid(seq)[0, 0]
    row, col, rows, _ = grid_cells(n)
    # Slot k and the slot below it (about 22 indices on in the sequence) are vertical
    # neighbours in the grid.
    k = 30
    below = int(((row == row[k] + 1) & (col == col[k])).nonzero()[0][0])
    assert below - k >= 22 and img[row[k] + 1, col[k]] == below
    assert float(img[rows:].abs().sum()) == 0.0  # padding rows stay empty


def test_grid_vae_encoder_sees_position_and_any_slot_count():
    model = GridVAE(_cfg(arch="conv2d_grid", num_gaussians=50)).eval()  # 7 rows, uneven
    x = torch.zeros(1, 50, 8)
    x[0, 3] = 1.0
    y = torch.zeros(1, 50, 8)
    y[0, 40] = 1.0
    assert not torch.allclose(model.encode(x).mu, model.encode(y).mu, atol=1e-4)
    assert model(x, sample=False)[0].shape == (1, 50, 8)


def test_original_conv1d_parameter_count_matches_the_original_scale():
    params = load_params(REPO / "params.yaml")
    original = params.model_copy(update={"train": params.train.model_copy(update={
        "arch": "conv1d", "encoder_filters": [32, 64, 128], "decoder_filters": [64, 32, 16],
        "bottleneck_channels": 16})})  # as docs/experiments.sh spells out the original
    model = SequenceVAE(VAEConfig.from_params(original, params.extract.num_gaussians))
    assert 1.4e6 < count_parameters(model) < 1.9e6  # the original GaussVAE: about 1.6M at 256


@pytest.mark.parametrize("arch", ["conv1d", "resnet_conv2d_grid"])
def test_palette_colours_are_mixes_of_each_images_palette(arch):
    """Every decoded colour, back in stored units, lies within its own image's K palette
    colours; with one colour every Gaussian of an image has that colour."""
    mean, std = torch.rand(64, 8), torch.rand(64, 8) + 0.5
    for k in (1, 4):
        model = build_model(_cfg(arch=arch, palette_colours=k)).eval()
        model.palette.set_stats(mean, std)
        z = torch.randn(3, 8)
        pred = model.decode(z)
        assert pred.shape == (3, 64, 8)
        colour = pred[..., 5:] * std[:, 5:] + mean[:, 5:]
        palette = torch.sigmoid(model.palette.palette(z)).view(3, k, 3)
        low, high = palette.min(dim=1).values, palette.max(dim=1).values  # (3, 3)
        assert (colour >= low[:, None] - 1e-5).all() and (colour <= high[:, None] + 1e-5).all()
        if k == 1:
            assert torch.allclose(colour, palette.expand(3, 64, 3), atol=1e-5)
    # without a palette the decoder's own colour channels come through (no palette module)
    assert build_model(_cfg(arch=arch)).palette is None


def test_grid_attention_sees_across_the_grid():
    """With attention blocks a change at one slot moves the decoder's output at the far corner
    of the grid; the convolutions alone (kernel 3, one upsampling, no GroupNorm, which would
    mix the whole map) reach only neighbours."""
    def far_effect(blocks: int) -> float:
        torch.manual_seed(0)
        model = build_model(_cfg(arch="conv2d_grid", encoder_filters=(8,),
                                 decoder_filters=(8,), kernel_size=3,
                                 attention_blocks=blocks)).eval()
        grid = model.grid_out
        h = torch.randn(1, *model.dec_shape)
        nudged = h.clone()
        nudged[..., 0, 0] += 10.0  # one cell of the coarsest map, top left
        with torch.no_grad():
            out = [grid.to_sequence(model.decoder(x)) for x in (h, nudged)]
        row, col, _, _ = grid_cells(64)
        row, col = torch.as_tensor(row), torch.as_tensor(col)
        far = int(((row == row.max()) & (col == col.max())).nonzero()[0, 0])  # bottom right
        return float((out[0][0, far] - out[1][0, far]).abs().max())

    assert far_effect(0) == 0.0 and far_effect(1) > 1e-4
    model = build_model(_cfg(arch="resnet_conv2d_grid", attention_blocks=2))
    pred, post = model(torch.randn(3, 64, 8))
    assert pred.shape == (3, 64, 8) and post.mu.shape == (3, 8)


def test_every_allowed_architecture_has_a_model():
    assert set(GRID_ARCHS) <= set(allowed(Arch))  # a misspelt grid arch would build a 1D model
    assert set(MODELS) == set(allowed(Arch))
    assert {a for a, m in MODELS.items() if m is GridVAE} == {"conv2d_grid", "resnet_conv2d_grid"}


def test_logvar_is_clamped():
    model = SequenceVAE(_cfg(logvar_min=-1.0, logvar_max=1.0))
    post = model.encode(torch.randn(4, 64, 8) * 1e4)
    assert post.logvar.min() >= -1.0 and post.logvar.max() <= 1.0


def test_kl_is_float32_from_a_half_precision_posterior():
    """Under mixed precision mu is float16, where mu^2 overflows for |mu| > 256."""
    mu = torch.full((2, 4), 300.0, dtype=torch.float16)
    logvar = torch.zeros(2, 4, dtype=torch.float16)
    kl = DiagonalGaussian(mu, logvar).kl()
    assert kl.dtype == torch.float32
    assert torch.allclose(kl, torch.full((2,), 4 * 0.5 * 300.0**2))


def test_per_type_weighting_is_the_seed_formula():
    per_channel = torch.tensor([1.0, 2.0, 3.0, 5.0, 7.0, 1.0, 2.0, 6.0])
    expected = (1 + 2) / 2 + (3 + 5) / 2 + 7 / 1 + (1 + 2 + 6) / 3
    assert torch.isclose(reconstruction(per_channel, "per_type", TYPES), torch.tensor(expected))
    assert torch.isclose(reconstruction(per_channel, "equal", TYPES), per_channel.mean())
    t = type_losses(per_channel, TYPES)
    assert float(t["feat"]) == pytest.approx(3.0)


def test_predicting_the_mean_scores_one_per_type():
    x = torch.randn(64, 128, 8)
    x = (x - x.mean(dim=(0, 1))) / x.std(dim=(0, 1), unbiased=False)
    losses = type_losses(channel_mse(torch.zeros_like(x), x), TYPES)
    for v in losses.values():
        assert float(v) == pytest.approx(1.0, abs=1e-4)


def test_beta_warms_up_linearly_and_kl_is_scaled_per_element():
    assert beta_at(0, 0.5, 10) == 0.0
    assert beta_at(5, 0.5, 10) == pytest.approx(0.25)
    assert beta_at(50, 0.5, 10) == 0.5
    assert beta_at(0, 0.5, 0) == 0.5
    x = torch.zeros(2, 16, 8)
    total, recon, _ = Objective("equal", TYPES, None)(x, x, torch.tensor([128.0, 128.0]), 1.0)
    assert float(recon) == 0.0 and float(total) == pytest.approx(1.0)  # 128 nats / 128 elements


def test_per_type_weighting_follows_the_encoding_the_model_sees():
    from gaussvae.vae.encoding import ELLIPSE_TYPES

    per_channel = torch.tensor([1.0, 2.0, 3.0, 5.0, 7.0, 1.0, 2.0, 6.0])
    # ellipse: xy (2), scale = log_size (1), rot = the ellipse vector (2), feat (3)
    expected = (1 + 2) / 2 + 3 / 1 + (5 + 7) / 2 + (1 + 2 + 6) / 3
    assert float(reconstruction(per_channel, "per_type", ELLIPSE_TYPES)) == pytest.approx(expected)
    assert float(type_losses(per_channel, ELLIPSE_TYPES)["rot"]) == pytest.approx(6.0)


def test_decoder_blocks_add_residual_blocks_on_the_coarsest_grid():
    plain = build_model(_cfg(arch="resnet_conv2d_grid", decoder_filters=(8,)))
    deep = build_model(_cfg(arch="resnet_conv2d_grid", decoder_filters=(8,), decoder_blocks=2))
    blocks = [m for m in deep.decoder if isinstance(m, ResBlock)]
    assert len(blocks) == len([m for m in plain.decoder if isinstance(m, ResBlock)]) + 2
    first = next(i for i, m in enumerate(deep.decoder) if isinstance(m, ResBlock))
    assert first < next(i for i, m in enumerate(deep.decoder)
                        if isinstance(m, torch.nn.Upsample))  # before the first upsampling
    pred, _ = deep(torch.randn(2, 64, 8))
    assert pred.shape == (2, 64, 8)
