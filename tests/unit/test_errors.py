"""AutoMLError builds its message from its fields (issue 13) and every error
class survives pickling (Ray ships them between processes)."""

from __future__ import annotations

import pickle

import pytest

from tao_automl import errors
from tao_automl.errors import AutoMLError, LLMError, SettingsError, describe

CLASSES = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]


def test_message_is_describe_of_the_fields():
    err = SettingsError("invalid setting", file="plan.yaml", key="seed", value="x", expected="an integer",
                        hint="see RANGES")
    assert str(err) == describe("invalid setting", file="plan.yaml", key="seed", value="x",
                                expected="an integer", hint="see RANGES")
    assert str(err) == ("invalid setting: file 'plan.yaml', key 'seed', value 'x'; expected an integer "
                        "(see RANGES)")
    assert (err.problem, err.file, err.key, err.value, err.expected, err.hint) == \
        ("invalid setting", "plan.yaml", "seed", "x", "an integer", "see RANGES")


def test_value_unset_is_not_shown_but_none_is():
    assert str(SettingsError("bad", key="k")) == "bad: key 'k'"
    assert SettingsError("bad", key="k").value is None
    assert str(SettingsError("bad", key="k", value=None)) == "bad: key 'k', value None"
    assert str(errors.PlatformError("docker unreachable")) == "docker unreachable"  # no fields


def test_from_message_keeps_the_text_and_sets_the_fields():
    err = SettingsError.from_message("two problems: a; b", key="automl_settings.x", value=3)
    assert str(err) == "two problems: a; b" and (err.key, err.value) == ("automl_settings.x", 3)
    llm = LLMError.from_message("no reply", endpoint="http://h", model="m", key="k")
    assert str(llm) == "no reply" and (llm.endpoint, llm.model, llm.key) == ("http://h", "m", "k")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_pickles_with_message_and_fields(cls):
    assert issubclass(cls, AutoMLError)
    err = cls("it failed", file="f.yaml", key="a.b", value=[1, 2], expected="something", hint="h")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == str(err) and back.args == err.args
    assert {k: getattr(back, k) for k in ("problem", "file", "key", "value", "expected", "hint")} == \
        {"problem": "it failed", "file": "f.yaml", "key": "a.b", "value": [1, 2], "expected": "something",
         "hint": "h"}


def test_llm_error_and_renamed_errors_pickle():
    err = LLMError("endpoint failed", endpoint="http://h/v1", model="m", cause="timeout", key="llm_endpoint")
    back = pickle.loads(pickle.dumps(err))
    assert (str(back), back.endpoint, back.model, back.cause, back.key) == \
        (str(err), "http://h/v1", "m", "timeout", "llm_endpoint")
    # name_as_written rewrites key and message in place: the pickled copy keeps the rewrite
    from tao_automl.config.settings import name_as_written, written_keys

    renamed = name_as_written(SettingsError("invalid setting", key="automl_settings.max_recommendations",
                                            value=0), written_keys({"num_trials": 0}))
    back = pickle.loads(pickle.dumps(renamed))
    assert str(back) == str(renamed) and back.key == renamed.key == "automl_settings.num_trials"
    assert "(max_recommendations)" in str(back)


def test_no_error_is_built_from_a_ready_describe_message():
    """``X(describe("p", key=k), key=k)`` would now show the fields twice:
    every site passes the fields to the error itself (or uses from_message)."""
    import ast
    from pathlib import Path

    import tao_automl

    names = {c.__name__ for c in CLASSES} | {"TrialFailed", "error", "err", "cls"}
    found = []
    for path in Path(tao_automl.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Call) \
                    and getattr(node.args[0].func, "id", None) == "describe" \
                    and getattr(node.func, "id", getattr(node.func, "attr", None)) in names:
                found.append(f"{path.name}:{node.lineno}")
    assert found == []
