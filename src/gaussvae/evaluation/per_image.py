"""Per-image PSNR tables: what each evaluating stage writes beside its mean metrics.

Every model is scored on the same validation and test images, so two models are best compared
image by image (baselines/paired.py). Each evaluating stage writes its per-image PSNRs as a TSV
(source, split, one column per code): readable, diffable, and no file that can run code.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gaussvae.core.atomic import atomic_path
from gaussvae.core.errors import StaleFileError
from gaussvae.core.store import SPLITS, ImageSet
from gaussvae.evaluation.image_metrics import per_image_psnr


@dataclass(frozen=True)
class PsnrTable:
    """Per-image PSNRs (dB): the images' sources and splits, and one column per code."""

    sources: list[str]
    splits: list[str]
    columns: dict[str, np.ndarray]

    @classmethod
    def concat(cls, parts: list[PsnrTable]) -> PsnrTable:
        return cls(sum((p.sources for p in parts), []), sum((p.splits for p in parts), []),
                   {k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns})


def split_sources(images: ImageSet, split: str) -> list[str]:
    """The sources of ``split``'s images, in the order ``images.images[split mask]`` has them."""
    k = SPLITS.index(split)
    return [s for s, i in zip(images.sources, images.split, strict=True) if i == k]


def write_psnr_table(path: str | Path, table: PsnrTable) -> None:
    """``table`` as TSV: source, split, then its columns; NaN (an image a codec cannot code
    within its budget) is written as an empty cell."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f, delimiter="\t", lineterminator="\n")
        out.writerow(["source", "split", *table.columns])
        for i, (source, split) in enumerate(zip(table.sources, table.splits, strict=True)):
            out.writerow([source, split, *("" if math.isnan(v[i]) else f"{v[i]:.5f}"
                                           for v in table.columns.values())])


def read_psnr_table(path: str | Path) -> dict[tuple[str, str], dict[str, float]]:
    """(split, source) -> {column: PSNR} of a ``write_psnr_table`` file (NaN for empty)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except FileNotFoundError:
        raise StaleFileError(f"{path}: not found; run the stage that writes it "
                             "(dvc repro)") from None
    if not rows or not {"source", "split"} <= set(rows[0]):
        raise StaleFileError(f"{path}: not a per-image PSNR table (source, split, columns); "
                             "re-run the stage that writes it (dvc repro)")
    return {(r["split"], r["source"]): {k: float(v) if v else math.nan for k, v in r.items()
                                        if k not in ("source", "split")} for r in rows}


def pass_table(runs: dict[str, Any], columns: dict[str, str]) -> PsnrTable:
    """The per-image PSNRs of evaluation passes: ``runs`` maps a split to a pass with
    ``sources``, ``originals`` and the uint8 image arrays that ``columns`` names (column ->
    attribute), e.g. {"psnr_fp16": "recon_px"}."""
    return PsnrTable.concat([
        PsnrTable(list(run.sources), [split] * len(run.sources),
                  {name: per_image_psnr(getattr(run, attr), run.originals)
                   for name, attr in columns.items()})
        for split, run in runs.items()])
