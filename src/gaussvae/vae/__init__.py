"""The VAE: what it sees (encoding, statistics, symmetries), the models, the objective and the
training loop."""
