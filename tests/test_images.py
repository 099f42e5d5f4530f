import logging

import numpy as np
import pytest
from PIL import Image

from gaussvae.core.errors import ImageSourceError
from gaussvae.core.store import SPLITS
from gaussvae.images.folder import load_folder
from gaussvae.images.prepare import folder_splits, prepare_images
from tests.conftest import make_params


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


def _split_sources(images):
    return {name: {s for s, c in zip(images.sources, images.split, strict=True)
                   if c == SPLITS.index(name)} for name in SPLITS}


def test_synthetic_val_and_test_do_not_depend_on_num_images():
    small, large = (prepare_images(make_params(**{"prepare.num_images": n, "prepare.image_size": 8,
                                                   "prepare.val_images": 30,
                                                   "prepare.test_images": 30}).prepare)
                    for n in (300, 600))
    a, b = _split_sources(small), _split_sources(large)
    assert a["val"] == b["val"] and a["test"] == b["test"] and len(a["test"]) == 30
    assert a["train"] < b["train"] and not (b["train"] & (b["val"] | b["test"]))
    # the same names are the same pictures
    assert np.array_equal(small.images[:60], large.images[:60])


def test_folder_splits_keep_every_file_where_it_was_when_files_are_added():
    names = [f"class{i % 3}/img{i:04d}.png" for i in range(600)]
    few, many = folder_splits(names[:300], 0.1, 0.1), folder_splits(names, 0.1, 0.1)
    assert np.array_equal(few, many[:300])
    for code, share in ((1, 0.1), (2, 0.1), (0, 0.8)):  # val, test, train about as asked
        assert abs((many == code).mean() - share) < 0.04
    with pytest.raises(ImageSourceError, match="fell into the (val|test) split"):
        folder_splits(names[:3], 0.1, 0.01)
