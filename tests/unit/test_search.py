"""Schema-gated search spaces over every real skill and synthetic schemas."""

from __future__ import annotations

import json
import math
import random

import pytest
from test_skill_helpers import BANK_MODELS, all_skill_dirs, skill_id, write_synthetic_skill

from tao_automl.errors import SearchSpaceError
from tao_automl.schema import parse_schema
from tao_automl.search import (
    Constraint,
    SearchSpace,
    build_search_space,
    constraints_from_skill,
    derive_range,
    parse_math_cond,
)
from tao_automl.skill import load_skill

SKILLS = all_skill_dirs()


def _space(name, **kw):
    b = load_skill(BANK_MODELS / name)
    return build_search_space(b.schema("train"), b.template("train"), skill_name=b.name, **kw)


@pytest.mark.parametrize("skill_dir", SKILLS, ids=skill_id)
def test_default_space_is_sensible_for_every_real_skill(skill_dir):
    b = load_skill(skill_dir)
    schema = b.schema("train")
    space = build_search_space(schema, b.template("train"), skill_name=b.name)
    assert space.params, space.excluded
    # every schema default parameter is either searched or excluded with a reason
    assert set(space.names) | set(space.excluded) == set(schema.default_parameters)
    assert all(isinstance(r, str) and r for r in space.excluded.values())
    rng = random.Random(7)
    for _ in range(50):
        values = space.decode(space.sample(rng))
        assert set(values) == set(space.names)
        for p in space.params:
            assert p.contains(values[p.name]), (p, values[p.name])
    rows = space.review_rows()
    assert [r["name"] for r in rows] == space.names
    for r in rows:
        assert {"name", "type", "default", "log"} <= set(r)
        assert "options" in r or ("minimum" in r and "maximum" in r)
        assert all(math.isfinite(r[k]) for k in ("minimum", "maximum") if k in r)
    assert SearchSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space
    ray = space.to_ray()
    assert set(ray) == {k for p in space.params for k in p.keys()}


def test_cosmos_default_space():
    s = _space("tao-finetune-cosmos-reason")
    assert s.names == ["train.optm_decay_type", "train.epoch", "policy.lora.r",
                       "policy.lora.lora_alpha", "train.optm_lr", "policy.lora.lora_dropout"]
    assert "nframes" in s.excluded["custom.vision.fps"]
    lr = s.param("train.optm_lr")
    assert (lr.low, lr.high, lr.log) == (1e-7, 1e-5, True) and "derived" in lr.note
    r = s.param("policy.lora.r")
    assert (r.encoding, r.low, r.high) == ("pow2", 1, 256)
    assert s.decode({"policy.lora.r": 5})["policy.lora.r"] == 32
    assert s.param("train.epoch").default == 2  # the template's launch value
    dt = s.param("train.optm_decay_type")
    assert dt.weights == (0.1, 0.1, 0.4, 0.4)


def test_cosmos_fps_searchable_when_template_does_not_set_nframes():
    b = load_skill(BANK_MODELS / "tao-finetune-cosmos-reason")
    t = b.template("train")
    del t["custom"]["vision"]["nframes"]
    s = build_search_space(b.schema("train"), t)
    fps = s.param("custom.vision.fps")
    assert (fps.kind, fps.low, fps.high, fps.default) == ("int", 1, 3, None)
    # explicit request while the template sets nframes: a clear error
    with pytest.raises(SearchSpaceError, match="nframes"):
        _space("tao-finetune-cosmos-reason", hyperparameters=["custom.vision.fps"])


def test_reid_lr_steps_list_rule():
    s = _space("tao-train-reid")
    p = s.param("train.optim.lr_steps")
    assert (p.encoding, p.length, p.low, p.high) == ("sorted_list", 2, 1, 10)
    assert "train.num_epochs" in p.note and p.default is None
    assert s.decode({"train.optim.lr_steps[0]": 9, "train.optim.lr_steps[1]": 3}) == {
        "train.optim.lr_steps": [3, 9]}
    assert s.decode({"train.optim.lr_steps[0]": 10, "train.optim.lr_steps[1]": 10}) == {
        "train.optim.lr_steps": [9, 10]}


