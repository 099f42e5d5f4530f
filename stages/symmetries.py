"""Stage symmetries: grid orders of every training fit under the square's 8 symmetries.

-> data/symmetries.npy, (n_train, 8, num_gaussians) int16, rows in the order of the train split
of data/gaussians.h5 (symmetry.py). Training uses them when train.symmetries > 1.
"""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

import io

import numpy as np
from tqdm import tqdm

from gaussvae.atomic import atomic_path
from gaussvae.cli import run_stage, stage_parser
from gaussvae.ordering import grid_slots
from gaussvae.store import read_gaussians
from gaussvae.symmetry import symmetry_orders


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--gaussians", required=True, help="input HDF5 (data/gaussians.h5)")
    parser.add_argument("--out", required=True, help="output .npy (data/symmetries.npy)")
    args = parser.parse_args()
    data = read_gaussians(args.gaussians)
    train = data.gaussians[data.select("train")]
    with tqdm(total=len(train), desc="symmetries", unit="img") as bar:
        orders = symmetry_orders(train, data.attrs["ordering"], grid_slots(train.shape[1]),
                                 on_image=bar.update)
    buffer = io.BytesIO()
    np.save(buffer, orders)
    with atomic_path(args.out) as tmp:
        tmp.write_bytes(buffer.getvalue())
    print(f"wrote the grid orders of {len(train)} training fits under 8 symmetries to {args.out}")


if __name__ == "__main__":
    run_stage("symmetries", main)
