"""docs/RESULTS.md from `dvc exp show --json`: the experiments table, never typed by hand.

Usage (from the repository root, after running experiments):
    gaussvae-results --out docs/RESULTS.md
which calls `dvc exp show --json` itself; or `gaussvae-results --json exp.json` on a saved copy.
docs/experiments.sh saves that copy as docs/results/exp_show.json and builds the table from it:
experiment refs live only in the git repo that ran them (they are not pushed with a branch), so
the committed copy is what lets a fresh clone regenerate the table without re-running.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# (column title, params or metrics file, dotted key, format)
PARAM_COLUMNS = [
    ("images", "prepare.num_images", "{}"),
    ("fit steps", "extract.steps", "{}"),
    ("arch", "train.arch", "{}"),
    ("enc filters", "train.encoder_filters", "{}"),
    ("latent", "latent_dim", "{}"),
    ("beta", "max_beta", "{:g}"),
    ("weighting", "train.loss_weighting", "{}"),
    ("ordering", "extract.ordering", "{}"),
    ("per pos.", "normalize.per_position", "{}"),
    ("encoding", "normalize.encoding", "{}"),
    ("render w", "train.render_loss_weight", "{:g}"),
    ("epochs", "train.epochs", "{}"),
]
METRIC_COLUMNS = [
    ("KL nats", "test.kl_nats", "{:.1f}"),
    ("active", "test.active_units", "{}"),
    ("xy", "test.loss.xy", "{:.3f}"),
    ("scale", "test.loss.scale", "{:.3f}"),
    ("rot", "test.loss.rot", "{:.3f}"),
    ("feat", "test.loss.feat", "{:.3f}"),
    ("rot err deg", "test.rot_error_deg", "{:.1f}"),
    ("std xy", "test.std_ratio.xy", "{:.2f}"),
    ("std scale", "test.std_ratio.scale", "{:.2f}"),
    ("std rot", "test.std_ratio.rot", "{:.2f}"),
    ("std feat", "test.std_ratio.feat", "{:.2f}"),
    ("recon train", "training.best.train.recon", "{:.2f}"),
    ("recon val", "training.best.val.recon", "{:.2f}"),
    ("render dB", "test.render.psnr_vs_image", "{:.2f}"),
    ("fit dB", "test.fit.psnr_vs_image", "{:.2f}"),
    ("WebP dB", "test.codec.webp.psnr", "{:.2f}"),
    ("bytes", "test.codec.latent_bytes", "{}"),
]


def _dotted(d: dict, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def iter_runs(tree: Any) -> Iterator[tuple[str, dict, dict]]:
    """(name, params, eval metrics + ``training``) for every run in `dvc exp show --json` output."""
    if isinstance(tree, list):
        for item in tree:
            yield from iter_runs(item)
        return
    if not isinstance(tree, dict):
        return
    data = tree.get("data")
    if isinstance(data, dict) and "metrics" in data:
        rev = str(tree.get("rev", ""))
        name = tree.get("name") or data.get("name") or (rev[:7] if len(rev) == 40 else rev)
        params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
        files = data.get("metrics") or {}
        metrics = files.get("metrics/eval.json", {}).get("data", {})
        if metrics:
            # Training losses (model units) beside the evaluation: the train/val gap.
            metrics = {**metrics,
                       "training": files.get("metrics/train.json", {}).get("data", {})}
            yield name, params, metrics
    for key in ("experiments", "revs"):
        if tree.get(key):
            yield from iter_runs(tree[key])


def _is_commit(name: str) -> bool:
    return len(name) == 7 and all(c in "0123456789abcdef" for c in name)


def select_runs(runs: Iterator[tuple[str, dict, dict]]) -> list[tuple[str, dict, dict]]:
    """The workspace and every named experiment, once each.

    Rows of plain commits (earlier default runs that `--all-commits` lists so that experiments
    of older commits appear) are dropped, and so is a branch row equal to the workspace (main
    right after a commit). Two experiments with equal results both stay: that they agree is
    worth seeing (e.g. the original GaussVAE's base config and the equal-weighting ablation).
    """
    seen: set[str] = set()
    workspace = None
    out = []
    for name, params, metrics in runs:
        content = json.dumps([params, metrics], sort_keys=True)
        if name == "workspace":
            workspace = content
        same_as_workspace = name in ("main", "master") and content == workspace
        if name in seen or _is_commit(name) or same_as_workspace:
            continue
        seen.add(name)
        out.append((name, params, metrics))
    return out


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def render_table(runs: list[tuple[str, dict, dict]]) -> str:
    """A Markdown table, one row per run, in the order given."""
    titles = ["experiment"] + [c[0] for c in PARAM_COLUMNS] + [c[0] for c in METRIC_COLUMNS]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for name, params, metrics in runs:
        cells = [name]
        cells += [_cell(_dotted(params, key), fmt) for _, key, fmt in PARAM_COLUMNS]
        cells += [_cell(_dotted(metrics, key), fmt) for _, key, fmt in METRIC_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="saved `dvc exp show --json` output (default: run it)")
    parser.add_argument("--out", help="write here (default: stdout)")
    parser.add_argument("--header", help="Markdown file whose text goes above the table")
    args = parser.parse_args(argv)
    if args.json:
        tree = json.loads(Path(args.json).read_text())
    else:
        out = subprocess.run(["dvc", "exp", "show", "--json", "--all-commits"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"error: dvc exp show --json failed: {out.stderr.strip().splitlines()[-1]}")
        tree = json.loads(out.stdout)
    runs = select_runs(iter_runs(tree))
    text = (Path(args.header).read_text().rstrip() + "\n\n" if args.header else "")
    text += render_table(runs) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
