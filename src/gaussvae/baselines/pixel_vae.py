"""The pixel-space baseline: a plain convolutional VAE on the images themselves.

The question every Gaussian-VAE number must answer: at the same latent size and training
budget, do the Gaussians beat simply compressing the pixels? This model is the simplest strong
answer, built like the Gaussian VAE's default (stride-2 convolutions, optional residual
blocks, a 1x1 bottleneck flattened into mu and log-variance, the mirror image back with
nearest upsampling) and trained by the same loop, objective and selection rules
(vae/trainer.py, vae/loss.py) on the same splits. Pixels are z-scored per channel with training
statistics, so its reconstruction loss is in the same units as the Gaussian VAE's; beta is the
weight of KL per data element (here 64 x 64 x 3), and the baseline has its own
(``pixel_baseline.max_beta``): at one beta the KL term is a far larger share of its loss than
of the Gaussian VAE's, so the same number would not be the same regularization.

The residual blocks (3 x 3, ``resnet_blocks`` in each half) sit at the coarsest grid only
(16 x 16 at 64 px, ``filters[-1]`` channels): a block at 64 x 64 costs 16 times one there,
and the Gaussian VAE's are at its 24 x 24 and 12 x 12 grids.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gaussvae.core.params import Params
from gaussvae.vae.model import VAE, DiagonalGaussian, ResBlock
from gaussvae.vae.model_file import read_model_file, restore

CHANNELS = 3
TYPES = {"rgb": slice(0, CHANNELS)}  # one type: the per-type weighting is the plain mean


@dataclass(frozen=True)
class PixelConfig:
    image_size: int
    latent_dim: int
    filters: tuple[int, ...]  # one stride-2 convolution each
    bottleneck_channels: int
    kernel_size: int
    logvar_min: float
    logvar_max: float
    resnet_blocks: int = 0  # at the coarsest grid, in the encoder and in the decoder

    @classmethod
    def from_params(cls, params: Params, image_size: int) -> PixelConfig:
        p, t = params.pixel_baseline, params.train
        return cls(image_size, params.latent_dim, tuple(p.filters), p.bottleneck_channels,
                   p.kernel_size, t.logvar_min, t.logvar_max, p.resnet_blocks)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PixelConfig:
        return cls(**{**d, "filters": tuple(d["filters"])})


class PixelVAE(VAE):
    """(B, S*S, 3) z-scored pixels, row-major -> z (B, latent_dim) -> (B, S*S, 3)."""

    def __init__(self, config: PixelConfig) -> None:
        super().__init__()
        self.config = config
        k, size = config.kernel_size, config.image_size
        enc: list[nn.Module] = []
        cin = CHANNELS
        for f in config.filters:
            enc += [nn.Conv2d(cin, f, k, stride=2, padding=k // 2), nn.SiLU()]
            cin = f
        enc += [ResBlock(cin, 3, 2) for _ in range(config.resnet_blocks)]
        enc += [nn.Conv2d(cin, config.bottleneck_channels, 1), nn.SiLU(), nn.Flatten()]
        self.encoder = nn.Sequential(*enc)
        side = math.ceil(size / 2 ** len(config.filters))
        self.code_shape = (config.bottleneck_channels, side, side)
        self.to_stats = nn.Linear(math.prod(self.code_shape), 2 * config.latent_dim)
        self.from_latent = nn.Linear(config.latent_dim, math.prod(self.code_shape))
        dec: list[nn.Module] = [nn.SiLU(), nn.Conv2d(config.bottleneck_channels, cin, 1),
                                nn.SiLU()]
        dec += [ResBlock(cin, 3, 2) for _ in range(config.resnet_blocks)]
        for f in reversed((CHANNELS, *config.filters[:-1])):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(cin, f, k, padding=k // 2)]
            if f != CHANNELS:
                dec.append(nn.SiLU())
            cin = f
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        s = self.config.image_size
        images = x.transpose(1, 2).reshape(x.shape[0], CHANNELS, s, s)
        mu, logvar = self.to_stats(self.encoder(images)).chunk(2, dim=1)
        return DiagonalGaussian(mu, logvar.clamp(self.config.logvar_min, self.config.logvar_max))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        s = self.config.image_size
        h = self.from_latent(z).view(z.shape[0], *self.code_shape)
        out = self.decoder(h)[..., :s, :s]  # (B, 3, S, S)
        return out.reshape(z.shape[0], CHANNELS, s * s).transpose(1, 2)


@dataclass(frozen=True)
class PixelStats:
    """Per-channel mean and std (3,) of the training images, in [0, 1] units."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, images: np.ndarray) -> PixelStats:
        x = images.reshape(-1, CHANNELS).astype(np.float64) / 255.0
        return cls(x.mean(0).astype(np.float32), x.std(0).astype(np.float32))

    def normalize(self, images: np.ndarray) -> torch.Tensor:
        """uint8 images (n, S, S, 3) -> (n, S*S, 3) z-scored float32."""
        x = torch.from_numpy(images.reshape(len(images), -1, CHANNELS)).float() / 255.0
        return (x - torch.from_numpy(self.mean)) / torch.from_numpy(self.std)

    def to_uint8(self, x: torch.Tensor, size: int) -> np.ndarray:
        """(n, S*S, 3) z-scored -> uint8 images (n, S, S, 3)."""
        pixels = x.cpu() * torch.from_numpy(self.std) + torch.from_numpy(self.mean)
        pixels = (pixels.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()
        return pixels.reshape(len(x), size, size, CHANNELS)

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> PixelStats:
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))


def load_pixel_model(path: str | Path, device: torch.device) -> tuple[PixelVAE, PixelStats]:
    """Rebuild the trained baseline from its file alone (vae/model_file.py)."""
    file = read_model_file(path, "pixel_vae", device)
    model = restore(PixelVAE(PixelConfig.from_dict(file.model_config)), file, device)
    return model, PixelStats.from_json(file.norm_stats)

