"""Stage pca (baselines/dvc.yaml): the linear floor, PCA of the training images with
latent_dim components, its code stored as the VAEs' are -> baselines/metrics/pca.json."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from gaussvae.baselines.pca import pca_metrics
from gaussvae.core.atomic import rounded, write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.params import load_params
from gaussvae.core.store import read_images


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True, help="input HDF5 (data/images.h5)")
    parser.add_argument("--metrics", required=True, help="output JSON")
    args = parser.parse_args()
    k = load_params(args.params).latent_dim
    metrics = rounded(pca_metrics(read_images(args.images), k), 5)
    write_json(args.metrics, metrics)
    t = metrics["test"]
    print(f"PCA, {k} components: test render PSNR {t['render']['psnr_vs_image']:.2f} dB "
          f"(8-bit code {t['render_8bit']['psnr_vs_image']:.2f})")


if __name__ == "__main__":
    run_stage("pca", main)
