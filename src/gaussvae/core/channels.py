"""The channels of one stored Gaussian: 8 numbers in four parameter types, named once.

Every module that reads a channel by position reads it from here (``XY``, ``SCALE``, ``ROT``,
``FEAT`` for the types, ``X`` .. ``SCALE_Y`` for one channel kept as a slice, ``INDEX`` and
``ANGLE`` for one channel as an index). Torch-free on purpose: the cheap stages (prepare,
normalize) and the HDF5 store read it without loading torch. ``wrap_rotation`` works on numpy
arrays and torch tensors alike.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

CHANNELS: tuple[str, ...] = ("x", "y", "scale_x", "scale_y", "rot", "r", "g", "b")
NUM_CHANNELS = len(CHANNELS)
INDEX: dict[str, int] = {name: i for i, name in enumerate(CHANNELS)}
TYPES: dict[str, slice] = {
    "xy": slice(0, 2),
    "scale": slice(2, 4),
    "rot": slice(4, 5),
    "feat": slice(5, 8),
}
XY, SCALE, ROT, FEAT = TYPES["xy"], TYPES["scale"], TYPES["rot"], TYPES["feat"]
ANGLE = INDEX["rot"]


def one(name: str) -> slice:
    """Channel ``name`` as a slice, so that indexing keeps the channel axis."""
    return slice(INDEX[name], INDEX[name] + 1)


X, Y, SCALE_X, SCALE_Y = one("x"), one("y"), one("scale_x"), one("scale_y")


def wrap_rotation(angle: Any) -> Any:
    """Angles in radians mapped into [0, pi), the canonical range of ``rot`` (t ~ t + pi).

    ``remainder(-1e-9, pi)`` is pi - 1e-9, which float32 rounds to pi itself (just above
    math.pi); those are folded to ~0 so the range really is half-open. Differentiable.
    """
    xp = array_namespace(angle)
    wrapped = xp.remainder(angle, math.pi)
    return xp.where(wrapped >= math.pi, wrapped - math.pi, wrapped)
