"""GaussVAE: images -> 2D Gaussian splats -> convolutional VAE latent codes, as a DVC pipeline."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gaussvae")
except PackageNotFoundError:  # running from a source tree that was not pip-installed
    __version__ = "0.0.0+unknown"
