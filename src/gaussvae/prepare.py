"""Stage 'prepare': the image set (embedded generator or a user's folder) with its split."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gaussvae.images import load_folder
from gaussvae.params import PrepareParams
from gaussvae.store import SPLITS, ImageSet
from gaussvae.synth import generate_image


def assign_splits(n: int, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Split codes (n,) uint8: a seeded shuffle, then test, val, and the rest train.

    Each of val and test gets at least one image, so small runs still evaluate.
    """
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    if n_test + n_val >= n:
        raise ValueError(f"{n} images are too few for a train/val/test split")
    order = np.random.default_rng([seed, 1]).permutation(n)
    split = np.full(n, SPLITS.index("train"), dtype=np.uint8)
    split[order[:n_test]] = SPLITS.index("test")
    split[order[n_test:n_test + n_val]] = SPLITS.index("val")
    return split


def prepare_images(settings: PrepareParams, on_image: Callable[[], None] | None = None) -> ImageSet:
    """All images of the configured source, resized to ``settings.image_size``, with splits."""
    skipped: list[tuple[str, str]] = []
    upscaled = 0
    if settings.source == "synthetic":
        images = []
        for i in range(settings.num_images):
            images.append(generate_image(settings.seed, i, settings.image_size))
            if on_image is not None:
                on_image()
        arr = np.stack(images)
        sources = [f"synthetic:{settings.seed}:{i}" for i in range(settings.num_images)]
    else:
        assert settings.folder is not None  # checked in params.py
        loaded = load_folder(settings.folder, settings.image_size, on_image)
        arr, sources, skipped, upscaled = (
            loaded.images, loaded.sources, loaded.skipped, loaded.upscaled
        )
    split = assign_splits(len(arr), settings.val_fraction, settings.test_fraction, settings.seed)
    attrs = {
        "image_size": settings.image_size,
        "source_kind": settings.source,
        "seed": settings.seed,
        "skipped": [f"{name}: {reason}" for name, reason in skipped],
        "upscaled": upscaled,
    }
    return ImageSet(images=arr, split=split, sources=sources, attrs=attrs)
