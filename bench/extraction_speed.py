"""Benchmark: extraction at every image size, and the fit step under the three renderers.

Per image size, in one run with the default extract settings (lengths in slot spacings, so the
same settings at every size): images/s of the whole extraction (fit and ordering), pixels/s
and its ratio to the first size's, the fit's mean PSNR under our windowed renderer (what the
file records) and under the dense reference (every Gaussian at every pixel: the formula of
docs/gaussians.md), and an anchor that any representation of this size must beat: bicubic
upsampling of the image shrunk to sqrt(num_gaussians) pixels a side (529 colours for 512
Gaussians, a third of their numbers). Then, at the first size, the time per fit step of the
windowed renderer against autograd through the same formula and against the dense reference.
Images: the embedded generator's, or your own (--folder, centre-cropped and resized as the
prepare stage does; the photos scikit-image ships are a good test).
Usage: python bench/extraction_speed.py [--sizes 64 128 256] [--images 64] [--folder DIR]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from PIL import Image

from gaussvae.core.params import ExtractParams, load_params
from gaussvae.core.store import ImageSet
from gaussvae.gaussians.dense_render import render_autograd, render_dense
from gaussvae.gaussians.extraction import dense_psnr, extract
from gaussvae.gaussians.fit import fit_images
from gaussvae.gaussians.slots import grid_slots
from gaussvae.images.folder import list_images, load_image
from gaussvae.images.synth import generate_image


def image_set(pixels: np.ndarray) -> ImageSet:
    n = len(pixels)
    return ImageSet(pixels, np.zeros(n, np.uint8), [f"image:{i}" for i in range(n)],
                    {"image_size": pixels.shape[1], "skipped": []})


def load_images(size: int, count: int, folder: str | None, seed: int) -> np.ndarray:
    """``count`` images at ``size`` px: the folder's first (repeated to ``count``) or generated."""
    if folder:
        files = list_images(folder)
        return np.stack([load_image(files[i % len(files)], size)[0] for i in range(count)])
    return np.stack([generate_image(seed, i, size) for i in range(count)])


def anchor_psnr(pixels: np.ndarray, side: int) -> float:
    """Mean PSNR of bicubic upsampling of each image shrunk (bicubic) to ``side`` x ``side``."""
    size = pixels.shape[1]
    out = []
    for img in pixels:
        small = Image.fromarray(img).resize((side, side), Image.BICUBIC)
        up = np.asarray(small.resize((size, size), Image.BICUBIC), dtype=np.float64) / 255.0
        mse = float(((up - img / 255.0) ** 2).mean())
        out.append(-10.0 * math.log10(max(mse, 1e-12)))
    return float(np.mean(out))


def size_row(pixels: np.ndarray, settings: ExtractParams) -> dict[str, float]:
    """images/s, windowed, dense and anchor PSNR of extracting ``pixels`` (one warm-up batch)."""
    n = settings.batch_size
    extract(image_set(pixels[:n]), settings, torch.device("cpu"))  # warm-up at this size
    start = time.perf_counter()
    images = image_set(pixels)
    result = extract(images, settings, torch.device("cpu"))
    ips = len(pixels) / (time.perf_counter() - start)
    side = round(math.sqrt(settings.num_gaussians))
    return {"ips": ips, "mpx": ips * pixels.shape[1] ** 2 / 1e6,
            "windowed": float(result.psnr.mean()),
            "dense": float(dense_psnr(result, images, "train", len(pixels)).mean()),
            "anchor": anchor_psnr(pixels, side)}


def step_times(pixels: np.ndarray, settings: ExtractParams) -> None:
    """ms per fit step of the windowed renderer, autograd through it, and the dense one."""
    slots = torch.from_numpy(grid_slots(settings.num_gaussians))
    images = torch.from_numpy(pixels).float() / 255.0
    timings = {}
    renderers = (("windowed", None), ("autograd", render_autograd),
                 ("dense", lambda g, s, w: render_dense(g, s)))
    for name, fn in renderers:
        kw = {} if fn is None else {"renderer": fn}
        t0 = time.perf_counter()
        r = fit_images(images, slots, settings, **kw)
        timings[name] = (time.perf_counter() - t0) / r.steps
        print(f"{name:9s} fit of {len(pixels)} images: {timings[name] * 1000:.1f} ms/step, "
              f"mean PSNR {r.psnr.mean():.2f} dB")
    print(f"dense / windowed time per step: {timings['dense'] / timings['windowed']:.1f}x")
    print(f"autograd / windowed time per step: {timings['autograd'] / timings['windowed']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--images", type=int, default=64, help="images per size")
    parser.add_argument("--folder", help="your images instead of the generator's")
    parser.add_argument("--dense-images", type=int, default=16,
                        help="images of the per-step renderer comparison")
    args = parser.parse_args()
    params = load_params(args.params)
    s = params.extract
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images "
          f"per size from {args.folder or 'the generator'}, {s.num_gaussians} Gaussians, batch "
          f"{s.batch_size}, sigma {s.min_scale}-{s.max_scale} slot spacings, window "
          f"{s.window}, ordering {s.ordering}")
    rows = {}
    for size in args.sizes:
        pixels = load_images(size, args.images, args.folder, params.prepare.seed)
        rows[size] = r = size_row(pixels, s)
        lo, hi = s.sigma_px(size)
        print(f"{size:4d} px (window {s.window_px(size)}, sigma {lo:.2f}-{hi:.2f} px): "
              f"{r['ips']:6.1f} images/s, {r['mpx']:.3f} Mpx/s "
              f"({r['mpx'] / rows[args.sizes[0]]['mpx']:.2f}x of {args.sizes[0]} px); fit PSNR "
              f"windowed {r['windowed']:.2f} dB, dense {r['dense']:.2f} dB (gap "
              f"{r['windowed'] - r['dense']:+.2f}); bicubic anchor {r['anchor']:.2f} dB "
              f"(fit {r['dense'] - r['anchor']:+.2f})")
    step_times(load_images(args.sizes[0], args.dense_images, args.folder, params.prepare.seed), s)
    base = rows[args.sizes[0]]["mpx"]
    print("RESULT " + " ".join(
        f"{size}px:images_per_second={r['ips']:.1f},pixel_ratio={r['mpx'] / base:.2f},"
        f"psnr_windowed={r['windowed']:.2f},psnr_dense={r['dense']:.2f},anchor={r['anchor']:.2f}"
        for size, r in rows.items()))


if __name__ == "__main__":
    main()
