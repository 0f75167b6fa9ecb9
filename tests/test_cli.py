import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfgc.__main__ import main


@pytest.fixture
def image_file(tmp_path, photos):
    path = tmp_path / "in.png"
    Image.fromarray(photos["chelsea"][:45, :61]).save(path)
    return path


def test_compress_decompress(trained, image_file, tmp_path, capsys):
    model, directory = trained
    out, rec = tmp_path / "a.tfgc", tmp_path / "rec.png"
    assert main(["compress", str(image_file), str(out), "--model", str(directory), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bytes"] == out.stat().st_size
    assert report["bpp"] == pytest.approx(8 * out.stat().st_size / (45 * 61))
    assert main(["decompress", str(out), str(rec), "--model", str(directory)]) == 0
    decoded = np.asarray(Image.open(rec))
    expected = model.reconstruct(np.asarray(Image.open(image_file))[None]).numpy()[0]
    np.testing.assert_array_equal(decoded, expected)
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["width"], info["height"], info["bytes"]) == (61, 45, out.stat().st_size)


def test_outputs_are_never_overwritten_without_force(trained, image_file, tmp_path, capsys):
    _, directory = trained
    out = tmp_path / "a.tfgc"
    out.write_bytes(b"precious")
    assert main(["compress", str(image_file), str(out), "--model", str(directory)]) == 1
    assert out.read_bytes() == b"precious"
    assert "exists" in capsys.readouterr().err
    assert main(["compress", str(image_file), str(out), "--model", str(directory), "--force"]) == 0
    assert out.read_bytes()[:4] == b"TFGC"
    rec = tmp_path / "rec.png"
    rec.write_bytes(b"mine")
    assert main(["decompress", str(out), str(rec), "--model", str(directory)]) == 1
    assert rec.read_bytes() == b"mine"


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "missing"])
def test_bad_files_give_one_line_errors(trained, image_file, tmp_path, capsys, damage):
    _, directory = trained
    out = tmp_path / "a.tfgc"
    assert main(["compress", str(image_file), str(out), "--model", str(directory), "-q"]) == 0
    data = out.read_bytes()
    bad = tmp_path / "bad.tfgc"
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        bad.write_bytes(data[:20] + bytes([data[20] ^ 4]) + data[21:])
    elif damage == "garbage":
        bad.write_bytes(os.urandom(100))
    capsys.readouterr()
    assert main(["decompress", str(bad), str(tmp_path / "rec.png"), "--model", str(directory)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tfgc: error: ") and err.count("\n") == 1
    assert not (tmp_path / "rec.png").exists()


def test_wrong_model_and_bad_image(trained, tiny_model, image_file, tmp_path, capsys):
    from tfgc.models.store import save_model

    _, directory = trained
    other = save_model(tiny_model, tmp_path / "other")
    out = tmp_path / "a.tfgc"
    assert main(["compress", str(image_file), str(out), "--model", str(directory), "-q"]) == 0
    assert main(["decompress", str(out), str(tmp_path / "r.png"), "--model", str(other)]) == 1
    assert "written by model" in capsys.readouterr().err
    (tmp_path / "notimage.png").write_text("hello")
    assert main(["compress", str(tmp_path / "notimage.png"), str(tmp_path / "b.tfgc"), "--model", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "not an image" in err and err.count("\n") == 1
    assert not (tmp_path / "b.tfgc").exists()
    assert main(["compress", str(image_file), str(tmp_path / "c.tfgc"), "--model", str(tmp_path / "nope")]) == 1
    capsys.readouterr()
    assert main(["decompress", str(out), str(tmp_path / "r.xyz"), "--model", str(directory)]) == 1
    assert "extension .xyz" in capsys.readouterr().err and not (tmp_path / "r.xyz").exists()
    assert main(["decompress", str(out), str(tmp_path / "r.jpg"), "--model", str(directory), "-q"]) == 0
    assert Image.open(tmp_path / "r.jpg").format == "JPEG"


@pytest.mark.slow
def test_command_line_in_a_fresh_process(trained, image_file, tmp_path):
    """The real entry point: exit codes, no traceback, a bit-exact round trip across processes."""
    model, directory = trained
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out, rec = tmp_path / "a.tfgc", tmp_path / "rec.png"
    run = lambda *args: subprocess.run([sys.executable, "-m", "tfgc", *map(str, args)], capture_output=True,  # noqa
                                       text=True, env=env, timeout=300)
    done = run("compress", image_file, out, "--model", directory)
    assert done.returncode == 0, done.stderr
    done = run("decompress", out, rec, "--model", directory)
    assert done.returncode == 0, done.stderr
    expected = model.reconstruct(np.asarray(Image.open(image_file))[None]).numpy()[0]
    np.testing.assert_array_equal(np.asarray(Image.open(rec)), expected)
    out.write_bytes(out.read_bytes()[:-3])
    done = run("decompress", out, tmp_path / "x.png", "--model", directory)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("tfgc: error: truncated") and "Traceback" not in done.stderr
    assert run("compress").returncode == 2


@pytest.mark.slow
def test_models_by_name(trained, image_file, tmp_path, capsys, monkeypatch):
    """An installed name means that model's highest version, on the command line and in the Python API; a wrong name
    lists the installed ones."""
    import shutil

    import tfgc

    _, directory = trained
    installed = tmp_path / "installed"
    for version in ("2", "10"):  # 10 is the highest: versions compare as numbers, not strings
        shutil.copytree(directory, installed / "tiny-model" / version)
    monkeypatch.setenv("TFGC_MODEL_PATH", str(installed))
    assert tfgc.load_model("tiny-model").directory == installed / "tiny-model" / "10"
    assert tfgc.load_model("tiny-model/2").directory == installed / "tiny-model" / "2"
    assert tfgc.load_model(installed / "tiny-model").directory == installed / "tiny-model" / "10"
    out = tmp_path / "a.tfgc"
    assert main(["compress", str(image_file), str(out), "--model", "tiny-model", "-q"]) == 0
    assert main(["decompress", str(out), str(tmp_path / "r.png"), "--model", "tiny-model", "-q"]) == 0
    capsys.readouterr()
    assert main(["compress", str(image_file), str(tmp_path / "b.tfgc"), "--model", "tiny-modl"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no model 'tiny-modl'" in err and "tiny-model" in err.split("installed:")[1]
    with pytest.raises(tfgc.TfgcError, match="is a file, not a model"):
        tfgc.load_model(image_file)
    with pytest.raises(tfgc.TfgcError, match="no version folders"):
        tfgc.load_model(tmp_path)
    # Reports name an installed model by its path from the working folder when it lies inside it, not by the
    # machine's absolute path.
    import argparse

    from tfgc.__main__ import _resolve_models

    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(model=["tiny-model", "tiny-model/2"])
    _resolve_models(args)
    assert args.model == [str(Path("installed") / "tiny-model" / "10"), str(Path("installed") / "tiny-model" / "2")]


def _error_cases():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "error_latency", Path(__file__).resolve().parents[1] / "scripts" / "error_latency.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


_errors = _error_cases()


@pytest.fixture(scope="module")
def error_fixtures(tmp_path_factory):
    return _errors.make_fixtures(tmp_path_factory.mktemp("mistakes"))


@pytest.mark.parametrize("case", sorted(_errors.CASES))
def test_mistakes_are_refused_before_tensorflow_is_imported(case, error_fixtures, tmp_path):
    """Each mistake that needs no model's weights ends in one line and a non-zero exit without TensorFlow in the
    process (scripts/error_latency.py runs the same cases and prints how long each takes)."""
    code, imported, stderr, _ = _errors.run_case(_errors.CASES[case], error_fixtures, tmp_path)
    assert code != 0 and len(stderr.strip().splitlines()) == 1, stderr
    assert not imported, f"{case}: TensorFlow was imported before the error: {stderr}"


def test_help_and_version_speak_of_the_command_the_user_typed(capsys):
    import shutil

    import tfgc
    from tfgc import train

    for parse in (main, train.main):
        with pytest.raises(SystemExit) as exit_:
            parse(["--version"])
        assert exit_.value.code == 0
        assert capsys.readouterr().out.startswith(f"tfgc {tfgc.__version__} (tensorflow ")
    help_text = train.build_parser().format_help()
    assert "(default: None)" not in help_text and ") (default:" not in help_text
    assert "RATE_WEIGHT" not in help_text and "--beta BETA" in help_text
    for command in ("tfgc", "tfgc-train"):
        if shutil.which(command) is None:  # the console scripts exist once the package is installed
            continue
        done = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith(f"usage: {command} "), done.stdout[:200]
    for subcommand in ("compress", "decompress", "export", "info"):
        text = " ".join(main_help(subcommand).split())
        assert "--quiet" not in text or "print nothing but errors" in text
        assert "positional arguments: input .tfgc file" in text or subcommand != "info"


def main_help(subcommand: str) -> str:
    from tfgc.__main__ import build_parser

    parser = build_parser()
    return parser._subparsers._group_actions[0].choices[subcommand].format_help()
