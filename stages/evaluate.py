"""Stage evaluate: metrics/eval.json (val and test, z = mu) and the evaluation pictures."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from gaussvae.atomic import write_json
from gaussvae.cli import run_stage, stage_parser
from gaussvae.device import resolve_device
from gaussvae.evaluate import evaluate_split, write_pictures
from gaussvae.model import load_model
from gaussvae.params import load_params
from gaussvae.store import read_gaussians, read_images


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True)
    parser.add_argument("--gaussians", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--plots", required=True, help="folder for the PNG pictures")
    args = parser.parse_args()
    params = load_params(args.params)
    device = resolve_device(params.train.device)
    model, stats, _ = load_model(args.model, device)
    images = read_images(args.images)
    gaussians = read_gaussians(args.gaussians)
    weighting = params.train.loss_weighting

    metrics = {split: evaluate_split(model, gaussians, images, stats, split, weighting, device)
               for split in ("test", "val")}
    write_json(args.metrics, metrics)
    write_pictures(model, stats, gaussians, images, metrics, params.evaluate, args.plots, device)
    t = metrics["test"]
    print(f"test: loss xy {t['loss']['xy']:.3f} scale {t['loss']['scale']:.3f} rot "
          f"{t['loss']['rot']:.3f} feat {t['loss']['feat']:.3f} (axis error "
          f"{t['rot_error_deg']:.1f} deg); render PSNR "
          f"{t['render']['psnr_vs_image']:.2f} dB (fit {t['fit']['psnr_vs_image']:.2f}, WebP "
          f"{t['codec']['webp']['psnr']:.2f} at {t['codec']['latent_bytes']} bytes)")


if __name__ == "__main__":
    run_stage("evaluate", main)
