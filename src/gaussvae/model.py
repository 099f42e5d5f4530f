"""Conv1D VAEs over sequences of Gaussians: (B, N, 8) -> z (B, latent_dim) -> (B, N, 8).

Unlike the seed, the encoder does not end in global average pooling: pooling squeezes the whole
sequence into a position-free summary and was the real bottleneck (DESIGN.md section 3). Here a
1x1 convolution narrows the channels to ``bottleneck_channels`` and the remaining
(channels x positions) map is flattened into the linear layers that give mu and log-variance, so
every position keeps its own weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from gaussvae.render import NUM_CHANNELS


@dataclass(frozen=True)
class VAEConfig:
    arch: str  # "conv1d" | "resnet_conv1d"
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
        if self.arch not in ("conv1d", "resnet_conv1d"):
            raise ValueError(f"arch must be 'conv1d' or 'resnet_conv1d', got {self.arch!r}")
        for name in ("encoder_filters", "decoder_filters"):
            depth = len(getattr(self, name))
            if self.num_gaussians % (2**depth):
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


class GaussianVAE(nn.Module):
    """VAE over (B, N, 8) normalized Gaussian parameters; the split of pytorch/examples' VAE."""

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

    def forward(
        self, x: torch.Tensor, sample: bool = True
    ) -> tuple[torch.Tensor, DiagonalGaussian]:
        posterior = self.encode(x)
        z = posterior.sample() if sample else posterior.mode()
        return self.decode(z), posterior


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
