"""Conv1D VAEs over sequences of Gaussians: (B, N, 8) -> z (B, latent_dim) -> (B, N, 8).

Unlike the seed, the encoder does not end in global average pooling: pooling squeezes the whole
sequence into a position-free summary and was the real bottleneck (DESIGN.md section 3). Here a
1x1 convolution narrows the channels to ``bottleneck_channels`` and the remaining
(channels x positions) map is flattened into the linear layers that give mu and log-variance, so
every position keeps its own weights.

``conv2d_grid`` is the same VAE with 2D convolutions over the slot grid of grid ordering
(ordering.grid_cells): slot k sits at (row, col), so vertical neighbours, 22 indices apart in
the 1D sequence, are neighbours again. The 1D models draw horizontal streaks in their
reconstructions for that reason (metrics/plots/reconstructions.png). Meaningful only with
``extract.ordering: grid``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from gaussvae.ordering import grid_cells
from gaussvae.render import NUM_CHANNELS

ARCHS = ("conv1d", "resnet_conv1d", "conv2d_grid")


@dataclass(frozen=True)
class VAEConfig:
    arch: str  # one of ARCHS
    num_gaussians: int
    latent_dim: int
    encoder_filters: tuple[int, ...]
    decoder_filters: tuple[int, ...]
    kernel_size: int
    resnet_blocks: int
    bottleneck_channels: int
    logvar_min: float
    logvar_max: float

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        for name in ("encoder_filters", "decoder_filters"):
            depth = len(getattr(self, name))
            # conv2d_grid pads its grid to a multiple of 2**depth, so any count works there.
            if self.arch != "conv2d_grid" and self.num_gaussians % (2**depth):
                raise ValueError(
                    f"num_gaussians ({self.num_gaussians}) must be divisible by 2**{depth} "
                    f"for {depth} {name} (each halves or doubles the sequence)"
                )
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        d = dict(d)
        d["encoder_filters"] = tuple(d["encoder_filters"])
        d["decoder_filters"] = tuple(d["decoder_filters"])
        return cls(**d)


class DiagonalGaussian:
    """Posterior N(mu, exp(logvar)); ``mode()`` at evaluation, ``sample()`` in training."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mu = mu
        self.logvar = logvar

    def sample(self) -> torch.Tensor:
        return self.mu + torch.randn_like(self.mu) * torch.exp(0.5 * self.logvar)

    def mode(self) -> torch.Tensor:
        return self.mu

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per sample in nats, summed over latent dimensions: (B,)."""
        return 0.5 * (self.mu.pow(2) + self.logvar.exp() - 1.0 - self.logvar).sum(dim=1)


class ResBlock1d(nn.Module):
    """Pre-activation residual block: x + conv(act(norm(conv(act(norm(x))))))."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        groups = 8 if channels % 8 == 0 else 1
        self.body = nn.Sequential(
            nn.GroupNorm(groups, channels), nn.SiLU(),
            nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(groups, channels), nn.SiLU(),
            nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _down(cin: int, cout: int, k: int) -> nn.Module:
    return nn.Conv1d(cin, cout, k, stride=2, padding=k // 2)


def _up(cin: int, cout: int, k: int) -> nn.Module:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv1d(cin, cout, k, padding=k // 2))


class VAE(nn.Module):
    """encode / reparameterize / decode, the split of pytorch/examples' VAE; subclasses give
    ``encode(x) -> DiagonalGaussian`` and ``decode(z) -> (B, N, 8)``."""

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, sample: bool = True
    ) -> tuple[torch.Tensor, DiagonalGaussian]:
        posterior = self.encode(x)
        z = posterior.sample() if sample else posterior.mode()
        return self.decode(z), posterior


class GaussianVAE(VAE):
    """VAE over (B, N, 8) normalized Gaussian parameters as a 1D sequence (conv1d, resnet)."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.kernel_size
        res = cfg.arch == "resnet_conv1d"
        enc: list[nn.Module] = []
        cin = NUM_CHANNELS
        if res:  # stem, so residual blocks work at the first stage's width
            enc.append(nn.Conv1d(cin, cfg.encoder_filters[0], k, padding=k // 2))
            cin = cfg.encoder_filters[0]
        for f in cfg.encoder_filters:
            if res:
                enc += [ResBlock1d(cin, k) for _ in range(cfg.resnet_blocks)]
            enc += [_down(cin, f, k), nn.SiLU()]
            cin = f
        enc += [nn.Conv1d(cin, cfg.bottleneck_channels, 1), nn.SiLU(), nn.Flatten()]
        self.encoder = nn.Sequential(*enc)
        self.enc_len = cfg.num_gaussians // 2 ** len(cfg.encoder_filters)
        self.to_stats = nn.Linear(cfg.bottleneck_channels * self.enc_len, 2 * cfg.latent_dim)

        self.dec_len = cfg.num_gaussians // 2 ** len(cfg.decoder_filters)
        c0 = cfg.decoder_filters[0]
        self.from_latent = nn.Linear(cfg.latent_dim, c0 * self.dec_len)
        dec: list[nn.Module] = [nn.SiLU()]
        cin = c0
        for f in cfg.decoder_filters:
            if res:
                dec += [ResBlock1d(cin, k) for _ in range(cfg.resnet_blocks)]
            dec += [_up(cin, f, k), nn.SiLU()]
            cin = f
        dec.append(nn.Conv1d(cin, NUM_CHANNELS, k, padding=k // 2))
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """x: (B, N, 8) normalized -> posterior over z (B, latent_dim)."""
        h = self.to_stats(self.encoder(x.transpose(1, 2)))
        mu, logvar = h.chunk(2, dim=1)
        # Bounded log-variance: an unbounded one overflowed KL to inf in the seed's runs.
        return DiagonalGaussian(mu, logvar.clamp(self.cfg.logvar_min, self.cfg.logvar_max))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> (B, N, 8) normalized."""
        h = self.from_latent(z).view(z.shape[0], self.cfg.decoder_filters[0], self.dec_len)
        return self.decoder(h).transpose(1, 2)



class SlotGrid(nn.Module):
    """Moves per-slot features between a sequence (B, N, C) and a padded grid (B, C, H, W).

    H and W are the slot grid's rows and columns rounded up to a multiple of ``multiple``, so
    every stride-2 step halves them exactly; cells without a slot are zero on the way in and
    ignored on the way out.
    """

    def __init__(self, num_gaussians: int, multiple: int) -> None:
        super().__init__()
        row, col, rows, cols = grid_cells(num_gaussians)
        self.height = -(-rows // multiple) * multiple
        self.width = -(-cols // multiple) * multiple
        self.register_buffer("cell", torch.as_tensor(row * self.width + col), persistent=False)

    def to_grid(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        grid = x.new_zeros(b, c, self.height * self.width)
        grid[:, :, self.cell] = x.transpose(1, 2)
        return grid.view(b, c, self.height, self.width)

    def to_sequence(self, grid: torch.Tensor) -> torch.Tensor:
        return grid.flatten(2)[:, :, self.cell].transpose(1, 2)


class GridVAE(VAE):
    """``conv2d_grid``: the conv1d VAE's layers in 2D over the slot grid (same config keys).

    Stride-2 square convolutions of side ``kernel_size`` down to a (bottleneck_channels, H/2^d,
    W/2^d) map flattened into mu/log-variance; the decoder mirrors it with nearest upsampling.
    """

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.kernel_size
        self.grid_in = SlotGrid(cfg.num_gaussians, 2 ** len(cfg.encoder_filters))
        self.grid_out = SlotGrid(cfg.num_gaussians, 2 ** len(cfg.decoder_filters))
        enc: list[nn.Module] = []
        cin = NUM_CHANNELS + 1  # + a mask channel: 1 where a slot is, 0 on padding
        for f in cfg.encoder_filters:
            enc += [nn.Conv2d(cin, f, k, stride=2, padding=k // 2), nn.SiLU()]
            cin = f
        enc += [nn.Conv2d(cin, cfg.bottleneck_channels, 1), nn.SiLU(), nn.Flatten()]
        self.encoder = nn.Sequential(*enc)
        down = 2 ** len(cfg.encoder_filters)
        enc_cells = (self.grid_in.height // down) * (self.grid_in.width // down)
        self.to_stats = nn.Linear(cfg.bottleneck_channels * enc_cells, 2 * cfg.latent_dim)
        up = 2 ** len(cfg.decoder_filters)
        self.dec_shape = (cfg.decoder_filters[0], self.grid_out.height // up,
                          self.grid_out.width // up)
        self.from_latent = nn.Linear(cfg.latent_dim, math.prod(self.dec_shape))
        dec: list[nn.Module] = [nn.SiLU()]
        cin = cfg.decoder_filters[0]
        for f in cfg.decoder_filters:
            dec += [nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(cin, f, k, padding=k // 2), nn.SiLU()]
            cin = f
        dec.append(nn.Conv2d(cin, NUM_CHANNELS, k, padding=k // 2))
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """x: (B, N, 8) normalized -> posterior over z (B, latent_dim)."""
        with_mask = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
        h = self.to_stats(self.encoder(self.grid_in.to_grid(with_mask)))
        mu, logvar = h.chunk(2, dim=1)
        return DiagonalGaussian(mu, logvar.clamp(self.cfg.logvar_min, self.cfg.logvar_max))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> (B, N, 8) normalized."""
        h = self.from_latent(z).view(z.shape[0], *self.dec_shape)
        return self.grid_out.to_sequence(self.decoder(h))



def build_model(cfg: VAEConfig) -> VAE:
    """The VAE ``cfg.arch`` names: GaussianVAE (conv1d, resnet_conv1d) or GridVAE."""
    return GridVAE(cfg) if cfg.arch == "conv2d_grid" else GaussianVAE(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
