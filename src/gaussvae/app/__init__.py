"""The trained model in users' hands: a Python API (api.py) and the `gaussvae` command."""
