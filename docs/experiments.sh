#!/usr/bin/env bash
# Regenerate docs/RESULTS.md: the seven seed configurations and the ablations, as named DVC
# experiments at one reduced budget (same for every row), then the table from
# `dvc exp show --json`. Run from the repository root with the venv active, on a committed
# workspace whose `dvc repro` outputs are in the cache (queued experiments see only those).
#   bash docs/experiments.sh            # reduced budget: EPOCHS=25, WARMUP=12 (2-core CPU)
#   EPOCHS=100 WARMUP=50 bash docs/experiments.sh   # the seed's full budget (GPU)
set -euo pipefail
EPOCHS=${EPOCHS:-25}
WARMUP=${WARMUP:-12}
budget=(-S "train.epochs=${EPOCHS}" -S "train.beta_warmup_epochs=${WARMUP}")
# Every row spells out the knobs it depends on, so rows keep their meaning when params.yaml's
# defaults change. `base` is the pipeline before the issue-6 changes: the seed's model with our
# fixes to pooling, KL scaling and ordering; ablations change one thing from it.
conv1d=(-S train.arch=conv1d -S "train.encoder_filters=[32,64,128]"
        -S "train.decoder_filters=[64,32,16]" -S train.bottleneck_channels=16)
seed=("${conv1d[@]}" -S train.loss_weighting=equal -S normalize.per_position=false
      -S normalize.encoding=raw -S train.render_loss_weight=0)
base=("${conv1d[@]}" -S train.loss_weighting=per_type -S normalize.per_position=false
      -S normalize.encoding=raw -S train.render_loss_weight=0 -S latent_dim=256 -S max_beta=1.0)

q() { dvc exp run --queue -n "$1" "${@:2}" "${budget[@]}"; }

# The seed's seven configurations (seed-configs-README.md).
q seed-conv1d_base          "${seed[@]}" -S latent_dim=256 -S max_beta=1.0
q seed-conv1d_beta0.5       "${seed[@]}" -S latent_dim=256 -S max_beta=0.5
q seed-conv1d_512d          "${seed[@]}" -S latent_dim=512 -S max_beta=1.0
q seed-conv1d_512d_beta0.5  "${seed[@]}" -S latent_dim=512 -S max_beta=0.5
q seed-conv1d_512d_beta0.1  "${seed[@]}" -S latent_dim=512 -S max_beta=0.1
q seed-conv1d_512d_beta0    "${seed[@]}" -S latent_dim=512 -S max_beta=0.0
q seed-resnet_conv1d_512d   "${seed[@]}" -S train.arch=resnet_conv1d \
                            -S train.loss_weighting=per_type -S latent_dim=512 -S max_beta=0.1

# Ablations: one change each from `base`.
q abl-base                  "${base[@]}"
q abl-equal_weighting       "${base[@]}" -S train.loss_weighting=equal
q abl-morton                "${base[@]}" -S extract.ordering=morton
q abl-images1000            "${base[@]}" -S prepare.num_images=1000
q abl-beta0.1               "${base[@]}" -S max_beta=0.1
q abl-resnet                "${base[@]}" -S train.arch=resnet_conv1d
q abl-per_position          "${base[@]}" -S normalize.per_position=true
q abl-ellipse               "${base[@]}" -S normalize.encoding=ellipse
q abl-render_loss           "${base[@]}" -S train.render_loss_weight=50
# Combinations of what helped alone.
q combo-ellipse_per_position "${base[@]}" -S normalize.encoding=ellipse \
                            -S normalize.per_position=true
q combo-ellipse_per_position_render "${base[@]}" -S normalize.encoding=ellipse \
                            -S normalize.per_position=true -S train.render_loss_weight=50

# One change each from the current default (`combo-ellipse_per_position_render` spelled out).
default=("${base[@]}" -S normalize.encoding=ellipse -S normalize.per_position=true
         -S train.render_loss_weight=50)
# Fit conditioning: the fit before issue 3's tuning (Adam 0.9/0.999 from round Gaussians of 0.6
# slot spacings, 25 steps): more steps, so Gaussians wander further from their slots.
q def-fit_before            "${default[@]}" -S extract.steps=25 -S extract.adam_beta1=0.9 \
                            -S extract.adam_beta2=0.999 -S extract.init_scale=0.6 \
                            -S extract.lr_scale=0.1 -S extract.lr_rot=0.1 -S extract.lr_feat=0.08
# KL scaling: the seed averaged KL over latent dims and reconstruction over the N * 8 elements,
# i.e. its beta is ours times N * 8 / latent_dim = 4096 / 256 = 16.
q def-kl_seed_scaling       "${default[@]}" -S max_beta=16
# Render-loss weight: 4x the default's (the render term is the largest single lever on render dB).
q def-render_w200           "${default[@]}" -S train.render_loss_weight=200
# Architecture width: twice the seed's filters in encoder and decoder.
q def-wide                  "${default[@]}" -S "train.encoder_filters=[64,128,256]" \
                            -S "train.decoder_filters=[128,64,32]"
# Architecture: 2D convolutions over the slot grid (model.py, GridVAE), so vertical neighbours,
# 22 indices apart in the sequence, are neighbours. Three stride-2 steps leave a 3x3 map (wider
# bottleneck to keep 576 values before the latent); two leave 6x6.
q arch-conv2d_grid          "${default[@]}" -S train.arch=conv2d_grid -S train.bottleneck_channels=64
q arch-conv2d_grid_depth2   "${default[@]}" -S train.arch=conv2d_grid \
                            -S "train.encoder_filters=[32,64]" -S "train.decoder_filters=[64,32]"
# The 2D model (arch-conv2d_grid_depth2 spelled out) and one change from it; the first default
# with the 2D model. grid2d-depth1 then won and is the default now.
grid2d=("${default[@]}" -S train.arch=conv2d_grid -S "train.encoder_filters=[32,64]"
        -S "train.decoder_filters=[64,32]" -S train.bottleneck_channels=16)
q grid2d-render_w200        "${grid2d[@]}" -S train.render_loss_weight=200
q grid2d-images6000         "${grid2d[@]}" -S prepare.num_images=6000
q grid2d-depth1             "${grid2d[@]}" -S "train.encoder_filters=[32]" -S "train.decoder_filters=[32]"
q grid2d-wide               "${grid2d[@]}" -S "train.encoder_filters=[64,128]" \
                            -S "train.decoder_filters=[128,64]"
# Data size upwards (abl-images1000 went downwards): twice the default's images.
q def-images6000            "${default[@]}" -S prepare.num_images=6000

dvc exp run --run-all --jobs 1
mkdir -p docs/results
dvc exp show --json --all-commits > docs/results/exp_show.json
gaussvae-results --json docs/results/exp_show.json --header docs/RESULTS.header.md \
  --out docs/RESULTS.md
