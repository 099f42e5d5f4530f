"""Stage 'extract': fit Gaussians to every image, order them, and describe the result.

Extraction is embarrassingly parallel: ``shard=(k, K)`` fits the k-th of K contiguous ranges of
images, and ``merge`` concatenates the partial results in shard order into the same file a
single run writes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from gaussvae import __version__
from gaussvae.fit import fit_images
from gaussvae.ordering import grid_slots, order_gaussians
from gaussvae.params import ExtractParams
from gaussvae.reference_render import render_dense
from gaussvae.render import psnr
from gaussvae.store import SPLITS, GaussianSet, ImageSet

# v2: sigma <= window / 6, so the window covers 3 sigma and a dense renderer draws the same image.
RENDERER = "windowed-normalized-v2"
RENDERING = ("pixel (i, j) of an S x S image = sum_k w_k c_k / (sum_k w_k + 1e-8) at the pixel "
             "centre ((j + 0.5) / S, (i + 0.5) / S); w_k = exp(-(u^2 + v^2) / 2), (u, v) the "
             "offset in Gaussian k's own axes in sigmas; Gaussian k is evaluated on the window x "
             "window pixels around the pixel holding its centre, which cover 3 sigma "
             "(max_scale_px <= window / 6), so summing over every pixel draws the same image")
# Images per split whose fits are also rendered with the dense reference (metrics/extract.json).
DENSE_SAMPLE = 300


def shard_range(n: int, index: int, count: int) -> range:
    """The contiguous range of image indices that shard ``index`` of ``count`` fits."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard index must be in [0, {count}), got {index} of {count}")
    return range(index * n // count, (index + 1) * n // count)


def extract(
    images: ImageSet,
    settings: ExtractParams,
    device: torch.device,
    shard: tuple[int, int] = (0, 1),
    on_batch: Callable[[int, np.ndarray], None] | None = None,
) -> GaussianSet:
    """Fitted, canonical, ordered Gaussians (n, N, 8) for the images of one shard.

    ``on_batch(n_done, psnr)`` is called after each batch (for progress bars).
    """
    size = images.images.shape[1]
    idx = np.asarray(shard_range(len(images.images), *shard))
    slots_np = grid_slots(settings.num_gaussians)
    slots = torch.from_numpy(slots_np).to(device)
    out = np.empty((len(idx), settings.num_gaussians, 8), dtype=np.float32)
    psnr = np.empty(len(idx), dtype=np.float32)
    def order_batch(start: int, fitted: np.ndarray) -> None:
        for j in range(len(fitted)):
            out[start + j] = order_gaussians(fitted[j], settings.ordering, slots_np)

    # Ordering (scipy's linear assignment, ~10 ms per image, releases the GIL) runs on a worker
    # thread while the next batch is fitted; each batch writes its own rows, so the file does
    # not depend on timing.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = []
        for start in range(0, len(idx), settings.batch_size):
            batch = idx[start:start + settings.batch_size]
            pixels = torch.from_numpy(images.images[batch]).to(device=device, dtype=torch.float32)
            result = fit_images(pixels / 255.0, slots, settings)
            pending.append(pool.submit(order_batch, start, result.gaussians.cpu().numpy()))
            psnr[start:start + len(batch)] = result.psnr.cpu().numpy()
            if on_batch is not None:
                on_batch(len(batch), psnr[start:start + len(batch)])
        for job in pending:
            job.result()  # re-raises a worker's exception here
    attrs = {
        "image_size": size,
        "num_gaussians": settings.num_gaussians,
        "ordering": settings.ordering,
        "renderer": RENDERER,
        "window": settings.window,
        "rendering": RENDERING,
        "fit_settings": {k: v for k, v in settings.model_dump().items() if k != "device"},
        "package_version": __version__,
        "shard": [int(shard[0]), int(shard[1])],
        "skipped": images.attrs.get("skipped", []),
        "channel_ranges": {
            "x, y": "[0, 1], fraction of the image side",
            "scale_x, scale_y": f"[{settings.min_scale_px}, {settings.max_scale_px}] px / "
                                "image_size; scale_x >= scale_y",
            "rot": "[0, pi) radians",
            "r, g, b": "[0, 1]",
        },
    }
    return GaussianSet(
        gaussians=out,
        split=images.split[idx],
        psnr=psnr,
        sources=[images.sources[i] for i in idx],
        attrs=attrs,
    )


def merge(parts: list[GaussianSet]) -> GaussianSet:
    """Concatenate shards (given in shard order) into one set; settings must agree."""
    if not parts:
        raise ValueError("no shards to merge")
    keys = ("image_size", "num_gaussians", "ordering", "renderer", "fit_settings")
    for p in parts[1:]:
        for k in keys:
            if p.attrs[k] != parts[0].attrs[k]:
                raise ValueError(f"shards disagree on {k}: {parts[0].attrs[k]} vs {p.attrs[k]}")
    attrs = dict(parts[0].attrs)
    attrs["shard"] = [0, 1]
    return GaussianSet(
        gaussians=np.concatenate([p.gaussians for p in parts]),
        split=np.concatenate([p.split for p in parts]),
        psnr=np.concatenate([p.psnr for p in parts]),
        sources=[s for p in parts for s in p.sources],
        attrs=attrs,
    )


def dense_psnr(result: GaussianSet, images: ImageSet, split: str,
               sample: int = DENSE_SAMPLE) -> np.ndarray:
    """PSNR (dB) of the first ``sample`` fits of ``split`` rendered with the dense reference
    (every Gaussian at every pixel, the README's formula) against their images."""
    idx = result.select(split)[:sample]
    rows = {s: i for i, s in enumerate(images.sources)}
    pixels = images.images[[rows[result.sources[i]] for i in idx]]
    size = pixels.shape[1]
    out = []
    with torch.no_grad():
        for start in range(0, len(idx), 16):
            g = torch.from_numpy(result.gaussians[idx[start:start + 16]])
            target = torch.from_numpy(pixels[start:start + 16]).float() / 255.0
            out.append(psnr(render_dense(g, size), target).numpy())
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def extract_metrics(result: GaussianSet, seconds: float, images: ImageSet | None = None) -> dict:
    """Fit quality per split (mean, p5, min PSNR in dB), throughput and skipped images.

    With ``images``, also the dense reference's PSNR on a sample of each split and its gap to
    the stored (windowed) PSNR of the same images: how far the file depends on our renderer.
    """
    out: dict = {}
    for name in SPLITS:
        p = result.psnr[result.split == SPLITS.index(name)]
        if len(p):
            out[name] = {"psnr": {"mean": round(float(p.mean()), 3),
                                  "p5": round(float(np.percentile(p, 5)), 3),
                                  "min": round(float(p.min()), 3)},
                         "images": len(p)}
            if images is not None:
                dense = dense_psnr(result, images, name)
                out[name]["dense_psnr"] = {
                    "mean": round(float(dense.mean()), 3), "images": len(dense),
                    "gap": round(float((p[:len(dense)] - dense).mean()), 3)}
    out["images_per_second"] = round(len(result.psnr) / max(seconds, 1e-9), 2)
    out["seconds"] = round(seconds, 1)
    out["images_skipped"] = len(result.attrs.get("skipped", []))
    return out
