"""Stage paired (baselines/dvc.yaml): the Gaussian VAE against each baseline on the same images,
per image: mean PSNR difference with a bootstrap 95% interval -> baselines/metrics/paired.json.
Both codes: float16 (against the pixel VAE's and PCA's float16 codes and WebP/JPEG within the
same bytes) and 8-bit (against theirs, and the codecs within half the bytes)."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from gaussvae.baselines.paired import paired_metrics
from gaussvae.core.atomic import rounded, write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.evaluation.code_storage import BYTES_PER_DIM
from gaussvae.evaluation.per_image import read_psnr_table


def main() -> None:
    parser = stage_parser(__doc__)
    for name in ("--vae", "--pixel", "--pca", "--codecs", "--metrics"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    vae, pixel, pca, codecs = (read_psnr_table(p) for p in (args.vae, args.pixel, args.pca,
                                                             args.codecs))
    metrics = {}
    for code in BYTES_PER_DIM:
        column = f"psnr_{code}"
        metrics[code] = paired_metrics(vae, {"pixel": (pixel, column), "pca": (pca, column),
                                             "webp": (codecs, f"webp_{code}"),
                                             "jpeg": (codecs, f"jpeg_{code}")}, column)
    write_json(args.metrics, rounded(metrics, 5))
    test = metrics["fp16"]["test"]
    print("test, float16 code, Gaussian VAE minus: " + "; ".join(
        f"{name} {m['mean_db']:+.2f} dB [{m['ci95_low']:+.2f}, {m['ci95_high']:+.2f}]"
        for name, m in test.items()))


if __name__ == "__main__":
    run_stage("paired", main)
