"""A small network that reads the generator's shapes off an image: the features of the sample
metric (sample_metric.py).

Why a network of our own: the four hand-picked statistics (sample_statistics.py) rank a grey
wash above sharp polygons, and a downloaded Inception would break "nothing downloaded at run
time" and knows nothing of these images. This network is trained here, offline, on paintings
the generator draws with its own seed (none of them is in the pipeline's data), to say for each
small block of pixels what the generator knows of it: where the boundaries between shapes run
and which kind of shape (triangle, disc, stripe) covers it (images/synth.py, labels=True).
Finding boundaries and telling a disc's arc from a triangle's edge is what a blurred or smeared
image makes hard, so its features move with blur, which is what the metric must see. Dense
labels train a network this small in about a minute on 2 cores; the generator's global
settings (how many discs or stripes) did not (a 600-step run stayed at chance).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from gaussvae.core.atomic import atomic_path
from gaussvae.core.errors import StaleFileError
from gaussvae.images.synth import REGION_KINDS, generate_painting

META_KEY = "gaussvae_feature_net"  # safetensors metadata key holding the config (JSON)


@dataclass(frozen=True)
class Recipe:
    """How the network is trained. Part of the metric's definition, so fixed here rather than
    a params.yaml knob: a metric that moves with a setting cannot compare runs made under
    different ones. Editing it is a code change, which re-runs the stages that use it."""

    images: int = 4000
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 0.003
    seed: int = 1_000_003  # the generator seed of its paintings (never the data's prepare.seed)


RECIPE = Recipe()


@dataclass(frozen=True)
class FeatureNetConfig:
    width: int = 16  # channels of the first stage; doubled at each of the next three

    @classmethod
    def from_dict(cls, raw: dict) -> FeatureNetConfig:
        return cls(**raw)

    @property
    def features(self) -> int:
        """Length of the feature vector: the pooled last two stages."""
        return 4 * self.width + 8 * self.width


class FeatureNet(nn.Module):
    """A stem and three stride-2 stages (64 px -> 32, 16, 8), each a 3 x 3 convolution, group
    norm and GELU twice. The edge head reads the 16 x 16 map (one value per 4 x 4 block), the
    region head the 8 x 8 map (per 8 x 8 block). Features: the global means of those two maps.
    Any image size whose side is a multiple of 8 works."""

    def __init__(self, config: FeatureNetConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width

        def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
                                 nn.GroupNorm(8, cout), nn.GELU(),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout),
                                 nn.GELU())

        self.stages = nn.ModuleList([stage(3, w, 1), stage(w, 2 * w, 2),
                                     stage(2 * w, 4 * w, 2), stage(4 * w, 8 * w, 2)])
        self.edge_head = nn.Conv2d(4 * w, 1, 1)
        self.region_head = nn.Conv2d(8 * w, len(REGION_KINDS), 1)

    def maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 16 x 16 and 8 x 8 feature maps of uint8 images (n, S, S, 3)."""
        x = images.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        for stage in self.stages[:3]:
            x = stage(x)
        return x, self.stages[3](x)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(n, config.features) of uint8 images (n, S, S, 3)."""
        fine, coarse = self.maps(images)
        return torch.cat([fine.mean(dim=(2, 3)), coarse.mean(dim=(2, 3))], dim=1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Edge logits (n, 1, S/4, S/4) and region logits (n, kinds, S/8, S/8)."""
        fine, coarse = self.maps(images)
        return self.edge_head(fine), self.region_head(coarse)


