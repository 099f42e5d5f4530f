"""Rate-distortion: stored codes at every bit depth, frontiers, BD-PSNR, the codecs' real sizes
and the RESULTS section built from saved files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gaussvae.baselines.pca_curve import pca_points
from gaussvae.core.errors import StaleFileError, UserError
from gaussvae.evaluation.code_storage import ClippedUniform, Uniform8Bit, stored_codes
from gaussvae.evaluation.image_codecs import encode_size_and_decode
from gaussvae.evaluation.rate_distortion import (
    Point,
    bd_psnr,
    codec_points,
    frontier,
    read_table,
    write_table,
)
from gaussvae.evaluation.rd_tables import rd_section
from gaussvae.evaluation.study_tables import Run, main


def _gaussian_codes(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 64, generator=gen) * torch.linspace(0.2, 2.0, 64)


def _snr_db(q, x: torch.Tensor) -> float:
    return float(10 * torch.log10((x**2).mean() / ((q(x) - x) ** 2).mean()))


def test_clipped_uniform_clips_at_few_bits_and_keeps_the_full_range_at_eight():
    train, test = _gaussian_codes(2400, 0), _gaussian_codes(300, 1)
    full2 = ClippedUniform(train.min(0).values, train.max(0).values, 2)
    snr = {b: _snr_db(ClippedUniform.fit(train, b), test) for b in (2, 4, 6, 8)}
    assert snr[2] < snr[4] < snr[6] < snr[8]
    # a Gaussian's optimal 4-level uniform quantizer reaches 9.25 dB; the full range about 2
    assert snr[2] > 8.5 > _snr_db(full2, test) + 4
    # at 8 bits the clipping costs nothing against the plain 8-bit grid over the full range
    assert snr[8] > _snr_db(Uniform8Bit.fit(train), test) - 0.1
    q = ClippedUniform.fit(train, 2)
    assert len(torch.unique(q(test)[:, 0])) <= 4


def test_stored_codes_cost_their_bits_and_float16_two_bytes():
    train, test = _gaussian_codes(500, 0), _gaussian_codes(20, 1)
    stored = stored_codes(train, test)
    assert {k: size for k, (size, _) in stored.items()} == {
        "2bit": 16.0, "4bit": 32.0, "6bit": 48.0, "8bit": 64.0, "fp16": 128.0}
    assert all(z.shape == test.shape for _, z in stored.values())


def test_frontier_keeps_only_points_better_than_every_cheaper_one():
    pts = [Point("a", "x", 100, 20.0), Point("a", "y", 50, 21.0), Point("a", "z", 200, 22.0),
           Point("a", "w", 200, 23.0), Point("a", "v", 300, 22.5)]
    assert [p.setting for p in frontier(pts)] == ["y", "w"]


def test_bd_psnr_is_the_mean_gap_over_the_bytes_both_cover():
    a = [Point("a", str(b), b, 10 + np.log2(b)) for b in (16, 64, 256, 1024)]
    b = [Point("b", str(x), x, 9 + np.log2(x)) for x in (128, 512, 2048)]
    bd = bd_psnr(a, b)
    assert bd["db"] == pytest.approx(1.0)
    assert (bd["from_bytes"], bd["to_bytes"]) == pytest.approx((128, 1024))
    assert bd_psnr(a, [Point("b", "x", 4096, 30), Point("b", "y", 8192, 31)]) is None


def test_codec_points_are_real_file_sizes_and_grow_with_quality(tiny_images):
    images = tiny_images.images[:6]
    points = codec_points(images, "WEBP", [0, 50, 100])
    sizes = [np.mean([encode_size_and_decode(i, "WEBP", q)[0] for i in images])
             for q in (0, 50, 100)]
    assert [p.bytes for p in points] == sizes
    assert points[0].psnr < points[2].psnr and points[0].bytes < points[2].bytes


def test_pca_points_cost_components_times_bits(tiny_images):
    train = tiny_images.images[tiny_images.split == 0]
    test = tiny_images.images[tiny_images.split == 2]
    points = {p.setting: p for p in pca_points(train, test, (2, 8))}
    assert points["k8_4bit"].bytes == 4 and points["k2_fp16"].bytes == 4
    assert points["k8_fp16"].psnr > points["k2_fp16"].psnr
    assert points["k8_8bit"].psnr > points["k8_2bit"].psnr


def test_the_table_round_trips_and_an_old_file_is_named(tmp_path):
    rows = {"test": [Point("pca", "k16_2bit", 4, 17.5), Point("webp", "q0", 270.33, 22.1)]}
    write_table(tmp_path / "rd.tsv", rows)
    assert read_table(tmp_path / "rd.tsv") == {
        "test": [Point("pca", "k16_2bit", 4, 17.5), Point("webp", "q0", 270.33, 22.1)]}
    (tmp_path / "old.tsv").write_text("split\tbytes\n")
    with pytest.raises(StaleFileError, match="old.tsv"):
        read_table(tmp_path / "old.tsv")


def _vae_run(name: str, latent: int, shift: float) -> Run:
    rd = {s: {"bytes": latent * b / 8, "psnr": shift + b}
          for s, b in (("2bit", 2), ("4bit", 4), ("6bit", 6), ("8bit", 8), ("fp16", 16))}
    metrics = {"metrics/eval.json": {"test": {"rate_distortion": rd},
                                     "val": {"rate_distortion": rd}}}
    return Run(name, {"latent_dim": latent}, metrics)


def test_the_results_section_joins_the_runs_and_the_baselines(tmp_path):
    webp = [Point("webp", f"q{q}", 100 + 10 * q, 15 + q / 10) for q in (0, 50, 100)]
    pca = [Point("pca", f"k{k}_fp16", 2 * k, 12 + k / 100) for k in (16, 64, 256)]
    baselines = {"test": webp + pca, "val": webp + pca}
    rows = {"latent64": [_vae_run("latent64-s0", 64, 10)],
            "default": [_vae_run("default-s0", 256, 8)]}
    text = rd_section(baselines, rows, tmp_path / "rd.png", "## RD\n\n")
    assert (tmp_path / "rd.png").stat().st_size > 1000
    assert "| 64 | 12.00 dB (16 B) |" in text and "| 256 | 10.00 dB (64 B) |" in text
    assert "| Gaussian VAE (every latent size) | WebP | test | +" in text
    assert "![rate-distortion on the test images](rd.png)" in text
    rows["twin"] = [_vae_run("twin-s0", 64, 9)]
    with pytest.raises(UserError, match="latent_dim 64"):
        rd_section(baselines, rows, None, "")


def _exp_entry(rev: str, name: str | None, latent: int, shift: float) -> dict:
    run = _vae_run(name or "", latent, shift)
    return {"rev": rev, "name": name, "data": {
        "params": {"params.yaml": {"data": {"latent_dim": latent, "train": {"seed": 0}}}},
        "metrics": {path: {"data": data} for path, data in run.metrics.items()}}}


def test_the_cli_counts_the_commit_the_experiments_start_from(tmp_path):
    """`dvc exp show --json`: the default's own run is the commit; the experiments are the
    other latent sizes. The workspace (a copy of the commit) is not counted twice."""
    commit = _exp_entry("a" * 40, "main", 256, 8)
    commit["experiments"] = [{"revs": [_exp_entry("b" * 40, "latent64-s0", 64, 10)]}]
    tree = [_exp_entry("workspace", None, 256, 8), commit]
    (tmp_path / "exp.json").write_text(json.dumps(tree))
    webp = [Point("webp", f"q{q}", 50 + 10 * q, 15 + q / 10) for q in (0, 50, 100)]
    write_table(tmp_path / "rd.tsv", {"test": webp, "val": webp})
    main(["--json", str(tmp_path / "exp.json"), "--rd", str(tmp_path / "rd.tsv"),
          "--out", str(tmp_path / "out.md")])
    text = (tmp_path / "out.md").read_text()
    assert "| 64 | 12.00 dB (16 B) |" in text and "| 256 | 10.00 dB (64 B) |" in text
