"""Reading and writing spec files: YAML, JSON, TOML, local paths and fsspec URIs."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pytest
import yaml

from tao_automl.errors import SpecError
from tao_automl.spec.templates import (
    drop_none_leaves,
    dump_spec,
    format_for,
    load_spec_file,
    none_leaves,
    parse_spec_text,
    write_spec,
)

SPEC = {
    "train": {"num_epochs": 3, "lr": 1e-4, "gpu_ids": [0, 1], "amp": True,
              "optim": {"betas": [0.9, 0.999], "name": "adamw"}},
    "dataset": {"label_map": {"walk": 0, "run": 1}},
    "results_dir": "/results/x",
}

# The packaged skills' templates are byte-identical copies of the skill bank's.
PACKAGED = Path(__file__).resolve().parents[2] / "skills"


@pytest.mark.parametrize("fmt,suffix", [("yaml", ".yaml"), ("json", ".json"), ("toml", ".toml")])
def test_round_trip_each_format(tmp_path, fmt, suffix):
    path = tmp_path / "sub" / f"spec{suffix}"
    written = write_spec(SPEC, path)
    assert written == str(path) and path.exists()
    assert load_spec_file(path) == SPEC
    text = path.read_text()
    parsed = {"yaml": yaml.safe_load, "json": json.loads, "toml": tomllib.loads}[fmt](text)
    assert parsed == SPEC
    if fmt != "toml":  # TOML writes top-level scalars before tables
        assert list(parsed) == list(SPEC)  # key order kept


def test_explicit_format_overrides_suffix(tmp_path):
    path = tmp_path / "config_path"  # TAO passes {config_path} without a suffix sometimes
    write_spec(SPEC, path, "toml")
    assert tomllib.loads(path.read_text()) == SPEC
    assert load_spec_file(path, "toml") == SPEC
    with pytest.raises(SpecError, match="cannot infer spec format"):
        load_spec_file(path)


def test_format_names():
    assert format_for("a.yml") == "yaml" and format_for("x", "YML") == "yaml"
    with pytest.raises(SpecError, match="unknown spec format"):
        format_for("a.yaml", "ini")


def test_toml_none_raises_naming_the_key():
    with pytest.raises(SpecError) as exc:
        dump_spec({"vision": {"fps": None}}, "toml")
    assert "vision.fps" in str(exc.value) and "TOML" in str(exc.value)
    with pytest.raises(SpecError, match=r"a\[1\]"):
        dump_spec({"a": [1, None]}, "toml")
    # YAML and JSON hold null fine
    assert yaml.safe_load(dump_spec({"a": None}, "yaml")) == {"a": None}
    assert json.loads(dump_spec({"a": None}, "json")) == {"a": None}


def test_none_leaves_and_drop():
    spec = {"a": None, "b": {"c": None, "d": 1}, "l": [None, 2]}
    paths = none_leaves(spec)
    assert set(paths) == {("a",), ("b", "c"), ("l", 0)}
    dropped = drop_none_leaves(spec, paths)
    assert sorted(dropped) == ["a", "b.c"]  # list items are not dropped (indices would shift)
    assert spec == {"b": {"d": 1}, "l": [None, 2]}


def test_json_infinity_and_tuples():
    text = dump_spec({"x": math.inf, "t": (1, 2)}, "json")
    assert json.loads(text) == {"x": math.inf, "t": [1, 2]}
    assert parse_spec_text('{"max": Infinity}', "json") == {"max": math.inf}
    assert yaml.safe_load(dump_spec({"t": (1, 2)}, "yaml")) == {"t": [1, 2]}


def test_unwritable_values_name_the_key():
    with pytest.raises(SpecError, match="train.cb"):
        dump_spec({"train": {"cb": object()}}, "yaml")


@pytest.mark.parametrize("text,fmt", [("a: [1", "yaml"), ("{", "json"), ("a = ", "toml"),
                                      ("- 1\n- 2\n", "yaml")])
def test_parse_errors_are_spec_errors(tmp_path, text, fmt):
    path = tmp_path / f"bad.{fmt}"
    path.write_text(text)
    with pytest.raises(SpecError) as exc:
        load_spec_file(path)
    assert str(path) in str(exc.value)


def test_empty_file_is_empty_spec(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("")
    assert load_spec_file(path) == {}


def test_missing_file_is_spec_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec_file(tmp_path / "nope.yaml")


def test_fsspec_uri_write_and_read():
    uri = "memory://tao-automl-test/specs/train.toml"
    assert write_spec(SPEC, uri) == uri
    assert load_spec_file(uri) == SPEC
    import fsspec

    with fsspec.open(uri, "rb") as fh:
        assert tomllib.load(fh) == SPEC


@pytest.mark.parametrize("template", sorted(PACKAGED.glob("*/references/spec_template_*.yaml")),
                         ids=lambda p: f"{p.parents[2].name}/{p.parents[1].name}/{p.name}")
def test_every_bank_template_loads_and_rewrites(tmp_path, template):
    spec = load_spec_file(template)
    assert spec == yaml.safe_load(template.read_text())
    out = tmp_path / "s.yaml"
    write_spec(spec, out)
    assert load_spec_file(out) == spec
