import math

import numpy as np
import pytest

from gaussvae.baselines.paired import paired_difference, paired_metrics
from gaussvae.core.errors import StaleFileError
from gaussvae.evaluation.per_image import PsnrTable, read_psnr_table, write_psnr_table


def test_a_constant_difference_has_a_zero_width_interval():
    a = np.linspace(20, 30, 50)
    m = paired_difference(a + 0.5, a)
    assert m["mean_db"] == pytest.approx(0.5)
    assert m["ci95_low"] == pytest.approx(0.5) and m["ci95_high"] == pytest.approx(0.5)
    assert m["wins"] == 1.0 and m["images"] == 50


def test_the_interval_covers_the_mean_narrows_with_images_and_repeats():
    rng = np.random.default_rng(1)
    few, many = (rng.normal(0.3, 1.0, n) for n in (30, 3000))
    a, b = paired_difference(few, np.zeros(30)), paired_difference(many, np.zeros(3000))
    assert a["ci95_low"] < a["mean_db"] < a["ci95_high"]
    assert (b["ci95_high"] - b["ci95_low"]) < (a["ci95_high"] - a["ci95_low"]) / 5
    assert b["ci95_low"] > 0  # 0.3 dB over 3,000 images of spread 1 is real
    assert paired_difference(few, np.zeros(30)) == a  # seeded
    # Pairing removes what both models share: the same images' spread of 5 dB leaves the
    # interval as narrow as the difference's own spread.
    hard = rng.normal(25, 5, 30)
    paired = paired_difference(hard + few, hard)
    assert paired["ci95_high"] - paired["ci95_low"] == pytest.approx(
        a["ci95_high"] - a["ci95_low"], rel=1e-9)


def test_tables_round_trip_and_unreachable_images_are_left_out(tmp_path):
    vae = PsnrTable(["a", "b", "c"], ["test"] * 3, {"psnr_fp16": np.array([21.0, 22.0, 23.0])})
    codec = PsnrTable(["c", "b", "a"], ["test"] * 3,
                      {"webp_fp16": np.array([20.0, math.nan, 19.0])})
    write_psnr_table(tmp_path / "vae.tsv", vae)
    write_psnr_table(tmp_path / "codec.tsv", codec)
    assert (tmp_path / "codec.tsv").read_text().splitlines()[2] == "b\ttest\t"
    v, c = read_psnr_table(tmp_path / "vae.tsv"), read_psnr_table(tmp_path / "codec.tsv")
    assert v[("test", "b")] == {"psnr_fp16": 22.0} and math.isnan(c[("test", "b")]["webp_fp16"])
    m = paired_metrics(v, {"webp": (c, "webp_fp16")}, "psnr_fp16", splits=("test",))
    webp = m["test"]["webp"]  # images a (21 - 19) and c (23 - 20), by source, not by row
    assert webp["images"] == 2 and webp["left_out"] == 1 and webp["mean_db"] == 2.5


def test_a_file_that_is_not_a_table_is_a_one_line_error(tmp_path):
    (tmp_path / "x.tsv").write_text("hello\n")
    with pytest.raises(StaleFileError, match="not a per-image PSNR table"):
        read_psnr_table(tmp_path / "x.tsv")
    with pytest.raises(StaleFileError, match="not found"):
        read_psnr_table(tmp_path / "missing.tsv")
