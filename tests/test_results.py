"""docs/RESULTS.md tables from `dvc exp show --json` (shape as dvc 3.x prints it)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from gaussvae.core.errors import UserError
from gaussvae.evaluation.study_tables import (
    changes,
    chosen_table,
    group_runs,
    iter_runs,
    main,
    samples_table,
    val_table,
    versus,
)
from tests.conftest import REPO


def _run(name: str | None, seed: int, beta: float, val_db: float, test_db: float,
         rev: str = "b" * 40) -> dict:
    split = {"render": {"psnr_vs_image": None}}
    return {"rev": rev, "name": name, "data": {
        "params": {"params.yaml": {"data": {"max_beta": beta, "train": {"seed": seed}}}},
        "metrics": {
            "metrics/eval.json": {"data": {
                "val": {**split, "render": {"psnr_vs_image": val_db}},
                "test": {**split, "render": {"psnr_vs_image": test_db}}}},
            "metrics/train.json": {"data": {"best_epoch": 7}}},
    }}


def _tree() -> list:
    base = _run(None, 0, 1.0, 20.0, 19.0, rev="workspace")
    main_run = _run("main", 0, 1.0, 20.0, 19.0, rev="a" * 40)
    main_run["experiments"] = [{"revs": [
        _run("default-s0", 0, 1.0, 20.0, 19.0), _run("default-s1", 1, 1.0, 22.0, 21.0),
        _run("low_beta-s0", 0, 0.1, 23.0, 18.0)]}]
    return [base, main_run]


def test_seeds_are_grouped_and_shown_as_mean_and_std():
    rows = group_runs(iter_runs(_tree()))
    assert sorted(rows) == ["default", "low_beta"]  # commits are not rows
    table = val_table(rows, "default")
    lines = table.splitlines()
    # ranked by validation PSNR, not by test: low_beta (23.0 val, 18.0 test) first
    assert lines[2].startswith("| `low_beta` | 1 | +2.00 (one seed: no spread) | 23.00 |")
    assert "| `default` | 2 | (reference) | 21.00 ± 1.41 |" in table
    assert "max_beta=0.1" in lines[2] and "(the reference)" in table
    test = chosen_table(rows, ["default"])
    assert "| `default` | 2 | 20.00 ± 1.41 |" in test and "low_beta" not in test


def test_a_knob_newer_than_the_reference_is_a_change_only_when_set():
    ref = {"max_beta": 1.0, "train": {"seed": 0}}
    off = {"max_beta": 1.0, "train": {"seed": 1, "palette_colours": 0}}
    on = {"max_beta": 1.0, "train": {"seed": 1, "palette_colours": 8}}
    assert changes(off, ref) == "(the reference)"
    assert changes(on, ref) == "train.palette_colours=8"
    assert changes({**on, "max_beta": 0.5}, ref) == "max_beta=0.5, train.palette_colours=8"


def test_a_row_whose_runs_differ_beyond_the_seed_is_refused():
    tree = _tree()
    tree[1]["experiments"][0]["revs"].append(_run("default-s2", 2, 0.5, 20.0, 19.0))
    with pytest.raises(UserError, match="row 'default'"):
        group_runs(iter_runs(tree))


def test_cli_writes_header_and_both_tables(tmp_path):
    (tmp_path / "exp.json").write_text(json.dumps(_tree()))
    (tmp_path / "head.md").write_text("# Results\n")
    main(["--json", str(tmp_path / "exp.json"), "--header", str(tmp_path / "head.md"),
          "--section", "low=low_beta", "--test-rows", "default", "--out", str(tmp_path / "out.md")])
    text = (tmp_path / "out.md").read_text()
    assert text.startswith("# Results\n\n## Validation")
    section = text.split("## Validation: the rows named `low...`, against `low_beta`")[1]
    assert "| `low_beta` | 1 | (reference) | 23.00 |" in section
    assert "`default`" not in section.split("## Test")[0]
    assert "## Test: the chosen rows only" in text


def test_a_second_study_is_appended_under_its_title(tmp_path):
    (tmp_path / "exp.json").write_text(json.dumps(_tree()))
    out = tmp_path / "out.md"
    common = ["--json", str(tmp_path / "exp.json"), "--test-rows", "default", "--out", str(out)]
    main([*common, "--title", "Study 2"])
    main([*common, "--title", "Study 1", "--append"])
    text = out.read_text()
    assert text.startswith("## Study 2, validation: every row")
    assert text.index("## Study 2, test:") < text.index("\n\n## Study 1, validation: every row")
    assert text.count("## Study 1, test: the chosen rows only") == 1


def test_pixel_rows_read_the_baselines_metrics():
    tree = _tree()
    pixel = _run("pixel-s0", 0, 1.0, 0.0, 0.0)
    pixel["data"]["metrics"]["baselines/metrics/eval.json"] = {"data": {
        "val": {"render": {"psnr_vs_image": 21.5}}, "test": {"render": {"psnr_vs_image": 21.0}}}}
    tree[1]["experiments"][0]["revs"].append(pixel)
    rows = group_runs(iter_runs(tree))
    assert "| `pixel` | 1 | +0.50 (one seed: no spread) | 21.50 |" in val_table(rows, "default")
    assert "the pixel-space baseline" in val_table(rows, "default")
    assert "| `pixel` | 1 | 21.00 |" in chosen_table(rows, ["pixel"])


def test_a_difference_holds_only_beyond_the_t_quantile_at_welch_df():
    def row(name, values):
        return [group_runs(iter_runs([_run(f"{name}-s{i}", i, 1.0, v, 0.0)], True))[name][0]
                for i, v in enumerate(values)]

    ref = row("ref", [20.0, 20.2, 20.4])  # mean 20.2, std 0.2
    key = "val.render.psnr_vs_image"
    # se = 0.2 * sqrt(2/3) = 0.16 at 4 df, t = 2.78: a difference must exceed 0.45 dB.
    near, mid, far = (row("near", [20.3, 20.5, 20.7]), row("mid", [20.4, 20.6, 20.8]),
                      row("far", [21.0, 21.2, 21.4]))
    assert versus(near, ref, key) == "+0.30 ± 0.16 (not shown: t 2.8 at 4.0 df)"
    # beyond two standard errors (0.33) but not the t quantile: noise at 4 df
    assert versus(mid, ref, key) == "+0.40 ± 0.16 (not shown: t 2.8 at 4.0 df)"
    assert versus(far, ref, key) == "+1.00 ± 0.16 (holds: t 2.8 at 4.0 df)"
    # One side's seeds nearly agree: Welch's df fall to about 2 and t rises to about 4.3.
    tight = row("tight", [21.0, 21.001, 21.002])
    assert versus(tight, ref, key).endswith("(holds: t 4.3 at 2.0 df)")
    loose = row("loose", [19.6, 20.2, 20.8])  # std 0.6
    tight2 = row("tight2", [20.85, 20.851, 20.852])
    assert versus(tight2, loose, key) == "+0.65 ± 0.35 (not shown: t 4.3 at 2.0 df)"


def test_committed_results_rebuild_from_the_saved_json(tmp_path, monkeypatch):
    """docs/RESULTS.md is exactly what the commands in its header make of the saved JSON files
    (the header's bash block, run here as written): no table was typed or edited by hand."""
    header = (REPO / "docs" / "RESULTS.header.md").read_text()
    block = header.split("```bash\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    commands = [shlex.split(line) for line in block.splitlines() if line.strip()]
    assert len(commands) >= 1 and all(c[0] == "gaussvae-results" for c in commands)
    monkeypatch.chdir(REPO)
    out = tmp_path / "RESULTS.md"
    for command in commands:
        args = command[1:]
        args[args.index("--out") + 1] = str(out)
        if "--rd-figure" in args:  # drawn beside the text, not over the committed picture
            at = args.index("--rd-figure") + 1
            args[at] = str(tmp_path / Path(args[at]).relative_to("docs"))
            Path(args[at]).parent.mkdir(exist_ok=True)
        main(args)
    assert out.read_text() == (REPO / "docs" / "RESULTS.md").read_text()


def test_the_paired_table_is_built_from_paired_json(tmp_path):
    paired = {"fp16": {"test": {"pca": {"mean_db": 0.5, "ci95_low": 0.41, "ci95_high": 0.6,
                                        "images": 300, "wins": 0.9, "left_out": 0}},
                       "val": {"pca": {"mean_db": 9.0, "ci95_low": 9.0, "ci95_high": 9.0,
                                       "images": 300, "wins": 1.0, "left_out": 0}}},
              "8bit": {"test": {"webp": {"mean_db": -3.0, "ci95_low": -3.2, "ci95_high": -2.8,
                                         "images": 296, "wins": 0.01, "left_out": 4}}}}
    (tmp_path / "paired.json").write_text(json.dumps(paired))
    out = tmp_path / "out.md"
    out.write_text("# Results\n")
    main(["--paired", str(tmp_path / "paired.json"), "--out", str(out), "--append"])
    text = out.read_text()
    assert text.startswith("# Results\n\n## Test, paired per image")
    assert "| float16 | PCA | +0.50 | [+0.41, +0.60] | 90% | 300 |" in text
    assert ("| 8-bit | WebP | -3.00 | [-3.20, -2.80] | 1% | 296 (4 out of budget, left out) |"
            in text)
    assert "+9.00" not in text  # validation is not reported here


def test_the_counts_the_header_types_are_the_saved_studies():
    """Every 'study N: R rows x S seeds = M runs' and the best-epoch count in
    docs/RESULTS.header.md agree with docs/results/studyN.json."""
    import re

    header = (REPO / "docs/RESULTS.header.md").read_text()
    claims = re.findall(r"study (\d): (\d+) rows x (\d+) seeds = (\d+) runs", header)
    assert {c[0] for c in claims} == {"1", "2"}
    studies = {}
    for study, n_rows, seeds, runs in claims:
        rows = group_runs(iter_runs(json.loads(
            (REPO / f"docs/results/study{study}.json").read_text())))
        studies[study] = rows
        assert len(rows) == int(n_rows)
        assert {len(r) for r in rows.values()} == {int(seeds)}
        assert sum(len(r) for r in rows.values()) == int(runs) == int(n_rows) * int(seeds)
    last, total = map(int, re.search(r"the last in (\d+) of the (\d+) study-2 runs",
                                     " ".join(header.split())).groups())
    runs = [r for rs in studies["2"].values() for r in rs]
    train = [r.metrics["metrics/train.json"] for r in runs]
    assert total == len(runs)
    assert last == sum(t["best_epoch"] == t["epochs_run"] for t in train)


def test_the_samples_table_ranks_nearest_first_and_says_whether_blur_ranks_last():
    samples = {"reference": "validation images (300)",
               "kid_x1000": {"test_images": 0.01, "test_blur_1px": 3.0,
                             "gaussian_vae_samples": 40.0, "pca_samples": 2.0},
               "images": {"test_images": 300, "test_blur_1px": 300,
                          "gaussian_vae_samples": 300, "pca_samples": 300},
               "blur_check": {"worse_than_real": True, "worse_with_more_blur": True}}
    rows = [line for line in samples_table(samples).splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[1] for r in rows] == ["0.010", "2.000", "3.000", "40.000"]
    assert "the test images blurred, sigma 1px" in rows[2]
    assert "Blur check: passes" in samples_table(samples)
    samples["blur_check"]["worse_with_more_blur"] = False
    assert "Blur check: FAILS (worse than real: yes, worse with more blur: no)" in \
        samples_table(samples)