def test_reid_batch_multiple_of_num_instances():
    s = _space("tao-train-reid", hyperparameters=["dataset.batch_size", "train.optim.base_lr"])
    bs = s.param("dataset.batch_size")
    assert (bs.low, bs.high) == (16, 256)  # int rule: [ceil(64/4), 64*4]
    fixed, notes = s.enforce({"dataset.batch_size": 37, "train.optim.base_lr": 1e-4})
    assert fixed["dataset.batch_size"] == 36 and "num_instances" in notes[0]
    fixed, notes = s.enforce({"dataset.batch_size": 38})
    assert fixed["dataset.batch_size"] in (36, 40) and fixed["dataset.batch_size"] % 4 == 0
    fixed, notes = s.enforce({"dataset.batch_size": 32})
    assert fixed == {"dataset.batch_size": 32} and notes == []
    # num_instances searched too: the sampled value is used
    fixed, _ = s.enforce({"dataset.batch_size": 30, "dataset.num_instances": 6})
    assert fixed["dataset.batch_size"] == 30
    # the ReID base_lr [0, 1] has finite bounds: kept as written
    assert (s.param("train.optim.base_lr").low, s.param("train.optim.base_lr").high) == (0.0, 1.0)


def test_cosmos_batch_divisible_and_zero_step_cap():
    s = _space("tao-finetune-cosmos-reason",
               hyperparameters=["train.train_batch_per_replica", "train.optm_lr"])
    fixed, notes = s.enforce({"train.train_batch_per_replica": 4, "train.train_policy.mini_batch": 3})
    assert fixed["train.train_batch_per_replica"] % 3 == 0
    # 10 samples over 4 shards: at most 2 per replica
    fixed, notes = s.enforce({"train.train_batch_per_replica": 4}, train_sample_count=10,
                             shard_count=4, batch_key="train.train_batch_per_replica")
    assert fixed["train.train_batch_per_replica"] == 2
    assert any("zero training steps" in n for n in notes)
    # cap interacting with divisibility: mini_batch 4 cannot divide a batch <= 3
    fixed, notes = s.enforce({"train.train_batch_per_replica": 4, "train.train_policy.mini_batch": 4},
                             train_sample_count=3, shard_count=1,
                             batch_key="train.train_batch_per_replica")
    b, m = fixed["train.train_batch_per_replica"], fixed["train.train_policy.mini_batch"]
    assert b <= 3 and b % m == 0 and len(notes) == 2
    # template batch (not searched) is capped and reported
    s2 = _space("tao-finetune-cosmos-reason")
    fixed, notes = s2.enforce({}, train_sample_count=0, shard_count=1,
                              batch_key="train.train_batch_per_replica")
    assert "cannot be fixed" in notes[0]


def test_explicit_hyperparameter_errors():
    with pytest.raises(SearchSpaceError) as ei:
        _space("tao-train-mask-auto-label", hyperparameters=["train.lrr"])
    msg = str(ei.value)
    assert "train.lrr" in msg and "train.schema.json" in msg and "did you mean" in msg
    assert "train.lr" in msg
    with pytest.raises(SearchSpaceError, match="disabled.*train.optim_betas|train.optim_betas.*disabled"):
        _space("tao-train-mask-auto-label", hyperparameters=["train.optim_betas"])
    with pytest.raises(SearchSpaceError, match="free-form string"):
        _space("tao-train-reid", hyperparameters=["model.backbone"])
    with pytest.raises(SearchSpaceError, match="fixes it"):
        _space("tao-train-reid", hyperparameters=["model.input_height"])
    with pytest.raises(SearchSpaceError, match="automl_disabled_parameters"):
        _space("tao-train-reid", hyperparameters=["train"])


def test_explicit_hyperparameters_under_disabled_parent_by_exact_path():
    s = _space("tao-train-mask-auto-label",
               hyperparameters=["train.lr", "train.num_epochs", "train.use_amp"])
    assert s.names == ["train.lr", "train.num_epochs", "train.use_amp"]
    assert all(p.source == "user" for p in s.params)
    assert s.param("train.use_amp").options == (True, False)
    ep = s.param("train.num_epochs")
    assert (ep.low, ep.high) == (3, 40)


