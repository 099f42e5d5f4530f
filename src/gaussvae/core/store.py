"""The two HDF5 files of the pipeline, their schema, and byte-stable atomic writing.

data/images.h5      images (n, S, S, 3) uint8, split (n,) uint8, source (n,) str
data/gaussians.h5   gaussians (n, N, 8) float32, split, source, psnr (n,) float32

``split`` codes index ``SPLITS``. Files are written to a temporary file and renamed; datasets
carry no timestamps, so the same inputs give the same bytes (DVC then skips what follows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gaussvae.core.atomic import atomic_path
from gaussvae.core.channels import CHANNELS, TYPES
from gaussvae.core.errors import StaleFileError

SPLITS: tuple[str, ...] = ("train", "val", "test")
# Bumped when a file's meaning changes; reading another version is a one-line error.
# gaussians.h5 v3: window and sigma bounds follow the slot spacing (``window``, ``scale_range``
# attributes), so the window covers 3 sigma at any image size (any renderer agrees).
SCHEMA_VERSIONS = {"images": 1, "gaussians": 4}
STAGE_OF = {"images": "prepare", "gaussians": "extract"}
_STR = h5py.string_dtype(encoding="utf-8")


@dataclass
class ImageSet:
    images: np.ndarray  # (n, S, S, 3) uint8
    split: np.ndarray  # (n,) uint8, index into SPLITS
    sources: list[str]
    attrs: dict[str, Any]


@dataclass
class GaussianSet:
    gaussians: np.ndarray  # (n, N, 8) float32
    split: np.ndarray  # (n,) uint8
    psnr: np.ndarray  # (n,) float32, dB of the fit against its image
    sources: list[str]
    attrs: dict[str, Any]

    def select(self, split: str) -> np.ndarray:
        """Indices of the images in ``split``."""
        return np.flatnonzero(self.split == SPLITS.index(split))


def _set_attrs(f: h5py.File, attrs: dict[str, Any]) -> None:
    for key in sorted(attrs):
        value = attrs[key]
        f.attrs[key] = json.dumps(value) if isinstance(value, dict | list) else value


def _get_attrs(f: h5py.File) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str) and value[:1] in "[{":
            value = json.loads(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def read_sources(f: h5py.File) -> list[str]:
    """A file's ``source`` dataset as str: h5py returns variable-length strings as bytes."""
    return [s.decode() if isinstance(s, bytes) else s for s in f["source"][()]]


def _common(f: h5py.File, split: np.ndarray, sources: list[str]) -> None:
    d = f.create_dataset("split", data=split.astype(np.uint8), track_times=False)
    d.attrs["names"] = json.dumps(list(SPLITS))
    f.create_dataset("source", data=np.asarray(sources, dtype=object), dtype=_STR,
                     track_times=False)


def write_images(path: str | Path, data: ImageSet) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=False) as f:
        f.create_dataset(
            "images", data=data.images, chunks=(min(256, len(data.images)), *data.images.shape[1:]),
            compression="gzip", compression_opts=4, shuffle=True, track_times=False,
        )
        _common(f, data.split, data.sources)
        _set_attrs(f, {"schema_version": SCHEMA_VERSIONS["images"], **data.attrs})


def _read(path: str | Path, cls: type, arrays: tuple[str, ...]) -> Any:
    """A whole file into ``cls``: the named datasets, split, sources and file attributes.
    ``arrays[0]`` names the kind of file, whose schema version must be this code's."""
    kind = arrays[0]
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file; run the {STAGE_OF[kind]} stage first "
                                f"(dvc repro {STAGE_OF[kind]})") from None
    except OSError as err:
        raise StaleFileError(f"{path}: not a readable HDF5 file ({str(err).splitlines()[0]}); "
                             f"re-run {STAGE_OF[kind]} (dvc repro {STAGE_OF[kind]})") from None
    with f:
        attrs = _get_attrs(f)
        if attrs.get("schema_version") != SCHEMA_VERSIONS[kind]:
            raise StaleFileError(
                f"{path}: schema version {attrs.get('schema_version')}, this code reads "
                f"{SCHEMA_VERSIONS[kind]}; re-run {STAGE_OF[kind]} (dvc repro {STAGE_OF[kind]})")
        data = {name: f[name][()] for name in (*arrays, "split")}
        return cls(**data, sources=read_sources(f), attrs=attrs)


def read_images(path: str | Path) -> ImageSet:
    return _read(path, ImageSet, ("images",))


def write_gaussians(path: str | Path, data: GaussianSet) -> None:
    n, num, c = data.gaussians.shape
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=False) as f:
        d = f.create_dataset(
            "gaussians", data=data.gaussians.astype(np.float32),
            chunks=(min(64, n), num, c), compression="gzip", compression_opts=4, shuffle=True,
            track_times=False,
        )
        d.attrs["channels"] = json.dumps(list(CHANNELS))
        d.attrs["types"] = json.dumps({k: [s.start, s.stop] for k, s in TYPES.items()})
        f.create_dataset("psnr", data=data.psnr.astype(np.float32), track_times=False)
        _common(f, data.split, data.sources)
        _set_attrs(f, {"schema_version": SCHEMA_VERSIONS["gaussians"], **data.attrs})


def read_gaussians(path: str | Path) -> GaussianSet:
    return _read(path, GaussianSet, ("gaussians", "psnr"))


def image_rows(images: ImageSet, gaussians: GaussianSet, idx: np.ndarray) -> np.ndarray:
    """Rows of images.h5 holding the images of gaussians.h5 rows ``idx`` (matched by source)."""
    where = {s: i for i, s in enumerate(images.sources)}
    try:
        return np.asarray([where[gaussians.sources[i]] for i in idx])
    except KeyError as err:
        raise StaleFileError(f"image {err} of gaussians.h5 is not in images.h5; re-run extract "
                             "(dvc repro extract)") from err
