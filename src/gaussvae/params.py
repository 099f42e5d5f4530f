"""Typed, strict loading of params.yaml.

params.yaml is the only place defaults live; the dataclasses below have no defaults so that a
missing key is an error rather than a silent fallback. Every check raises ``ParamsError`` with a
one-line message naming the key and what is allowed, which stage scripts print verbatim.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import yaml


class ParamsError(ValueError):
    """A bad value or key in params.yaml; the message is one line, fit for a user."""


@dataclass(frozen=True)
class PrepareParams:
    source: Literal["synthetic", "folder"]
    folder: str | None
    num_images: int
    image_size: int
    seed: int
    val_fraction: float
    test_fraction: float

    def check(self) -> None:
        _require(self.num_images >= 3, "prepare.num_images", "an integer >= 3", self.num_images)
        _require(self.image_size >= 8, "prepare.image_size", "an integer >= 8", self.image_size)
        for key in ("val_fraction", "test_fraction"):
            v = getattr(self, key)
            _require(0.0 < v < 0.5, f"prepare.{key}", "a number in (0, 0.5)", v)
        if self.source == "folder" and not self.folder:
            raise ParamsError(
                "params.yaml: prepare.folder must name a directory of images when "
                "prepare.source is 'folder' (e.g. -S prepare.folder=/data/paintings)"
            )


@dataclass(frozen=True)
class ExtractParams:
    num_gaussians: int
    ordering: Literal["grid", "morton"]
    steps: int
    batch_size: int
    window: int
    min_scale_px: float
    max_scale_px: float
    lr_xy: float
    lr_scale: float
    lr_rot: float
    lr_feat: float
    adam_beta1: float
    adam_beta2: float
    init_scale: float
    plateau_patience: int
    plateau_min_gain_db: float
    device: Literal["auto", "cpu", "cuda"]

    def check(self) -> None:
        _require(self.num_gaussians >= 4, "extract.num_gaussians", "an integer >= 4",
                 self.num_gaussians)
        _require(self.steps >= 0, "extract.steps", "an integer >= 0", self.steps)
        _require(self.batch_size >= 1, "extract.batch_size", "an integer >= 1", self.batch_size)
        _require(self.window >= 3 and self.window % 2 == 1, "extract.window",
                 "an odd integer >= 3", self.window)
        _require(0 < self.min_scale_px < self.max_scale_px, "extract.min_scale_px",
                 "a number in (0, extract.max_scale_px)", self.min_scale_px)
        for key in ("lr_xy", "lr_scale", "lr_rot", "lr_feat", "plateau_min_gain_db"):
            _require(getattr(self, key) >= 0, f"extract.{key}", "a number >= 0",
                     getattr(self, key))
        _require(self.plateau_patience >= 1, "extract.plateau_patience", "an integer >= 1",
                 self.plateau_patience)
        for key in ("adam_beta1", "adam_beta2"):
            _require(0 <= getattr(self, key) < 1, f"extract.{key}", "a number in [0, 1)",
                     getattr(self, key))
        _require(self.init_scale > 0, "extract.init_scale", "a number > 0", self.init_scale)


@dataclass(frozen=True)
class NormalizeParams:
    min_std: float
    per_position: bool
    encoding: Literal["raw", "ellipse"]

    def check(self) -> None:
        _require(self.min_std > 0, "normalize.min_std", "a number > 0", self.min_std)


@dataclass(frozen=True)
class TrainParams:
    arch: Literal["conv1d", "resnet_conv1d", "conv2d_grid"]
    encoder_filters: list[int]
    decoder_filters: list[int]
    kernel_size: int
    resnet_blocks: int
    bottleneck_channels: int
    loss_weighting: Literal["per_type", "equal"]
    render_loss_weight: float
    beta_warmup_epochs: int
    epochs: int
    batch_size: int
    learning_rate: float
    early_stopping_patience: int
    lr_patience: int
    lr_factor: float
    logvar_min: float
    logvar_max: float
    device: Literal["auto", "cpu", "cuda"]
    seed: int

    def check(self) -> None:
        for key in ("encoder_filters", "decoder_filters"):
            v = getattr(self, key)
            _require(len(v) >= 1 and all(c >= 1 for c in v), f"train.{key}",
                     "a non-empty list of positive integers", v)
        _require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "train.kernel_size",
                 "an odd integer >= 1", self.kernel_size)
        _require(self.resnet_blocks >= 1, "train.resnet_blocks", "an integer >= 1",
                 self.resnet_blocks)
        _require(self.bottleneck_channels >= 1, "train.bottleneck_channels", "an integer >= 1",
                 self.bottleneck_channels)
        _require(self.render_loss_weight >= 0, "train.render_loss_weight", "a number >= 0",
                 self.render_loss_weight)
        _require(self.beta_warmup_epochs >= 0, "train.beta_warmup_epochs", "an integer >= 0",
                 self.beta_warmup_epochs)
        _require(self.epochs >= 1, "train.epochs", "an integer >= 1", self.epochs)
        _require(self.batch_size >= 1, "train.batch_size", "an integer >= 1", self.batch_size)
        _require(self.learning_rate > 0, "train.learning_rate", "a number > 0",
                 self.learning_rate)
        _require(self.early_stopping_patience >= 1, "train.early_stopping_patience",
                 "an integer >= 1", self.early_stopping_patience)
        _require(self.lr_patience >= 1, "train.lr_patience", "an integer >= 1", self.lr_patience)
        _require(0 < self.lr_factor < 1, "train.lr_factor", "a number in (0, 1)", self.lr_factor)
        _require(self.logvar_min < self.logvar_max, "train.logvar_min",
                 "a number < train.logvar_max", self.logvar_min)


@dataclass(frozen=True)
class EvaluateParams:
    grid_images: int
    prior_samples: int
    seed: int

    def check(self) -> None:
        _require(self.grid_images >= 1, "evaluate.grid_images", "an integer >= 1",
                 self.grid_images)
        _require(self.prior_samples >= 1, "evaluate.prior_samples", "an integer >= 1",
                 self.prior_samples)


@dataclass(frozen=True)
class Params:
    latent_dim: int
    max_beta: float
    prepare: PrepareParams
    extract: ExtractParams
    normalize: NormalizeParams
    train: TrainParams
    evaluate: EvaluateParams

    def check(self) -> None:
        _require(self.latent_dim >= 1, "latent_dim", "an integer >= 1", self.latent_dim)
        _require(self.max_beta >= 0, "max_beta", "a number >= 0 (0 = plain autoencoder)",
                 self.max_beta)
        for section in (self.prepare, self.extract, self.normalize, self.train, self.evaluate):
            section.check()
        if self.train.arch == "conv2d_grid" and self.extract.ordering != "grid":
            # Slot k of a Morton sequence has no fixed place on the grid to convolve over.
            raise ParamsError(
                "params.yaml: train.arch conv2d_grid needs extract.ordering grid, got "
                f"{self.extract.ordering!r} (use -S train.arch=conv1d for a Morton sequence)"
            )


def _require(ok: bool, key: str, allowed: str, got: Any) -> None:
    if not ok:
        raise ParamsError(f"params.yaml: {key} must be {allowed}, got {got!r}")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is Literal:
        if value not in args:
            allowed = " | ".join(repr(a) for a in args)
            raise ParamsError(f"params.yaml: {key} must be one of {allowed}, got {value!r}")
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], key)
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"params.yaml: {key} must be a list, got {value!r}")
        return [_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"params.yaml: {key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"params.yaml: {key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamsError(f"params.yaml: {key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamsError(f"params.yaml: {key} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")  # a bug in this module


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix or "the top level"
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml: {where} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ParamsError(
            f"params.yaml: unknown key {key!r}; allowed in {where}: {', '.join(names)}"
        )
    missing = [n for n in names if n not in raw]
    if missing:
        key = f"{prefix}.{missing[0]}" if prefix else missing[0]
        raise ParamsError(f"params.yaml: missing key {key!r}; add it (see README, 'Parameters')")
    values = {n: _convert(raw[n], hints[n], f"{prefix}.{n}" if prefix else n) for n in names}
    return cls(**values)


def parse_params(raw: Any) -> Params:
    """Validate a parsed params mapping; raises ParamsError on the first problem."""
    params = _build(Params, raw, "")
    params.check()
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ParamsError(f"{path}: not found; run from the repository root") from err
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from err
    try:
        return parse_params(raw)
    except ParamsError as err:  # name the file the user actually passed
        raise ParamsError(str(err).replace("params.yaml:", f"{path}:", 1)) from None


def as_dict(obj: Any) -> dict[str, Any]:
    """Plain-dict view of a params dataclass (for checkpoints and HDF5 attributes)."""
    return dataclasses.asdict(obj)
