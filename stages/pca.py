"""Stage pca (baselines/dvc.yaml): the linear floor, PCA of the training images with
latent_dim components, its code stored as the VAEs' are -> baselines/metrics/pca.json."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from gaussvae.baselines.pca import pca_metrics
from gaussvae.core.atomic import rounded, write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.params import load_params
from gaussvae.core.store import read_images
from gaussvae.evaluation.per_image import write_psnr_table


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True, help="input HDF5 (data/images.h5)")
    parser.add_argument("--metrics", required=True, help="output JSON")
    parser.add_argument("--per-image", required=True, help="per-image PSNR table (TSV)")
    args = parser.parse_args()
    k = load_params(args.params).latent_dim
    metrics, table = pca_metrics(read_images(args.images), k)
    metrics = rounded(metrics, 5)
    write_json(args.metrics, metrics)
    write_psnr_table(args.per_image, table)
    t = metrics["test"]
    print(f"PCA, {k} components: test render PSNR {t['render']['psnr_vs_image']:.2f} dB "
          f"(8-bit code {t['render_8bit']['psnr_vs_image']:.2f})")


if __name__ == "__main__":
    run_stage("pca", main)
