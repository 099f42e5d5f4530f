"""Stage evaluate: metrics/eval.json (val and test, z = mu) and the evaluation pictures."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from pathlib import Path

import torch

from gaussvae.atomic import write_json
from gaussvae.cli import run_stage, stage_parser
from gaussvae.device import resolve_device
from gaussvae.evaluate import evaluate_split, render_uint8
from gaussvae.normalize import denormalize, normalize
from gaussvae.params import load_params
from gaussvae.plots import image_grid, save_png, square_grid, type_loss_bars
from gaussvae.render import RenderSpec
from gaussvae.store import read_gaussians, read_images
from gaussvae.train import load_model


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True)
    parser.add_argument("--gaussians", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--plots", required=True, help="folder for the PNG pictures")
    args = parser.parse_args()
    params = load_params(args.params)
    cfg = params.evaluate
    device = resolve_device(params.train.device)
    model, stats, _ = load_model(args.model, device)
    images = read_images(args.images)
    gaussians = read_gaussians(args.gaussians)
    weighting = params.train.loss_weighting

    metrics = {split: evaluate_split(model, gaussians, images, stats, split, weighting, device)
               for split in ("test", "val")}
    write_json(args.metrics, metrics)

    plots = Path(args.plots)
    spec = RenderSpec.from_attrs(gaussians.attrs)
    idx = gaussians.select("test")[: cfg.grid_images]
    fitted = torch.from_numpy(gaussians.gaussians[idx]).to(device)
    with torch.no_grad():
        pred, _ = model(normalize(fitted, stats), sample=False)
    rows = [images.sources.index(gaussians.sources[i]) for i in idx]
    save_png(image_grid([images.images[rows], render_uint8(fitted, spec),
                         render_uint8(denormalize(pred, stats), spec)],
                        ["original", "fit", "VAE (z=mu)"]), plots / "reconstructions.png")
    gen = torch.Generator().manual_seed(cfg.seed)
    z = torch.randn(cfg.prior_samples, model.cfg.latent_dim, generator=gen).to(device)
    with torch.no_grad():
        samples = denormalize(model.decode(z), stats)
    save_png(square_grid(render_uint8(samples, spec)), plots / "prior_samples.png")
    type_loss_bars({s: metrics[s]["loss"] for s in ("val", "test")}, plots / "type_losses.png")
    t = metrics["test"]
    print(f"test: loss xy {t['loss']['xy']:.3f} scale {t['loss']['scale']:.3f} rot "
          f"{t['loss']['rot']:.3f} feat {t['loss']['feat']:.3f} (axis error "
          f"{t['rot_error_deg']:.1f} deg); render PSNR "
          f"{t['render']['psnr_vs_image']:.2f} dB (fit {t['fit']['psnr_vs_image']:.2f}, WebP "
          f"{t['codec']['webp']['psnr']:.2f} at {t['codec']['latent_bytes']} bytes)")


if __name__ == "__main__":
    run_stage("evaluate", main)
