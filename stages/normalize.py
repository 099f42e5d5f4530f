"""Stage normalize: statistics of the TRAIN split -> data/norm_stats.json."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from gaussvae.core.atomic import write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.params import load_params
from gaussvae.core.store import read_gaussians
from gaussvae.vae.normalization import compute_stats


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--gaussians", required=True, help="input HDF5 (data/gaussians.h5)")
    parser.add_argument("--out", required=True, help="output JSON (data/norm_stats.json)")
    args = parser.parse_args()
    settings = load_params(args.params).normalize
    data = read_gaussians(args.gaussians)
    stats = compute_stats(data.gaussians[data.select("train")], settings.min_std,
                          settings.per_position, settings.encoding)
    write_json(args.out, stats.to_json())
    print(f"wrote statistics of {len(data.select('train'))} training images to {args.out}")


if __name__ == "__main__":
    run_stage("normalize", main)
