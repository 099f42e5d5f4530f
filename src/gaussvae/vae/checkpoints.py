"""The files a training run writes with torch.save, in one place: the checkpoint it resumes from
and the model file it exports.

Both are read with ``weights_only=True``: torch's loader then builds tensors, numbers, strings
and containers only, so a crafted file cannot run code when it is opened; anything else (a
pickle of other objects, a truncated file, a file of another kind) stops with one line naming
the file. Both are written through a buffer, atomically: the same weights give the same bytes,
so DVC sees an unchanged output after an identical rerun.

The model file holds ``model_config`` (the model's constructor arguments), ``state_dict`` (the
kept weights), ``norm_stats`` (the statistics its inputs are normalized with, as JSON) and
``params`` (the whole params.yaml it was trained under).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import torch

from gaussvae.core.atomic import atomic_path
from gaussvae.core.errors import StaleFileError
from gaussvae.vae.model import VAE, VAEConfig, build_model
from gaussvae.vae.normalization import NormStats

log = logging.getLogger(__name__)

MODEL_KEYS = ("model_config", "state_dict", "norm_stats", "params")
CHECKPOINT_KEYS = ("config_hash", "finished", "epoch", "best", "bad_epochs", "history",
                   "best_state", "model", "optimizer", "scheduler", "scaler")


def save_torch(path: str | Path, obj: Any) -> None:
    """torch.save, atomically and byte-stable.

    torch.save to a path names the archive's top folder after the file, and atomic_path's
    temporary name is random; saved through a buffer the folder is always "archive".
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def read_torch(path: str | Path, keys: tuple[str, ...], what: str,
               device: torch.device | str = "cpu") -> dict:
    """The dict a torch file at ``path`` holds, with tensors, numbers and containers only; one
    line naming the file when it is not a ``what`` (``keys`` are the ones it must have)."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as err:
        raise StaleFileError(
            f"{path}: not a {what}: it holds Python objects other than weights and plain data, "
            f"which are never loaded (a file that can run code; {str(err).splitlines()[0]})"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise StaleFileError(f"{path}: not a readable {what} (truncated or another format: "
                             f"{str(err).splitlines()[0]})") from None
    missing = [k for k in keys if not isinstance(blob, dict) or k not in blob]
    if missing:
        raise StaleFileError(f"{path}: not a {what} (no {', '.join(missing)})")
    return blob


def config_hash(config: dict) -> str:
    """What a checkpoint must match to be resumed, hashed (trainer.Trainer says what goes in)."""
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_checkpoint(path: str | Path, checkpoint: dict) -> None:
    """Everything an interrupted run needs to continue exactly (CHECKPOINT_KEYS)."""
    save_torch(path, {k: checkpoint[k] for k in CHECKPOINT_KEYS})


def load_checkpoint(path: str | Path, expected_hash: str) -> dict | None:
    """The checkpoint at ``path`` if it is an unfinished run of ``expected_hash``; else None
    (no file, another configuration, or a finished run: start afresh)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        ckpt = read_torch(path, CHECKPOINT_KEYS, "training checkpoint")
    except StaleFileError as err:  # scratch of another version: a fresh run overwrites it
        log.warning("not resuming: %s", err)
        return None
    if ckpt["config_hash"] != expected_hash or ckpt["finished"]:
        return None
    return ckpt


def save_model_file(path: str | Path, model_config: dict, state_dict: dict, norm_stats: dict,
                    params: dict) -> None:
    save_torch(path, {"model_config": model_config, "state_dict": state_dict,
                      "norm_stats": norm_stats, "params": params})


def read_model_file(path: str | Path, device: torch.device | str, config_key: str,
                    expected: str) -> dict:
    """A model file's contents (MODEL_KEYS), tensors on ``device``; one line when its config
    lacks ``config_key``, the mark of the kind of model wanted (``expected`` names its file)."""
    blob = read_torch(path, MODEL_KEYS, "model file", device)
    if not isinstance(blob["model_config"], dict) or config_key not in blob["model_config"]:
        raise StaleFileError(f"{path}: a model file of another kind (no {config_key!r} in its "
                             f"config); pass {expected}")
    return blob


def restore(model: torch.nn.Module, blob: dict, device: torch.device) -> torch.nn.Module:
    """``model`` with a model file's weights, on ``device``, in eval mode."""
    model = model.to(device)
    model.load_state_dict(blob["state_dict"])
    return model.eval()


def load_model(path: str | Path, device: torch.device) -> tuple[VAE, NormStats, dict]:
    """A trained Gaussian VAE rebuilt from its file alone, in eval mode: the model, the
    statistics its inputs are normalized with, and the file's contents."""
    blob = read_model_file(path, device, "arch", "the Gaussian VAE's (data/train/model.pt)")
    model = restore(build_model(VAEConfig.from_dict(blob["model_config"])), blob, device)
    return model, NormStats.from_json(blob["norm_stats"]), blob
