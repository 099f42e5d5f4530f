import numpy as np
import torch

from gaussvae.baselines.pca import PCACode, pca_metrics
from gaussvae.evaluation.image_metrics import mean_psnr


def test_more_components_reconstruct_better_and_all_of_them_exactly(tiny_images):
    train = tiny_images.images[tiny_images.split == 0]
    shape = train.shape[1:]
    scores = []
    for k in (2, 8, len(train)):
        code = PCACode.fit(train, k)
        scores.append(mean_psnr(code.decode(code.encode(train), shape), train))
    assert scores[0] < scores[1] < scores[2]
    assert scores[2] > 45  # every component: the training images come back to rounding
    code = PCACode.fit(train, 8)
    z = code.encode(train)
    assert z.shape == (len(train), 8) and z.dtype == torch.float32
    assert np.allclose(code.components @ code.components.T, np.eye(8), atol=1e-8)


def test_pca_is_scored_on_its_code_as_stored(tiny_images):
    m, table = pca_metrics(tiny_images, 8)
    assert m["components"] == 8
    for split in ("test", "val"):
        fp16, eight = m[split]["render"], m[split]["render_8bit"]
        assert fp16["psnr_vs_image"] > 10 and 0 < fp16["ssim_vs_image"] <= 1
        # 8 bits a dimension are another code (other numbers), as good to a fraction of a dB
        assert eight != fp16 and abs(eight["psnr_vs_image"] - fp16["psnr_vs_image"]) < 0.5
        # the per-image table averages to the metric
        rows = np.array(table.splits) == split
        assert np.mean(table.columns["psnr_fp16"][rows]) == fp16["psnr_vs_image"]
    assert sorted(table.sources) == sorted(
        s for s, k in zip(tiny_images.sources, tiny_images.split, strict=True) if k > 0)
