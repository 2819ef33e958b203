"""Trials parse the skill once per worker process, and again when it changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tao_automl.execution.trial import _skill

SKILL = Path(__file__).resolve().parents[2] / "benchmarks" / "objective_skill"


def test_skill_parsed_once_and_again_after_an_edit(tmp_path: Path) -> None:
    skill_dir = tmp_path / "skill"
    shutil.copytree(SKILL, skill_dir)
    first = _skill(str(skill_dir))
    assert _skill(str(skill_dir)) is first
    assert first.template("train")["objective"]["function"] == "branin"
    info = skill_dir / "references" / "skill_info.yaml"
    info.write_text(info.read_text().replace("name: bench-objective", "name: bench-objective-2"))
    st = info.stat()
    os.utime(info, (st.st_atime, st.st_mtime + 5))
    second = _skill(str(skill_dir))
    assert second is not first
    assert second.name == "bench-objective-2"


def test_missing_skill_info_is_not_cached(tmp_path: Path) -> None:
    import pytest

    from tao_automl.errors import AutoMLError

    with pytest.raises(AutoMLError):
        _skill(str(tmp_path / "nowhere"))
