"""A fit's lengths in pixels at any image size, from settings in units of the slot spacing.

A fit places ``num_gaussians`` Gaussians on a grid of slots, so the slot spacing,
``image_size / sqrt(num_gaussians)`` pixels, is the length that every image size shares: the fit
of a 256 px image is the fit of a 64 px image with every length four times as many pixels. The
sigma bounds and the start sigma (params.yaml ``extract.min_scale``, ``max_scale``,
``init_scale``) are therefore in slot spacings, and the window each Gaussian is evaluated on
follows the largest sigma, so that it covers ``COVERED_SIGMAS`` of every Gaussian at every size
and a dense renderer draws what the file's windowed one does. Stored Gaussians are fractions of
the image side; drawing a file at another size needs only a window for that size.
"""

from __future__ import annotations

import math

# The window reaches this many sigmas of the widest Gaussian along x and y from its centre
# pixel; beyond 3 sigma a Gaussian weighs exp(-4.5) = 1% of its peak.
COVERED_SIGMAS = 3.0


def slot_spacing_px(image_size: int, num_gaussians: int) -> float:
    """Pixels between neighbouring slots of ``num_gaussians`` on an ``image_size`` image."""
    return image_size / math.sqrt(num_gaussians)


def smallest_odd_at_least(length: float) -> int:
    """The smallest odd integer >= ``length`` (and >= 3), with a little slack for rounding."""
    w = max(3, math.ceil(length - 1e-9))
    return w if w % 2 else w + 1


def covering_window(max_sigma_px: float, spacing_px: float) -> int:
    """The smallest odd window that covers ``COVERED_SIGMAS`` of a Gaussian of ``max_sigma_px``
    (window / 2 >= 3 sigma) and reaches past the next slot (window > spacing + 1 px), so that no
    pixel between slots lies outside every window of a fit's start."""
    return smallest_odd_at_least(max(2 * COVERED_SIGMAS * max_sigma_px, spacing_px + 1))
