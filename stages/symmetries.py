"""Stage symmetries: the orders of every training fit under the square's symmetries.

-> data/symmetries.npy, (n_train, K, num_gaussians) int16 for the first K = train.symmetries
symmetries, rows in the order of the train split of data/gaussians.h5 (symmetry.py).
"""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

import io

import numpy as np
from tqdm import tqdm

from gaussvae.core.atomic import atomic_path
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.params import load_params
from gaussvae.core.store import read_gaussians
from gaussvae.gaussians.slots import grid_slots
from gaussvae.vae.symmetry import symmetry_orders


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--gaussians", required=True, help="input HDF5 (data/gaussians.h5)")
    parser.add_argument("--out", required=True, help="output .npy (data/symmetries.npy)")
    args = parser.parse_args()
    count = load_params(args.params).train.symmetries
    data = read_gaussians(args.gaussians)
    train = data.gaussians[data.select("train")]
    with tqdm(total=len(train), desc=f"{count} symmetries", unit="img") as bar:
        orders = symmetry_orders(train, data.attrs["ordering"], grid_slots(train.shape[1]),
                                 count, on_image=bar.update)
    buffer = io.BytesIO()
    np.save(buffer, orders)
    with atomic_path(args.out) as tmp:
        tmp.write_bytes(buffer.getvalue())
    print(f"wrote the orders of {len(train)} training fits under {count} symmetries to "
          f"{args.out}")


if __name__ == "__main__":
    run_stage("symmetries", main)
