"""Schema dialect parsing: real skill-bank/packaged schemas and synthetic ones."""

from __future__ import annotations

import json
import math

import pytest
from test_skill_helpers import all_skill_dirs, skill_id

from tao_automl.errors import SchemaGateError
from tao_automl.schema import KINDS, load_schema, parse_schema

SCHEMA_FILES = [p for d in all_skill_dirs() for p in sorted((d / "schemas").glob("*.schema.json"))]


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: f"{skill_id(p.parents[1])}/{p.name}")
def test_every_real_schema_parses(path):
    s = load_schema(path)
    assert s.params and s.source == str(path)
    assert all(p.kind in KINDS for p in s.params.values())
    # no non-dict entry of `properties` became a parameter
    assert "automl_disabled_parameters" not in s.params


def test_bare_infinity_is_accepted(tmp_path):
    f = tmp_path / "x.schema.json"
    f.write_text('{"properties": {"a": {"type": "int", "default": 3, "minimum": -Infinity, '
                 '"maximum": Infinity}, "b": {"type": "float", "default": NaN}}}')
    s = load_schema(f)
    assert s.params["a"].maximum == math.inf and s.params["a"].minimum == -math.inf
    assert s.params["a"].finite_maximum is None
    assert math.isnan(s.params["b"].default)


def test_missing_and_unparsable_schema_raise_gate_error(tmp_path):
    with pytest.raises(SchemaGateError, match="missing"):
        load_schema(tmp_path / "train.schema.json")
    bad = tmp_path / "bad.schema.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaGateError, match="bad.schema.json"):
        load_schema(bad)
    with pytest.raises(SchemaGateError, match="properties"):
        parse_schema({"type": "object"}, source="empty.json")


def _tao_doc():
    return {
        "type": "object",
        "automl_default_parameters": ["train.lr"],
        "automl_disabled_parameters": ["train", "model.frozen"],
        "popular": {"train": {"epochs": 10}},
        "properties": {
            "automl_disabled_parameters": ["train", "model"],
            "train": {"type": "collection", "automl_enabled": False,
                      "automl_default_parameters": ["train.opt.mom"],
                      "automl_disabled_parameters": ["wd"],
                      "properties": {
                          "lr": {"type": "float", "default": 0.1, "automl_enabled": True},
                          "wd": {"type": "float", "default": 0.1},
                          "epochs": {"type": "int", "default": 10},
                          "opt": {"type": "collection", "properties": {
                              "mom": {"type": "float", "default": 0.9}}},
                      }},
            "model": {"type": "collection", "popular": ["depth"], "properties": {
                "depth": {"type": "int", "default": 3},
                "frozen": {"type": "list_1_backbone", "default": [-1]},
                "choice": {"anyOf": [{"type": "integer"}, {"type": "number"}], "default": 2},
                "mixed": {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["a", "b"]}],
                          "default": True},
                "lr_or_list": {"anyOf": [{"type": "number"}, {"type": "array"}], "default": 1e-3},
                "cond": {"type": "int", "math_cond": "/ 2", "depends_on": "train.epochs, model.depth"},
                "nullable": {"type": ["integer", "null"], "default": None},
                "std_str_enum": {"type": "string", "enum": ["x", "y"]},
            }},
        },
    }


def test_tao_dialect_details():
    s = parse_schema(_tao_doc(), source="syn.json")
    # nested lists are merged; relative entries resolved against their collection
    assert s.default_parameters == ["train.lr", "train.opt.mom"]
    assert {"train", "model.frozen", "model", "train.wd"} <= s.disabled_parameters
    kinds = {k: p.kind for k, p in s.params.items()}
    assert kinds["model.choice"] == "int"
    assert kinds["model.mixed"] == "categorical"
    assert s.params["model.mixed"].enum == (True, False, "a", "b")
    assert kinds["model.lr_or_list"] == "float"
    assert kinds["model.nullable"] == "int"
    assert kinds["model.std_str_enum"] == "categorical"
    assert kinds["train"] == "collection" and kinds["model.frozen"] == "list_1_backbone"
    assert s.params["model.cond"].depends_on == ("train.epochs", "model.depth")
    assert {"train.epochs", "model.depth"} <= s.popular
    assert s.params["model.depth"].popular


def test_enabled_rules_exact_path_and_leaf_override():
    s = parse_schema(_tao_doc(), source="syn.json")
    # `train` disabled by list and by automl_enabled false ...
    assert s.is_disabled("train")
    # ... but a leaf's own automl_enabled: true wins
    assert not s.is_disabled("train.lr")
    # a collection's automl_enabled: false is not inherited by its leaves
    assert not s.is_disabled("train.epochs") and s.params["train.epochs"].automl_enabled
    assert s.disabled_reason("train") == "listed in automl_disabled_parameters"
    # a leaf's own false disables it
    s2 = parse_schema({"properties": {"a": {"type": "int", "automl_enabled": False}}})
    assert s2.is_disabled("a") and s2.disabled_reason("a") == "automl_enabled: false"
    # `model` is listed, yet lists apply by exact path only
    assert s.is_disabled("model") and not s.is_disabled("model.depth")
    assert s.disabled_reason("model.frozen") == "listed in automl_disabled_parameters"


def test_standard_json_schema_dialect():
    doc = {"type": "object", "properties": {
        "opt": {"type": "object", "properties": {
            "lr": {"type": "number", "default": 0.1, "automl_enabled": True},
            "steps": {"type": "integer", "default": 3},
            "flag": {"type": "boolean", "default": False},
            "tags": {"type": "array", "default": []}}}}}
    s = parse_schema(doc)
    assert [s.params[k].kind for k in ("opt", "opt.lr", "opt.steps", "opt.flag", "opt.tags")] == [
        "collection", "float", "int", "bool", "list"]
    assert s.params["opt.lr"].own_automl_enabled is True


def test_real_train_schemas_key_facts():
    from test_skill_helpers import BANK_MODELS

    cosmos = load_schema(BANK_MODELS / "tao-finetune-cosmos-reason/schemas/train.schema.json")
    assert cosmos.params["policy.lora.r"].math_cond == "^ 2"
    assert cosmos.params["train.optm_decay_type"].option_weights == (0.1, 0.1, 0.4, 0.4)
    assert cosmos.params["train.optm_warmup_epochs"].depends_on == ("train.epoch",)
    assert not cosmos.is_disabled("custom.vision.fps")  # leaf wins over disabled custom.vision
    reid = load_schema(BANK_MODELS / "tao-train-reid/schemas/train.schema.json")
    assert reid.params["train.optim.lr_steps"].kind == "list_2"
    assert "train" in reid.disabled_parameters and "train.optim.lr_steps" in reid.default_parameters
    assert json.dumps(sorted(reid.popular))  # popular paths are plain strings
