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
