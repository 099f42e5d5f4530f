"""Reading a user's folder of images into square RGB arrays.

Any format Pillow decodes (PNG, JPEG, WebP, BMP, GIF, TIFF, ...). Grayscale, palette, RGBA and
16-bit images are converted to 8-bit RGB (transparency composited over white); each image is
centre-cropped to a square and resized to ``size`` with a Lanczos filter. Unreadable files are
skipped and reported by name; an empty folder is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gaussvae.core.errors import ImageSourceError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"}
)


@dataclass
class FolderImages:
    images: np.ndarray  # (n, size, size, 3) uint8
    sources: list[str]  # file names relative to the folder
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    upscaled: int = 0


def list_images(folder: str | Path) -> list[Path]:
    """Image files below ``folder`` (recursive), sorted for a stable order across machines."""
    root = Path(folder)
    if not root.is_dir():
        raise ImageSourceError(
            f"{root}: not a directory; set prepare.folder to a folder of images"
        )
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageSourceError(
            f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))}); "
            "point prepare.folder at a folder that holds some"
        )
    return files


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode; 16-bit channels are scaled, not clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def square_resize(img: Image.Image, size: int) -> Image.Image:
    """Centre crop to a square, then resize to ``size`` x ``size`` (Lanczos)."""
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def load_image(path: Path, size: int) -> tuple[np.ndarray, bool]:
    """One file as (size, size, 3) uint8 and whether it had to be upscaled."""
    with Image.open(path) as img:
        img.load()
        small = min(img.size) < size
        rgb = square_resize(to_rgb(img), size)
    return np.asarray(rgb, dtype=np.uint8), small


def load_folder(
    folder: str | Path, size: int, on_image: Callable[[], None] | None = None
) -> FolderImages:
    """Every readable image below ``folder``; unreadable ones are skipped with a warning."""
    root = Path(folder)
    files = list_images(root)
    images: list[np.ndarray] = []
    sources: list[str] = []
    skipped: list[tuple[str, str]] = []
    upscaled = 0
    for path in files:
        name = str(path.relative_to(root))
        try:
            arr, small = load_image(path, size)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.warning("skipping %s: cannot decode (%s)", path, reason)
            skipped.append((name, reason))
        else:
            if small:
                upscaled += 1
                log.warning("%s is smaller than %d px; upscaled", path, size)
            images.append(arr)
            sources.append(name)
        if on_image is not None:
            on_image()
    if not images:
        raise ImageSourceError(
            f"{root}: none of {len(files)} image files could be decoded (first: "
            f"{skipped[0][0]}: {skipped[0][1]}); check the files"
        )
    return FolderImages(np.stack(images), sources, skipped, upscaled)
