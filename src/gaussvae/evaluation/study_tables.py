"""docs/RESULTS.md tables from `dvc exp show --json`: never typed by hand.

Experiments named ``<row>-s<k>`` are seeds of one row (they differ in ``train.seed`` only); a
row's cells are the mean ± std over its seeds. Rows named ``pixel...`` are runs of the
pixel-space baseline (baselines/dvc.yaml): their image metrics come from its metrics file. The
first table ranks every row by its VALIDATION render PSNR, which is what defaults are chosen by;
the second reports the TEST split only for the rows named with ``--test-rows`` (the chosen
default and the rows it is compared with), so no row is ever picked by a test number.

Usage (from the repository root, after running experiments):
    gaussvae-results --json docs/results/exp_show.json --header docs/RESULTS.header.md \\
        --reference default --test-rows default pixel --out docs/RESULTS.md
docs/experiments.sh saves the JSON (experiment refs live only in the repository that ran them)
and calls this.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats

from gaussvae.core.errors import UserError
from gaussvae.evaluation.rate_distortion import read_table
from gaussvae.evaluation.rd_tables import rd_section
from gaussvae.evaluation.sample_statistics import FEATURES

EVAL = "metrics/eval.json"
TRAIN = "metrics/train.json"
CODECS = "metrics/codecs.json"
PIXEL = "baselines/metrics/eval.json"
PIXEL_TRAIN = "baselines/metrics/train.json"
SEED = re.compile(r"-s(\d+)$")
SAMPLE_DECIMALS = {"colours": 0, "edges": 3, "flat": 2, "saturation": 2}  # one per FEATURES

# (column title, metrics file, dotted key, decimals); {split} is val or test.
VAL_COLUMNS = [
    ("render dB", EVAL, "{split}.render.psnr_vs_image", 2),
    ("SSIM", EVAL, "{split}.render.ssim_vs_image", 3),
    ("8-bit dB", EVAL, "{split}.render_8bit.psnr_vs_image", 2),
    ("xy", EVAL, "{split}.loss.xy", 3),
    ("scale", EVAL, "{split}.loss.scale", 3),
    ("rot", EVAL, "{split}.loss.rot", 3),
    ("feat", EVAL, "{split}.loss.feat", 3),
    ("axis err deg", EVAL, "{split}.rot_error_deg", 1),
    ("KL nats", EVAL, "{split}.kl_nats", 0),
    ("active", EVAL, "{split}.active_units", 0),
    ("best epoch", TRAIN, "best_epoch", 0),
]  # no prior-sample statistics here: evaluate compares samples with the TEST images
TEST_COLUMNS = [
    ("render dB", EVAL, "test.render.psnr_vs_image", 2),
    ("SSIM", EVAL, "test.render.ssim_vs_image", 3),
    ("8-bit dB", EVAL, "test.render_8bit.psnr_vs_image", 2),
    ("fit dB", EVAL, "test.fit.psnr_vs_image", 2),
    ("KL nats", EVAL, "test.kl_nats", 0),
    ("sample FD", EVAL, "samples.fd", 2),
    *[(f"sample {f}", EVAL, f"samples.{f}", SAMPLE_DECIMALS[f]) for f in FEATURES],
    ("WebP dB (fp16 bytes)", CODECS, "test.fp16.webp.psnr", 2),
    ("WebP dB (8-bit bytes)", CODECS, "test.8bit.webp.psnr", 2),
]


@dataclass
class Run:
    name: str
    params: dict
    metrics: dict[str, dict]  # metrics file -> its data


def _dotted(d: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def iter_runs(tree: Any, experiment: bool = False) -> Iterator[Run]:
    """Every experiment with evaluation metrics in `dvc exp show --json` output. Commits (the
    workspace, branch heads) are not rows: they ran at other budgets, with no seeds."""
    if isinstance(tree, list):
        for item in tree:
            yield from iter_runs(item, experiment)
        return
    if not isinstance(tree, dict):
        return
    data = tree.get("data")
    if experiment and isinstance(data, dict) and "metrics" in data:
        rev = str(tree.get("rev", ""))
        name = tree.get("name") or data.get("name") or (rev[:7] if len(rev) == 40 else rev)
        params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
        files = {path: f.get("data", {}) for path, f in (data.get("metrics") or {}).items()
                 if isinstance(f, dict) and f.get("data")}
        if EVAL in files:
            yield Run(name, params, files)
    if tree.get("experiments"):
        yield from iter_runs(tree["experiments"], True)
    if tree.get("revs"):
        yield from iter_runs(tree["revs"], experiment)


def group_runs(runs: Iterator[Run]) -> dict[str, list[Run]]:
    """Named experiments by row (``<row>-s<k>``), each run once; unnamed ones (shown by
    their short hash) are left out."""
    rows: dict[str, list[Run]] = {}
    seen: set[str] = set()
    for run in runs:
        if run.name in seen or re.fullmatch(r"[0-9a-f]{7}", run.name):
            continue
        seen.add(run.name)
        rows.setdefault(SEED.sub("", run.name), []).append(run)
    for row, members in rows.items():
        without_seed = {json.dumps(_drop_seed(r.params), sort_keys=True) for r in members}
        if len(without_seed) > 1:
            raise UserError(f"row {row!r}: its runs differ in more than train.seed; name the "
                            "seeds of one row <row>-s0, <row>-s1, ... and nothing else")
    return rows


def commit_row(tree: Any) -> dict[str, list[Run]]:
    """The commit the experiments of `dvc exp show --json` start from (its first entry that is
    not the workspace) as a row named ``commit``: the default's own `dvc repro`."""
    for item in tree if isinstance(tree, list) else [tree]:
        if isinstance(item, dict) and item.get("rev") != "workspace":
            runs = list(iter_runs({**item, "experiments": None, "revs": None}, True))
            return {"commit": runs[:1]} if runs else {}
    return {}


