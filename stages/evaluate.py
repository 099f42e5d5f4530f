"""Stage evaluate: metrics/eval.json (val and test, the code as stored) and the pictures."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from gaussvae.core.atomic import write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.device import resolve_device
from gaussvae.core.params import load_params
from gaussvae.core.store import read_gaussians, read_images
from gaussvae.evaluation.gaussian_eval import GaussianEvaluation, evaluate, write_pictures
from gaussvae.evaluation.per_image import pass_table, write_psnr_table
from gaussvae.vae.model_file import load_model

# Per-image PSNR columns of metrics/per_image.tsv: the code as stored, and the fit it decodes.
PER_IMAGE = {"psnr_fp16": "recon_px", "psnr_8bit": "recon8_px", "fit": "fit_px"}


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True)
    parser.add_argument("--gaussians", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--plots", required=True, help="folder for the PNG pictures")
    parser.add_argument("--per-image", required=True,
                        help="per-image PSNR table of val and test (TSV)")
    args = parser.parse_args()
    params = load_params(args.params)
    device = resolve_device(params.train.device)
    model, stats, _ = load_model(args.model, device)
    evaluation = GaussianEvaluation(model, stats, read_gaussians(args.gaussians),
                                    read_images(args.images), device)
    result = evaluate(evaluation, params.train.loss_weighting, params.evaluate)
    write_json(args.metrics, result.metrics)
    write_pictures(evaluation, result, params.evaluate, args.plots)
    write_psnr_table(args.per_image, pass_table(result.runs, PER_IMAGE))
    t, s = result.metrics["test"], result.metrics["samples"]
    print(f"test: loss xy {t['loss']['xy']:.3f} scale {t['loss']['scale']:.3f} rot "
          f"{t['loss']['rot']:.3f} feat {t['loss']['feat']:.3f} (axis error "
          f"{t['rot_error_deg']:.1f} deg); render PSNR {t['render']['psnr_vs_image']:.2f} dB "
          f"(8-bit code {t['render_8bit']['psnr_vs_image']:.2f}, fit "
          f"{t['fit']['psnr_vs_image']:.2f}); prior samples: Frechet distance {s['fd']:.2f} "
          f"(real images {s['fd_real']:.2f})")


if __name__ == "__main__":
    run_stage("evaluate", main)
