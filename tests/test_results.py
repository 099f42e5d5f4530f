"""docs/RESULTS.md tables from `dvc exp show --json` (shape as dvc 3.x prints it)."""

from __future__ import annotations

import json
import shlex

import pytest

from gaussvae.core.errors import UserError
from gaussvae.evaluation.study_tables import (
    changes,
    chosen_table,
    group_runs,
    iter_runs,
    main,
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


def test_a_difference_counts_only_beyond_twice_its_standard_error():
    def row(name, values):
        return [group_runs(iter_runs([_run(f"{name}-s{i}", i, 1.0, v, 0.0)], True))[name][0]
                for i, v in enumerate(values)]

    ref = row("ref", [20.0, 20.2, 20.4])  # mean 20.2, std 0.2
    near, far = row("near", [20.3, 20.5, 20.7]), row("far", [21.0, 21.2, 21.4])
    key = "val.render.psnr_vs_image"
    assert versus(near, ref, key) == "+0.30 ± 0.16 (within spread)"  # se = 0.2 * sqrt(2/3)
    assert versus(far, ref, key) == "+1.00 ± 0.16 (beyond spread)"


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
        main(args)
    assert out.read_text() == (REPO / "docs" / "RESULTS.md").read_text()