def test_custom_ranges():
    s = _space("tao-train-mask-auto-label",
               custom_ranges={"train.lr": {"valid_min": 2e-7, "valid_max": 5e-6}})
    lr = s.param("train.lr")
    assert (lr.low, lr.high, lr.source, lr.log) == (2e-7, 5e-6, "user", False)
    with pytest.raises(SearchSpaceError, match="schema bounds"):
        _space("tao-train-mask-auto-label", custom_ranges={"train.lr": {"valid_max": 1e-3}})
    with pytest.raises(SearchSpaceError, match="unknown custom range keys"):
        _space("tao-train-mask-auto-label", custom_ranges={"train.lr": {"max": 1e-6}})
    with pytest.raises(SearchSpaceError, match="not searched"):
        _space("tao-train-mask-auto-label", custom_ranges={"train.num_epochs": {"valid_max": 5}})
    with pytest.raises(SearchSpaceError, match="did you mean"):
        _space("tao-train-mask-auto-label", custom_ranges={"train.wdd": {"valid_max": 5}})
    with pytest.raises(SearchSpaceError, match="valid_min < valid_max"):
        _space("tao-train-mask-auto-label", custom_ranges={"train.lr": {"valid_min": 5e-6,
                                                                         "valid_max": 1e-6}})


def test_custom_options_and_math_cond():
    s = _space("tao-finetune-cosmos-reason", custom_ranges={
        "train.optm_decay_type": {"valid_options": ["cosine", "none"]},
        "policy.lora.r": {"valid_options": [8, 16, 64]},
        "train.epoch": {"valid_min": 2, "valid_max": 12, "math_cond": "/ 2"},
    })
    dt = s.param("train.optm_decay_type")
    assert dt.options == ("cosine", "none") and dt.weights == (0.4, 0.4)
    assert s.param("policy.lora.r").options == (8, 16, 64)
    ep = s.param("train.epoch")
    assert (ep.low, ep.high, ep.step) == (2, 12, 2)
    with pytest.raises(SearchSpaceError, match="options from"):
        _space("tao-finetune-cosmos-reason",
               custom_ranges={"train.optm_decay_type": {"valid_options": ["exp"]}})
    with pytest.raises(SearchSpaceError, match="powers of 2"):
        _space("tao-finetune-cosmos-reason", custom_ranges={"policy.lora.r": {"valid_options": [12]}})
    with pytest.raises(SearchSpaceError, match="schema bounds"):
        _space("tao-finetune-cosmos-reason", custom_ranges={"policy.lora.r": {"valid_options": [512]}})
    with pytest.raises(SearchSpaceError, match="math_cond"):
        _space("tao-finetune-cosmos-reason", custom_ranges={"train.epoch": {"math_cond": "% 3"}})


def test_warmup_depends_on_epoch_parent_div():
    s = _space("tao-finetune-cosmos-reason",
               hyperparameters=["train.epoch", "train.optm_warmup_epochs"])
    w = s.param("train.optm_warmup_epochs")
    assert (w.kind, w.low, w.high, w.encoding, w.step) == ("int", 0, 4, "plain", None)
    assert any(c.kind == "at_most_div" and c.other == "train.epoch" and c.factor == 2
               for c in s.constraints)
    fixed, notes = s.enforce({"train.epoch": 5, "train.optm_warmup_epochs": 4})
    assert fixed["train.optm_warmup_epochs"] == 2 and "train.epoch // 2" in notes[0]
    # only warmup searched: the template's epoch (2) bounds it
    s2 = _space("tao-finetune-cosmos-reason", hyperparameters=["train.optm_warmup_epochs"])
    fixed, _ = s2.enforce({"train.optm_warmup_epochs": 3})
    assert fixed["train.optm_warmup_epochs"] == 1
    with pytest.raises(SearchSpaceError, match="disabled"):
        _space("tao-finetune-cosmos-reason", hyperparameters=["train.optm_betas"])


def _synthetic_schema(**extra):
    doc = {"properties": {
        "a": {"type": "int", "default": 4, "minimum": 1, "maximum": 100},
        "w": {"type": "int", "default": 1, "minimum": 0, "maximum": 50, "math_cond": "/ 2",
              "depends_on": "a", "automl_enabled": True},
        "g": {"type": "float", "default": 0.5, "minimum": 0, "maximum": 10, "math_cond": "> a",
              "depends_on": "a", "automl_enabled": True},
        "m": {"type": "int", "default": 16, "minimum": 1, "maximum": 100, "math_cond": "/ 8",
              "automl_enabled": True},
        "s": {"type": "string", "default": "x", "automl_enabled": True},
        "n": {"type": "int", "minimum": 1, "automl_enabled": True},
        **extra}}
    return parse_schema(doc, source="syn.schema.json")


