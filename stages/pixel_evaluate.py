"""Stage pixel_evaluate (baselines/dvc.yaml): the pixel-space baseline's metrics and pictures,
scored as evaluate scores the Gaussian VAE."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from gaussvae.baselines.pixel_eval import PixelEvaluation, evaluate_pixel
from gaussvae.baselines.pixel_vae import load_pixel_model
from gaussvae.core.atomic import write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.device import resolve_device
from gaussvae.core.params import load_params
from gaussvae.core.store import read_images
from gaussvae.evaluation.per_image import pass_table, write_psnr_table


def main() -> None:
    parser = stage_parser(__doc__)
    for name in ("--images", "--model", "--metrics", "--plots", "--per-image"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    params = load_params(args.params)
    device = resolve_device(params.train.device)
    model, stats = load_pixel_model(args.model, device)
    evaluation = PixelEvaluation(model, stats, read_images(args.images), device)
    metrics, runs = evaluate_pixel(evaluation, params.evaluate, args.plots)
    write_json(args.metrics, metrics)
    write_psnr_table(args.per_image, pass_table(runs, {"psnr_fp16": "recon_px",
                                                       "psnr_8bit": "recon8_px"}))
    t, s = metrics["test"], metrics["samples"]
    print(f"pixel baseline, test: render PSNR {t['render']['psnr_vs_image']:.2f} dB (8-bit "
          f"code {t['render_8bit']['psnr_vs_image']:.2f}); prior samples: Frechet distance "
          f"{s['fd']:.2f} (real images {s['fd_real']:.2f})")


if __name__ == "__main__":
    run_stage("pixel_evaluate", main)
