"""Benchmark: extraction throughput and fit quality under our renderer and the dense reference.

On the same default-style images, in one run: images/s of the whole extraction (fit and
ordering) and the mean fit PSNR measured with the windowed renderer (what the file records) and
with the dense reference (every Gaussian at every pixel: the formula of docs/gaussians.md), for
the default settings and for the settings before sigma was tied to the window (sigma up to 3 px
in a 9 px window, initial sigma 0.45 of the slot spacing, 12 steps); then the time per fit step
of the windowed renderer against autograd through the same formula and against the dense
reference, each fit scored by the renderer it was fitted with.
Usage: python bench/extraction_speed.py [--images 256] [--dense-images 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from gaussvae.core.params import ExtractParams, load_params
from gaussvae.core.store import ImageSet
from gaussvae.gaussians.dense_render import render_autograd, render_dense
from gaussvae.gaussians.extraction import extract
from gaussvae.gaussians.fit import fit_images
from gaussvae.gaussians.render import psnr
from gaussvae.gaussians.slots import grid_slots
from gaussvae.images.prepare import prepare_images

# The defaults before sigma was tied to the window (not valid params any more: 3 sigma of 3 px
# does not fit in a 9 px window, which is the point of the comparison).
BEFORE = {"max_scale_px": 3.0, "init_scale": 0.45, "steps": 12}


def timed_extract(images: ImageSet, settings: ExtractParams) -> tuple[float, float, float]:
    """(images/s, mean windowed PSNR, mean dense PSNR) of extracting ``images``."""
    start = time.perf_counter()
    result = extract(images, settings, torch.device("cpu"))
    ips = len(images.images) / (time.perf_counter() - start)
    with torch.no_grad():
        dense = [psnr(render_dense(torch.from_numpy(result.gaussians[i:i + 16]), 64),
                      torch.from_numpy(images.images[i:i + 16]).float() / 255.0)
                 for i in range(0, len(result.psnr), 16)]
    return ips, float(result.psnr.mean()), float(torch.cat(dense).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--dense-images", type=int, default=16)
    args = parser.parse_args()
    params = load_params(args.params)
    settings = params.extract
    prep = params.prepare.model_copy(update={"num_images": args.images, "source": "synthetic"})
    images = prepare_images(prep)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images "
          f"{prep.image_size}x{prep.image_size}, {settings.num_gaussians} Gaussians, batch "
          f"{settings.batch_size}, window {settings.window}, ordering {settings.ordering}")

    # Warm-up (thread pool, allocator, first-call dispatch) so neither timed run pays for it.
    n = settings.batch_size
    extract(dataclasses.replace(images, images=images.images[:n], split=images.split[:n],
                                sources=images.sources[:n]), settings, torch.device("cpu"))
    before = settings.model_copy(update=BEFORE)
    rows = {}
    for name, s in (("default", settings), ("before", before)):
        rows[name] = ips, windowed, dense = timed_extract(images, s)
        print(f"{name:8s} (max sigma {s.max_scale_px} px, init {s.init_scale}, {s.steps} steps): "
              f"{ips:.1f} images/s; fit PSNR windowed {windowed:.2f} dB, dense {dense:.2f} dB "
              f"(gap {windowed - dense:+.2f})")
    print(f"default / before images/s: {rows['default'][0] / rows['before'][0]:.2f}x, dense "
          f"PSNR {rows['default'][2] - rows['before'][2]:+.2f} dB")

    slots = torch.from_numpy(grid_slots(settings.num_gaussians))
    pixels = torch.from_numpy(images.images[:args.dense_images]).float() / 255.0
    timings = {}
    renderers = (("windowed", None), ("autograd", render_autograd),
                 ("dense", lambda g, s, w: render_dense(g, s)))
    for name, fn in renderers:
        kw = {} if fn is None else {"renderer": fn}
        t0 = time.perf_counter()
        r = fit_images(pixels, slots, settings, **kw)
        timings[name] = (time.perf_counter() - t0) / r.steps
        print(f"{name:9s} fit of {args.dense_images} images: {timings[name] * 1000:.1f} ms/step, "
              f"mean PSNR {r.psnr.mean():.2f} dB")
    print(f"dense / windowed time per step: {timings['dense'] / timings['windowed']:.1f}x")
    print(f"autograd / windowed time per step: {timings['autograd'] / timings['windowed']:.2f}x")
    ips, windowed, dense = rows["default"]
    print(f"RESULT images_per_second={ips:.1f} psnr_windowed={windowed:.2f} "
          f"psnr_dense={dense:.2f}")


if __name__ == "__main__":
    main()
