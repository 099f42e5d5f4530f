"""The ellipse encoding: exact round trip, no wrap-around, no arbitrary rotation."""

from __future__ import annotations

import math

import pytest
import torch

from gaussvae.gaussians.fit import canonicalize
from gaussvae.gaussians.render import render
from gaussvae.vae.encoding import ENCODINGS, channels, decode, encode, types


def _gaussians(n: int = 64, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    g = torch.rand(1, n, 8, generator=gen, dtype=torch.float64)
    g[..., 2:4] = 0.01 + 0.04 * g[..., 2:4]
    g[..., 4] = g[..., 4] * 2 * math.pi  # any angle; canonicalize maps it into [0, pi)
    return canonicalize(g)


@pytest.mark.parametrize("name", ENCODINGS)
def test_round_trip_is_exact_on_canonical_gaussians(name):
    g = _gaussians()
    assert torch.allclose(decode(encode(g, name), name), g, atol=1e-9)


def test_rotations_either_side_of_the_wrap_encode_close():
    g = _gaussians(2)
    g[0, 0, 2:5] = torch.tensor([0.04, 0.01, 0.001], dtype=g.dtype)
    g[0, 1, 2:5] = torch.tensor([0.04, 0.01, math.pi - 0.001], dtype=g.dtype)
    g[0, 1, 5:8] = g[0, 0, 5:8]
    g[0, 1, 0:2] = g[0, 0, 0:2]
    e = encode(g, "ellipse")
    assert float((e[0, 0] - e[0, 1]).abs().max()) < 0.01  # raw rot differs by ~3.14
    assert float((g[0, 0] - g[0, 1]).abs().max()) > 3.0


def test_isotropic_gaussians_encode_the_same_whatever_their_rotation():
    g = _gaussians(4)
    g[0, :, 2:4] = 0.02
    g[0, :, 4] = torch.tensor([0.0, 0.7, 1.9, 3.0], dtype=g.dtype)
    e = encode(g, "ellipse")
    assert torch.allclose(e[0, :, 3:5], torch.zeros(4, 2, dtype=g.dtype), atol=1e-12)


def test_decoded_gaussians_render_the_same_image():
    g = _gaussians(128, seed=3).float()
    back = decode(encode(g, "ellipse"), "ellipse")
    assert torch.allclose(render(back, 32, 9), render(g, 32, 9), atol=1e-5)


def test_decode_gradient_is_finite_near_zero_elongation():
    e = torch.zeros(1, 2, 8, dtype=torch.float64)
    e[..., 2] = math.log(0.02)
    e[0, 1, 3] = 1e-9
    e.requires_grad_(True)
    decode(e, "ellipse")[..., 2:4].sum().backward()
    assert torch.isfinite(e.grad).all()


@pytest.mark.parametrize("name", ENCODINGS)
def test_types_partition_the_channels(name):
    covered = sorted(i for s in types(name).values() for i in range(s.start, s.stop))
    assert covered == list(range(8)) and len(channels(name)) == 8
    assert list(types(name)) == ["xy", "scale", "rot", "feat"]


def test_unknown_encoding_is_rejected():
    with pytest.raises(ValueError, match="unknown encoding"):
        encode(torch.zeros(1, 1, 8), "polar")
