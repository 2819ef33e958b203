"""Skill bundle loading: every real skill (bank + packaged) and synthetic ones."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from test_skill_helpers import (
    BANK_MODELS,
    BANK_VERSIONS,
    all_skill_dirs,
    skill_id,
    write_synthetic_skill,
)

from tao_automl.errors import SchemaGateError, SkillError
from tao_automl.skill import Execution, load_skill, parse_template_text, skill_info_json_schema

SKILLS = all_skill_dirs()


def test_bank_has_the_four_seed_skills():
    names = {p.name for p in SKILLS if p.is_relative_to(BANK_MODELS)}
    assert names == {"tao-finetune-cosmos-reason", "tao-train-action-recognition",
                     "tao-train-mask-auto-label", "tao-train-reid"}


@pytest.mark.parametrize("skill_dir", SKILLS, ids=skill_id)
def test_every_skill_loads_with_all_actions(skill_dir):
    b = load_skill(skill_dir)
    raw = yaml.safe_load((skill_dir / "references" / "skill_info.yaml").read_text())
    assert b.name == raw.get("name", skill_dir.name)
    assert b.info.automl_enabled is True
    assert set(b.info.actions) == set(raw["actions"])
    for name, act in b.info.actions.items():
        assert act.name == name and act.config_format in ("yaml", "json", "toml")
        assert b.template_path(name).is_file()
        t1, t2 = b.template(name), b.template(name)
        assert isinstance(t1, dict) and t1 and t1 == t2
        t1["__mutated__"] = 1
        assert "__mutated__" not in b.template(name)  # fresh deep copy each call
        assert b.container_image(name)
        if b.schema_path(name).is_file():
            assert b.schema(name).params
    # every top-level key is kept somewhere
    import attrs

    fields = {f.name for f in attrs.fields(type(b.info))}
    for key in raw:
        assert key in fields or key in b.info.extra, key
    assert b.schema("train").params
    assert b.manifest is None or isinstance(b.manifest, dict)


@pytest.mark.parametrize("skill_dir", SKILLS, ids=skill_id)
def test_versions_key_comment_kept(skill_dir):
    b = load_skill(skill_dir)
    text = (skill_dir / "references" / "skill_info.yaml").read_text()
    top = [ln for ln in text.splitlines() if ln.startswith("container_image:")]
    if top and "# versions-key:" in top[0]:
        assert b.info.container_image_key == top[0].split("# versions-key:")[1].strip()
        assert b.info.container_image == top[0].split(":", 1)[1].split("#")[0].strip()
    else:
        assert b.info.container_image_key is None


def test_cosmos_specifics():
    b = load_skill(BANK_MODELS / "tao-finetune-cosmos-reason")
    assert b.name == "tao-finetune-cosmos-reason"  # no `name` key: directory name
    assert b.info.spec_templates == {}  # convention path used
    assert b.template_path("train").name == "spec_template_train.yaml"
    assert b.info.actions["train"].config_format == "toml"
    assert b.template("train")["train"]["train_policy"]["type"] == "sft"  # YAML file parsed as YAML
    assert b.info.actions["evaluate"].automl_default_parameters[0] == "dataset.system_prompt"
    assert b.info.actions["evaluate"].extra["execution_contract"]["source"]
    assert "backend_contracts" in b.info.extra and "workflow_contract" in b.info.extra
    # image from the default backend of the action
    assert "cosmos-rl" in b.container_image("train")
    ds = b.info.data_sources["train"]["custom.train_dataset.media_path"]
    assert ds.path_from_format["*"] == "images.tar.gz" and ds.multiple_sources is False
    assert b.info.conditional_credentials and b.info.required_credentials == []
    assert b.info.node_spec_key == "policy.parallelism.dp_replicate_size"


def test_mal_templates_relative_to_references_and_data_sources():
    b = load_skill(BANK_MODELS / "tao-train-mask-auto-label")
    assert b.info.spec_templates["train"] == "../references/spec_template_train.yaml"
    assert b.template_path("train") == (BANK_MODELS / "tao-train-mask-auto-label/references/"
                                        "spec_template_train.yaml").resolve()
    src = b.info.data_sources["train"]["dataset.train_img_dir"]
    assert (src.source, src.path, src.runtime) == ("train_datasets", "images.tar.gz",
                                                   "extracted_folder")
    assert b.info.spec_params["train"]["results_dir"] == "output_dir"
    assert b.info.actions["train"].inputs["train.pretrained_model_path"].optional is True
    assert b.info.actions["train"].upload_excludes == ["inputs/"]
    assert b.info.spec_shorthand_keys["learning_rate"] == "train.lr"


def test_action_lookup_errors():
    b = load_skill(BANK_MODELS / "tao-train-reid")
    assert b.has_action("train") and not b.has_action("distill")
    with pytest.raises(SkillError, match="distill"):
        b.action("distill")
    with pytest.raises(SchemaGateError, match="distill.schema.json"):
        b.schema("distill")


def test_synthetic_skill_standard_schema(tmp_path):
    skill = write_synthetic_skill(tmp_path)
    b = load_skill(skill)
    assert b.name == "my-toy-regressor"
    act = b.action("train")
    assert act.command is None and act.execution == Execution(
        type="python_script", script="train.py", args=["--config", "{config_path}"], cwd=".")
    assert act.metric_file == "metrics.json" and act.extra == {"brand_new_action_key": {"x": 1}}
    assert b.info.extra["totally_unknown_top_key"] == [1, 2, 3]
    assert b.info.data_sources["train"]["data.train_csv"].extra == {"shard_hint": 3}
    assert b.info.metric == "val_rmse" and b.info.metric_direction == "minimize"
    assert b.template_path("train") == (skill / "templates" / "train.json").resolve()
    assert b.template("train")["optim"]["lr"] == 0.01
    assert b.container_image() == "python:3.11-slim" and b.info.container_image_key is None
    assert b.schema("train").params["optim.lr"].kind == "float"


def test_bare_versions_key_resolved_by_walking_up(tmp_path):
    b = load_skill(write_synthetic_skill(tmp_path, versions=True))
    assert b.info.container_image == "example.org/toy:1.0"
    assert b.info.container_image_key == "images.toolkit.cpu"
    assert b.versions_file == tmp_path / "versions.yaml"


def test_bare_versions_key_explicit_file_and_failures(tmp_path):
    skill = write_synthetic_skill(tmp_path / "a", versions=True)
    (tmp_path / "a" / "versions.yaml").unlink()
    b = load_skill(skill)  # no versions.yaml anywhere above (tmp_path is isolated enough)
    if b.versions_file is None:
        assert b.info.container_image is None and b.info.container_image_key == "toolkit.cpu"
        with pytest.raises(SkillError, match="toolkit.cpu"):
            b.container_image("train")
    other = tmp_path / "v.yaml"
    other.write_text("images:\n  toolkit:\n    cpu: reg.example/x:2\n")
    assert load_skill(skill, versions_file=other).container_image("train") == "reg.example/x:2"
    other.write_text("images: {}\n")
    with pytest.raises(SkillError, match="versions key not found"):
        load_skill(skill, versions_file=other)
    with pytest.raises(SkillError, match="versions file not found"):
        load_skill(skill, versions_file=tmp_path / "nope.yaml")


def test_bank_versions_yaml_resolves_legacy_key(tmp_path):
    # a copy of a real skill with the legacy bare key, resolved through the bank's versions.yaml
    src = BANK_MODELS / "tao-train-reid"
    dst = tmp_path / "reid"
    shutil.copytree(src, dst)
    info = dst / "references" / "skill_info.yaml"
    text = info.read_text().replace(
        "container_image: nvcr.io/nvidia/tao/tao-toolkit:7.1.0-pyt  # versions-key: images.tao_toolkit.pyt",
        "container_image: tao_toolkit.pyt")
    info.write_text(text)
    b = load_skill(dst, versions_file=BANK_VERSIONS)
    assert b.info.container_image == "nvcr.io/nvidia/tao/tao-toolkit:7.1.0-pyt"
    assert b.info.container_image_key == "images.tao_toolkit.pyt"


def _write_info(tmp_path, info):
    (tmp_path / "s" / "references").mkdir(parents=True, exist_ok=True)
    (tmp_path / "s" / "references" / "skill_info.yaml").write_text(yaml.safe_dump(info))
    return tmp_path / "s"


@pytest.mark.parametrize("info, key, value_part", [
    ({"actions": {"train": {"command": "x", "config_format": "xml"}}},
     "actions.train.config_format", "xml"),
    ({"actions": {"train": {"config_format": "yaml"}}}, "actions.train", "config_format"),
    ({"actions": {"train": {"command": "x"}}, "spec_shorthand_keys": {"lr": 3}},
     "spec_shorthand_keys.lr", "3"),
    ({"actions": {"train": {"command": "x", "execution": {"type": "python_script"}}}},
     "actions.train.execution", "python_script"),
    ({"name": "x"}, "<root>", "actions"),
    ({"actions": {"train": {"command": "x"}}, "automl_enabled": "yes"}, "automl_enabled", "yes"),
])
def test_skill_info_validation_names_file_key_value(tmp_path, info, key, value_part):
    with pytest.raises(SkillError) as ei:
        load_skill(_write_info(tmp_path, info))
    msg = str(ei.value)
    assert "skill_info.yaml" in msg and f"key '{key}'" in msg and value_part in msg


def test_skill_info_missing_or_broken(tmp_path):
    with pytest.raises(SkillError, match="skill_info.yaml is missing"):
        load_skill(tmp_path)
    d = _write_info(tmp_path, {})
    (d / "references" / "skill_info.yaml").write_text("a: [unclosed")
    with pytest.raises(SkillError, match="does not parse"):
        load_skill(d)
    (d / "references" / "skill_info.yaml").write_text("- a list\n")
    with pytest.raises(SkillError, match="not a mapping"):
        load_skill(d)


def test_json_schema_ships_as_package_data():
    s = skill_info_json_schema()
    assert s["required"] == ["actions"] and "$defs" in s


def test_template_formats_and_gate_errors(tmp_path):
    d = _write_info(tmp_path, {"actions": {"a": {"command": "x", "config_format": "toml"},
                                           "b": {"command": "y"}, "c": {"command": "z"},
                                           "d": {"command": "w"}}})
    refs = d / "references"
    (refs / "spec_template_a.toml").write_text('[train]\nlr = 0.1\n')
    (refs / "spec_template_b.json").write_text(json.dumps({"x": {"y": 1}}))
    (refs / "spec_template_c.yaml").write_text("[train]\nlr = 0.2\n")  # TOML inside .yaml
    b = load_skill(d)
    assert b.template("a") == {"train": {"lr": 0.1}}
    assert b.template("b") == {"x": {"y": 1}}
    assert b.template("c") == {"train": {"lr": 0.2}}
    with pytest.raises(SchemaGateError, match="spec_template_d"):
        b.template("d")
    (refs / "spec_template_d.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SchemaGateError, match="does not parse"):
        b.template("d")
    assert parse_template_text('{"a": 1}', suffix=".txt") == {"a": 1}


def test_schema_path_from_manifest(tmp_path):
    d = _write_info(tmp_path, {"actions": {"train": {"command": "x"}}})
    (d / "schemas").mkdir()
    (d / "schemas" / "custom_train.json").write_text(
        json.dumps({"properties": {"lr": {"type": "float", "default": 0.1}}}))
    (d / "schemas" / "manifest.json").write_text(
        json.dumps({"actions": {"train": {"path": "schemas/custom_train.json"}}}))
    b = load_skill(d)
    assert b.manifest["actions"]["train"]["path"] == "schemas/custom_train.json"
    assert b.schema("train").params["lr"].default == 0.1
    (d / "schemas" / "manifest.json").write_text("{oops")
    with pytest.raises(SkillError, match="manifest"):
        _ = load_skill(d).manifest
