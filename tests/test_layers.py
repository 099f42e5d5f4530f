"""The package's folders follow the data flow: each imports only from the folders before it
(docs/development.md), so a reader can take them in order and a change never loops back."""

import ast

from tests.conftest import REPO

ORDER = ("core", "images", "gaussians", "vae", "evaluation", "baselines", "app")


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_each_folder_imports_only_from_the_folders_before_it():
    package = REPO / "src" / "gaussvae"
    assert sorted(p.name for p in package.iterdir() if (p / "__init__.py").exists()) == \
        sorted(ORDER)
    wrong = []
    for rank, folder in enumerate(ORDER):
        for path in sorted((package / folder).glob("*.py")):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "gaussvae" and len(parts) > 1 and parts[1] in ORDER \
                        and ORDER.index(parts[1]) > rank:
                    wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert wrong == []
