"""Baselines the Gaussian VAE is compared with; nothing in the Gaussian pipeline imports them."""