def _drop_seed(params: dict) -> dict:
    return {**params, "train": {k: v for k, v in params.get("train", {}).items() if k != "seed"}}


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix[:-1]: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def changes(params: dict, reference: dict) -> str:
    """The params of a row that differ from the reference row, as -S arguments would read. A
    study can span commits; a knob added after the reference ran (absent from its params) is
    listed only when the row sets it: new knobs are added switched off (0 or false)."""
    mine, ref = _flat(_drop_seed(params)), _flat(_drop_seed(reference))
    diff = [f"{k}={json.dumps(v).replace(' ', '')}" for k, v in mine.items()
            if (ref.get(k) != v if k in ref else bool(v))]
    return ", ".join(diff) if diff else "(the reference)"


def stats(members: list[Run], path: str, key: str) -> tuple[float, float, int] | None:
    """(mean, std, count) of a metric over a row's seeds; None when no run has it. A
    pixel-baseline row reads its model's metrics from the baseline's file."""
    if is_pixel(members):
        path = {EVAL: PIXEL, TRAIN: PIXEL_TRAIN}.get(path, path)
    values = [v for r in members if isinstance(v := _dotted(r.metrics.get(path), key),
                                                int | float)]
    if not values:
        return None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, \
        len(values)


def is_pixel(members: list[Run]) -> bool:
    return SEED.sub("", members[0].name).startswith("pixel")


def _cell(s: tuple[float, float, int] | None, decimals: int) -> str:
    if s is None:
        return "-"
    mean, std, n = s
    return f"{mean:.{decimals}f}" if n == 1 else f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def welch(a: tuple[float, float, int], b: tuple[float, float, int]) -> tuple[float, float]:
    """Standard error of the difference of two means (mean, std, count) and its Welch
    degrees of freedom."""
    va, vb = a[1] ** 2 / a[2], b[1] ** 2 / b[2]
    se = float(np.sqrt(va + vb))
    df = (va + vb) ** 2 / (va ** 2 / (a[2] - 1) + vb ** 2 / (b[2] - 1)) if va + vb > 0 else np.inf
    return se, float(df)


def versus(members: list[Run], reference: list[Run], key: str) -> str:
    """A row's mean minus the reference's, ± the standard error of that difference (Welch),
    and whether the difference holds at its degrees of freedom: |difference| > t x standard
    error, t the two-sided 5% quantile of Student's t at Welch's df (about 4.3 for three seeds
    a side with unequal spreads, where two standard errors would call noise real). At least two
    seeds on each side (fewer give no spread to compare with)."""
    a, b = stats(members, EVAL, key), stats(reference, EVAL, key)
    if a is None or b is None:
        return "-"
    diff = a[0] - b[0]
    if a[2] < 2 or b[2] < 2:
        return f"{diff:+.2f} (one seed: no spread)"
    se, df = welch(a, b)
    t = float(scipy.stats.t.ppf(0.975, df))
    verdict = "holds" if abs(diff) > t * se else "not shown"
    return f"{diff:+.2f} ± {se:.2f} ({verdict}: t {t:.1f} at {df:.1f} df)"


def _table(titles: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])


