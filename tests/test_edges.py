"""Hostile edges of the command line: outputs that cannot be written and inputs that cannot be read to their end.
Each ends in one line and exit 1, found before any work where it can be, with nothing the user had clobbered."""

import errno
import os
import tempfile

import pytest

from tfgc import utils
from tfgc.__main__ import main
from tfgc.codec import api
from tfgc.codec.io import save_image


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture
def photo(photos, tmp_path):
    path = tmp_path / "photo.png"
    save_image(photos["chelsea"][:64, :96], path)
    return path


@pytest.fixture
def no_encode(monkeypatch):
    """Fails the test if the command gets as far as encoding."""
    def encode(*args, **kwargs):
        raise AssertionError("encoded before the output was checked")

    monkeypatch.setattr(api, "encode", encode)


@pytest.mark.parametrize("error", [
    OSError(errno.EACCES, "Permission denied"),
    OSError(errno.EROFS, "Read-only file system"),
    OSError(errno.ENOSPC, "No space left on device"),
])
def test_a_folder_where_no_file_can_be_made_is_refused_before_any_work(trained, photo, tmp_path, monkeypatch,
                                                                         capsys, no_encode, error):
    def refused(*args, **kwargs):
        raise error

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    assert main(["compress", str(photo), str(tmp_path / "out.tfgc"), "--model", str(trained[1])]) == 1
    assert _one_error_line(capsys) == f"tfgc: error: cannot write {tmp_path / 'out.tfgc'}: {error.strerror}"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused_before_any_work(trained, photo, tmp_path, capsys, no_encode):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["compress", str(photo), str(folder / "out.tfgc"), "--model", str(trained[1])]) == 1
    finally:
        folder.chmod(0o755)
    assert _one_error_line(capsys).endswith(": Permission denied")


@pytest.mark.parametrize("make_output, expected", [
    (lambda tmp: tmp / "missing" / "out.tfgc", "folder {folder} does not exist"),
    (lambda tmp: tmp, "is a directory"),
])
def test_a_missing_folder_or_a_directory_as_output_is_refused_before_any_work(trained, photo, tmp_path, capsys,
                                                                              no_encode, make_output, expected):
    output = make_output(tmp_path)
    assert main(["compress", str(photo), str(output), "--model", str(trained[1]), "--force"]) == 1
    assert expected.format(folder=output.parent) in _one_error_line(capsys)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_a_write_that_fails_at_the_end_is_one_line_and_keeps_the_old_file(trained, tmp_path, monkeypatch, capsys,
                                                                          photo, code):
    _, model_dir = trained
    output = tmp_path / "out.tfgc"
    output.write_bytes(b"the user's file")

    def replace(source, target):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", replace)
    assert main(["compress", str(photo), str(output), "--model", str(model_dir), "--force", "--quiet"]) == 1
    assert _one_error_line(capsys) == f"tfgc: error: cannot write {output}: {os.strerror(code)}"
    assert output.read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tfgc", "photo.png"]  # no temporary file left


