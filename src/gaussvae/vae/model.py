"""Convolutional VAEs over the Gaussians of an image: (B, N, 8) -> z (B, latent_dim) -> (B, N, 8).

Architectures (``train.arch``): ``conv2d_grid`` and ``resnet_conv2d_grid`` (``GridVAE``), 2D
convolutions over the slot grid of grid ordering (gaussians/slots.py, ``grid_cells``): slot k
sits at (row, col), so vertical neighbours, a whole row of slots apart in the 1D sequence (22 or
23 indices for 512 Gaussians), are neighbours; ``conv1d`` and ``resnet_conv1d``
(``SequenceVAE``), the original GaussVAE's 1D convolutions over the sequence (a 1D decoder draws
horizontal streaks, since a kernel cannot reach the row below).

Unlike the original GaussVAE, the encoder does not end in global average pooling: pooling
squeezes the whole sequence into a position-free summary, a bottleneck narrower than any latent.
Here a 1x1 convolution narrows the channels to ``bottleneck_channels`` and the remaining
(channels x positions) map is flattened into the linear layers that give mu and log-variance, so
every position keeps its own weights.

Also here, beside the models: building one from its config (``build_model``; its file is
model_file.py's), encoding to posterior means and decoding codes in batches, deterministic
reconstruction (z = mu) and the active-units count of a posterior.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from gaussvae.core.channels import NUM_CHANNELS, TYPES
from gaussvae.core.params import GRID_ARCHS, Arch, Params, allowed
from gaussvae.gaussians.slots import grid_cells
from gaussvae.vae.normalization import NormStats

# A latent dimension is "active" when its posterior mean varies across inputs by more than this.
ACTIVE_VARIANCE = 0.01


@dataclass(frozen=True)
class VAEConfig:
    arch: str  # params.Arch; allowed values and shape constraints are checked in params.py
    num_gaussians: int
    latent_dim: int
    encoder_filters: tuple[int, ...]
    decoder_filters: tuple[int, ...]
    kernel_size: int
    resnet_blocks: int
    bottleneck_channels: int
    logvar_min: float
    logvar_max: float
    palette_colours: int = 0  # models saved before these two options have neither
    attention_blocks: int = 0
    decoder_blocks: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_params(cls, params: Params, num_gaussians: int) -> VAEConfig:
        t = params.train
        return cls(arch=t.arch, num_gaussians=num_gaussians, latent_dim=params.latent_dim,
                   encoder_filters=tuple(t.encoder_filters),
                   decoder_filters=tuple(t.decoder_filters), kernel_size=t.kernel_size,
                   resnet_blocks=t.resnet_blocks, bottleneck_channels=t.bottleneck_channels,
                   logvar_min=t.logvar_min, logvar_max=t.logvar_max,
                   palette_colours=t.palette_colours, attention_blocks=t.attention_blocks,
                   decoder_blocks=t.decoder_blocks)

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
        """KL(q || N(0, I)) per sample in nats, summed over latent dimensions: (B,), float32.

        Computed in float32 whatever the posterior's dtype: under mixed precision mu is float16,
        whose mu^2 overflows for |mu| > 256; the loss would then read as diverged where only the
        gradients should overflow, for the gradient scaler to skip the step.
        """
        mu, logvar = self.mu.float(), self.logvar.float()
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(act(norm(conv(act(norm(x)))))), 1D or 2D."""

    def __init__(self, channels: int, kernel_size: int, dims: int = 1) -> None:
        super().__init__()
        groups = 8 if channels % 8 == 0 else 1
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.body = nn.Sequential(
            nn.GroupNorm(groups, channels), nn.SiLU(),
            conv(channels, channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(groups, channels), nn.SiLU(),
            conv(channels, channels, kernel_size, padding=kernel_size // 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _down(cin: int, cout: int, k: int) -> nn.Module:
    return nn.Conv1d(cin, cout, k, stride=2, padding=k // 2)


def _up(cin: int, cout: int, k: int) -> nn.Module:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv1d(cin, cout, k, padding=k // 2))


FEAT = TYPES["feat"]


class PaletteColours(nn.Module):
    """Colours from a per-image palette (``palette_colours`` K > 0).

    The data's images are a few flat colours each, but a decoder that outputs every Gaussian's
    colour on its own blends neighbouring colours and invents new ones. Here a linear layer
    draws K colours in [0, 1] from z, the decoder gives each Gaussian K logits instead of three
    colour channels, and the Gaussian's colour is the softmax-weighted mix of the palette,
    returned z-scored like the other channels (``feat_mean``/``feat_std``: the colour channels'
    training statistics, (N, 3), saved with the weights).
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.colours = config.palette_colours
        self.palette = nn.Linear(config.latent_dim, 3 * self.colours)
        self.register_buffer("feat_mean", torch.zeros(config.num_gaussians, 3))
        self.register_buffer("feat_std", torch.ones(config.num_gaussians, 3))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """The training statistics of the model's channels, (8,) or (N, 8)."""
        self.feat_mean.copy_(torch.as_tensor(mean)[..., FEAT].expand_as(self.feat_mean))
        self.feat_std.copy_(torch.as_tensor(std)[..., FEAT].expand_as(self.feat_std))

    def forward(self, out: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """out (B, N, 5 + K): the other channels, then K logits -> (B, N, 8)."""
        palette = torch.sigmoid(self.palette(z)).view(len(z), self.colours, 3)
        colour = torch.softmax(out[..., FEAT.start:], dim=-1) @ palette
        return torch.cat([out[..., :FEAT.start], (colour - self.feat_mean) / self.feat_std], -1)


def decoded_channels(config: VAEConfig) -> int:
    """Channels of the decoder's last layer: 8, or 5 + K palette logits."""
    return NUM_CHANNELS if not config.palette_colours else FEAT.start + config.palette_colours


class VAE(nn.Module):
    """encode / reparameterize / decode, the split of pytorch/examples' VAE; subclasses give
    ``encode(x) -> DiagonalGaussian`` and ``decode(z) -> (B, N, 8)`` (through ``colours``,
    which applies the palette when there is one).
    """

    def _init_colours(self, config: VAEConfig) -> None:
        self.palette = PaletteColours(config) if config.palette_colours else None

    def colours(self, out: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return out if self.palette is None else self.palette(out, z)

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


class SequenceVAE(VAE):
    """VAE over (B, N, 8) normalized Gaussian parameters as a 1D sequence (conv1d, resnet)."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        k = config.kernel_size
        res = config.arch == "resnet_conv1d"
        enc: list[nn.Module] = []
        cin = NUM_CHANNELS
        if res:  # stem, so residual blocks work at the first stage's width
            enc.append(nn.Conv1d(cin, config.encoder_filters[0], k, padding=k // 2))
            cin = config.encoder_filters[0]
        for f in config.encoder_filters:
            if res:
                enc += [ResBlock(cin, k) for _ in range(config.resnet_blocks)]
            enc += [_down(cin, f, k), nn.SiLU()]
            cin = f
        enc += [nn.Conv1d(cin, config.bottleneck_channels, 1), nn.SiLU(), nn.Flatten()]
        self.encoder = nn.Sequential(*enc)
        self.enc_len = config.num_gaussians // 2 ** len(config.encoder_filters)
        self.to_stats = nn.Linear(config.bottleneck_channels * self.enc_len, 2 * config.latent_dim)

        self.dec_len = config.num_gaussians // 2 ** len(config.decoder_filters)
        c0 = config.decoder_filters[0]
        self.from_latent = nn.Linear(config.latent_dim, c0 * self.dec_len)
        dec: list[nn.Module] = [nn.SiLU()]
        cin = c0
        for f in config.decoder_filters:
            if res:
                dec += [ResBlock(cin, k) for _ in range(config.resnet_blocks)]
            dec += [_up(cin, f, k), nn.SiLU()]
            cin = f
        dec.append(nn.Conv1d(cin, decoded_channels(config), k, padding=k // 2))
        self.decoder = nn.Sequential(*dec)
        self._init_colours(config)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """x: (B, N, 8) normalized -> posterior over z (B, latent_dim)."""
        h = self.to_stats(self.encoder(x.transpose(1, 2)))
        mu, logvar = h.chunk(2, dim=1)
        # Bounded log-variance: an unbounded one can overflow KL to inf (it did in the original
        # GaussVAE's runs).
        return DiagonalGaussian(mu, logvar.clamp(self.config.logvar_min, self.config.logvar_max))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> (B, N, 8) normalized."""
        h = self.from_latent(z).view(z.shape[0], self.config.decoder_filters[0], self.dec_len)
        return self.colours(self.decoder(h).transpose(1, 2), z)


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


class GridAttention(nn.Module):
    """Transformer blocks over the cells of a (B, C, H, W) map, with a learned embedding of
    each cell's place: every cell sees every other, where a convolution sees its neighbours.
    Used at the grid models' coarsest resolution (``attention_blocks``), so that the slots of
    one flat area or one long edge can agree on its colour and shape across the image.
    """

    def __init__(self, channels: int, height: int, width: int, blocks: int) -> None:
        super().__init__()
        self.place = nn.Parameter(torch.zeros(1, height * width, channels))
        heads = 4 if channels % 4 == 0 else 1
        self.blocks = nn.Sequential(*[
            nn.TransformerEncoderLayer(channels, heads, dim_feedforward=2 * channels,
                                       dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        cells = self.blocks(x.flatten(2).transpose(1, 2) + self.place)
        return cells.transpose(1, 2).reshape(b, c, h, w)


class GridVAE(VAE):
    """``conv2d_grid``: the conv1d VAE's layers in 2D over the slot grid (same config keys).

    Stride-2 square convolutions of side ``kernel_size`` down to a (bottleneck_channels, H/2^d,
    W/2^d) map flattened into mu/log-variance; the decoder mirrors it with nearest upsampling.
    ``resnet_conv2d_grid`` adds ``resnet_blocks`` residual blocks at every resolution (after a
    stem convolution in the encoder, after each upsampling in the decoder), as resnet_conv1d
    does in 1D. ``attention_blocks`` > 0 adds that many GridAttention blocks at the coarsest
    resolution of each (before the bottleneck, right after the latent's linear layer).
    ``decoder_blocks`` residual blocks follow the latent's linear layer at the decoder's coarsest
    resolution, so the code is decoded by convolutions there and not by the linear map alone.
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        k = config.kernel_size
        self.grid_in = SlotGrid(config.num_gaussians, 2 ** len(config.encoder_filters))
        self.grid_out = SlotGrid(config.num_gaussians, 2 ** len(config.decoder_filters))
        res = config.resnet_blocks if config.arch == "resnet_conv2d_grid" else 0
        enc: list[nn.Module] = []
        cin = NUM_CHANNELS + 1  # + a mask channel: 1 where a slot is, 0 on padding
        if res:  # stem, so residual blocks work at the first stage's width
            enc.append(nn.Conv2d(cin, config.encoder_filters[0], k, padding=k // 2))
            cin = config.encoder_filters[0]
        for f in config.encoder_filters:
            enc += [ResBlock(cin, k, 2) for _ in range(res)]
            enc += [nn.Conv2d(cin, f, k, stride=2, padding=k // 2), nn.SiLU()]
            cin = f
        down = 2 ** len(config.encoder_filters)
        if config.attention_blocks:
            enc.append(GridAttention(cin, self.grid_in.height // down,
                                     self.grid_in.width // down, config.attention_blocks))
        enc += [nn.Conv2d(cin, config.bottleneck_channels, 1), nn.SiLU(), nn.Flatten()]
        self.encoder = nn.Sequential(*enc)
        enc_cells = (self.grid_in.height // down) * (self.grid_in.width // down)
        self.to_stats = nn.Linear(config.bottleneck_channels * enc_cells, 2 * config.latent_dim)
        up = 2 ** len(config.decoder_filters)
        self.dec_shape = (config.decoder_filters[0], self.grid_out.height // up,
                          self.grid_out.width // up)
        self.from_latent = nn.Linear(config.latent_dim, math.prod(self.dec_shape))
        dec: list[nn.Module] = [nn.SiLU()]
        if config.attention_blocks:
            dec.append(GridAttention(*self.dec_shape, config.attention_blocks))
        cin = config.decoder_filters[0]
        dec += [ResBlock(cin, k, 2) for _ in range(config.decoder_blocks)]
        for f in config.decoder_filters:
            dec += [nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(cin, f, k, padding=k // 2), nn.SiLU()]
            dec += [ResBlock(f, k, 2) for _ in range(res)]
            cin = f
        dec.append(nn.Conv2d(cin, decoded_channels(config), k, padding=k // 2))
        self.decoder = nn.Sequential(*dec)
        self._init_colours(config)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """x: (B, N, 8) normalized -> posterior over z (B, latent_dim)."""
        with_mask = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
        h = self.to_stats(self.encoder(self.grid_in.to_grid(with_mask)))
        mu, logvar = h.chunk(2, dim=1)
        return DiagonalGaussian(mu, logvar.clamp(self.config.logvar_min, self.config.logvar_max))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> (B, N, 8) normalized."""
        h = self.from_latent(z).view(z.shape[0], *self.dec_shape)
        return self.colours(self.grid_out.to_sequence(self.decoder(h)), z)


MODELS: dict[str, type[VAE]] = {arch: GridVAE if arch in GRID_ARCHS else SequenceVAE
                               for arch in allowed(Arch)}


def build_model(config: VAEConfig, stats: NormStats | None = None) -> VAE:
    """The VAE ``config.arch`` names; a palette model needs the training ``stats`` (its colours
    are z-scored with them) unless its weights are loaded afterwards."""
    model = MODELS[config.arch](config)
    if model.palette is not None and stats is not None:
        model.palette.set_stats(torch.from_numpy(stats.mean), torch.from_numpy(stats.std))
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def active_units(mu: torch.Tensor) -> int:
    """Latent dimensions whose posterior mean (n, latent_dim) varies across the n inputs."""
    var = mu.var(dim=0) if len(mu) > 1 else torch.zeros(mu.shape[1])
    return int((var > ACTIVE_VARIANCE).sum())


@torch.no_grad()
def encode_posterior(model: VAE, x: torch.Tensor, batch: int = 256) -> DiagonalGaussian:
    """The posterior (float32 mean and log-variance, (n, latent_dim)) of inputs x (n, N, C)."""
    posts = [model.encode(x[i:i + batch]) for i in range(0, len(x), batch)]
    return DiagonalGaussian(torch.cat([p.mu.float() for p in posts]),
                            torch.cat([p.logvar.float() for p in posts]))


def encode_means(model: VAE, x: torch.Tensor, batch: int = 256
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means (n, latent_dim) float32 and KL (n,) in nats of inputs x (n, N, C)."""
    post = encode_posterior(model, x, batch)
    return post.mu, post.kl()


@torch.no_grad()
def decode_codes(model: VAE, z: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Normalized predictions (n, N, C) float32 of codes z (n, latent_dim)."""
    return torch.cat([model.decode(z[i:i + batch]).float() for i in range(0, len(z), batch)])


def reconstruct(model: VAE, x: torch.Tensor, batch: int = 256,
                code: Callable[[torch.Tensor], torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalized predictions (n, N, C), posterior means (n, latent_dim) and KL (n,) in nats,
    decoding z = mu, or z = code(mu) (the code as stored, evaluation/code_storage.py)."""
    mu, kl = encode_means(model, x, batch)
    return decode_codes(model, mu if code is None else code(mu), batch), mu, kl
