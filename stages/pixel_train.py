"""Stage pixel_train (baselines/dvc.yaml): the pixel-space baseline, trained by the Gaussian
VAE's own loop, budget and selection rules on data/images.h5, at its own max_beta."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from pathlib import Path

from tqdm import tqdm

from gaussvae.baselines.pixel_job import pixel_job, pixel_training_params
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.device import resolve_device
from gaussvae.core.distributed import setup_distributed
from gaussvae.core.params import load_params
from gaussvae.core.store import read_images
from gaussvae.vae.trainer import TrainPaths, make_trainer


def main() -> None:
    parser = stage_parser(__doc__)
    for name in ("--images", "--model", "--checkpoint", "--logdir", "--history", "--metrics"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    params = pixel_training_params(load_params(args.params))
    paths = TrainPaths(Path(args.model), Path(args.checkpoint), Path(args.logdir),
                       Path(args.history), Path(args.metrics))
    dist = setup_distributed(resolve_device(params.train.device))
    job = pixel_job(params, read_images(args.images), dist.device)
    with tqdm(total=params.train.epochs, desc=f"pixel baseline on {dist.device}",
              unit="epoch", disable=not dist.is_main) as bar:

        def on_epoch(epoch: int, row: dict) -> None:
            bar.n = epoch
            bar.set_postfix(val_recon=f"{row['val_recon']:.3f}", beta=f"{row['beta']:.3g}")
            bar.refresh()

        metrics = make_trainer(params, job, dist).fit(paths, on_epoch)
    dist.close()
    if metrics:
        print(f"best epoch {metrics['best_epoch']}: val recon "
              f"{metrics['best']['val']['recon']:.4f}")


if __name__ == "__main__":
    run_stage("pixel_train", main)
