"""Device choice shared by the stages: CUDA when present and asked for, else CPU."""

from __future__ import annotations

import torch

from gaussvae.core.errors import UserError


def resolve_device(name: str) -> torch.device:
    """Map 'auto' | 'cpu' | 'cuda' to a torch.device; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("params.yaml: device 'cuda' was asked for (extract.device or "
                        "train.device) but no CUDA GPU is visible; set it to auto or cpu")
    return torch.device(name)