def test_automl_enabled_fallback_and_exclusions_with_reasons():
    s = build_search_space(_synthetic_schema(), {"a": 10})
    assert s.names == ["w", "g", "m"]
    assert all(p.source == "automl_enabled" for p in s.params)
    assert "free-form string" in s.excluded["s"]
    assert "no default and no finite range" in s.excluded["n"]
    m = s.param("m")
    assert (m.low, m.high, m.step) == (8, 96, 8)
    values, notes = s.enforce({"w": 9, "g": 3.0})  # a = 10 from the template
    assert values["w"] == 5 and any("a // 2" in n for n in notes)
    assert values["g"] == 3.0 and any("cannot make g greater than a=10" in n for n in notes)
    values, notes = s.enforce({"w": 2, "g": 1.0, "a": 2})
    assert values["w"] == 1 and 2 < values["g"] <= 10 and len(notes) == 2
    values, notes = s.enforce({"w": 0, "g": 9.0, "a": 2})
    assert values == {"w": 0, "g": 9.0, "a": 2} and notes == []


def test_synthetic_skill_end_to_end(tmp_path):
    b = load_skill(write_synthetic_skill(tmp_path))
    cons = constraints_from_skill(b.info)
    assert cons == [Constraint("multiple_of", "data.batch_size", "data.group")]
    s = build_search_space(b.schema("train"), b.template("train"), constraints=cons)
    assert s.names == ["optim.lr", "optim.momentum", "optim.scheduler", "data.batch_size"]
    assert "free-form" in s.excluded["trainer.tag"]
    lr = s.param("optim.lr")
    assert (lr.low, lr.high, lr.log) == (0.001, 0.1, True)
    assert s.param("optim.scheduler").options == ("cosine", "step", "none")
    fixed, notes = s.enforce({"data.batch_size": 30})
    assert fixed["data.batch_size"] == 28 and notes  # tie 28 vs 32 resolved downwards
    fixed, notes = s.enforce({"data.batch_size": 30}, train_sample_count=10,
                             batch_key="data.batch_size")
    assert fixed["data.batch_size"] == 8


def test_constraint_sidecar_spelling_and_bad_constraints():
    from tao_automl.search import coerce_constraints

    assert coerce_constraints([{"type": "multiple_of", "param": "a", "of": "b"}]) == [
        Constraint("multiple_of", "a", "b")]
    with pytest.raises(SearchSpaceError, match="invalid constraint"):
        coerce_constraints([{"kind": "nope", "param": "a"}])
    with pytest.raises(SearchSpaceError, match="unknown constraint keys"):
        coerce_constraints([{"kind": "exclusive", "param": "a", "other": "b", "x": 1}])


def test_exclusive_both_searched_keeps_first():
    doc = {"properties": {
        "x": {"type": "int", "minimum": 1, "maximum": 3, "automl_enabled": True},
        "y": {"type": "int", "minimum": 1, "maximum": 8, "automl_enabled": True}}}
    s = build_search_space(parse_schema(doc), {},
                           constraints=[{"kind": "exclusive", "param": "y", "other": "x"}])
    assert s.names == ["x"] and "already searched" in s.excluded["y"]


@pytest.mark.parametrize("kind, d, lo, hi, expect", [
    ("float", 1e-6, 0.0, math.inf, (1e-7, 1e-5)),
    ("float", 0.5, 0.0, 1.0, (0.0, 1.0)),
    ("float", 0.0, 0.0, math.inf, (0.0, 1.0)),
    ("float", -2.0, None, None, (-20.0, -0.2)),
    ("int", 64, 1, math.inf, (16, 256)),
    ("int", 512, 256, math.inf, (256, 2048)),
    ("int", 0, 0, None, (0, 4)),
    ("int", 1, 1, math.inf, (1, 4)),
    ("int", None, 1, 3, (1, 3)),
])
def test_derive_range_rule(kind, d, lo, hi, expect):
    assert derive_range(kind, d, lo, hi)[:2] == expect


