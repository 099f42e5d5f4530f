"""Stage train: VAE on normalized Gaussians -> model, checkpoint, TensorBoard logs, metrics.

Single process by default; `torchrun --nproc_per_node=G stages/train.py ...` trains with
DistributedDataParallel on G GPUs (`--nnodes` for several machines); rank 0 writes every file
(docs/gpu.md).
"""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from pathlib import Path

import numpy as np
from tqdm import tqdm

from gaussvae.core.atomic import read_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.device import resolve_device
from gaussvae.core.distributed import setup_distributed
from gaussvae.core.params import load_params
from gaussvae.core.store import read_gaussians, read_images
from gaussvae.vae.normalization import NormStats
from gaussvae.vae.trainer import TrainPaths, train_gaussian_vae


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--gaussians", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--images", help="images.h5, read when train.render_target is image")
    parser.add_argument("--symmetries",
                        help="symmetries.npy (symmetries stage), read when train.symmetries > 1")
    parser.add_argument("--model", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--history", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    params = load_params(args.params)
    t = params.train
    data = read_gaussians(args.gaussians)  # whole file into memory once
    stats = NormStats.from_json(read_json(args.stats))
    images = read_images(args.images) if t.render_target == "image" else None
    orders = np.load(args.symmetries) if t.symmetries > 1 else None  # (n_train or 1, K, N)
    paths = TrainPaths(Path(args.model), Path(args.checkpoint), Path(args.logdir),
                       Path(args.history), Path(args.metrics))
    dist = setup_distributed(resolve_device(t.device))
    with tqdm(total=t.epochs, desc=f"train on {dist.device}", unit="epoch",
              disable=not dist.is_main) as bar:

        def on_epoch(epoch: int, row: dict) -> None:
            bar.n = epoch
            bar.set_postfix(val_recon=f"{row['val_recon']:.3f}", beta=f"{row['beta']:.3g}")
            bar.refresh()

        metrics = train_gaussian_vae(params, data, stats, paths, dist, orders, images,
                                     on_epoch)
    dist.close()  # every rank waits here until rank 0 has written the files
    if metrics:
        best = metrics["best"]["val"]
        print(f"best epoch {metrics['best_epoch']}: val recon {best['recon']:.4f} "
              f"(xy {best['xy']:.3f} scale {best['scale']:.3f} rot {best['rot']:.3f} "
              f"feat {best['feat']:.3f}), active units {best['active_units']}")


if __name__ == "__main__":
    run_stage("train", main)
