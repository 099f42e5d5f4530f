import logging

import numpy as np
import pytest
from PIL import Image

from gaussvae.errors import ImageSourceError
from gaussvae.images import load_folder
from gaussvae.prepare import assign_splits


def _write_samples(folder):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(80, 100, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(rgb).save(folder / "b.jpg", quality=90)
    Image.fromarray(rgb).save(folder / "c.webp")
    Image.fromarray(rgb[..., 0]).save(folder / "gray.png")
    Image.fromarray(rgb).convert("P").save(folder / "palette.png")
    rgba = np.concatenate([rgb, np.full((80, 100, 1), 128, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(folder / "deep16.png")
    Image.fromarray(rgb[:10, :12]).save(folder / "tiny.png")
    (folder / "sub").mkdir()
    Image.fromarray(rgb).save(folder / "sub" / "nested.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (folder / "notes.txt").write_text("not an image")


def test_folder_source_converts_every_mode_and_skips_corrupt_files(tmp_path, caplog):
    _write_samples(tmp_path)
    with caplog.at_level(logging.WARNING):
        out = load_folder(tmp_path, 16)
    assert out.images.shape == (9, 16, 16, 3)
    assert out.images.dtype == np.uint8
    assert "broken.png" in [name for name, _ in out.skipped]
    assert "broken.png" in caplog.text
    assert "sub/nested.png" in out.sources
    assert out.upscaled == 1 and "tiny.png" in caplog.text
    # 16-bit: scaled to 8 bits, not clipped to white.
    deep = out.images[out.sources.index("deep16.png")]
    assert 20 < deep.mean() < 235


def test_empty_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ImageSourceError, match="no images found") as info:
        load_folder(tmp_path, 16)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(ImageSourceError, match="not a directory"):
        load_folder(tmp_path / "missing", 16)


def test_all_corrupt_is_an_error_naming_a_file(tmp_path):
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.raises(ImageSourceError, match="x.png"):
        load_folder(tmp_path, 16)


def test_splits_are_seeded_disjoint_and_sized():
    split = assign_splits(100, 0.1, 0.2, seed=3)
    assert np.array_equal(split, assign_splits(100, 0.1, 0.2, seed=3))
    assert not np.array_equal(split, assign_splits(100, 0.1, 0.2, seed=4))
    assert (split == 2).sum() == 20 and (split == 1).sum() == 10 and (split == 0).sum() == 70
