"""Stage codecs: WebP and JPEG within the latent's byte budgets -> metrics/codecs.json.

The anchors do not depend on the model, only on the images and latent_dim, so DVC re-runs this
stage only when those change.
"""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from gaussvae.core.atomic import rounded, write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.params import load_params
from gaussvae.core.store import read_images
from gaussvae.evaluation.code_storage import BYTES_PER_DIM
from gaussvae.evaluation.image_codecs import codec_study
from gaussvae.evaluation.per_image import write_psnr_table


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True, help="input HDF5 (data/images.h5)")
    parser.add_argument("--metrics", required=True, help="output JSON (metrics/codecs.json)")
    parser.add_argument("--per-image", required=True,
                        help="per-image PSNR table of val and test (metrics/codecs_per_image.tsv)")
    args = parser.parse_args()
    latent_dim = load_params(args.params).latent_dim
    images = read_images(args.images)
    metrics, table = codec_study(images, {name: latent_dim * per_dim
                                          for name, per_dim in BYTES_PER_DIM.items()})
    write_json(args.metrics, rounded(metrics, 5))
    write_psnr_table(args.per_image, table)
    t = metrics["test"]["fp16"]
    print(f"test, {t['budget_bytes']} bytes: WebP "
          + (f"{t['webp']['psnr']:.2f} dB" if "psnr" in t["webp"] else "unreachable"))


if __name__ == "__main__":
    run_stage("codecs", main)
