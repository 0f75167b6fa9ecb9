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
