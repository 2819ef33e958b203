"""SpecBuilder: layer precedence, missing data, TOML nulls, real skills end to end."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tao_automl.errors import AutoMLError, SpecError
from tao_automl.spec import SpecBuilder, SpecParamContext, load_spec_file

REPO = Path(__file__).resolve().parents[2]
# The packaged skills are byte-identical copies of the skill bank's (test_packaged_skills.py).
ROOTS = [REPO / "skills"]


class FakeSkill:
    """Duck-typed SkillBundle with only what SpecBuilder reads."""

    def __init__(self, template, *, fmt="yaml", data_sources=None, spec_params=None,
                 key_defaults=None, shorthand=None, inputs=None):
        self._template = template
        self.info = SimpleNamespace(
            name="fake", data_format="default", actions={"train": None},
            data_sources={"train": data_sources or {}}, spec_params={"train": spec_params or {}},
            key_defaults=key_defaults or {}, spec_shorthand_keys=shorthand or {})
        self._action = SimpleNamespace(name="train", config_format=fmt, inputs=inputs or {})

    def template(self, action):
        return copy.deepcopy(self._template)

    def action(self, name):
        if name != "train":
            raise AutoMLError(f"no action {name}")
        return self._action


TEMPLATE = {"a": 0, "b": 0, "c": 0, "d": 0, "e": 0, "results_dir": "", "ds": {"img": ""}}


def _layered():
    return FakeSkill(
        TEMPLATE,
        key_defaults={"a": 1, "b": 1, "c": 1, "d": 1, "e": 1},
        data_sources={"b": {"source": "train_datasets", "path": "b"},
                      "c": {"source": "train_datasets", "path": "c"},
                      "ds.img": {"source": "train_datasets", "path": "img.tar.gz",
                                 "runtime": "extracted_folder"}},
        spec_params={"c": "create_onnx_file", "results_dir": "output_dir", "d": "lit"},
        shorthand={"alias_e": "e"},
    )


def test_precedence_of_layers():
    built = SpecBuilder(_layered(), "train").build(
        overrides={"d": "user"}, hyperparameters={"alias_e": 0.5},
        dataset_uris={"train_datasets": "/data"},
        context=SpecParamContext(action="train", output_dir="/out"))
    spec = built.spec
    assert spec["a"] == 1  # key_defaults over template
    assert spec["b"] == "/data/b"  # data sources over key_defaults
    assert spec["c"] == "/out/model.onnx"  # spec_params over data sources
    assert spec["d"] == "user"  # user overrides: spec param 'd' skipped entirely
    assert spec["e"] == 0.5  # hyperparameters (through an alias) over everything
    assert built.origins == {"a": "key_defaults", "b": "data_sources", "c": "spec_params",
                             "d": "overrides", "e": "hyperparameters",
                             "results_dir": "spec_params", "ds.img": "data_sources"}
    assert built.applied["c"] == "/out/model.onnx" and built.applied["e"] == 0.5
    assert built.archives == {"ds.img": "/data/img.tar.gz"}
    assert built.missing_data == []
    assert "alias_e" not in spec


def test_user_override_wins_over_data_source_without_evaluating_it():
    built = SpecBuilder(_layered(), "train").build(
        overrides={"b": "/mine", "ds.img": "/extracted/img"},
        context=SpecParamContext(output_dir="/o"))
    assert built.spec["b"] == "/mine" and built.spec["ds"]["img"] == "/extracted/img"
    assert built.missing_data == ["c"]  # only the source-less key not overridden
    assert built.archives == {}


def test_hyperparameter_replacing_user_override_is_noted():
    built = SpecBuilder(_layered(), "train").build(overrides={"e": 1}, hyperparameters={"e": 2})
    assert built.spec["e"] == 2
    assert any("replaces the user override" in n for n in built.notes)


def test_alias_conflict_inside_overrides_raises():
    with pytest.raises(SpecError, match="conflicting"):
        SpecBuilder(_layered(), "train").build(overrides={"alias_e": 1, "e": 2})


def test_missing_data_strict_and_lenient():
    builder = SpecBuilder(_layered(), "train")
    built = builder.build(context=SpecParamContext())
    assert built.missing_data == ["b", "c", "ds.img", "results_dir"]
    with pytest.raises(SpecError) as exc:
        builder.build(context=SpecParamContext(), strict=True)
    for key in ("b", "ds.img", "results_dir"):
        assert key in str(exc.value)


def test_no_context_skips_spec_params_with_a_note():
    built = SpecBuilder(_layered(), "train").build(dataset_uris={"train_datasets": "/d"})
    assert built.spec["results_dir"] == "" and built.spec["c"] == "/d/c"
    assert any("no spec_params context" in n and "results_dir" in n for n in built.notes)


def test_declared_empty_inputs_are_missing():
    skill = FakeSkill({"ds": {"train_dir": "", "ptm": ""}},
                      inputs={"ds.train_dir": SimpleNamespace(optional=False),
                              "ds.ptm": {"optional": True}})
    built = SpecBuilder(skill, "train").build()
    assert built.missing_data == ["ds.train_dir"]
    assert SpecBuilder(skill, "train").build(overrides={"ds.train_dir": "/x"}).missing_data == []


def test_new_keys_are_noted_and_nested():
    built = SpecBuilder(FakeSkill({"a": 1}), "train").build(overrides={"x.y[0].z": 3})
    assert built.spec == {"a": 1, "x": {"y": [{"z": 3}]}}
    assert any("not in the template" in n for n in built.notes)


def test_toml_template_null_dropped_with_note_but_layer_null_raises(tmp_path):
    skill = FakeSkill({"num_frames": None, "fps": 2, "v": {"n": None}}, fmt="toml")
    built = SpecBuilder(skill, "train").build(overrides={"v.n": 4})
    assert built.spec == {"fps": 2, "v": {"n": 4}}
    assert any("num_frames" in n and "TOML" in n for n in built.notes)
    out = SpecBuilder(skill, "train").write(built, str(tmp_path / "spec.toml"))
    assert tomllib.loads(Path(out).read_text()) == {"fps": 2, "v": {"n": 4}}
    with pytest.raises(SpecError) as exc:
        SpecBuilder(skill, "train").build(overrides={"fps": None})
    assert "fps" in str(exc.value)
    # YAML keeps nulls
    yskill = FakeSkill({"num_frames": None})
    assert SpecBuilder(yskill, "train").build().spec == {"num_frames": None}


def test_unknown_action_raises():
    with pytest.raises(AutoMLError):
        SpecBuilder(FakeSkill({}), "export")


# ------------------------------------------------------------------ real skills
load_skill = pytest.importorskip("tao_automl.skill").load_skill


class Provider:
    def __init__(self, **t):
        self.t = t

    def resolve(self, kind):
        return self.t.get(kind)


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: "packaged" if p.parent == REPO else "bank")
def test_reid_train_end_to_end(root, tmp_path):
    skill = load_skill(root / "tao-train-reid")
    builder = SpecBuilder(skill, "train")
    built = builder.build(
        overrides={"num_epochs": 3, "dataset.num_classes": 100, "batch_size": 16},
        hyperparameters={"train.optim.base_lr": 0.001},
        dataset_uris={"train_datasets": "s3://bucket/reid"},
        context=SpecParamContext(action="train", output_dir="/results/t1",
                                 ptm="/ptm/resnet50.pth", encryption_key_env="TAO_KEY"),
        strict=True)
    s = built.spec
    assert s["train"]["num_epochs"] == 3 and s["dataset"]["batch_size"] == 16
    assert s["train"]["optim"]["base_lr"] == 0.001
    assert s["dataset"]["train_dataset_dir"] == "s3://bucket/reid/sample_train.tar.gz"
    assert s["model"]["pretrained_model_path"] == "/ptm/resnet50.pth"
    assert s["results_dir"] == "/results/t1"
    assert s["encryption_key"] == "${oc.env:TAO_KEY}"
    assert s["train"]["resume_training_checkpoint_path"] == ""  # not resuming: template kept
    assert built.missing_data == []
    out = builder.write(built, str(tmp_path / "spec.yaml"))
    assert yaml.safe_load(Path(out).read_text()) == s
    assert list(s) == list(skill.template("train"))  # no new top-level (dotted) keys


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: "packaged" if p.parent == REPO else "bank")
def test_reid_evaluate_uses_provider(root):
    skill = load_skill(root / "tao-train-reid")
    built = SpecBuilder(skill, "evaluate").build(
        dataset_uris={"train_datasets": "/d"},
        context=SpecParamContext(action="evaluate", output_dir="/r/e1",
                                 checkpoint_resolver=Provider(parent_model="/r/t/model_epoch_009.pth")))
    ev = built.spec["evaluate"]
    assert ev["checkpoint"] == "/r/t/model_epoch_009.pth"
    assert ev["output_cmc_curve_plot"] == "/r/e1/cmc_curve.png"
    assert ev["output_sampled_matches_plot"] == "/r/e1/sampled_matches.png"
    assert ev["test_dataset"] == "/d/sample_test.tar.gz"
    no_parent = SpecBuilder(skill, "evaluate").build(
        dataset_uris={"train_datasets": "/d"}, context=SpecParamContext(output_dir="/r"))
    assert no_parent.missing_data == ["evaluate.checkpoint"]


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: "packaged" if p.parent == REPO else "bank")
def test_cosmos_train_writes_toml(root, tmp_path):
    skill = load_skill(root / "tao-finetune-cosmos-reason")
    builder = SpecBuilder(skill, "train")
    assert builder.config_format == "toml"
    built = builder.build(
        overrides={"mini_batch": 2, "batch_size": 4, "policy.model_max_length": 40960},
        dataset_uris={"train_datasets": "s3://b/train", "eval_dataset": "s3://b/val"},
        placeholders={"train_dataset_annotation": "annotations.json",
                      "eval_dataset_annotation": "annotations.json"},
        context=SpecParamContext(action="train", output_dir="s3://b/runs/t1"), strict=True)
    s = built.spec
    assert s["train"]["train_policy"]["mini_batch"] == 2
    assert s["train"]["train_batch_per_replica"] == 4
    assert s["train"]["output_dir"] == "s3://b/runs/t1"
    assert s["custom"]["train_dataset"]["annotation_path"] == "s3://b/train/annotations.json"
    assert s["custom"]["val_dataset"]["media_path"] == "s3://b/val/images.tar.gz"
    path = builder.write(built, str(tmp_path / "cfg.toml"))
    assert tomllib.loads(Path(path).read_text()) == s
    with pytest.raises(SpecError, match="custom.train_dataset.annotation_path"):
        builder.build(dataset_uris={"train_datasets": "/t", "eval_dataset": "/v"},
                      context=SpecParamContext(output_dir="/o"), strict=True)


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: "packaged" if p.parent == REPO else "bank")
def test_cosmos_inference_null_template_value_dropped(root, tmp_path):
    skill = load_skill(root / "tao-finetune-cosmos-reason")
    builder = SpecBuilder(skill, "inference")
    built = builder.build(dataset_uris={"inference_dataset": "/inf"},
                          context=SpecParamContext(output_dir="/o", parent_folder="/ckpt/epoch_2"))
    assert "num_frames" not in built.spec
    assert built.spec["model_path"] == "/ckpt/epoch_2" and built.spec["media"] == "/inf/videos.tar.gz"
    assert load_spec_file(builder.write(built, str(tmp_path / "i.toml"))) == built.spec


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: "packaged" if p.parent == REPO else "bank")
def test_mal_and_action_recognition(root, tmp_path):
    mal = load_skill(root / "tao-train-mask-auto-label")
    built = SpecBuilder(mal, "inference").build(
        dataset_uris={"inference_dataset": "/i"},
        context=SpecParamContext(output_dir="/o", parent_checkpoint="/t/mal.pth"), strict=True)
    assert built.spec["inference"]["label_dump_path"] == "/o/inference_results.json"
    assert built.spec["inference"]["img_dir"] == "/i/images.tar.gz"
    ar = load_skill(root / "tao-train-action-recognition")
    b = SpecBuilder(ar, "train").build(context=SpecParamContext(output_dir="/o"))
    assert b.missing_data == ["dataset.train_dataset_dir", "dataset.val_dataset_dir"]
    ok = SpecBuilder(ar, "train").build(
        overrides={"dataset.train_dataset_dir": "/x/train", "dataset.val_dataset_dir": "/x/test",
                   "dataset.label_map": {"catch": 0, "smile": 1}},
        context=SpecParamContext(output_dir="/o"), strict=True)
    assert ok.spec["dataset"]["label_map"] == {"catch": 0, "smile": 1}
    out = tmp_path / "ar_spec"  # the action's config_format decides, not the suffix
    SpecBuilder(ar, "train").write(ok.spec, str(out))
    assert yaml.safe_load(out.read_text()) == ok.spec
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.read_text())


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: "packaged" if p.parent == REPO else "bank")
def test_encryption_key_template_env_ref_or_user(root, monkeypatch):
    monkeypatch.setenv("TAO_KEY", "never-in-spec")
    skill = load_skill(root / "tao-train-reid")
    uris = {"train_datasets": "/d"}
    plain = SpecBuilder(skill, "export").build(
        dataset_uris=uris, context=SpecParamContext(output_dir="/o", parent_checkpoint="/c"))
    assert plain.spec["encryption_key"] == skill.template("export")["encryption_key"]
    ref = SpecBuilder(skill, "export").build(
        dataset_uris=uris, context=SpecParamContext(output_dir="/o", parent_checkpoint="/c",
                                                    encryption_key_env="TAO_KEY"))
    assert ref.spec["encryption_key"] == "${oc.env:TAO_KEY}"
    assert "never-in-spec" not in repr(ref)
    user = SpecBuilder(skill, "export").build(
        overrides={"encryption_key": "${oc.env:OTHER}"}, dataset_uris=uris,
        context=SpecParamContext(output_dir="/o", parent_checkpoint="/c",
                                 encryption_key_env="TAO_KEY"))
    assert user.spec["encryption_key"] == "${oc.env:OTHER}"
    assert user.origins["encryption_key"] == "overrides"