def val_table(rows: dict[str, list[Run]], reference: str) -> str:
    """Every row, best validation render PSNR first, with its difference from the reference
    row and whether that difference exceeds the seeds' spread (versus)."""
    ref = rows[reference][0].params if reference in rows else {}
    key = VAL_COLUMNS[0][2].format(split="val")
    order = sorted(rows, key=lambda r: -(stats(rows[r], EVAL, key) or (-np.inf,))[0])
    body = []
    for row in order:
        members = rows[row]
        cells = [f"`{row}`", str(len(members)),
                 "(reference)" if row == reference or reference not in rows
                 else versus(members, rows[reference], key)]
        cells += [_cell(stats(members, path, k.format(split="val")), d)
                  for _, path, k, d in VAL_COLUMNS]
        change = changes(members[0].params, ref)
        if is_pixel(members):
            change = "the pixel-space baseline" + ("" if change.startswith("(") else f"; {change}")
        body.append(cells + [change])
    return _table(["row", "seeds", f"val dB vs `{reference}`", *[c[0] for c in VAL_COLUMNS],
                   "change from the reference"],
                  body)


def chosen_table(rows: dict[str, list[Run]], names: list[str]) -> str:
    missing = [n for n in names if n not in rows]
    if missing:
        raise UserError(f"--test-rows: no experiments named {', '.join(missing)}")
    body = [[f"`{n}`", str(len(rows[n]))] + [_cell(stats(rows[n], path, k), d)
                                            for _, path, k, d in TEST_COLUMNS] for n in names]
    table = _table(["row", "seeds", *[c[0] for c in TEST_COLUMNS]], body)
    real = {f: stats(rows[names[0]], EVAL, f"samples.{f}_real") for f in FEATURES}
    fd_real = stats(rows[names[0]], EVAL, "samples.fd_real")
    if fd_real is not None and all(real.values()):
        own = ", ".join(f"{f} {_cell(real[f], SAMPLE_DECIMALS[f])}" for f in FEATURES)
        table += (f"\n\nThe test images themselves: {own}; Frechet distance of the validation "
                  f"images to them {_cell(fd_real, 2)}.")
    return table


PAIRED_NAMES = {"pixel": "pixel-space VAE", "pca": "PCA", "webp": "WebP", "jpeg": "JPEG"}
CODE_NAMES = {"fp16": "float16", "8bit": "8-bit"}


def paired_table(paired: dict, split: str = "test") -> str:
    """baselines/metrics/paired.json as a table: per code and baseline, the Gaussian VAE's mean
    per-image PSNR difference on ``split``, its bootstrap 95% interval, the share of images it
    wins and how many images were compared (a codec's images out of its budget left out)."""
    body = []
    for code, by_split in paired.items():
        for name, m in by_split.get(split, {}).items():
            left = f" ({m['left_out']} out of budget, left out)" if m["left_out"] else ""
            body.append([CODE_NAMES.get(code, code), PAIRED_NAMES.get(name, name),
                         f"{m['mean_db']:+.2f}", f"[{m['ci95_low']:+.2f}, {m['ci95_high']:+.2f}]",
                         f"{100 * m['wins']:.0f}%", f"{m['images']}{left}"])
    return _table(["code", "baseline", "VAE minus baseline, dB", "95% interval (bootstrap)",
                   "images the VAE wins", "images"], body)


SAMPLE_SETS = {"test_images": "the test images (the floor a real set reaches)",
               "gaussian_vae_samples": "Gaussian VAE, prior samples",
               "gaussian_vae_reconstructions": "Gaussian VAE, test reconstructions",
               "pixel_vae_samples": "pixel VAE, prior samples",
               "pixel_vae_reconstructions": "pixel VAE, test reconstructions",
               "pca_samples": "PCA, samples (a Gaussian with the training codes' variances)",
               "pca_reconstructions": "PCA, test reconstructions"}


def samples_table(samples: dict) -> str:
    """baselines/metrics/samples.json as a table, nearest the validation images first: each
    set's KID x 1000 (the blurred test images named by their blur), then the blur check."""
    kid = samples["kid_x1000"]
    body = [[SAMPLE_SETS.get(name, name.replace("test_blur_", "the test images blurred, sigma ")),
             f"{value:.3f}", str(samples["images"][name])]
            for name, value in sorted(kid.items(), key=lambda kv: kv[1])]
    check = samples["blur_check"]
    verdict = ("passes" if all(check.values()) else "FAILS") + " (" + ", ".join(
        f"{key.replace('_', ' ')}: {'yes' if ok else 'no'}" for key, ok in check.items()) + ")"
    return (_table(["set", f"KID x 1000 to the {samples['reference']}", "images"], body)
            + f"\n\nBlur check: {verdict}.\n")


