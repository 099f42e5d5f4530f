"""The trained model as a file that cannot run code: weights in safetensors, the rest in JSON.

A model file is what people share, so it holds tensors and text only: the weights as a
safetensors file (a header and raw tensor bytes: opening it runs nothing), and in that file's
metadata, under one key ``gaussvae``, a JSON object with the file's format and version, the
kind of model, the model's config (its constructor arguments), the statistics its inputs are
normalized with, the params.yaml it was trained under and the package version that wrote it.
Anything else at a model path (a pickle, a truncated file, another format or version, a model
of the other kind) stops with one line naming the file and what it is. The same weights give
the same bytes (safetensors sorts its header), so DVC sees an unchanged output after an
identical rerun.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from gaussvae import __version__
from gaussvae.core.atomic import atomic_path
from gaussvae.core.errors import StaleFileError
from gaussvae.vae.model import VAE, VAEConfig, build_model
from gaussvae.vae.normalization import NormStats

FORMAT, FORMAT_VERSION = "gaussvae-model", 1
# The kinds of model a file can hold, and where the pipeline writes each.
KINDS = {"gaussian_vae": "the Gaussian VAE's model (data/train/model.safetensors)",
         "pixel_vae": "the pixel baseline's model (baselines/data/model.safetensors)"}
# What a torch.save file or a bare pickle starts with: a zip archive, or pickle's PROTO opcode
# (a safetensors file starts with its header's length, then '{').
PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")


@dataclass(frozen=True)
class ModelFile:
    kind: str  # a key of KINDS
    model_config: dict
    norm_stats: dict  # JSON of the statistics the model's inputs are normalized with
    params: dict  # the params.yaml it was trained under
    package_version: str
    state_dict: dict[str, torch.Tensor]


def save_model_file(path: str | Path, kind: str, model_config: dict,
                    state_dict: dict[str, torch.Tensor], norm_stats: dict, params: dict) -> None:
    """Write a model file atomically."""
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "package_version": __version__, "model_config": model_config,
            "norm_stats": norm_stats, "params": params}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"gaussvae": json.dumps(meta)})


def read_model_file(path: str | Path, kind: str | None, device: torch.device | str = "cpu"
                    ) -> ModelFile:
    """The model file at ``path``, which must hold a model of ``kind`` (None: of any kind in
    KINDS); tensors on ``device``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file; train one first (dvc repro)")
    with path.open("rb") as f:
        head = f.read(9)
    header_end = 8 + int.from_bytes(head[:8], "little")
    if not (len(head) == 9 and head[8:9] == b"{" and header_end <= path.stat().st_size):
        if head.startswith(PICKLE_MAGIC):  # not a safetensors header: say what it is
            raise StaleFileError(f"{path}: a pickle (torch.save) file, which is never loaded: "
                                 "it could run code; model files are safetensors (re-run train)")
        raise StaleFileError(f"{path}: not a safetensors model file (truncated or another "
                             "format)")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta_text = (f.metadata() or {}).get("gaussvae")
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise StaleFileError(f"{path}: not a readable safetensors model file (truncated or "
                             f"another format: {str(err).splitlines()[0]})") from None
    try:
        meta = json.loads(meta_text) if meta_text else {}
    except json.JSONDecodeError:
        meta = {}
    if meta.get("format") != FORMAT:
        raise StaleFileError(f"{path}: a safetensors file, but not a GaussVAE model file (no "
                             "'gaussvae' metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise StaleFileError(f"{path}: model file format version {meta.get('format_version')}, "
                             f"this code reads {FORMAT_VERSION}; re-run train (dvc repro train)")
    if meta.get("kind") not in KINDS or (kind is not None and meta["kind"] != kind):
        what = KINDS.get(meta.get("kind"), f"a model of kind {meta.get('kind')!r}")
        wanted = KINDS[kind] if kind else " or ".join(KINDS.values())
        raise StaleFileError(f"{path}: holds {what}; pass {wanted}")
    return ModelFile(meta["kind"], meta["model_config"], meta["norm_stats"], meta["params"],
                     meta["package_version"], state)


def restore(model: torch.nn.Module, file: ModelFile, device: torch.device) -> torch.nn.Module:
    """``model`` with a model file's weights, on ``device``, in eval mode."""
    model = model.to(device)
    model.load_state_dict(file.state_dict)
    return model.eval()


def load_model(path: str | Path, device: torch.device) -> tuple[VAE, NormStats, ModelFile]:
    """A trained Gaussian VAE rebuilt from its file alone, in eval mode: the model, the
    statistics its inputs are normalized with, and the file."""
    file = read_model_file(path, "gaussian_vae", device)
    model = restore(build_model(VAEConfig.from_dict(file.model_config)), file, device)
    return model, NormStats.from_json(file.norm_stats), file
