"""The linear floor: PCA of the training images, its code stored as the VAEs' codes are.

``latent_dim`` principal components of the training images (pixels in [0, 1], flattened) are
the code of an image; stored in float16 (``latent_dim`` x 2 bytes) or 8 bits a dimension over
the training codes' range (code_storage.py), exactly as the VAEs' posterior means, and decoded
by the mean plus the components. It takes seconds of numpy, so any deep model must clear it at
the same bytes before it means anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gaussvae.core.store import SPLITS, ImageSet
from gaussvae.evaluation.code_storage import Uniform8Bit, as_fp16
from gaussvae.evaluation.image_metrics import image_scores, per_image_psnr
from gaussvae.evaluation.per_image import PsnrTable, split_sources


@dataclass(frozen=True)
class PCACode:
    """mean (D,) and orthonormal components (k, D) of flattened training images in [0, 1]."""

    mean: np.ndarray
    components: np.ndarray

    @classmethod
    def fit(cls, train_images: np.ndarray, k: int) -> PCACode:
        x = train_images.reshape(len(train_images), -1).astype(np.float64) / 255.0
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        return cls(mean, vt[:k])

    def encode(self, images: np.ndarray) -> torch.Tensor:
        """Codes (n, k) float32 of images (n, S, S, 3) uint8."""
        x = images.reshape(len(images), -1).astype(np.float64) / 255.0
        return torch.from_numpy(((x - self.mean) @ self.components.T).astype(np.float32))

    def decode(self, codes: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
        """uint8 images of ``shape`` (S, S, 3) from codes (n, k)."""
        x = codes.double().numpy() @ self.components + self.mean
        return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).reshape(len(x), *shape)


def pca_metrics(images: ImageSet, k: int) -> tuple[dict, PsnrTable]:
    """Render PSNR and SSIM of the float16 and the 8-bit PCA code on the val and test images,
    keyed as the VAEs' metrics are (``render``, ``render_8bit``), and the per-image PSNRs."""
    split = {name: images.images[images.split == SPLITS.index(name)] for name in SPLITS}
    code = PCACode.fit(split["train"], k)
    quantizer = Uniform8Bit.fit(code.encode(split["train"]))
    shape = images.images.shape[1:]
    out: dict = {"components": k}
    parts = []
    for name in ("test", "val"):
        z = code.encode(split[name])
        fp16, q8 = code.decode(as_fp16(z), shape), code.decode(quantizer(z), shape)
        out[name] = {"render": image_scores(fp16, split[name], "_vs_image"),
                     "render_8bit": image_scores(q8, split[name], "_vs_image")}
        sources = split_sources(images, name)
        parts.append(PsnrTable(sources, [name] * len(sources),
                               {"psnr_fp16": per_image_psnr(fp16, split[name]),
                                "psnr_8bit": per_image_psnr(q8, split[name])}))
    return out, PsnrTable.concat(parts)
