"""Completed chunks of an extraction, kept on disk so that a killed run resumes from them.

A resume folder (``data/extract_chunks``) holds one sub-folder per run key, a hash of everything
a chunk's result depends on (extract.run_key); each chunk is written atomically once all its
images are fitted and ordered, so a SIGKILL loses only the chunks in flight and never leaves a
half-written one. Sub-folders of other keys are another run's work and are removed when a run
opens the folder, and a finished run removes its own. Like data/train/checkpoint.pt it is
git-ignored scratch, not a DVC output: DVC deletes a stage's outputs before running it, which is
exactly when the chunks are needed.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaussvae.core.atomic import atomic_path

KEY = re.compile(r"[0-9a-f]{16}")
CHUNK = re.compile(r"chunk-(\d+)\.npz")


@dataclass(frozen=True)
class Chunk:
    """Fitted, ordered Gaussians (n, N, 8) and fit PSNR (n,) of consecutive images."""

    gaussians: np.ndarray
    psnr: np.ndarray


class ChunkStore:
    """The chunks of one run (one key) under a resume folder."""

    def __init__(self, root: str | Path, key: str) -> None:
        if not KEY.fullmatch(key):
            raise ValueError(f"a run key is 16 hex digits, got {key!r}")
        self.root = Path(root)
        self.folder = self.root / key

    def open(self) -> dict[int, Chunk]:
        """The chunks saved under this key, by first image index; other keys' folders go."""
        if self.root.is_dir():
            for other in self.root.iterdir():
                if other.is_dir() and KEY.fullmatch(other.name) and other != self.folder:
                    shutil.rmtree(other, ignore_errors=True)  # other processes may race here
        self.folder.mkdir(parents=True, exist_ok=True)
        chunks = {}
        for path in self.folder.iterdir():
            match = CHUNK.fullmatch(path.name)
            if match:
                with np.load(path) as f:
                    chunks[int(match.group(1))] = Chunk(f["gaussians"], f["psnr"])
        return chunks

    def save(self, start: int, chunk: Chunk) -> None:
        with atomic_path(self.folder / f"chunk-{start:09d}.npz") as tmp, tmp.open("wb") as f:
            np.savez(f, gaussians=chunk.gaussians, psnr=chunk.psnr)


def discard_chunks(root: str | Path) -> None:
    """Remove every run's chunks under ``root`` (after the output is written), and ``root`` if
    that leaves it empty; nothing else in it is touched."""
    root = Path(root)
    if not root.is_dir():
        return
    for folder in root.iterdir():
        if folder.is_dir() and KEY.fullmatch(folder.name):
            shutil.rmtree(folder, ignore_errors=True)  # ranks of one machine share the folder
    with contextlib.suppress(OSError):  # not empty, or another rank removed it first
        root.rmdir()
