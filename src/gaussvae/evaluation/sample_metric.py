"""Do generated images look like the data? The kernel distance of feature_net.py's features.

KID (Binkowski et al., 2018): the unbiased estimate of the squared maximum mean discrepancy
between two sets of features under the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3. It is
unbiased at any set size (a Frechet distance of 128 features from 300 images is not), 0 in
expectation for two sets drawn from one distribution (so a small negative value is noise), and
larger the further apart the sets are. Every set is compared with the same reference, the
validation images; the test images' own distance to them is the floor a real set reaches, and
blurred copies of the test images are the check that the metric ranks blur as far from the data
(``blur_check``). Values are reported x 1000, as KID usually is.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from gaussvae.evaluation.feature_net import FeatureNet

SCALE = 1000.0  # reported as KID x 1000
# The blur of the check, px at 64 px: half a pixel is about a decoder's softening; 2 px melts a
# thin stripe.
BLUR_SIGMAS = (0.5, 1.0, 2.0)


def image_features(net: FeatureNet, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """(n, d) float64 features of uint8 images (n, S, S, 3)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch]))
            out.append(net.features(x).double().numpy())
    return np.concatenate(out) if out else np.empty((0, net.config.features))


def kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD between feature sets a (m, d) and b (n, d), cubic polynomial kernel,
    x SCALE. Needs at least two rows each."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"KID needs at least 2 images a side, got {len(a)} and {len(b)}")
    d = a.shape[1]
    k_aa, k_bb, k_ab = ((x @ y.T / d + 1.0) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    m, n = len(a), len(b)
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(SCALE * (within_a + within_b - 2 * k_ab.mean()))


def blurred(images: np.ndarray, sigma_px: float) -> np.ndarray:
    """uint8 images (n, S, S, 3) blurred by a Gaussian of ``sigma_px`` pixels (not across
    images or channels; edges mirrored)."""
    out = ndimage.gaussian_filter(images.astype(np.float64), sigma=(0, sigma_px, sigma_px, 0),
                                  mode="reflect")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def blur_check(distances: dict[str, float], sigmas: tuple[float, ...]) -> dict:
    """Whether blur ranks as it must: each blurred copy of the test images further from the
    validation images than the test images are, and further with more blur."""
    chain = [distances["test_images"]] + [distances[blur_key(s)] for s in sorted(sigmas)]
    return {"worse_than_real": all(v > chain[0] for v in chain[1:]),
            "worse_with_more_blur": all(b > a for a, b in zip(chain, chain[1:], strict=False))}


def blur_key(sigma: float) -> str:
    return f"test_blur_{sigma:g}px"


def sample_distances(net: FeatureNet, reference: np.ndarray, sets: dict[str, np.ndarray],
                     test_images: np.ndarray, sigmas: tuple[float, ...] = BLUR_SIGMAS) -> dict:
    """KID x 1000 to ``reference`` (the validation images) of each named set, of the test
    images (the floor) and of the test images blurred by each of ``sigmas`` px; and the blur
    check."""
    ref = image_features(net, reference)
    named = {"test_images": test_images,
             **{blur_key(s): blurred(test_images, s) for s in sorted(sigmas)}, **sets}
    distances = {name: round(kid(image_features(net, images), ref), 4)
                 for name, images in named.items()}
    return {"reference": f"validation images ({len(reference)})", "kid_x1000": distances,
            "images": {name: len(images) for name, images in named.items()},
            "blur_check": blur_check(distances, sigmas)}