def test_derive_range_impossible_and_math_cond_parsing():
    with pytest.raises(ValueError, match="no default"):
        derive_range("int", None, 1, math.inf)
    assert parse_math_cond("^ 2") == ("pow2", 2)
    assert parse_math_cond("/ 32") == ("div", 32)
    assert parse_math_cond("> depends_on") == ("gt", 0)
    assert parse_math_cond(None) is None
    with pytest.raises(ValueError):
        parse_math_cond("* 3")


def test_to_ray_domains_and_weighted_sampling():
    from ray.tune.search import sample as rs

    s = _space("tao-finetune-cosmos-reason")
    ray = s.to_ray()
    assert isinstance(ray["train.optm_lr"].get_sampler(), rs.LogUniform)
    lo_r = ray["policy.lora.r"]
    assert isinstance(lo_r, rs.Integer) and (lo_r.lower, lo_r.upper) == (0, 9)  # upper exclusive
    assert isinstance(ray["train.optm_decay_type"], rs.Categorical)
    assert isinstance(ray["train.epoch"], rs.Integer) and ray["train.epoch"].upper == 21
    weighted = s.to_ray(weighted=True)
    assert isinstance(weighted["train.optm_decay_type"], rs.Function)
    rng = random.Random(3)
    draws = [s.sample(rng)["train.optm_decay_type"] for _ in range(4000)]
    share = {o: draws.count(o) / len(draws) for o in ("linear", "sqrt", "cosine", "none")}
    assert abs(share["cosine"] - 0.4) < 0.04 and abs(share["linear"] - 0.1) < 0.03


def test_ray_domains_sample_within_bounds():
    """Ray's own samplers stay inside the decoded bounds (inclusive ints)."""
    s = _space("tao-finetune-cosmos-reason", custom_ranges={
        "train.epoch": {"valid_min": 2, "valid_max": 12, "math_cond": "/ 2"}})
    ray = s.to_ray()
    for _ in range(200):
        cfg = {k: d.sample() for k, d in ray.items()}
        vals = s.decode(cfg)
        for p in s.params:
            assert p.contains(vals[p.name]), (p.name, vals[p.name])


def test_decode_passes_unknown_keys_and_round_trip_with_custom():
    s = _space("tao-train-reid")
    assert s.decode({"other.key": 1})["other.key"] == 1
    s2 = _space("tao-finetune-cosmos-reason",
                custom_ranges={"policy.lora.r": {"valid_options": [8, 16]}})
    again = SearchSpace.from_dict(json.loads(json.dumps(s2.to_dict())))
    assert again == s2 and again.param("policy.lora.r").options == (8, 16)
    with pytest.raises(SearchSpaceError, match="saved search space"):
        SearchSpace.from_dict({"params": [{"name": 1}]})


def test_action_defaults_added_to_schema_defaults():
    doc = {"automl_default_parameters": ["a"], "properties": {
        "a": {"type": "float", "default": 0.5, "minimum": 0, "maximum": 1},
        "b": {"type": "bool", "default": False}}}
    s = build_search_space(parse_schema(doc), {}, action_defaults=["b", "a"])
    assert s.names == ["a", "b"] and s.param("b").default is False


def test_import_does_not_pull_heavy_dependencies():
    import subprocess
    import sys

    code = ("import sys, tao_automl.search, tao_automl.skill, tao_automl.schema; "
            "print(sorted(m for m in ('ray', 'wandb', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_encode_is_inverse_of_decode_and_default_config():
    s = _space("tao-finetune-cosmos-reason")
    cfg = s.default_config()
    assert cfg["policy.lora.r"] == 3 and cfg["train.epoch"] == 2  # 2**3 == 8
    assert s.decode(cfg) == {p.name: p.default for p in s.params}
    rng = random.Random(1)
    for _ in range(20):
        c = s.sample(rng)
        assert s.encode(s.decode(c)) == c
    r = _space("tao-train-reid")
    assert r.encode({"train.optim.lr_steps": [3, 7]}) == {"train.optim.lr_steps[0]": 3,
                                                          "train.optim.lr_steps[1]": 7}
    assert r.default_config() == {}  # [40, 70] lies outside [1, 10]
