"""Gaussians from images: the renderers, the fit, the slot grid, extracting a whole set."""
