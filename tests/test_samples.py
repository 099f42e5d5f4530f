import numpy as np
from scipy import ndimage

from gaussvae.evaluation.sample_statistics import FEATURES, image_features, sample_statistics
from gaussvae.images.synth import generate_image


def _images(seed: int, n: int = 64) -> np.ndarray:
    return np.stack([generate_image(seed, i, 32) for i in range(n)])


def test_blurred_decodes_are_far_from_the_data_and_real_images_are_near():
    reference, other = _images(0), _images(1)
    blurred = np.stack([ndimage.gaussian_filter(x.astype(float), (1.5, 1.5, 0)).astype(np.uint8)
                        for x in other])
    real = sample_statistics(other, reference, other)
    blur = sample_statistics(blurred, reference, other)
    assert real["fd"] == real["fd_real"] < 1.0
    assert blur["fd"] > 10 * real["fd"]
    assert blur["edges"] < 0.5 * blur["edges_real"]  # blur removes edges
    assert blur["colours"] > blur["colours_real"]  # and mixes colours


def test_features_of_a_flat_two_colour_image():
    img = np.zeros((1, 16, 16, 3), dtype=np.uint8)
    img[0, :, 8:] = (255, 0, 0)
    f = dict(zip(FEATURES, image_features(img)[0], strict=True))
    assert f["colours"] == 2 and 0 < f["edges"] < 0.3 and f["flat"] > 0.7
    assert f["saturation"] == 0.5  # black has none, red full
