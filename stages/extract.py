"""Stage extract: data/images.h5 -> fitted, ordered Gaussians in data/gaussians.h5.

Single process by default; `torchrun --nproc_per_node=G stages/extract.py ...` spreads the
images over G processes (one GPU each; `--nnodes` for several machines) and rank 0 writes the
one file. With `--resume FOLDER` a killed run resumes from its finished chunks. See docs/gpu.md.
"""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

import sys
import time

import numpy as np
from tqdm import tqdm

from gaussvae.core.atomic import write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.device import resolve_device
from gaussvae.core.distributed import setup_distributed
from gaussvae.core.params import load_params
from gaussvae.core.store import read_images, write_gaussians
from gaussvae.gaussians.chunks import discard_chunks
from gaussvae.gaussians.extraction import (CHUNK_IMAGES, dense_gap_warnings, extract,
                                           extract_metrics)


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True, help="input HDF5 (data/images.h5)")
    parser.add_argument("--out", required=True, help="output HDF5 (data/gaussians.h5)")
    parser.add_argument("--metrics", help="metrics JSON (metrics/extract.json)")
    parser.add_argument("--resume", metavar="FOLDER",
                        help="keep finished chunks here, to resume a killed run from them "
                             "(data/extract_chunks; git-ignored, removed when the run ends)")
    parser.add_argument("--chunk-images", type=int, default=CHUNK_IMAGES,
                        help="images per chunk, the unit of resume and of work per process")
    args = parser.parse_args()
    settings = load_params(args.params).extract
    images = read_images(args.images)
    dist = setup_distributed(resolve_device(settings.device))
    psnrs: list[float] = []
    start = time.perf_counter()
    with tqdm(desc=f"extract on {dist.device}", unit="img", disable=not dist.is_main) as bar:

        def on_batch(done: int, psnr: np.ndarray, total: int) -> None:
            psnrs.extend(psnr.tolist())
            bar.total = total
            bar.update(done)
            bar.set_postfix(psnr=f"{np.mean(psnrs):.2f}dB")

        result = extract(images, settings, dist.device, on_batch=on_batch,
                         resume_dir=args.resume, chunk_images=args.chunk_images, dist=dist)
    seconds = time.perf_counter() - start
    if result is not None:
        write_gaussians(args.out, result)
        if args.metrics:
            metrics = extract_metrics(result, seconds, images)
            write_json(args.metrics, metrics)
            for line in dense_gap_warnings(metrics):
                print(line, file=sys.stderr)
        print(f"fitted {len(result.psnr)} images in {seconds:.1f}s on {dist.world} "
              f"process(es), mean PSNR {result.psnr.mean():.2f} dB -> {args.out}")
    dist.close()  # every rank waits here until rank 0 has written the file
    if args.resume:
        discard_chunks(args.resume)


if __name__ == "__main__":
    run_stage("extract", main)
