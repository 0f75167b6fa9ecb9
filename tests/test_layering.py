"""The package's layers keep their rules, read from the source (every import, at module level or inside a
function): building blocks (tfgc.nn) import neither models nor the codec; models (tfgc.models) never import the codec
or the tools; the codec (tfgc.codec) never imports the tools; input data (tfgc.data) imports neither networks, models
nor the tools; the shared base (config, errors, utils) imports none of them. The tools are the command lines and
reports on top."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tfgc"
TOOLS = ("tfgc.__main__", "tfgc.train", "tfgc.reports", "tfgc.export", "tfgc.fuzz", "tfgc.scenes", "tfgc.training")
RULES = {
    "tfgc/nn": ("tfgc.models", "tfgc.codec") + TOOLS,
    "tfgc/models": ("tfgc.codec",) + TOOLS,
    "tfgc/codec": TOOLS,
    "tfgc/data": ("tfgc.nn", "tfgc.models") + TOOLS,
    "tfgc/config.py": ("tfgc.nn", "tfgc.models", "tfgc.codec") + TOOLS,
    "tfgc/errors.py": ("tfgc.nn", "tfgc.models", "tfgc.codec") + TOOLS,
    "tfgc/utils.py": ("tfgc.nn", "tfgc.models", "tfgc.codec") + TOOLS,
}


def imported_modules(path: Path):
    """Every tfgc module `path` imports, with the line of each import."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:  # `from tfgc import export` imports the module tfgc.export
                yield f"{node.module}.{alias.name}", node.lineno


def _files(scope: str):
    path = PACKAGE.parent / scope
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("scope", sorted(RULES))
def test_layers_import_only_what_their_rules_allow(scope):
    forbidden = RULES[scope]
    found = []
    for path in _files(scope):
        for module, line in imported_modules(path):
            if any(_is_under(module, prefix) for prefix in forbidden):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not found, "\n".join(found)


def test_the_code_passes_ruff():
    """The checks pre-commit runs (.pre-commit-config.yaml, settings in pyproject.toml)."""
    import shutil
    import subprocess

    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the test extra: pip install -e '.[test]')")
    done = subprocess.run([ruff, "check", "tfgc", "tests", "scripts"], cwd=PACKAGE.parent, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_reader_sees_imports_inside_functions_too(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("import os\n\ndef f():\n    from tfgc.codec import sr\n    import tfgc.train\n")
    assert {m for m, _ in imported_modules(source)} >= {"tfgc.codec", "tfgc.codec.sr", "tfgc.train"}
