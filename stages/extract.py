"""Stage extract: data/images.h5 -> fitted, ordered Gaussians in data/gaussians.h5.

Scale-out: `--shard K/N` fits one of N contiguous parts into its own file; `--merge` joins the
parts (in order) into the file a single run writes. See README, "Extraction on many machines".
"""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

import time

import numpy as np
from tqdm import tqdm

from gaussvae.atomic import write_json
from gaussvae.cli import run_stage, stage_parser
from gaussvae.device import resolve_device
from gaussvae.extract import extract, extract_metrics, merge
from gaussvae.params import load_params
from gaussvae.store import read_gaussians, read_images, write_gaussians


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", help="input HDF5 (data/images.h5)")
    parser.add_argument("--out", required=True, help="output HDF5 (data/gaussians.h5)")
    parser.add_argument("--metrics", help="metrics JSON (metrics/extract.json)")
    parser.add_argument("--shard", default="0/1", help="K/N: fit only the K-th of N parts")
    parser.add_argument("--merge", nargs="+", metavar="PART", help="merge shard files instead")
    args = parser.parse_args()
    if args.merge:
        write_gaussians(args.out, merge([read_gaussians(p) for p in args.merge]))
        print(f"merged {len(args.merge)} shards into {args.out}")
        return
    settings = load_params(args.params).extract
    k, n = (int(v) for v in args.shard.split("/"))
    images = read_images(args.images)
    device = resolve_device(settings.device)
    total = len(range(k * len(images.images) // n, (k + 1) * len(images.images) // n))
    psnrs: list[float] = []
    start = time.perf_counter()
    with tqdm(total=total, desc=f"extract on {device}", unit="img") as bar:

        def on_batch(done: int, psnr: np.ndarray) -> None:
            psnrs.extend(psnr.tolist())
            bar.update(done)
            bar.set_postfix(psnr=f"{np.mean(psnrs):.2f}dB")

        result = extract(images, settings, device, shard=(k, n), on_batch=on_batch)
    seconds = time.perf_counter() - start
    write_gaussians(args.out, result)
    if args.metrics:
        write_json(args.metrics, extract_metrics(result, seconds, images))
    print(f"fitted {len(result.psnr)} images in {seconds:.1f}s, mean PSNR "
          f"{result.psnr.mean():.2f} dB -> {args.out}")


if __name__ == "__main__":
    run_stage("extract", main)
