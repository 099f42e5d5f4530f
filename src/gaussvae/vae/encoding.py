"""How a Gaussian's shape is presented to the VAE: the stored channels, or an ellipse vector.

The stored shape (scale_x, scale_y, rot) is a poor regression target: rot wraps around at pi,
so 0.01 and 3.13 are the same ellipse yet far apart in MSE; and an isotropic Gaussian's rot is
arbitrary, so it is noise no encoder can predict. Under MSE both make the best guess for rot
the mean, which is why the original GaussVAE's rotation loss sat at 1.0 ("predicts the mean").

``ellipse`` replaces the three shape channels by a point in the plane of shapes:
  log_size        = (log scale_x + log scale_y) / 2
  (e_cos, e_sin)  = (log scale_x - log scale_y) / 2 * (cos 2 rot, sin 2 rot)
The vector e is continuous in the ellipse: rot and rot + pi give the same e, and every isotropic
Gaussian gives e = 0 whatever its stored rot. Decoding is exact for canonical Gaussians
(scale_x >= scale_y, rot in [0, pi)), which is what extraction stores.

Types for the per-type loss: xy (x, y), scale (log_size), rot (e_cos, e_sin: orientation and
elongation together), feat (r, g, b). Evaluation decodes back to stored channels, so reported
losses are comparable across encodings.

Functions take numpy arrays or torch tensors (array API), so the normalize stage computes its
statistics without loading torch while training differentiates through the same code.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from gaussvae.core.channels import CHANNELS, FEAT, ROT, SCALE_X, SCALE_Y, TYPES, XY, wrap_rotation
from gaussvae.core.params import Encoding, allowed

ENCODINGS = allowed(Encoding)

# The ellipse encoding's own channels; xy and feat keep their stored places.
ELLIPSE_CHANNELS: tuple[str, ...] = ("x", "y", "log_size", "e_cos", "e_sin", "r", "g", "b")
ELLIPSE_TYPES: dict[str, slice] = {
    "xy": XY,
    "scale": slice(2, 3),
    "rot": slice(3, 5),
    "feat": FEAT,
}
LOG_SIZE = ELLIPSE_TYPES["scale"]
E_COS, E_SIN = slice(3, 4), slice(4, 5)


def _check(name: str) -> None:
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; expected one of {ENCODINGS}")


def channels(name: str) -> tuple[str, ...]:
    """Channel names of encoding ``name``, in order."""
    _check(name)
    return CHANNELS if name == "raw" else ELLIPSE_CHANNELS


def types(name: str) -> dict[str, slice]:
    """Channel slices of each parameter type under encoding ``name``."""
    _check(name)
    return TYPES if name == "raw" else ELLIPSE_TYPES


def encode(g: Any, name: str) -> Any:
    """Stored Gaussians (..., 8) -> encoded (..., 8)."""
    _check(name)
    if name == "raw":
        return g
    xp = array_namespace(g)
    log_x, log_y = xp.log(g[..., SCALE_X]), xp.log(g[..., SCALE_Y])
    half_diff = (log_x - log_y) / 2
    angle = 2 * g[..., ROT]
    return xp.concat([g[..., XY], (log_x + log_y) / 2, half_diff * xp.cos(angle),
                      half_diff * xp.sin(angle), g[..., FEAT]], axis=-1)


def decode(e: Any, name: str) -> Any:
    """Encoded (..., 8) -> stored Gaussians (..., 8), canonical for ``ellipse``; differentiable.

    At e = 0 (an isotropic Gaussian) rot is 0; the norm and the angle are computed so their
    gradients stay finite there (the render loss differentiates through this).
    """
    _check(name)
    if name == "raw":
        return e
    xp = array_namespace(e)
    e_cos, e_sin = e[..., E_COS], e[..., E_SIN]
    half_diff = xp.sqrt(e_cos**2 + e_sin**2 + 1e-12)
    flat = (e_cos == 0) & (e_sin == 0)
    safe_cos = xp.where(flat, xp.ones_like(e_cos), e_cos)
    rot = wrap_rotation(xp.atan2(e_sin, safe_cos) / 2)
    return xp.concat([e[..., XY], xp.exp(e[..., LOG_SIZE] + half_diff),
                      xp.exp(e[..., LOG_SIZE] - half_diff), rot, e[..., FEAT]], axis=-1)