def block_targets(regions: np.ndarray, edges: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft targets of the heads from per-pixel labels (n, S, S): the share of each 4 x 4
    block's pixels a boundary crosses (n, 1, S/4, S/4), and the share of each 8 x 8 block each
    kind of shape covers (n, kinds, S/8, S/8)."""
    e = torch.from_numpy(edges).float().unsqueeze(1)
    onehot = F.one_hot(torch.from_numpy(regions).long(), len(REGION_KINDS))
    return F.avg_pool2d(e, 4), F.avg_pool2d(onehot.permute(0, 3, 1, 2).float(), 8)


def label_loss(out: tuple[torch.Tensor, torch.Tensor], edge_t: torch.Tensor,
               region_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss (edge BCE + region cross-entropy against the soft targets) and its two parts."""
    edge_logits, region_logits = out
    edge = F.binary_cross_entropy_with_logits(edge_logits, edge_t)
    region = -(region_t * F.log_softmax(region_logits, dim=1)).sum(1).mean()
    return edge + region, edge, region


def draw_training_set(settings: Recipe, size: int,
                      on_image: Callable[[], None] | None = None
                      ) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """The generator's paintings under ``settings.seed`` and the heads' targets."""
    images, regions, edges = [], [], []
    for i in range(settings.images):
        p = generate_painting(settings.seed, i, size, labels=True)
        images.append(p.image)
        regions.append(p.regions)
        edges.append(p.edges)
        if on_image is not None:
            on_image()
    return (np.stack(images), *block_targets(np.stack(regions), np.stack(edges)))


def _symmetry(x: torch.Tensor, k: int, dims: tuple[int, int]) -> torch.Tensor:
    """One of the square's 8 symmetries, on the two spatial ``dims``."""
    out = torch.rot90(x, k % 4, dims=dims)
    return out.flip(dims[1]) if k >= 4 else out


def train_feature_net(images: np.ndarray, edge_t: torch.Tensor, region_t: torch.Tensor,
                      settings: Recipe,
                      on_epoch: Callable[[int, dict], None] | None = None
                      ) -> tuple[FeatureNet, dict]:
    """The network trained on all but the last tenth of ``images`` (a random symmetry of the
    square per batch, the targets turned with it), and its scores on that tenth
    (metrics/feature_net.json: what it learned to read, so the features mean something).
    Seeded: the same settings give the same weights on the same machine."""
    torch.manual_seed(settings.seed)
    net = FeatureNet(FeatureNetConfig())
    held = max(1, len(images) // 10)
    x = torch.from_numpy(images)
    train = slice(0, len(x) - held)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    batches = -(-(len(x) - held) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, settings.learning_rate,
                                                   total_steps=settings.epochs * batches)
    gen = torch.Generator().manual_seed(settings.seed)
    metrics: dict = {}
    for epoch in range(1, settings.epochs + 1):
        net.train()
        for idx in torch.randperm(len(x) - held, generator=gen).split(settings.batch_size):
            k = int(torch.randint(8, (), generator=gen))
            loss, _, _ = label_loss(net(_symmetry(x[train][idx], k, (1, 2))),
                                    _symmetry(edge_t[train][idx], k, (2, 3)),
                                    _symmetry(region_t[train][idx], k, (2, 3)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
        metrics = held_out_scores(net, x[-held:], edge_t[-held:], region_t[-held:])
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    return net.eval(), metrics


def held_out_scores(net: FeatureNet, x: torch.Tensor, edge_t: torch.Tensor,
                    region_t: torch.Tensor) -> dict:
    """On held-out paintings: the loss, how well the edge share is predicted against
    predicting its mean (R^2), and how often the commonest kind of each block is named, against
    always naming triangle."""
    net.eval()
    with torch.no_grad():
        edge_logits, region_logits = net(x)
        loss, _, _ = label_loss((edge_logits, region_logits), edge_t, region_t)
    edge_err = ((torch.sigmoid(edge_logits) - edge_t) ** 2).mean()
    truth = region_t.argmax(1)
    return {"images": len(x), "loss": round(float(loss), 4),
            "edge_r2": round(float(1 - edge_err / edge_t.var()), 4),
            "region_accuracy": round(float((region_logits.argmax(1) == truth).float().mean()), 4),
            "region_chance": round(float((truth == 0).float().mean()), 4)}


def save_feature_net(path: str | Path, net: FeatureNet) -> None:
    """Weights as safetensors (opening the file runs no code), the config in its metadata;
    written atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(asdict(net.config))})


def load_feature_net(path: str | Path) -> FeatureNet:
    """The trained feature network from its file, in eval mode on the CPU; anything else at
    ``path`` stops with one line naming it."""
    fix = "re-run dvc repro baselines/dvc.yaml"
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such feature network file; {fix}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = (f.metadata() or {}).get(META_KEY)
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
        if meta is None:
            raise ValueError(f"no {META_KEY!r} metadata")
        net = FeatureNet(FeatureNetConfig.from_dict(json.loads(meta)))
        net.load_state_dict(state)
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as err:
        raise StaleFileError(f"{path}: not a feature network file ({str(err).splitlines()[0]}); "
                             f"{fix}") from None
    return net.eval()
