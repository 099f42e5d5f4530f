"""Writing outputs: atomically (a stage interrupted mid-write leaves no half file for DVC to
cache), as JSON with stable bytes, with metrics rounded."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gaussvae.core.errors import StaleFileError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file lives in the same directory so the final ``os.replace`` is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (keys in insertion order, stable bytes)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file's contents; one line naming the file when it is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StaleFileError(f"{path}: not valid JSON ({err}); re-run the stage that writes "
                             "it") from None


def rounded(obj: Any, digits: int) -> Any:
    """``obj`` with every float, at any depth of dicts, rounded to ``digits`` decimals: metrics
    files keep the digits that mean something and stay diff-friendly."""
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    return round(obj, digits) if isinstance(obj, float) else obj
