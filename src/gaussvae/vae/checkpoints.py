"""The checkpoint a training run resumes from (the model it exports is model_file.py's).

The checkpoint is a torch file (it holds the optimizer's and scheduler's state beside the
weights) read with ``weights_only=True``: torch's loader then builds tensors, numbers, strings
and containers only, so a crafted file cannot run code when it is opened. It is written through
a buffer, atomically, so the same state gives the same bytes.
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

log = logging.getLogger(__name__)

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


def read_torch(path: str | Path, keys: tuple[str, ...], what: str) -> dict:
    """The dict a torch file at ``path`` holds, with tensors, numbers and containers only, on
    the CPU; one line naming the file when it is not a ``what`` (with ``keys``)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
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
