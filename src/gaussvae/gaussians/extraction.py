"""Extraction of a whole image set: fit Gaussians to every image, order them, describe the result.

The images are cut into chunks of whole batches, starting on the batch boundaries of a
single-process run, so each image is fitted in the same batch, to the same bits, whichever
process fits it. Under torchrun the chunks are shared round-robin over the ranks (one GPU each,
on one machine or several); rank 0 gathers every rank's chunks through the process group (no
shared filesystem) and alone returns the result, which on CPU is byte-identical to a single
process's. With a resume folder each finished chunk is also saved (chunks.py), and a killed run
fits only the chunks no process had finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from gaussvae import __version__
from gaussvae.core.channels import NUM_CHANNELS
from gaussvae.core.distributed import Dist
from gaussvae.core.params import ExtractParams
from gaussvae.core.store import SPLITS, GaussianSet, ImageSet
from gaussvae.gaussians.chunks import Chunk, ChunkStore
from gaussvae.gaussians.dense_render import render_dense
from gaussvae.gaussians.fit import fit_images
from gaussvae.gaussians.render import psnr
from gaussvae.gaussians.slots import grid_slots, order_gaussians

log = logging.getLogger(__name__)

# v3: the window and the sigma bounds follow the slot spacing (core/geometry.py), so the window
# covers 3 sigma at every image size and a dense renderer draws the same image.
RENDERER = "windowed-normalized-v3"
RENDERING = ("pixel (i, j) of an S x S image = sum_k w_k c_k / (sum_k w_k + 1e-8) at the pixel "
             "centre ((j + 0.5) / S, (i + 0.5) / S); w_k = exp(-(u^2 + v^2) / 2), (u, v) the "
             "offset in Gaussian k's own axes in sigmas; Gaussian k is evaluated on the window x "
             "window pixels around the pixel holding its centre, which cover 3 sigma of the "
             "widest Gaussian (scale_range[1] x image_size <= window / 6), so summing over every "
             "pixel draws the same image")
# Pixels per split whose fits are also rendered with the dense reference (metrics/extract.json):
# 32 images at 64 px, and never fewer than DENSE_MIN_IMAGES; enough for the gap's mean (it
# varies little between images) at a few seconds of the stage.
DENSE_PIXELS = 32 * 64 * 64
DENSE_MIN_IMAGES = 4
# A gap beyond this (dB) between the stored PSNR and the dense reference's means the file
# depends on our window: the stage warns.
DENSE_GAP_WARN_DB = 0.3
# Images per chunk (rounded down to whole batches, at least one): the unit of resume and of the
# work spread over ranks. Small enough that a kill loses little and that many ranks all get
# work; large enough that the chunk files stay few.
CHUNK_IMAGES = 256
# The package folders whose code a chunk's result depends on (run_key): the fit's own folder
# and the shared ground it stands on.
CODE_FOLDERS = ("core", "gaussians")


def chunk_ranges(n: int, batch_size: int, chunk_images: int = CHUNK_IMAGES) -> list[range]:
    """Consecutive ranges of image indices covering [0, n), each a whole number of batches
    (the last may be short), so chunks start where a single run's batches start."""
    step = chunk_length(batch_size, chunk_images)
    return [range(s, min(s + step, n)) for s in range(0, n, step)]


