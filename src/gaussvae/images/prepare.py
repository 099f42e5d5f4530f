"""The image set: the embedded generator's images or a user's folder, with fixed splits."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from gaussvae.core.errors import ImageSourceError
from gaussvae.core.params import PrepareParams
from gaussvae.core.store import SPLITS, ImageSet
from gaussvae.images.folder import load_folder
from gaussvae.images.synth import generate_image


def synthetic_splits(n: int, val_images: int, test_images: int) -> np.ndarray:
    """Split codes (n,) uint8 of generated images: indices [0, test_images) are test, the next
    val_images are val, the rest train. Image i is a pure function of (seed, i), so every run,
    whatever its num_images, is validated and tested on the same images."""
    split = np.full(n, SPLITS.index("train"), dtype=np.uint8)
    split[:test_images] = SPLITS.index("test")
    split[test_images:test_images + val_images] = SPLITS.index("val")
    return split


def folder_splits(sources: list[str], val_fraction: float, test_fraction: float) -> np.ndarray:
    """Split codes (n,) uint8 of a folder's images, decided by a hash of each file's path
    relative to the folder: adding or removing files never moves another file between splits.
    """
    split = np.full(len(sources), SPLITS.index("train"), dtype=np.uint8)
    for i, name in enumerate(sources):
        u = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2.0**64
        if u < test_fraction:
            split[i] = SPLITS.index("test")
        elif u < test_fraction + val_fraction:
            split[i] = SPLITS.index("val")
    for name in ("val", "test"):
        if not (split == SPLITS.index(name)).any():
            raise ImageSourceError(
                f"none of the {len(sources)} images fell into the {name} split (each file goes "
                f"there with probability prepare.{name}_fraction); add images or raise it")
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
    if settings.source == "synthetic":
        split = synthetic_splits(len(arr), settings.val_images, settings.test_images)
    else:
        split = folder_splits(sources, settings.val_fraction, settings.test_fraction)
    attrs = {
        "image_size": settings.image_size,
        "source_kind": settings.source,
        "seed": settings.seed,
        "skipped": [f"{name}: {reason}" for name, reason in skipped],
        "upscaled": upscaled,
    }
    return ImageSet(images=arr, split=split, sources=sources, attrs=attrs)
