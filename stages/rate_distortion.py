"""Stage rate_distortion (baselines/dvc.yaml): bytes per image against render PSNR for the
Gaussian VAE's code at 2 to 8 bits a dimension and float16 (metrics/eval.json), PCA with 16 to
512 components at the same storages, and WebP and JPEG over their quality ranges at their real
file sizes -> the table of points, BD-PSNR of each frontier against WebP's, and the picture."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

import json

from gaussvae.baselines.pca_curve import pca_points
from gaussvae.core.atomic import rounded, write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.errors import StaleFileError
from gaussvae.core.params import load_params
from gaussvae.core.store import SPLITS, read_images
from gaussvae.evaluation.pictures import rate_distortion_plot
from gaussvae.evaluation.rate_distortion import (bd_psnr, codec_points, families, vae_points,
                                                 write_table)


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True, help="input HDF5 (data/images.h5)")
    parser.add_argument("--vae-metrics", required=True, help="the VAE's metrics/eval.json")
    parser.add_argument("--metrics", required=True, help="output JSON (BD-PSNR)")
    parser.add_argument("--table", required=True, help="output TSV: every point")
    parser.add_argument("--plots", required=True, help="folder for rate_distortion.png")
    args = parser.parse_args()
    latent_dim = load_params(args.params).latent_dim
    with open(args.vae_metrics) as f:
        vae_eval = json.load(f)
    if "rate_distortion" not in vae_eval.get("test", {}):
        raise StaleFileError(f"{args.vae_metrics} has no rate_distortion entry: it predates "
                             "them; run `dvc repro evaluate`")
    images = read_images(args.images)
    train = images.images[images.split == SPLITS.index("train")]
    rows, metrics = {}, {}
    for split in ("test", "val"):
        pixels = images.images[images.split == SPLITS.index(split)]
        points = {"vae": vae_points(vae_eval, split, latent_dim),
                  "pca": pca_points(train, pixels),
                  "webp": codec_points(pixels, "WEBP"), "jpeg": codec_points(pixels, "JPEG")}
        rows[split] = sum(points.values(), [])
        pairs = {"vae_vs_webp": ("vae", "webp"), "pca_vs_webp": ("pca", "webp"),
                 "vae_vs_pca": ("vae", "pca"), "jpeg_vs_webp": ("jpeg", "webp")}
        metrics[split] = {name: bd_psnr(points[a], points[b]) for name, (a, b) in pairs.items()}
    write_table(args.table, rows)
    write_json(args.metrics, rounded({s: {k: v for k, v in m.items() if v is not None}
                                      for s, m in metrics.items()}, 5))
    curves = {name: [(p.bytes, p.psnr) for p in pts]
              for name, pts in families(rows["test"]).items()}
    rate_distortion_plot(curves, f"{args.plots}/rate_distortion.png",
                         f"Rate-distortion on the test images (VAE latent {latent_dim})")
    for name, m in metrics["test"].items():
        if m is not None:
            print(f"test BD-PSNR {name}: {m['db']:+.2f} dB over {m['from_bytes']:.0f} to "
                  f"{m['to_bytes']:.0f} bytes")


if __name__ == "__main__":
    run_stage("rate_distortion", main)
