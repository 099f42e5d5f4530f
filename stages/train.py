"""Stage train: VAE on normalized Gaussians -> model, checkpoint, TensorBoard logs, metrics.

Single process by default; `torchrun --nproc_per_node=G stages/train.py ...` trains with
DistributedDataParallel on G GPUs (`--nnodes` for several machines); rank 0 writes every file
(see README).
"""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from pathlib import Path

from tqdm import tqdm

from gaussvae.atomic import read_json
from gaussvae.cli import run_stage, stage_parser
from gaussvae.device import resolve_device
from gaussvae.distributed import setup_distributed
from gaussvae.normalize import NormStats
from gaussvae.params import load_params
from gaussvae.store import read_gaussians
from gaussvae.train import TrainPaths, train


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--gaussians", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--history", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    params = load_params(args.params)
    data = read_gaussians(args.gaussians)  # whole file into memory once
    stats = NormStats.from_json(read_json(args.stats))
    paths = TrainPaths(Path(args.model), Path(args.checkpoint), Path(args.logdir),
                       Path(args.history), Path(args.metrics))
    dist = setup_distributed(resolve_device(params.train.device))
    with tqdm(total=params.train.epochs, desc=f"train on {dist.device}", unit="epoch",
              disable=not dist.is_main) as bar:

        def on_epoch(epoch: int, row: dict) -> None:
            bar.n = epoch
            bar.set_postfix(val_recon=f"{row['val_recon']:.3f}", beta=f"{row['beta']:.3g}")
            bar.refresh()

        metrics = train(params, data, stats, paths, dist.device, on_epoch=on_epoch)
    dist.close()
    if metrics:
        best = metrics["best"]["val"]
        print(f"best epoch {metrics['best_epoch']}: val recon {best['recon']:.4f} "
              f"(xy {best['xy']:.3f} scale {best['scale']:.3f} rot {best['rot']:.3f} "
              f"feat {best['feat']:.3f}), active units {best['active_units']}")


if __name__ == "__main__":
    run_stage("train", main)
