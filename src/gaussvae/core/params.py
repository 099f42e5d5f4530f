"""Typed, strict loading of params.yaml.

params.yaml is the only place defaults live: the models below have no defaults, so a missing
key is an error rather than a silent fallback, and an unknown or mistyped key is refused. Each
field carries its own constraint on its own line; every problem becomes ``ParamsError`` with a
one-line message naming the key and what is allowed, which stage scripts print verbatim.
Allowed values (architectures, orderings, encodings, devices) are defined here once; the rest of
the package reads them from these types.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from gaussvae.core.errors import ParamsError
from gaussvae.core.geometry import COVERED_SIGMAS, covering_window, slot_spacing_px

Arch = Literal["conv1d", "resnet_conv1d", "conv2d_grid", "resnet_conv2d_grid"]
GRID_ARCHS: tuple[str, ...] = ("conv2d_grid", "resnet_conv2d_grid")  # convolve over the slot grid
Ordering = Literal["anchored", "grid", "morton"]
SLOT_ORDERINGS: tuple[str, ...] = ("anchored", "grid")  # index i is slot i of the lattice
Encoding = Literal["raw", "ellipse"]
Weighting = Literal["per_type", "equal"]
Device = Literal["auto", "cpu", "cuda"]


def rule(ok: Callable[[Any], bool], allowed: str) -> AfterValidator:
    """A field constraint; its error reads '<key> must be <allowed>, got <value>'."""

    def check(value: Any) -> Any:
        if not ok(value):
            raise PydanticCustomError("rule", "must be {allowed}",
                                      {"allowed": allowed, "got": value})
        return value

    return AfterValidator(check)


def cross_field(message: str) -> PydanticCustomError:
    """An error that involves several keys; ``message`` names them and the fix."""
    return PydanticCustomError("cross_field", "{message}", {"message": message})


def require_below(section: BaseModel, low: str, high: str, prefix: str) -> None:
    """``section.low < section.high``, or a one-line error naming both keys."""
    lo, hi = getattr(section, low), getattr(section, high)
    if lo >= hi:
        raise cross_field(f"{prefix}.{low} must be below {prefix}.{high}, got {lo} >= {hi}")


AtLeast1 = Annotated[int, rule(lambda v: v >= 1, "an integer >= 1")]
AtLeast0 = Annotated[int, rule(lambda v: v >= 0, "an integer >= 0")]
NonNegative = Annotated[float, rule(lambda v: v >= 0, "a number >= 0")]
Positive = Annotated[float, rule(lambda v: v > 0, "a number > 0")]
OddAtLeast1 = Annotated[int, rule(lambda v: v >= 1 and v % 2 == 1, "an odd integer >= 1")]
SplitFraction = Annotated[float, rule(lambda v: 0.0 < v < 0.5, "a number in (0, 0.5)")]
UnitInterval = Annotated[float, rule(lambda v: 0 <= v < 1, "a number in [0, 1)")]
Filters = Annotated[list[int], rule(lambda v: len(v) >= 1 and all(c >= 1 for c in v),
                                    "a non-empty list of positive integers")]


class Section(BaseModel):
    """Strict: exact types (an int is accepted where a float is expected), no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PrepareParams(Section):
    source: Literal["synthetic", "folder"]
    folder: str | None
    num_images: Annotated[int, rule(lambda v: v >= 3, "an integer >= 3")]
    image_size: Annotated[int, rule(lambda v: v >= 8, "an integer >= 8")]
    seed: int
    val_images: AtLeast1
    test_images: AtLeast1
    val_fraction: SplitFraction
    test_fraction: SplitFraction

    @model_validator(mode="after")
    def _source_complete(self) -> PrepareParams:
        if self.source == "folder" and not self.folder:
            raise cross_field("prepare.folder must name a directory of images when "
                              "prepare.source is 'folder' (e.g. -S prepare.folder=/data/paintings)")
        if self.source == "synthetic" and self.num_images <= self.val_images + self.test_images:
            raise cross_field(
                f"prepare.num_images ({self.num_images}) must exceed prepare.val_images + "
                f"prepare.test_images ({self.val_images + self.test_images}): the rest is the "
                "training set")
        return self


