"""Stage prepare: images (embedded generator or prepare.folder) -> data/images.h5 with splits."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from tqdm import tqdm

from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.params import load_params
from gaussvae.core.store import write_images
from gaussvae.images.prepare import prepare_images


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="output HDF5 (data/images.h5)")
    args = parser.parse_args()
    settings = load_params(args.params).prepare
    total = settings.num_images if settings.source == "synthetic" else None
    with tqdm(total=total, desc="prepare", unit="img") as bar:
        images = prepare_images(settings, on_image=bar.update)
    write_images(args.out, images)
    skipped = images.attrs["skipped"]
    print(f"wrote {len(images.images)} images to {args.out}; skipped {len(skipped)}")


if __name__ == "__main__":
    run_stage("prepare", main)
