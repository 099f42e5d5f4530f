"""docs/RESULTS.md's rate-distortion section: tables and the figure, from saved files only.

The baselines' points (PCA, WebP, JPEG) come from baselines/metrics/rate_distortion.tsv; the
Gaussian VAE's from `dvc exp show --json` of runs that differ in ``latent_dim`` (each run's
metrics/eval.json holds its code at 2 to 16 bits a dimension). A row with several seeds counts
as their mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaussvae.core.errors import UserError
from gaussvae.evaluation.pictures import rate_distortion_plot
from gaussvae.evaluation.rate_distortion import Point, bd_psnr, families, frontier

STORAGES = ("2bit", "4bit", "6bit", "8bit", "fp16")
STORAGE_TITLES = ("2 bits", "4 bits", "6 bits", "8 bits", "float16")
EVAL = "metrics/eval.json"


def vae_points(rows: dict, split: str) -> list[Point]:
    """The VAE's points of every row (``{row: [Run]}``, study_tables.group_runs) whose eval.json
    has ``rate_distortion``, named by latent size; two rows with one latent size are an error."""
    points: list[Point] = []
    seen: dict[int, str] = {}
    for row, members in sorted(rows.items()):
        latent = int(members[0].params["latent_dim"])
        rd = [m.metrics[EVAL].get(split, {}).get("rate_distortion") for m in members]
        if not all(rd):
            continue
        if latent in seen:
            raise UserError(f"rows {seen[latent]!r} and {row!r} both have latent_dim {latent}; "
                            "a rate-distortion study needs one row per latent size")
        seen[latent] = row
        points += [Point("vae", f"latent{latent}_{s}", rd[0][s]["bytes"],
                         float(np.mean([r[s]["psnr"] for r in rd]))) for s in rd[0]]
    return points


def _size(setting: str) -> int:
    return int("".join(c for c in setting.split("_")[0] if c.isdigit()))


def grid_table(points: list[Point], label: str) -> str:
    """One row per latent size (or number of components), one column per storage: dB and
    bytes."""
    cells: dict[int, dict[str, Point]] = {}
    for p in points:
        cells.setdefault(_size(p.setting), {})[p.setting.split("_", 1)[1]] = p
    lines = [f"| {label} | " + " | ".join(STORAGE_TITLES) + " |",
             "|" + "---|" * (len(STORAGES) + 1)]
    for size in sorted(cells):
        row = [f"{cells[size][s].psnr:.2f} dB ({cells[size][s].bytes:g} B)"
               if s in cells[size] else "" for s in STORAGES]
        lines.append(f"| {size} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def codec_table(points: list[Point]) -> str:
    """WebP and JPEG per quality: mean file bytes and PSNR."""
    by = {fam: {int(p.setting[1:]): p for p in points if p.family == fam}
          for fam in ("webp", "jpeg")}
    lines = ["| quality | WebP bytes | WebP dB | JPEG bytes | JPEG dB |", "|---|---|---|---|---|"]
    for q in sorted(set(by["webp"]) | set(by["jpeg"])):
        row = [str(q)]
        for fam in ("webp", "jpeg"):
            p = by[fam].get(q)
            row += [f"{p.bytes:.0f}", f"{p.psnr:.2f}"] if p else ["", ""]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def bd_table(points_by_split: dict[str, list[Point]]) -> str:
    """BD-PSNR of each frontier against another, per split, with the bytes both cover."""
    comparisons = [("Gaussian VAE (every latent size)", "vae", "WebP", "webp"),
                   ("PCA (16 to 512 components)", "pca", "WebP", "webp"),
                   ("Gaussian VAE (every latent size)", "vae", "PCA", "pca"),
                   ("JPEG", "jpeg", "WebP", "webp")]
    lines = ["| frontier | against | split | BD-PSNR dB | over bytes |", "|---|---|---|---|---|"]
    for split, points in points_by_split.items():
        for name, fam, other, other_fam in comparisons:
            bd = bd_psnr([p for p in points if p.family == fam],
                         [p for p in points if p.family == other_fam])
            cover = (f"{bd['from_bytes']:.0f} to {bd['to_bytes']:.0f}" if bd
                     else "no overlap")
            lines.append(f"| {name} | {other} | {split} | "
                         f"{bd['db']:+.2f} | {cover} |" if bd else
                         f"| {name} | {other} | {split} | | {cover} |")
    return "\n".join(lines)


def frontier_text(points: list[Point]) -> str:
    """The VAE's frontier as its settings, cheapest first."""
    return ", ".join(f"{p.setting.replace('latent', 'latent ').replace('_', ' at ')} "
                     f"({p.bytes:g} B, {p.psnr:.2f} dB)" for p in frontier(points))


def rd_section(baselines: dict[str, list[Point]], rows: dict, figure: str | Path | None,
               heading: str, link: str | None = None) -> str:
    """The Markdown section: BD-PSNR, the VAE's and PCA's grids and the codecs on test (and
    BD-PSNR on val too), and the figure of the test points written to ``figure``, linked as
    ``link`` (the figure's path from the Markdown file's folder; its name by default)."""
    by_split = {split: vae_points(rows, split) + baselines[split] for split in ("test", "val")}
    test = by_split["test"]
    vae = [p for p in test if p.family == "vae"]
    if not vae:
        raise UserError("no run in the experiments has rate_distortion in its eval.json; "
                        "rerun them with the current evaluate stage")
    text = heading + bd_table(by_split) + "\n\n"
    text += "The Gaussian VAE's frontier on test: " + frontier_text(vae) + ".\n\n"
    text += "Test render PSNR of the Gaussian VAE's code (bytes per image):\n\n"
    text += grid_table(vae, "latent") + "\n\n"
    text += "Test render PSNR of PCA's code (bytes per image):\n\n"
    text += grid_table([p for p in test if p.family == "pca"], "components") + "\n\n"
    text += "Test render PSNR of WebP and JPEG by quality (mean real file sizes):\n\n"
    text += codec_table(test) + "\n"
    if figure:
        curves = {name: [(p.bytes, p.psnr) for p in pts] for name, pts in families(test).items()}
        rate_distortion_plot(curves, figure, "Rate-distortion on the test images")
        text += f"\n![rate-distortion on the test images]({link or Path(figure).name})\n"
    return text