def _heading(title: str | None, what: str) -> str:
    """A table's heading, under the study's title when the file holds several studies."""
    return f"## {title}, {what}\n\n" if title else f"## {what[0].upper()}{what[1:]}\n\n"


def main(argv: list[str] | None = None) -> None:
    """gaussvae-results: the tables of docs/RESULTS.md; one-line errors, exit code 2."""
    try:
        _main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def _main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="saved `dvc exp show --json` output (default: run it)")
    parser.add_argument("--out", help="write here (default: stdout)")
    parser.add_argument("--header", help="Markdown file whose text goes above the tables")
    parser.add_argument("--reference", default="default",
                        help="row the 'change' column is relative to")
    parser.add_argument("--section", action="append", default=[], metavar="PREFIX=ROW",
                        help="also a validation table of the rows named PREFIX..., against ROW")
    parser.add_argument("--test-rows", nargs="*", default=[],
                        help="rows whose TEST metrics are reported (chosen on validation)")
    parser.add_argument("--title", help="name of the study, put in front of each table's heading "
                        "(for a file that holds more than one study)")
    parser.add_argument("--paired", metavar="JSON",
                        help="instead of a study: the paired per-image table of this "
                             "baselines/metrics/paired.json")
    parser.add_argument("--samples", metavar="JSON",
                        help="instead of a study: the sample metric's table of this "
                             "baselines/metrics/samples.json")
    parser.add_argument("--rd", metavar="TSV",
                        help="instead of a study: the rate-distortion section from this "
                             "baselines/metrics/rate_distortion.tsv, the Gaussian VAE's "
                             "runs in --json and the commit they start from (one row per "
                             "latent size)")
    parser.add_argument("--rd-figure", metavar="PNG",
                        help="with --rd: draw the test points here, linked from the text")
    parser.add_argument("--append", action="store_true",
                        help="add to the end of --out instead of replacing it")
    args = parser.parse_args(argv)
    if args.paired:
        text = (_heading(args.title, "test, paired per image: the default Gaussian VAE minus "
                         "each baseline") + paired_table(json.loads(Path(args.paired).read_text()))
                + "\n")
        _write(text, args.out, args.append)
        return
    if args.samples:
        text = (_heading(args.title, "samples: the kernel distance of the feature network's "
                         "features to the validation images")
                + samples_table(json.loads(Path(args.samples).read_text())))
        _write(text, args.out, args.append)
        return
    if args.rd and not args.json:
        sys.exit("error: --rd needs --json: the saved `dvc exp show --json` of the runs")
    if args.json:
        tree = json.loads(Path(args.json).read_text())
    else:
        out = subprocess.run(["dvc", "exp", "show", "--json", "--all-commits"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"error: dvc exp show --json failed: {out.stderr.strip().splitlines()[-1]}")
        tree = json.loads(out.stdout)
    rows = group_runs(iter_runs(tree))
    if args.rd:
        heading = _heading(args.title, "rate-distortion: bytes per image against render PSNR")
        link = (os.path.relpath(args.rd_figure, Path(args.out).parent) if args.rd_figure
                and args.out else None)
        _write(rd_section(read_table(args.rd), {**commit_row(tree), **rows}, args.rd_figure,
                          heading, link), args.out, args.append)
        return
    text = (Path(args.header).read_text().rstrip() + "\n\n" if args.header else "")
    text += _heading(args.title, "validation: every row, ranked by validation render PSNR")
    text += val_table(rows, args.reference) + "\n"
    for section in args.section:
        prefix, _, reference = section.partition("=")
        subset = {name: runs for name, runs in rows.items() if name.startswith(prefix)}
        if reference not in subset:
            sys.exit(f"error: --section {section}: no row {reference!r} among the rows named "
                     f"{prefix}...")
        text += "\n" + _heading(args.title, f"validation: the rows named `{prefix}...`, "
                                f"against `{reference}`") + val_table(subset, reference) + "\n"
    if args.test_rows:
        text += ("\n" + _heading(args.title, "test: the chosen rows only")
                 + chosen_table(rows, args.test_rows) + "\n")
    _write(text, args.out, args.append)


def _write(text: str, out: str | None, append: bool) -> None:
    """``text`` to ``out`` (after what it holds, with ``append``), or to stdout."""
    if out and append:
        with open(out, "a") as f:
            f.write("\n" + text)
    elif out:
        Path(out).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
