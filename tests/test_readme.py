"""The README and the guides as a reader meets them: the README's Python snippets run as written and print what the
README says they print; its first command prints the line it shows; every relative link of the README and of
docs/ leads to a file (and heading) that exists; no path of a developer's machine or issue number appears."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "CONTRIBUTING.md",
        *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "saved_models").rglob("*.md"))]


def _expected_output(code: str):
    """The lines a snippet says it prints: its comments that start with '# -> '."""
    return [line.split("# -> ", 1)[1] for line in code.splitlines() if line.lstrip().startswith("# -> ")]


@pytest.mark.parametrize("index", range(len(re.findall(r"```python\n", README))))
@pytest.mark.slow
def test_the_readme_python_snippets_run_as_written(index):
    code = re.findall(r"```python\n(.*?)```", README, re.S)[index]
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-3000:]
    expected = _expected_output(code)
    assert expected, "a README snippet should show what it prints"
    assert done.stdout.splitlines() == expected


def test_the_readme_first_command_prints_what_it_shows(tmp_path):
    pytest.importorskip("pillow_heif", reason="the default model (heic-x2) needs pillow-heif")
    block = re.search(r"## Compress a photograph.*?```sh\n(.*?)```", README, re.S).group(1)
    command, shown = block.splitlines()[:2]
    assert command.startswith("tfgc compress ") and shown.startswith("# ")
    (tmp_path / "tfgc").symlink_to(ROOT / "tfgc", target_is_directory=True)  # the paths are the repository's
    argv = [sys.executable, "-m", "tfgc", *command.split()[1:]]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == shown[2:]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"(?m)^#+ (.*)$", text)}


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_links_lead_somewhere(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    # docs/notes/ holds hand-written findings that the report commands append to docs/NAME.md: links from there
    base = path.parent.parent if path.parent.name == "notes" else path.parent
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        file, _, anchor = target.partition("#")
        linked = (base / file).resolve() if file else path
        assert linked.exists(), f"{path.relative_to(ROOT)} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{path.relative_to(ROOT)} links to {target}: no such heading"


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_no_machine_paths_or_issue_numbers(path):
    text = path.read_text()
    for pattern in (r"/work/", r"\.\./shared", r"(?i)\bissues? #?\d+", r"/home/\w+", r"/tmp/"):
        assert not re.search(pattern, text), f"{path.relative_to(ROOT)} contains {pattern}"
