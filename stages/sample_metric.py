"""Stage sample_metric (baselines/dvc.yaml): KID of each model's prior samples and test
reconstructions to the validation images, with the test images (the floor) and their blurred
copies (the check that blur ranks last) -> metrics/samples.json and plots/sample_metric.png."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from pathlib import Path

from gaussvae.baselines.sample_sets import decoded_sets, split_images
from gaussvae.core.atomic import write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.device import resolve_device
from gaussvae.core.params import load_params
from gaussvae.core.store import read_gaussians, read_images
from gaussvae.evaluation.feature_net import load_feature_net
from gaussvae.evaluation.pictures import image_grid, save_png
from gaussvae.evaluation.sample_metric import BLUR_SIGMAS, blurred, sample_distances

ROWS = 8  # images per column of the picture


def main() -> None:
    parser = stage_parser(__doc__)
    for name in ("--images", "--gaussians", "--model", "--pixel-model", "--feature-net",
                 "--metrics", "--plots"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    params = load_params(args.params)
    images = read_images(args.images)
    sets = decoded_sets(images, read_gaussians(args.gaussians), args.model, args.pixel_model,
                        params.evaluate.seed, resolve_device(params.train.device))
    test = split_images(images, "test")
    metrics = sample_distances(load_feature_net(args.feature_net), split_images(images, "val"),
                               sets, test)
    write_json(args.metrics, metrics)
    columns = {"test": test, **{f"blur {s:g}px": blurred(test[:ROWS], s) for s in BLUR_SIGMAS},
               "GVAE rec": sets["gaussian_vae_reconstructions"],
               "GVAE smp": sets["gaussian_vae_samples"], "pixel smp": sets["pixel_vae_samples"],
               "PCA smp": sets["pca_samples"]}
    save_png(image_grid([c[:ROWS] for c in columns.values()], list(columns)),
             Path(args.plots) / "sample_metric.png")
    kid = metrics["kid_x1000"]
    print("KID x 1000 to the validation images: " + ", ".join(
        f"{k} {v:.2f}" for k, v in kid.items()) + f"; blur check {metrics['blur_check']}")


if __name__ == "__main__":
    run_stage("sample_metric", main)