def test_a_model_folder_that_cannot_be_moved_into_place_keeps_the_old_one(tmp_path, monkeypatch):
    destination = tmp_path / "model"
    destination.mkdir()
    (destination / "weights").write_text("old")
    real_replace = os.replace

    def replace(source, target):  # the old folder moves aside and back; the new one cannot take its place
        name = os.path.basename(source)
        if name.startswith(".model.") and not name.endswith(".old"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(utils.TfgcError, match="cannot write .*model: No space left on device"):
        utils.write_directory(destination, lambda staging: (staging / "weights").write_text("new"), force=True)
    assert (destination / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("command", [["info"], ["decompress"], ["compress"]])
def test_fifos_and_devices_are_refused_without_waiting_on_them(trained, tmp_path, capsys, command):
    fifo = tmp_path / "input"
    os.mkfifo(fifo)  # no writer: opening it for reading the usual way would block forever
    outputs = {"info": [], "decompress": [str(tmp_path / "out.png")], "compress": [str(tmp_path / "out.tfgc")]}
    for source, kind in ((fifo, "a FIFO"), ("/dev/zero", "a device")):
        if source == "/dev/zero" and not os.path.exists(source):
            continue
        model = ["--model", str(trained[1])] if command[0] != "info" else []
        assert main(command + [str(source)] + outputs[command[0]] + model) == 1
        assert _one_error_line(capsys) == f"tfgc: error: cannot read {source}: it is {kind}, not a regular file"


def test_a_tfgc_file_larger_than_any_tfgc_writes_is_refused_before_it_is_read(tmp_path, monkeypatch, capsys):
    from tfgc.codec import bitstream

    monkeypatch.setattr(bitstream, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "large.tfgc"
    path.write_bytes(b"TFGC" + bytes(2000))
    assert main(["info", str(path)]) == 1
    assert _one_error_line(capsys) == f"tfgc: error: cannot read {path}: 2004 bytes, more than the 1000 tfgc reads " \
                                      "of such a file"


def _damaged_images(folder, photo) -> dict:
    """The four kinds of damage that passed a header check and failed training minutes in, each a file in `folder`,
    by name: what the check must say of it."""
    import io
    import struct
    import zlib

    import numpy as np
    from PIL import Image

    image = Image.fromarray(photo)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    jpeg = buffer.getvalue()
    (folder / "truncated.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    corrupted = bytearray(jpeg)
    scan = jpeg.index(b"\xff\xda") + 300
    for offset in range(0, 3000, 97):  # markers strewn through the entropy-coded data
        corrupted[scan + offset:scan + offset + 2] = b"\xff\xc8"
    (folder / "corrupted.jpg").write_bytes(bytes(corrupted))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    png = bytearray(buffer.getvalue())
    chunk = png.index(b"IDAT")
    length = struct.unpack(">I", png[chunk - 4:chunk])[0]
    png[chunk + 104:chunk + 604] = np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes()
    png[chunk + 4 + length:chunk + 8 + length] = struct.pack(">I", zlib.crc32(bytes(png[chunk:chunk + 4 + length])))
    (folder / "garbage-idat.png").write_bytes(bytes(png))  # a valid chunk CRC over deflate data that does not inflate
    buffer = io.BytesIO()
    image.save(buffer, "WEBP")
    (folder / "webp.jpg").write_bytes(buffer.getvalue())
    return {"truncated.jpg": "jpeg::Uncompress failed", "corrupted.jpg": "jpeg::Uncompress failed",
            "garbage-idat.png": "Invalid PNG data", "webp.jpg": "Unknown image file format"}


@pytest.fixture
def damaged_folder(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("TFGC_CHECK_CACHE", str(tmp_path / "checked.json"))
    folder = tmp_path / "data"
    folder.mkdir()
    save_image(photos["chelsea"][:96, :96], folder / "good.png")
    save_image(photos["coffee"][:96, :96], folder / "good2.png")
    return folder, _damaged_images(folder, photos["astronaut"][:128, :128])


@pytest.mark.parametrize("name", ["truncated.jpg", "corrupted.jpg", "garbage-idat.png", "webp.jpg"])
def test_a_damaged_training_image_is_refused_before_training_with_its_path(damaged_folder, tmp_path, capsys, name):
    from tfgc import train

    folder, expected = damaged_folder
    for other in expected:
        if other != name:
            (folder / other).unlink()
    assert train.main(["--preset", "gc-tiny", "--data", str(folder), "--out", str(tmp_path / "run")]) == 1
    line = _one_error_line(capsys)
    assert line.startswith(f"tfgc.train: error: training image {folder / name}: does not decode ({expected[name]}")
    assert line.endswith("remove it, or pass --skip-bad-images to train without it")
    assert not (tmp_path / "run" / "model").exists()


def test_the_check_is_kept_so_a_rerun_decodes_only_what_changed(damaged_folder, tmp_path, monkeypatch):
    from tfgc.data import check

    folder, expected = damaged_folder
    paths = sorted(str(p) for p in folder.iterdir())
    decoded = []
    real_problem = check._problem
    monkeypatch.setattr(check, "_problem", lambda path: decoded.append(path) or real_problem(path))
    good, bad = check.check_images(paths, skip_bad=True)
    assert len(decoded) == len(paths) == 6
    assert sorted(os.path.basename(p) for p in good) == ["good.png", "good2.png"]
    assert {os.path.basename(item["path"]) for item in bad} == set(expected)
    decoded.clear()
    assert check.check_images(paths, skip_bad=True) == (good, bad) and decoded == []
    (folder / "good.png").write_bytes((folder / "good.png").read_bytes() + b"\0")  # changed: checked again
    check.check_images(paths, skip_bad=True)
    assert decoded == [str(folder / "good.png")]


def test_an_image_larger_than_training_takes_is_refused_from_its_header(damaged_folder, monkeypatch):
    from tfgc.data import check

    folder, _ = damaged_folder
    monkeypatch.setattr(check, "TRAINING_MAX_PIXELS", 96 * 96 - 1)
    with pytest.raises(check.DataError, match=r"good.png: 96x96 pixels, more than the 9215 training takes"):
        check.check_images([str(folder / "good.png")])


@pytest.mark.slow
def test_skip_bad_images_trains_without_them_and_says_so_in_the_manifest(damaged_folder, tmp_path, capsys):
    import json

    from tfgc import train

    folder, expected = damaged_folder
    out = tmp_path / "run"
    assert train.main(["--preset", "gc-tiny", "--data", str(folder), "--out", str(out), "--skip-bad-images"]) == 0
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["training_images"] == 2
    assert {os.path.basename(item["path"]): item["reason"].split(" (")[1][:len(expected[name])]
            for item in manifest["skipped_images"] for name in [os.path.basename(item["path"])]} == expected
    assert capsys.readouterr().out.count("tfgc.train: skipping ") == 4


@pytest.mark.parametrize("image_format", ["GIF", "PNG", "WEBP"])
def test_an_animation_is_refused_rather_than_cut_to_its_first_frame(photos, tmp_path, image_format):
    from PIL import Image

    from tfgc.codec.io import load_image
    from tfgc.errors import ImageError

    frames = [Image.fromarray(photos["chelsea"][:32, :32]), Image.fromarray(photos["coffee"][:32, :32])]
    path = tmp_path / f"animation.{image_format.lower()}"
    frames[0].save(path, format=image_format, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(ImageError, match="an animation of 2 frames; tfgc compresses still images"):
        load_image(path)
    frames[0].save(path, format=image_format)  # one frame: a picture
    assert load_image(path).shape == (32, 32, 3)


def test_pillows_bomb_warning_is_left_to_tfgcs_own_limit(tmp_path, monkeypatch, recwarn):
    from PIL import Image

    from tfgc.codec.io import load_image

    path = tmp_path / "large.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64 - 1)  # Pillow warns above this, errs above twice it
    assert load_image(path).shape == (64, 64, 3)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


# ---- small files for large pictures ---------------------------------------------------------------------------------
def _png(array) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array, "L").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def test_a_png_label_map_or_mask_shorter_than_deflate_allows_is_refused_unread(monkeypatch):
    import numpy as np

    from tfgc.codec import bitstream, sc
    from tfgc.errors import FormatError

    one_class = np.zeros((256, 512), np.uint8)  # the smallest PNG a map of this size can be, or near it
    assert sc.decode_label_map("png", _png(one_class), 256, 512, 20).shape == (256, 512)
    assert len(_png(one_class)) >= sc.png_minimum(256, 512)

    def unread(*args, **kwargs):
        raise AssertionError("decoded a map its bytes cannot hold")

    monkeypatch.setattr(sc, "_read_lossless", unread)
    with pytest.raises(FormatError, match=r"PNG holds \d+ bytes; a 8192x8192 map takes at least 16265$"):
        sc.decode_label_map("png", _png(one_class), 8192, 8192, 20)
    with pytest.raises(FormatError, match="mask holds 2 deflated bytes; .* needs at least 4$"):
        sc.decode_mask(bitstream.MASK_DEFLATE, b"\x03\x00", 64, 512)  # 4,096 bytes of bits: 4 deflated at least


def _jpeg(size=(64, 64)) -> bytes:
    import numpy as np

    from tfgc.codec import sr

    return sr.encode_base(np.full(size + (3,), 90, np.uint8), 50)


def test_a_jpeg_base_too_short_for_its_size_or_not_huffman_coded_is_refused_before_its_pixels(monkeypatch, recwarn):
    from PIL import ImageFile

    from tfgc.codec import sr
    from tfgc.errors import FormatError
    from tfgc.fuzz import jpeg_claiming

    assert sr.decode_base(_jpeg(), 64, 64).shape == (64, 64, 3)
    solid = _jpeg((2048, 2048))  # a real file of one colour: above the floor
    assert len(solid) >= 256 * 256 // 8 and sr.decode_base(solid, 2048, 2048).shape == (2048, 2048, 3)

    def unread(self, *args, **kwargs):
        raise AssertionError("decoded pixels its bytes cannot hold")

    monkeypatch.setattr(ImageFile.ImageFile, "load", unread)
    with pytest.raises(FormatError, match=r"JPEG holds \d+ bytes; a 8000x12000 JPEG takes at least 187500$"):
        sr.decode_base(jpeg_claiming(_jpeg(), 12000, 8000), 12000, 8000)
    with pytest.raises(FormatError, match="not a baseline or progressive"):
        sr.decode_base(jpeg_claiming(_jpeg(), 64, 64, marker=0xC9), 64, 64)  # arithmetic coded
    assert not recwarn.list  # Pillow's bomb warning above 89 megapixels: the file's size is under tfgc's cap


def test_a_whole_image_model_refuses_a_large_sc_file_before_decoding_its_map(photos, monkeypatch):
    import numpy as np

    from tfgc.codec import bitstream, sc, tiling
    from tfgc.config import preset
    from tfgc.errors import ImageError
    from tfgc.models.registry import build_model

    model = build_model(preset("sc-tiny"), for_training=False)
    assert model.geometry.whole_image
    image = photos["chelsea"][:64, :64]
    data = api.encode(image, model, semantics=np.zeros((64, 64), np.uint8), preserve="none").data
    header, payload = bitstream.unpack(data)
    large = bitstream.pack(bitstream.Header(header.family, header.flags, header.fingerprint, 2048, 2048), payload)

    def unread(*args, **kwargs):
        raise AssertionError("decoded the label map first")

    monkeypatch.setattr(sc, "read_selective", unread)
    monkeypatch.setattr(tiling, "available_memory", lambda: 2**20)
    with pytest.raises(ImageError, match="needs about .* GiB for this model"):
        api.decode(large, model)


@pytest.mark.parametrize("name", ["line\nbreak.tfgc", "tab\there.png", "\x1b[31mred.tfgc"])
def test_a_path_that_would_not_print_is_quoted_in_its_one_line(tmp_path, name):
    from tfgc.codec.io import load_image
    from tfgc.errors import TfgcError

    reader = load_image if name.endswith(".png") else api.decode
    with pytest.raises(TfgcError) as raised:
        reader(str(tmp_path / name))
    message = str(raised.value)
    assert "\n" not in message and "\x1b" not in message and "no such file" in message
