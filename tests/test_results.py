"""docs/RESULTS.md table from `dvc exp show --json` (shape as dvc 3.x prints it)."""

from __future__ import annotations

import json

from gaussvae.results import iter_runs, main, render_table, select_runs


def _run(rev: str, name: str | None, beta: float, rot: float) -> dict:
    return {"rev": rev, "name": name, "data": {
        "params": {"params.yaml": {"data": {"max_beta": beta, "normalize": {"encoding": "raw"}}}},
        "metrics": {"metrics/eval.json": {"data": {"test": {"loss": {"rot": rot}}}},
                    "metrics/train.json": {"data": {"best": {"train": {"recon": 1.25},
                                                             "val": {"recon": 2.5}}}}},
    }}


def _tree() -> list:
    base = _run("workspace", None, 1.0, 0.75)
    main_run = _run("a" * 40, "main", 1.0, 0.75)
    main_run["experiments"] = [{"revs": [_run("b" * 40, "abl-ellipse", 1.0, 0.5),
                                         _run("d" * 40, "abl-same", 1.0, 0.5)]}]
    old = _run("c" * 40, None, 1.0, 0.9)  # an earlier commit's default run
    return [base, main_run, old]


def test_table_keeps_workspace_and_named_experiments_once():
    runs = select_runs(iter_runs(_tree()))
    # main equals the workspace and the old commit is not an experiment; equal experiments stay
    assert [r[0] for r in runs] == ["workspace", "abl-ellipse", "abl-same"]
    table = render_table(runs)
    lines = table.splitlines()
    assert len(lines) == 5 and "rot err deg" in lines[0]
    assert "| abl-ellipse |" in lines[3] and "0.500" in lines[3] and "raw" in lines[3]
    # the train/val reconstruction gap comes from metrics/train.json
    assert "| 1.25 | 2.50 |" in lines[3]


def test_cli_writes_header_and_table(tmp_path):
    (tmp_path / "exp.json").write_text(json.dumps(_tree()))
    (tmp_path / "head.md").write_text("# Results\n")
    main(["--json", str(tmp_path / "exp.json"), "--header", str(tmp_path / "head.md"),
          "--out", str(tmp_path / "out.md")])
    text = (tmp_path / "out.md").read_text()
    assert text.startswith("# Results\n\n| experiment |") and "abl-ellipse" in text