class ExtractParams(Section):
    """The fit's settings. Lengths are in slot spacings (core/geometry.py), so the same settings
    fit any image size; ``sigma_px`` and ``window_px`` turn them into pixels at a size."""

    num_gaussians: Annotated[int, rule(lambda v: v >= 4, "an integer >= 4")]
    ordering: Ordering
    max_offset: Positive
    steps: AtLeast0
    batch_size: AtLeast1
    window: Annotated[int | str, rule(lambda v: v == "auto" or (
        isinstance(v, int) and v >= 3 and v % 2 == 1), "'auto' or an odd integer >= 3")]
    min_scale: Positive
    max_scale: Positive
    lr_xy: NonNegative
    lr_scale: NonNegative
    lr_rot: NonNegative
    lr_feat: NonNegative
    adam_beta1: UnitInterval
    adam_beta2: UnitInterval
    init_scale: Positive
    plateau_patience: AtLeast1
    plateau_min_gain_db: NonNegative
    device: Device

    @model_validator(mode="after")
    def _scale_range(self) -> ExtractParams:
        require_below(self, "min_scale", "max_scale", "extract")
        return self

    def offset_bound(self) -> float:
        """How far (fraction of the image side) an anchored fit's centre may leave its slot;
        the other orderings bound centres only by the image."""
        return self.max_offset / math.sqrt(self.num_gaussians) if self.ordering == "anchored" \
            else math.inf

    def spacing_px(self, image_size: int) -> float:
        """Pixels between neighbouring slots at ``image_size``."""
        return slot_spacing_px(image_size, self.num_gaussians)

    def sigma_px(self, image_size: int) -> tuple[float, float]:
        """The sigma bounds in pixels at ``image_size``."""
        spacing = self.spacing_px(image_size)
        return self.min_scale * spacing, self.max_scale * spacing

    def window_problem(self, image_size: int) -> str | None:
        """Why an explicit ``window`` cannot draw true fits at ``image_size`` (one line naming
        the keys and the values that would work), or None."""
        if self.window == "auto":
            return None
        spacing = self.spacing_px(image_size)
        sigma = self.max_scale * spacing
        need = covering_window(sigma, spacing)
        if self.window >= need:
            return None
        if 2 * COVERED_SIGMAS * sigma > self.window:
            why = (f"cannot cover {COVERED_SIGMAS:g} sigma of the widest Gaussian (extract."
                   f"max_scale {self.max_scale} x slot spacing {spacing:.3g} px = {sigma:.3g} px)")
            lower = (f", or extract.max_scale <= "
                     f"{math.floor(self.window / (2 * COVERED_SIGMAS) / spacing * 1000) / 1000:g}")
        else:
            why = f"leaves pixels between slots {spacing:.3g} px apart outside every window"
            lower = ""
        return (f"extract.window {self.window} at prepare.image_size {image_size} {why}; set "
                f"extract.window to auto or >= {need}{lower}")

    def window_px(self, image_size: int) -> int:
        """The window, in pixels, each Gaussian is evaluated on at ``image_size``: ``window``,
        or with ``auto`` the smallest that covers 3 sigma of the widest Gaussian."""
        problem = self.window_problem(image_size)
        if problem:
            raise ParamsError(problem)
        if self.window == "auto":
            return covering_window(self.sigma_px(image_size)[1], self.spacing_px(image_size))
        return int(self.window)


class NormalizeParams(Section):
    min_std: Positive
    per_position: bool
    encoding: Encoding


class TrainParams(Section):
    arch: Arch
    encoder_filters: Filters
    decoder_filters: Filters
    kernel_size: OddAtLeast1
    resnet_blocks: AtLeast1
    bottleneck_channels: AtLeast1
    palette_colours: AtLeast0
    attention_blocks: AtLeast0
    decoder_blocks: AtLeast0
    loss_weighting: Weighting
    render_loss_weight: NonNegative
    render_target: Literal["fit", "image"]
    symmetries: Annotated[int, rule(lambda v: v in (1, 2, 4, 8), "1, 2, 4 or 8")]
    beta_warmup_epochs: AtLeast0
    epochs: AtLeast1
    batch_size: AtLeast1
    learning_rate: Positive
    weight_decay: NonNegative
    early_stopping_patience: AtLeast1
    lr_schedule: Literal["plateau", "cosine"]
    lr_warmup_epochs: AtLeast0
    lr_patience: AtLeast1
    lr_factor: Annotated[float, rule(lambda v: 0 < v < 1, "a number in (0, 1)")]
    logvar_min: float
    logvar_max: float
    device: Device
    seed: int

    @model_validator(mode="after")
    def _logvar_range(self) -> TrainParams:
        require_below(self, "logvar_min", "logvar_max", "train")
        return self


class PixelBaselineParams(Section):
    filters: Filters
    bottleneck_channels: AtLeast1
    kernel_size: OddAtLeast1
    resnet_blocks: AtLeast0
    max_beta: NonNegative


class EvaluateParams(Section):
    grid_images: AtLeast1
    prior_samples: AtLeast1
    seed: int


