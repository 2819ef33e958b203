"""The one strict cattrs converter (tao_automl.config.convert)."""

from __future__ import annotations

import attrs
import pytest

from tao_automl.config.convert import structure, unstructure
from tao_automl.errors import SettingsError, SkillError


@attrs.define
class Inner:
    x: int
    y: list[float] = attrs.Factory(list)
    on: bool = False


@attrs.define
class Outer:
    inner: Inner
    name: str = "n"


@pytest.mark.parametrize(("data", "key", "value"), [
    ({"inner": {"x": "3"}}, "run.inner.x", "3"),          # no str -> int coercion
    ({"inner": {"x": True}}, "run.inner.x", True),         # a bool is not an int
    ({"inner": {"x": 1, "y": [1, "a"]}}, "run.inner.y.1", "a"),
    ({"inner": {"x": 1, "on": 1}}, "run.inner.on", 1),     # an int is not a bool
    ({"inner": {"x": 1}, "nmae": "a"}, "run.nmae", "a"),   # unknown keys are refused
    ({"inner": {"x": 1}, "name": 5}, "run.name", 5),
])
def test_bad_input_names_file_key_and_value(data, key, value):
    with pytest.raises(SettingsError) as info:
        structure(data, Outer, file="cfg.yaml", key="run")
    err = info.value
    assert (err.file, err.key, err.value) == ("cfg.yaml", key, value)
    assert f"key '{key}'" in str(err) and "file 'cfg.yaml'" in str(err) and repr(value) in str(err)


def test_round_trip_and_error_class():
    obj = structure({"inner": {"x": 2, "y": [1, 2.5], "on": True}}, Outer)
    assert obj == Outer(inner=Inner(x=2, y=[1.0, 2.5], on=True))
    assert isinstance(obj.inner.y[0], float)
    assert unstructure(obj) == {"inner": {"x": 2, "y": [1.0, 2.5], "on": True}, "name": "n"}
    with pytest.raises(SkillError):
        structure({"inner": {}}, Outer, file="skill_info.yaml", error=SkillError)


def test_the_package_has_one_converter():
    """Every conversion goes through config.convert.converter: no module builds its own."""
    import re
    from pathlib import Path

    import tao_automl

    root = Path(tao_automl.__file__).parent
    makers = re.compile(r"cattrs\.(Converter|GenConverter|BaseConverter)\(|\bcattrs\.(un)?structure\(")
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if makers.search(p.read_text()))
    assert found == ["config/convert.py"]


def test_skill_classes_keep_unknown_keys_on_the_strict_converter(tmp_path):
    """The skill loader's hook files unknown skill_info keys under ``extra``
    (forbid_extra_keys does not refuse them) and still types the known ones."""
    from tao_automl.skill._convert import structure as skill_structure
    from tao_automl.skill.model import ActionInfo, SkillInfo

    info = skill_structure({"name": "s", "automl_enabled": True, "backend_selection": {"defaults": {}},
                            "actions": {"train": {"name": "train", "command": "t", "gpus": 2}}},
                           SkillInfo, file="skill_info.yaml")
    assert info.extra == {"backend_selection": {"defaults": {}}}
    assert info.actions["train"] == ActionInfo(name="train", command="t", extra={"gpus": 2})
    with pytest.raises(SkillError) as err:  # strict: "yes" is not a bool
        skill_structure({"name": "s", "automl_enabled": "yes"}, SkillInfo, file="skill_info.yaml")
    assert "file 'skill_info.yaml'" in str(err.value) and "automl_enabled" in str(err.value)
