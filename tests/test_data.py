import pytest
from PIL import Image

from tfgc import data
from tfgc.errors import DataError


def test_bundled_images_are_there():
    paths = data.bundled_images()
    assert len(paths) == 4
    for path in paths:
        with Image.open(path) as image:
            assert image.mode == "RGB" and min(image.size) >= 300


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.list_images([tmp_path / "missing"])
    with pytest.raises(DataError, match="no PNG or JPEG"):
        data.list_images([tmp_path])
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="unreadable image .*a.png"):
        data.list_images([tmp_path])


def test_lists_images_recursively(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "sub" / "b.JPG")
    Image.new("RGB", (20, 20)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.split("/")[-1] for p in data.list_images([tmp_path])] == ["a.png", "b.JPG"]
