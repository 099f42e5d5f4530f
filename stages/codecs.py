"""Stage codecs: WebP and JPEG within the latent's byte budgets -> metrics/codecs.json.

The anchors do not depend on the model, only on the images and latent_dim, so DVC re-runs this
stage only when those change.
"""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from gaussvae.core.atomic import rounded, write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.params import load_params
from gaussvae.core.store import SPLITS, read_images
from gaussvae.evaluation.code_storage import BYTES_PER_DIM
from gaussvae.evaluation.image_codecs import code_images, codec_metrics, coded_psnr
from gaussvae.evaluation.per_image import PsnrTable, write_psnr_table


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True, help="input HDF5 (data/images.h5)")
    parser.add_argument("--metrics", required=True, help="output JSON (metrics/codecs.json)")
    parser.add_argument("--per-image", required=True,
                        help="per-image PSNR table of val and test (metrics/codecs_per_image.tsv)")
    args = parser.parse_args()
    latent_dim = load_params(args.params).latent_dim
    images = read_images(args.images)
    metrics, parts = {}, []
    for split in ("test", "val"):
        rows = images.split == SPLITS.index(split)
        pixels = images.images[rows]
        metrics[split], columns = {}, {}
        for name, per_dim in BYTES_PER_DIM.items():
            coded = code_images(pixels, latent_dim * per_dim)
            metrics[split][name] = codec_metrics(pixels, latent_dim * per_dim, coded)
            columns.update({f"{fmt.lower()}_{name}": coded_psnr(c, pixels)
                            for fmt, c in coded.items()})
        sources = [s for s, keep in zip(images.sources, rows, strict=True) if keep]
        parts.append(PsnrTable(sources, [split] * len(sources), columns))
    write_json(args.metrics, rounded(metrics, 5))
    write_psnr_table(args.per_image, PsnrTable.concat(parts))
    t = metrics["test"]["fp16"]
    print(f"test, {t['budget_bytes']} bytes: WebP "
          + (f"{t['webp']['psnr']:.2f} dB" if "psnr" in t["webp"] else "unreachable"))


if __name__ == "__main__":
    run_stage("codecs", main)