class Params(Section):
    latent_dim: AtLeast1
    max_beta: Annotated[float, rule(lambda v: v >= 0, "a number >= 0 (0 = plain autoencoder)")]
    prepare: PrepareParams
    extract: ExtractParams
    normalize: NormalizeParams
    train: TrainParams
    evaluate: EvaluateParams
    pixel_baseline: PixelBaselineParams

    @model_validator(mode="after")
    def _window_fits_the_images(self) -> Params:
        problem = self.extract.window_problem(self.prepare.image_size)
        if problem:
            raise cross_field(problem)
        return self

    @model_validator(mode="after")
    def _model_fits_the_data(self) -> Params:
        arch, n = self.train.arch, self.extract.num_gaussians
        grid = arch in GRID_ARCHS
        if grid and self.extract.ordering not in SLOT_ORDERINGS:
            # Slot k of a Morton sequence has no fixed place on the grid to convolve over.
            raise cross_field(
                f"train.arch {arch} needs extract.ordering anchored or grid, got "
                f"{self.extract.ordering!r} (use -S train.arch=conv1d for a Morton sequence)")
        if self.extract.ordering == "anchored" and self.train.symmetries > 1 and n % 4 > 1:
            # Only 4k or 4k + 1 slots can be a set the eight symmetries map onto itself
            # (orbits of 1, 4 and 8 cells; gaussians/slots.py).
            raise cross_field(
                f"train.symmetries {self.train.symmetries} with extract.ordering anchored needs "
                f"extract.num_gaussians of the form 4k or 4k + 1, got {n} (use {n - n % 4} or "
                f"{n - n % 4 + 4}, or train.symmetries 1)")
        if self.train.decoder_blocks and not grid:
            raise cross_field(f"train.decoder_blocks works over the slot grid; train.arch {arch} "
                              "has none (use resnet_conv2d_grid, or decoder_blocks 0)")
        if self.train.attention_blocks and not grid:
            raise cross_field(f"train.attention_blocks works over the slot grid; train.arch {arch} "
                              "has none (use resnet_conv2d_grid, or attention_blocks 0)")
        if not grid:  # the 1D models halve or double the sequence per stage
            for key in ("encoder_filters", "decoder_filters"):
                depth = len(getattr(self.train, key))
                if n % 2**depth:
                    raise cross_field(
                        f"extract.num_gaussians ({n}) must be divisible by 2**{depth} for "
                        f"{depth} train.{key} with train.arch {arch} (or use conv2d_grid)")
        return self


SECTIONS: dict[str, type[Section]] = {
    name: field.annotation for name, field in Params.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, Section)
}
# Keys that were renamed, with what replaces them: an old params.yaml gets told the new name.
RENAMED = {
    "extract.min_scale_px": "extract.min_scale, in slot spacings (pixels / (image_size / "
                            "sqrt(num_gaussians)); 0.4 px at 64 px was 0.14)",
    "extract.max_scale_px": "extract.max_scale, in slot spacings (1.5 px at 64 px was 0.53)",
}
TYPE_NAMES = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
              "string_type": "a string", "list_type": "a list", "model_type": "a mapping",
              "dict_type": "a mapping"}


def _message(err: Any) -> str:
    """One line for pydantic's error ``err``, in the words the docs use."""
    loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
    key = ".".join(loc) + "".join(f"[{p}]" for p in err["loc"] if isinstance(p, int))
    kind, ctx, got = err["type"], err.get("ctx", {}), err["input"]
    if kind == "extra_forbidden":
        section = SECTIONS.get(loc[0], Params) if len(loc) > 1 else Params
        where = loc[0] if len(loc) > 1 else "the top level"
        if key in RENAMED:
            return f"unknown key {key!r}: it is now {RENAMED[key]}"
        return f"unknown key {key!r}; allowed in {where}: {', '.join(section.model_fields)}"
    if kind == "missing":
        return f"missing key {key!r}; add it (params.yaml in the repository has every key)"
    if kind == "cross_field":
        return ctx["message"]
    if kind == "rule":
        return f"{key} must be {ctx['allowed']}, got {ctx['got']!r}"
    if kind == "literal_error":
        return f"{key} must be one of {ctx['expected']}, got {got!r}"
    if kind in TYPE_NAMES:
        return f"{key or 'the top level'} must be {TYPE_NAMES[kind]}, got {got!r}"
    return f"{key}: {err['msg']}"  # a kind not worded above: pydantic's own words


def parse_params(raw: Any) -> Params:
    """Validate a parsed params mapping; raises ParamsError on the first problem (an unknown
    key first: a typo also makes the key it meant missing)."""
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise ParamsError(f"params.yaml: {_message(errors[0])}") from None


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


def allowed(literal: Any) -> tuple[str, ...]:
    """The values a Literal type above allows, e.g. ``allowed(Arch)``."""
    return typing.get_args(literal)
