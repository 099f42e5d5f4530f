"""The trained model in a user's hands, from Python: load a model file, fit images to
Gaussians, encode to a posterior, decode codes, render Gaussians at any size.

    from gaussvae.app.api import load, read_images
    model = load("data/train/model.safetensors")          # device "auto": CUDA when present
    images, sources = read_images(["photos/"], model.image_size)
    fits = model.fit(images)                                # GaussianSet (the pipeline's schema)
    posterior = model.encode(fits.gaussians)                # .mode(), .sample(), .mu, .logvar
    gaussians = model.decode(posterior.mode())              # (n, 512, 8) stored units
    pictures = model.render(gaussians, size=256)            # (n, 256, 256, 3) uint8

The pixel baseline's file loads the same way (``PixelModel``: ``encode`` takes images,
``decode`` gives images). Every function takes numpy arrays or torch tensors and runs on the
model's device; nothing here trains or writes files (commands.py does, for the shell).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gaussvae.baselines.pixel_vae import PixelConfig, PixelStats, PixelVAE
from gaussvae.core.device import resolve_device
from gaussvae.core.errors import ImageSourceError
from gaussvae.core.params import Params, parse_params
from gaussvae.core.store import GaussianSet, ImageSet
from gaussvae.evaluation.image_metrics import psnr_uint8
from gaussvae.gaussians.extraction import extract
from gaussvae.gaussians.render import RenderSpec, render_uint8
from gaussvae.images.folder import IMAGE_SUFFIXES, list_images, load_image
from gaussvae.vae.model import (
    VAE,
    DiagonalGaussian,
    VAEConfig,
    build_model,
    decode_codes,
    encode_posterior,
)
from gaussvae.vae.model_file import read_model_file, restore
from gaussvae.vae.normalization import NormStats, denormalize, normalize


def read_images(paths: Sequence[str | Path], size: int,
                on_image: Callable[[], None] | None = None) -> tuple[np.ndarray, list[str]]:
    """Images (n, size, size, 3) uint8 from image files and folders of them (searched
    recursively), centre-cropped and resized as the prepare stage does, and where each came
    from. A file that is not a readable image stops with one line naming it."""
    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            files += list_images(entry)
        elif not entry.exists():
            raise FileNotFoundError(f"{entry}: no such file or folder")
        elif entry.suffix.lower() not in IMAGE_SUFFIXES:
            raise ImageSourceError(f"{entry}: not an image file (expected one of "
                                   f"{', '.join(sorted(IMAGE_SUFFIXES))})")
        else:
            files.append(entry)
    if not files:
        raise ImageSourceError("no images given")
    images = []
    for path in files:
        try:
            images.append(load_image(path, size)[0])
        except (OSError, ValueError, SyntaxError) as err:
            raise ImageSourceError(f"{path}: cannot be read as an image "
                                   f"({str(err).splitlines()[0] or type(err).__name__})") from None
        if on_image is not None:
            on_image()
    return np.stack(images), [str(p) for p in files]


def render_spec(params: Params) -> RenderSpec:
    """How Gaussians fitted under ``params`` are drawn (what gaussians.h5's attributes say)."""
    return RenderSpec.from_settings(params.prepare.image_size, params.extract)


def fit(images: np.ndarray, params: Params, device: torch.device,
        on_batch: Callable[[int, np.ndarray, int], None] | None = None,
        sources: list[str] | None = None) -> GaussianSet:
    """Images (n, S, S, 3) uint8 at ``prepare.image_size`` fitted as the extract stage fits
    (params' ``extract`` settings), ordered on the slot grid, in the pipeline's schema."""
    size = params.prepare.image_size
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[1:] != (size, size, 3):
        raise ImageSourceError(f"images must be (n, {size}, {size}, 3) uint8 here, got "
                               f"{images.shape}; read_images resizes them")
    sources = sources or [f"image:{i}" for i in range(len(images))]
    image_set = ImageSet(images, np.zeros(len(images), np.uint8), sources,
                         {"image_size": size, "skipped": []})
    return extract(image_set, params.extract, device, on_batch=on_batch)


def _tensor(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32, device=device)


@dataclass
class GaussianModel:
    """A trained Gaussian VAE with what it needs around it: the statistics its inputs are
    normalized with, how its Gaussians are drawn, and the params it was trained under (whose
    ``extract`` settings are the fit it expects)."""

    vae: VAE
    stats: NormStats
    params: Params
    device: torch.device

    kind = "gaussian_vae"

    @property
    def latent_dim(self) -> int:
        return self.vae.config.latent_dim

    @property
    def image_size(self) -> int:
        return self.params.prepare.image_size

    @property
    def spec(self) -> RenderSpec:
        return render_spec(self.params)

    def fit(self, images: np.ndarray,
            on_batch: Callable[[int, np.ndarray, int], None] | None = None,
            sources: list[str] | None = None) -> GaussianSet:
        """Images fitted as the Gaussians this model was trained on were (``fit``)."""
        return fit(images, self.params, self.device, on_batch, sources)

    def encode(self, gaussians: np.ndarray | torch.Tensor) -> DiagonalGaussian:
        """The posterior over codes of Gaussians (n, N, 8) in stored units."""
        return encode_posterior(self.vae, normalize(_tensor(gaussians, self.device), self.stats))

    def decode(self, z: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Gaussians (n, N, 8) in stored units decoded from codes z (n, latent_dim)."""
        return denormalize(decode_codes(self.vae, _tensor(z, self.device)), self.stats)

    def render(self, gaussians: np.ndarray | torch.Tensor, size: int | None = None
               ) -> np.ndarray:
        """Images (n, size, size, 3) uint8 of Gaussians in stored units, at any size."""
        return render_uint8(_tensor(gaussians, self.device),
                            self.spec.at_size(size or self.image_size))

    def decode_images(self, z: np.ndarray | torch.Tensor, size: int | None = None
                      ) -> np.ndarray:
        return self.render(self.decode(z), size)


@dataclass
class PixelModel:
    """The trained pixel-space baseline: images in, images out."""

    vae: PixelVAE
    stats: PixelStats
    params: Params
    device: torch.device

    kind = "pixel_vae"

    @property
    def latent_dim(self) -> int:
        return self.vae.config.latent_dim

    @property
    def image_size(self) -> int:
        return self.vae.config.image_size

    def encode(self, images: np.ndarray) -> DiagonalGaussian:
        """The posterior over codes of images (n, S, S, 3) uint8."""
        x = self.stats.normalize(np.asarray(images, np.uint8)).to(self.device)
        return encode_posterior(self.vae, x)

    def decode_images(self, z: np.ndarray | torch.Tensor, size: int | None = None
                      ) -> np.ndarray:
        if size not in (None, self.image_size):
            raise ImageSourceError(f"the pixel baseline draws {self.image_size} px images "
                                   f"only, not {size}")
        return self.stats.to_uint8(decode_codes(self.vae, _tensor(z, self.device)),
                                   self.image_size)


Model = GaussianModel | PixelModel


def load(path: str | Path, device: str | torch.device = "auto") -> Model:
    """The model in a model file (vae/model_file.py), of either kind, in eval mode."""
    device = resolve_device(device) if isinstance(device, str) else device
    file = read_model_file(path, None, device)
    params = parse_params(file.params)
    if file.kind == "pixel_vae":
        vae = restore(PixelVAE(PixelConfig.from_dict(file.model_config)), file, device)
        return PixelModel(vae, PixelStats.from_json(file.norm_stats), params, device)
    vae = restore(build_model(VAEConfig.from_dict(file.model_config)), file, device)
    return GaussianModel(vae, NormStats.from_json(file.norm_stats), params, device)


def psnrs(pred: np.ndarray, ref: np.ndarray) -> list[float]:
    """Per-image PSNR (dB) of uint8 images (n, S, S, 3)."""
    return [psnr_uint8(p, r) for p, r in zip(pred, ref, strict=True)]
