#!/usr/bin/env bash
# Regenerate docs/RESULTS.md: the seven seed configurations and the ablations, as named DVC
# experiments at one reduced budget (same for every row), then the table from
# `dvc exp show --json`. Run from the repository root with the venv active, on a committed
# workspace whose `dvc repro` outputs are in the cache (queued experiments see only those).
#   bash docs/experiments.sh            # reduced budget: EPOCHS=12, WARMUP=6 (2-core CPU)
#   EPOCHS=100 WARMUP=50 bash docs/experiments.sh   # the seed's full budget (GPU)
set -euo pipefail
EPOCHS=${EPOCHS:-12}
WARMUP=${WARMUP:-6}
budget=(-S "train.epochs=${EPOCHS}" -S "train.beta_warmup_epochs=${WARMUP}")
seed=(-S train.arch=conv1d -S train.loss_weighting=equal -S normalize.per_position=false)

q() { dvc exp run --queue -n "$1" "${@:2}" "${budget[@]}"; }

# The seed's seven configurations (seed-configs-README.md).
q seed-conv1d_base          "${seed[@]}" -S latent_dim=256 -S max_beta=1.0
q seed-conv1d_beta0.5       "${seed[@]}" -S latent_dim=256 -S max_beta=0.5
q seed-conv1d_512d          "${seed[@]}" -S latent_dim=512 -S max_beta=1.0
q seed-conv1d_512d_beta0.5  "${seed[@]}" -S latent_dim=512 -S max_beta=0.5
q seed-conv1d_512d_beta0.1  "${seed[@]}" -S latent_dim=512 -S max_beta=0.1
q seed-conv1d_512d_beta0    "${seed[@]}" -S latent_dim=512 -S max_beta=0.0
q seed-resnet_conv1d_512d   -S train.arch=resnet_conv1d -S train.loss_weighting=per_type \
                            -S normalize.per_position=false -S latent_dim=512 -S max_beta=0.1

# Ablations, one change each from the default params.
q abl-default               -S max_beta=1.0
q abl-per_position          -S normalize.per_position=true
q abl-equal_weighting       -S train.loss_weighting=equal
q abl-morton                -S extract.ordering=morton
q abl-render_loss           -S train.render_loss_weight=50
q abl-images1000            -S prepare.num_images=1000

dvc exp run --run-all --jobs 1
gaussvae-results --header docs/RESULTS.header.md --out docs/RESULTS.md