def chunk_length(batch_size: int, chunk_images: int) -> int:
    """``chunk_images`` rounded down to whole batches, at least one batch."""
    return max(1, chunk_images // batch_size) * batch_size


def run_key(images: ImageSet, settings: ExtractParams, device: torch.device,
            chunk_images: int) -> str:
    """What a chunk's result depends on, hashed: the images, the fit settings, the code the fit
    runs (this folder and core/, CODE_FOLDERS), torch's version, the device type and the
    chunking. Saved chunks are reused only under the same key, so a resumed file is the file an
    uninterrupted run would have written; editing code the fit does not run keeps them."""
    h = hashlib.sha256()
    h.update(json.dumps({"settings": settings.model_dump(exclude={"device"}),
                         "device": device.type, "torch": torch.__version__,
                         "chunk": chunk_length(settings.batch_size, chunk_images),
                         "sources": images.sources, "attrs": images.attrs},
                        sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(images.images).tobytes())
    h.update(np.ascontiguousarray(images.split).tobytes())
    for path in code_files():
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def code_files() -> list[Path]:
    """The package's __init__ and every module of CODE_FOLDERS, in a fixed order."""
    package = Path(__file__).resolve().parents[1]
    return [package / "__init__.py"] + sorted(
        p for folder in CODE_FOLDERS for p in (package / folder).glob("*.py"))


def extract(
    images: ImageSet,
    settings: ExtractParams,
    device: torch.device,
    on_batch: Callable[[int, np.ndarray, int], None] | None = None,
    resume_dir: str | Path | None = None,
    chunk_images: int = CHUNK_IMAGES,
    dist: Dist | None = None,
) -> GaussianSet | None:
    """Fitted, canonical, ordered Gaussians (n, N, 8) for every image; None on ranks other
    than 0 under torchrun (``dist``).

    ``on_batch(n_done, psnr, n_total)`` is called after each batch this process fits, and once
    per resumed chunk it delivers (for progress bars); n_total counts this process's images.
    ``resume_dir``: where finished chunks are saved and, after a kill, found again.
    """
    dist = dist or Dist()
    n = len(images.images)
    chunks = chunk_ranges(n, settings.batch_size, chunk_images)
    store = None
    saved: dict[int, Chunk] = {}
    if resume_dir is not None:
        store = ChunkStore(resume_dir, run_key(images, settings, device, chunk_images))
        saved = store.open()
    # A saved chunk is delivered by the lowest rank that has it; the rest are shared out.
    owner: dict[int, int] = {}
    for rank, starts in enumerate(dist.all_gather(sorted(saved))):
        for start in starts:
            owner.setdefault(start, rank)
    if owner and dist.is_main:
        log.info("resuming from %s: %d of %d chunks already fitted", resume_dir, len(owner),
                 len(chunks))
    todo = [c for c in chunks if c.start not in owner][dist.rank::dist.world]
    mine = {s: saved[s] for s, rank in owner.items() if rank == dist.rank}
    total = sum(len(c.psnr) for c in mine.values()) + sum(len(c) for c in todo)
    if on_batch is not None:
        for chunk in mine.values():
            on_batch(len(chunk.psnr), chunk.psnr, total)
    mine.update(_fit_chunks(images, settings, device, todo, store, on_batch, total,
                            ordering_workers(device)))
    parts = dist.gather(mine)
    if parts is None:
        return None
    done = {start: chunk for part in parts for start, chunk in part.items()}
    return GaussianSet(
        gaussians=np.concatenate([done[c.start].gaussians for c in chunks]),
        split=images.split,
        psnr=np.concatenate([done[c.start].psnr for c in chunks]),
        sources=list(images.sources),
        attrs=file_attrs(images.images.shape[1], settings, images.attrs.get("skipped", [])),
    )


def _fit_chunks(images: ImageSet, settings: ExtractParams, device: torch.device,
                chunks: list[range], store: ChunkStore | None,
                on_batch: Callable[[int, np.ndarray, int], None] | None, total: int,
                workers: int) -> dict[int, Chunk]:
    """Fit and order ``chunks`` batch by batch, ordering on ``workers`` threads; each chunk is
    saved to ``store`` when done."""
    slots_np = grid_slots(settings.num_gaussians)
    slots = torch.from_numpy(slots_np).to(device)
    done: dict[int, Chunk] = {}

    def order_batch(out: np.ndarray, offset: int, fitted: np.ndarray) -> None:
        for j in range(len(fitted)):
            out[offset + j] = order_gaussians(fitted[j], settings.ordering, slots_np)

    def save_when_ordered(start: int, orderings: list[Future]) -> None:
        for ordering in orderings:
            ordering.result()
        store.save(start, done[start])  # type: ignore[union-attr]

    # Ordering (scipy's linear assignment, ~10 ms per image, releases the GIL) and saving run on
    # worker threads while the next batch is fitted; each batch writes its own rows, so the
    # result does not depend on timing. A chunk's save is queued after its batches' orderings
    # (FIFO), so it waits only for orderings already running: no deadlock, and a chunk is
    # saved only once complete.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list[Future] = []
        for chunk in chunks:
            out = np.empty((len(chunk), settings.num_gaussians, NUM_CHANNELS), dtype=np.float32)
            psnr = np.empty(len(chunk), dtype=np.float32)
            orderings = []
            for start in range(chunk.start, chunk.stop, settings.batch_size):
                batch = np.arange(start, min(start + settings.batch_size, chunk.stop))
                pixels = torch.from_numpy(images.images[batch]).to(device=device,
                                                                   dtype=torch.float32)
                result = fit_images(pixels / 255.0, slots, settings)
                offset = start - chunk.start
                orderings.append(pool.submit(order_batch, out, offset,
                                             result.gaussians.cpu().numpy()))
                psnr[offset:offset + len(batch)] = result.psnr.cpu().numpy()
                if on_batch is not None:
                    on_batch(len(batch), psnr[offset:offset + len(batch)], total)
            done[chunk.start] = Chunk(out, psnr)
            pending += orderings
            if store is not None:
                pending.append(pool.submit(save_when_ordered, chunk.start, orderings))
        for future in pending:
            future.result()  # re-raises a worker's exception here
    return done


def ordering_workers(device: torch.device) -> int:
    """Threads that order fitted batches. On the CPU one: the fit keeps the cores busy. On a
    GPU the cores are free and ordering is the CPU's whole share of the work, so this
    process's part of them (torchrun's LOCAL_WORLD_SIZE processes share a machine)."""
    if device.type == "cpu":
        return 1
    return max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def file_attrs(image_size: int, settings: ExtractParams, skipped: list[str]) -> dict:
    """The attributes of a gaussians.h5 of fits made with ``settings`` (docs/gaussians.md)."""
    lo, hi = settings.sigma_px(image_size)
    return {
        "image_size": image_size,
        "num_gaussians": settings.num_gaussians,
        "ordering": settings.ordering,
        "renderer": RENDERER,
        "window": settings.window_px(image_size),
        "scale_range": [lo / image_size, hi / image_size],
        "rendering": RENDERING,
        "fit_settings": {k: v for k, v in settings.model_dump().items() if k != "device"},
        "package_version": __version__,
        "skipped": skipped,
        "channel_ranges": {
            "x, y": "[0, 1], fraction of the image side",
            "scale_x, scale_y": f"scale_range: [{settings.min_scale}, {settings.max_scale}] "
                                f"slot spacings (image_size / sqrt({settings.num_gaussians}) "
                                "px) / image_size; scale_x >= scale_y",
            "rot": "[0, pi) radians",
            "r, g, b": "[0, 1]",
        },
    }


def dense_sample(image_size: int) -> int:
    """Images per split the dense check renders at ``image_size`` (DENSE_PIXELS of them)."""
    return max(DENSE_MIN_IMAGES, DENSE_PIXELS // (image_size * image_size))


def dense_psnr(result: GaussianSet, images: ImageSet, split: str,
               sample: int | None = None) -> np.ndarray:
    """PSNR (dB) of the first ``sample`` fits of ``split`` (``dense_sample`` by default)
    rendered with the dense reference (every Gaussian at every pixel, the file's formula)
    against their images."""
    size = images.images.shape[1]
    idx = result.select(split)[:dense_sample(size) if sample is None else sample]
    rows = {s: i for i, s in enumerate(images.sources)}
    pixels = images.images[[rows[result.sources[i]] for i in idx]]
    out = []
    with torch.no_grad():
        for i in range(len(idx)):
            g = torch.from_numpy(result.gaussians[idx[i:i + 1]])
            target = torch.from_numpy(pixels[i:i + 1]).float() / 255.0
            out.append(psnr(render_dense(g, size), target).numpy())
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def dense_gap_warnings(metrics: dict) -> list[str]:
    """One line per split whose stored PSNR is more than DENSE_GAP_WARN_DB from the dense
    reference's (``extract_metrics`` output): those fits draw differently without our window."""
    out = []
    for name in SPLITS:
        gap = metrics.get(name, {}).get("dense_psnr", {}).get("gap")
        if gap is not None and abs(gap) > DENSE_GAP_WARN_DB:
            out.append(f"warning: {name} fits score {gap:+.2f} dB under the windowed renderer "
                       f"against the dense reference (more than {DENSE_GAP_WARN_DB} dB): the "
                       "window does not cover the Gaussians; use extract.window auto")
    return out


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
