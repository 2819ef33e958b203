"""pytest imports test modules by basename (rootdir-relative, no packages): two
test files with one name in different folders stop collection with "import
file mismatch" for the whole suite.  Keep every test module's name unique."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_names_are_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1], names.most_common(3)
