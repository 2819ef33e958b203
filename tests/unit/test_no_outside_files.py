"""Tests, examples, nox and CI use only files inside the repository.

A fresh clone has nothing beside it: a test that reads the skill bank from a
folder beside the CI checkout passes in CI and fails on every user's
machine. The packaged ``skills/`` copies and ``tests/fixtures/`` are what
tests may read instead. ``.ci/run`` also runs the test suite in a fresh clone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKED = ("tests", "examples", "noxfile.py", ".ci")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".nox", ".ci-venv", ".venv"}

# The patterns are spelled in pieces so this file does not match itself.
_SHARED = "sha" + "red"
PATTERNS = [
    re.compile(r"\.\.[/\\]+" + _SHARED + r"\b"),   # the folder beside the checkout
    re.compile(r"[/(,]\s*[\"']" + _SHARED + r"[\"']"),  # joined as a path component
    re.compile(r"[\"']" + _SHARED + r"[\"']\s*/"),
    re.compile(r"\b(?:REPO|ROOT)\.parent\b"),                          # above the repository root
]
_PARENTS = re.compile(r"__file__.*?\.parents\[(\d+)\]")


def _files() -> list[Path]:
    out = []
    for name in CHECKED:
        top = REPO / name
        paths = [top] if top.is_file() else sorted(top.rglob("*"))
        out += [p for p in paths if p.is_file() and not SKIP_DIRS & set(p.relative_to(REPO).parts)]
    return out


def offences(rel: Path, text: str) -> list[str]:
    """Lines of ``text`` (a file at ``rel`` in the repository) that reach outside it."""
    found = []
    for no, line in enumerate(text.splitlines(), 1):
        hit = any(p.search(line) for p in PATTERNS)
        # Path(__file__).parents[k] leaves the repository when k >= the file's depth
        hit = hit or any(int(k) >= len(rel.parts) for k in _PARENTS.findall(line))
        if hit:
            found.append(f"{rel}:{no}: {line.strip()}")
    return found


def test_the_detector_catches_what_it_should():
    bad = [  # {S}, {D}, {R}, {F}: spelled in pieces so this file does not match itself
        'BANK = {R} / "x"',
        'BANK = {R} / "{S}" / "tao-skill-bank"',
        'BANK = MODELS / "{S}" / "tao-skill-bank"',
        'BANK = Path({F}).resolve().parents[3] / "x" / "models"',
        'cp -r {D}/{S}/tao-skill-bank skills',
        'os.path.join(root, "{S}", "tao-skill-bank")',
    ]
    for line in bad:
        line = line.format(S=_SHARED, D="..", R="REPO" + ".parent", F="__" + "file__")
        assert offences(Path("tests/unit/t.py"), line), line
    good = [
        'REPO = Path(__file__).resolve().parents[2]',
        'workspace_dir: /shared/automl_workspace',
        '# a filesystem shared by the login and compute nodes',
        'assert "shared cause" in res["stopped_early"]',
    ]
    for line in good:
        assert not offences(Path("tests/unit/t.py"), line), line
    assert offences(Path("tests/t.py"), "Path(__" + "file__).parents[2]")


def test_nothing_reads_outside_the_repository():
    files = _files()
    assert any(p.name == "run" for p in files) and any(p.name == "noxfile.py" for p in files)
    assert len(files) > 50, "the walk found the test files"
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary fixture
        found += offences(path.relative_to(REPO), text)
    if found:
        pytest.fail("files outside the repository are referenced (a fresh clone has nothing "
                    "beside it; use skills/ or tests/fixtures/):\n" + "\n".join(found))
