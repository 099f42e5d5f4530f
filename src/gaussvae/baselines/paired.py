"""Paired comparisons on the same images: the Gaussian VAE against each baseline, per image.

The difference of two models' PSNRs on each test image, averaged, with a bootstrap 95% interval
over images: it holds the images' own variance, which the seeds' spread in the study tables
leaves out, and it pairs away what all models find hard in the same image.
"""

from __future__ import annotations

import math

import numpy as np

RESAMPLES = 10_000
SEED = 0


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: int = RESAMPLES,
                      seed: int = SEED) -> dict[str, float]:
    """Mean of a - b over images, its bootstrap 95% interval (percentiles of ``resamples``
    means of images drawn with replacement, seeded), and the share of images where a > b."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean_db": float(d.mean()), "ci95_low": float(low), "ci95_high": float(high),
            "images": len(d), "wins": float((d > 0).mean())}


def paired_metrics(model: dict, others: dict[str, tuple[dict, str]], column: str,
                   splits: tuple[str, ...] = ("test", "val")) -> dict:
    """Per split and baseline, ``model``'s ``column`` minus the baseline's column (named in
    ``others``: name -> (table, column)), on the images both scored (a codec's unreachable
    images are left out, and counted)."""
    out: dict = {}
    for split in splits:
        keys = sorted(k for k in model if k[0] == split)
        out[split] = {}
        for name, (table, other) in others.items():
            pairs = [(model[k][column], table[k][other]) for k in keys
                     if k in table and not math.isnan(table[k][other])]
            if not pairs:
                continue
            a, b = np.array(pairs).T
            out[split][name] = {**paired_difference(a, b), "left_out": len(keys) - len(pairs)}
    return out
