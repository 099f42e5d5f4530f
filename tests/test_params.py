import copy

import pytest
import yaml

from gaussvae.core.errors import ParamsError
from gaussvae.core.params import load_params, parse_params
from tests.conftest import REPO, tiny_raw_params


def test_repository_params_load():
    params = load_params(REPO / "params.yaml")
    assert params.latent_dim >= 1
    assert params.max_beta >= 0
    assert params.extract.num_gaussians == 512


def test_sweep_knobs_are_top_level():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert "latent_dim" in raw and "max_beta" in raw


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(max_beta=-0.5), "max_beta must be a number >= 0"),
        (lambda r: r.update(max_beta="high"), "max_beta must be a number"),
        (lambda r: r.update(latent_dim=0), "latent_dim must be an integer >= 1"),
        (lambda r: r.update(latent_dim=2.5), "latent_dim must be an integer"),
        (lambda r: r.update(latent_dim=True), "latent_dim must be an integer"),
        (lambda r: r.update(lattent_dim=3), "unknown key 'lattent_dim'"),
        (lambda r: r["train"].update(lr=0.1), "unknown key 'train.lr'"),
        (lambda r: r["train"].update(arch="mlp"), "train.arch must be one of 'conv1d'"),
        (lambda r: r["extract"].update(ordering="hilbert"), "extract.ordering must be one of"),
        (lambda r: r["extract"].update(window=8),
         "extract.window must be 'auto' or an odd integer >= 3, got 8"),
        (lambda r: r["extract"].update(window="big"), "extract.window must be 'auto' or an odd"),
        (lambda r: r["train"].pop("epochs"), "missing key 'train.epochs'"),
        (lambda r: r["prepare"].update(source="folder", folder=None), "prepare.folder must"),
        (lambda r: r.update(train=[1, 2]), "train must be a mapping"),
        (lambda r: (r["train"].update(arch="conv2d_grid"), r["extract"].update(ordering="morton")),
         "train.arch conv2d_grid needs extract.ordering anchored or grid"),
        (lambda r: (r["extract"].update(num_gaussians=50), r["train"].update(symmetries=8)),
         "train.symmetries 8 with extract.ordering anchored needs extract.num_gaussians of the "
         "form 4k or 4k + 1, got 50 (use 48 or 52"),
        (lambda r: r["train"].update(arch="conv1d", attention_blocks=1),
         "train.attention_blocks works over the slot grid; train.arch conv1d has none"),
        (lambda r: (r["train"].update(arch="conv1d"), r["extract"].update(num_gaussians=30)),
         "extract.num_gaussians (30) must be divisible by 2**2"),
        (lambda r: r["extract"].update(min_scale=0.6, max_scale=0.5),
         "extract.min_scale must be below extract.max_scale"),
        (lambda r: (r["extract"].update(window=9), r["prepare"].update(image_size=256)),
         "extract.window 9 at prepare.image_size 256 cannot cover 3 sigma of the widest Gaussian "
         "(extract.max_scale 0.53 x slot spacing 32 px = 17 px); set extract.window to auto or "
         ">= 103, or extract.max_scale <= 0.046"),
        (lambda r: r["extract"].update(window=3, min_scale=0.05, max_scale=0.1),
         "extract.window 3 at prepare.image_size 32 leaves pixels between slots 4 px apart outside"
         " every window; set extract.window to auto or >= 5"),
        (lambda r: r["extract"].update(min_scale_px=0.4),
         "unknown key 'extract.min_scale_px': it is now extract.min_scale, in slot spacings"),
        (lambda r: r["train"].update(encoder_filters=[]),
         "train.encoder_filters must be a non-empty"),
        (lambda r: r["train"].update(encoder_filters=[8, 1.5]),
         "train.encoder_filters[1] must be an integer, got 1.5"),
        (lambda r: r["normalize"].update(per_position="yes"),
         "normalize.per_position must be true or false"),
        (lambda r: r["prepare"].update(val_fraction=0.5),
         "prepare.val_fraction must be a number in"),
    ],
)
def test_bad_params_give_one_line_error_naming_the_key(edit, message):
    raw = copy.deepcopy(tiny_raw_params())
    edit(raw)
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_ints_are_accepted_where_floats_are_expected():
    raw = tiny_raw_params()
    raw["max_beta"] = 1
    assert parse_params(raw).max_beta == 1.0


def test_missing_file_is_a_params_error(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_every_allowed_value_has_one_implementation():
    """params.py names the allowed values once; each module that implements them keys its
    implementations by the same names, so a value added to one list and not the other fails."""
    from gaussvae.core.params import Arch, Encoding, Ordering, Weighting, allowed
    from gaussvae.gaussians.slots import ORDERINGS
    from gaussvae.vae.encoding import ENCODINGS
    from gaussvae.vae.loss import WEIGHTINGS
    from gaussvae.vae.model import MODELS

    assert set(ORDERINGS) == set(allowed(Ordering))
    assert set(WEIGHTINGS) == set(allowed(Weighting))
    assert set(MODELS) == set(allowed(Arch))
    assert allowed(Encoding) == ENCODINGS
