"""Stage feature_net (baselines/dvc.yaml): the sample metric's feature network, trained offline
on paintings the generator draws with the recipe's own seed -> data/feature_net.safetensors and
its held-out scores (metrics/feature_net.json)."""

import _local_src  # noqa: F401, I001  (must precede gaussvae imports)

from dataclasses import replace

from tqdm import tqdm

from gaussvae.core.atomic import write_json
from gaussvae.core.cli import run_stage, stage_parser
from gaussvae.core.errors import ParamsError
from gaussvae.core.params import load_params
from gaussvae.evaluation.feature_net import (RECIPE, draw_training_set, save_feature_net,
                                             train_feature_net)


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="weights (safetensors)")
    parser.add_argument("--metrics", required=True, help="held-out scores (JSON)")
    parser.add_argument("--images", type=int, default=RECIPE.images,
                        help="paintings to train on (the recipe's, unless a test shrinks it)")
    parser.add_argument("--epochs", type=int, default=RECIPE.epochs)
    args = parser.parse_args()
    recipe = replace(RECIPE, images=args.images, epochs=args.epochs)
    prepare = load_params(args.params).prepare
    if prepare.source == "synthetic" and prepare.seed == recipe.seed:
        raise ParamsError(f"{args.params}: prepare.seed {prepare.seed} is the sample metric's own "
                          "generator seed: its network would train on the test images it "
                          "compares; use another prepare.seed")
    with tqdm(total=recipe.images, desc="paintings", unit="img") as bar:
        images, edges, regions = draw_training_set(recipe, prepare.image_size,
                                                   on_image=lambda: bar.update())
    with tqdm(total=recipe.epochs, desc="feature net", unit="epoch") as bar:

        def on_epoch(epoch: int, scores: dict) -> None:
            bar.update()
            bar.set_postfix(edge_r2=scores["edge_r2"], region=scores["region_accuracy"])

        net, metrics = train_feature_net(images, edges, regions, recipe, on_epoch)
    save_feature_net(args.out, net)
    write_json(args.metrics, metrics)
    print(f"feature net, on {metrics['images']} held-out paintings: edge share R^2 "
          f"{metrics['edge_r2']:.3f}, region kind {metrics['region_accuracy']:.3f} (always "
          f"triangle: {metrics['region_chance']:.3f})")


if __name__ == "__main__":
    run_stage("feature_net", main)
