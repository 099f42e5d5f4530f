"""dvc.yaml lists, for each stage, exactly the code the stage runs: its script and every module
of this repository that the script imports, directly or through other modules (read with ast,
nothing is imported). A missing dep means `dvc repro` would not re-run the stage after that
module changes; an extra one re-runs it for nothing."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

CODE_DIRS = ("src/", "stages/")


def _module_file(name: str, script_dir: Path) -> list[Path]:
    """Files of this repository that importing ``name`` runs (packages' __init__ included)."""
    parts = name.split(".")
    if parts[0] == "gaussvae":
        files = []
        for i in range(1, len(parts) + 1):
            base = REPO / "src" / Path(*parts[:i])
            if (base / "__init__.py").exists():
                files.append(base / "__init__.py")
            elif base.with_suffix(".py").exists():
                files.append(base.with_suffix(".py"))
        return files
    local = script_dir / f"{name}.py"  # a helper beside the stage script (_local_src)
    return [local] if len(parts) == 1 and local.exists() else []


def import_closure(script: Path) -> set[str]:
    """Repository-relative paths of the script and everything in this repository it imports."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                todo.extend(_module_file(name, script.parent))
    return {str(p.relative_to(REPO)) for p in seen}


PIPELINES = ("dvc.yaml", "baselines/dvc.yaml")


def _repo_path(dep: str, pipeline_dir: Path) -> str:
    """A dep as written in a dvc.yaml (relative to its folder) -> relative to the repository."""
    return str((REPO / pipeline_dir / dep).resolve().relative_to(REPO))


def expand(dep: str) -> set[str]:
    """A code dep as the files it covers: a module, or every module below a folder."""
    path = REPO / dep
    if path.is_dir():
        return {str(p.relative_to(REPO)) for p in path.rglob("*.py")}
    return {dep}


def stage_code(pipeline: dict, pipeline_dir: Path = Path()
               ) -> dict[str, tuple[set, dict[str, set]]]:
    """Per stage: (code it imports, {code dep dvc.yaml lists: the files it covers}),
    repository-relative."""
    out = {}
    for name, stage in pipeline["stages"].items():
        script = re.search(r"stages/\w+\.py", stage["cmd"])
        assert script, f"stage {name!r}: no stages/*.py in its cmd"
        deps = {_repo_path(d, pipeline_dir) for d in stage.get("deps", [])}
        listed = {d: expand(d) for d in deps if d.startswith(CODE_DIRS)}
        out[name] = (import_closure(REPO / script.group(0)), listed)
    return out


def problems(pipeline: dict, pipeline_dir: Path = Path()) -> list[str]:
    """What is wrong with each stage's code deps: a module it imports that no dep covers, a
    module dep it does not import, a folder dep with a module it does not import."""
    out = []
    for name, (imported, listed) in stage_code(pipeline, pipeline_dir).items():
        covered = set().union(*listed.values()) if listed else set()
        out += [f"stage {name!r} imports {p} but dvc.yaml does not list it in its deps"
                for p in sorted(imported - covered)]
        for dep, files in sorted(listed.items()):
            unused = sorted(files - imported)
            if unused and (REPO / dep).is_dir():
                out.append(f"stage {name!r} lists the folder {dep} in its deps but does not "
                           f"import {', '.join(unused)}")
            elif unused:
                out.append(f"stage {name!r} lists {dep} in its deps but does not import it")
    return out


@pytest.mark.parametrize("path", PIPELINES)
def test_dvc_yaml_deps_are_exactly_the_code_each_stage_runs(path):
    pipeline = yaml.safe_load((REPO / path).read_text())
    assert problems(pipeline, Path(path).parent) == []


@pytest.mark.parametrize("path", PIPELINES)
def test_removing_any_code_dep_is_noticed(path):
    pipeline, folder = yaml.safe_load((REPO / path).read_text()), Path(path).parent
    for name, stage in pipeline["stages"].items():
        for dep in [d for d in stage["deps"] if _repo_path(d, folder).startswith(CODE_DIRS)]:
            stage["deps"].remove(dep)
            assert problems(pipeline, folder) == [
                f"stage {name!r} imports {p} but dvc.yaml does not list it in its deps"
                for p in sorted(expand(_repo_path(dep, folder)))]
            stage["deps"].append(dep)


def test_a_folder_dep_must_be_read_whole():
    """A folder dep re-runs its stage when any file in it changes, so it is right only when
    the stage imports every module in it."""
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    pipeline["stages"]["prepare"]["deps"].append("src/gaussvae/vae")
    assert [p for p in problems(pipeline) if "folder" in p] == [
        "stage 'prepare' lists the folder src/gaussvae/vae in its deps but does not import "
        + ", ".join(sorted(expand("src/gaussvae/vae")))]


def test_editing_the_baselines_never_reruns_the_gaussian_pipeline():
    """No stage of dvc.yaml imports the baselines' code (baselines/dvc.yaml's stages do)."""
    main = yaml.safe_load((REPO / "dvc.yaml").read_text())
    baselines = expand("src/gaussvae/baselines")
    for name, (imported, listed) in stage_code(main).items():
        assert not imported & baselines, name
        assert not set().union(*listed.values()) & baselines, name
    pixel = stage_code(yaml.safe_load((REPO / "baselines/dvc.yaml").read_text()),
                       Path("baselines"))
    # ... while the baselines' own stages do (so the checks above can fail).
    assert all(pixel[name][0] & baselines for name in ("pixel_train", "pca", "sample_metric"))


def test_cheap_stages_do_not_load_torch():
    """prepare and normalize are cheap; importing torch would cost them seconds and memory."""
    for stage in ("prepare", "normalize"):
        code = (f"import sys; sys.path.insert(0, 'stages'); import {stage}; "
                "print('torch' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip() == "False", stage
