"""Property-based fuzzing (issue 7): random but valid inputs and random garbage
through schema parsing, search-space building, override paths, spec
building and settings.  The only exceptions allowed out are the documented
``AutoMLError`` subclasses.  ``TAO_FUZZ_EXAMPLES=2000`` runs a deeper hunt.
"""

from __future__ import annotations

import json
import math
import os
import random
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tao_automl.errors import AutoMLError, SchemaGateError, SettingsError, SpecError

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"

# TAO_FUZZ_EXAMPLES=2000 runs a deeper hunt; the default keeps the file ~10 s.
_N = int(os.environ.get("TAO_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=_N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_SLOW = settings(max_examples=max(_N // 2, 1), deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- generic JSON garbage -----------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

# -- TAO-dialect schema nodes ----------------------------------------------------------

KIND_WORDS = ["int", "float", "bool", "string", "categorical", "collection", "list", "list_1_backbone",
              "list_2", "list_3", "ordered_int", "subset_list", "optional_list", "integer", "number",
              "boolean", "object", "array", "null"]
NODE_FIELDS = ["type", "default", "minimum", "maximum", "enum", "option_weights", "math_cond", "depends_on",
               "automl_enabled", "anyOf", "popular", "properties", "valid_min", "parent_param"]
names = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=6)
numbers = st.integers(-1000, 1000) | st.floats(-1e4, 1e4, allow_nan=False) | st.sampled_from(
    [math.inf, -math.inf, 0, 1, 1e-8])


@st.composite
def leaf_nodes(draw: Any) -> dict[str, Any]:
    node: dict[str, Any] = {}
    kind = draw(st.sampled_from(KIND_WORDS) | st.lists(st.sampled_from(KIND_WORDS), min_size=1, max_size=2)
                | st.text(max_size=6))
    if draw(st.booleans()):
        node["type"] = kind
    if draw(st.booleans()):
        node["default"] = draw(scalars | st.lists(numbers, max_size=3))
    if draw(st.booleans()):
        node["minimum"] = draw(numbers | st.lists(numbers, min_size=1, max_size=3))
    if draw(st.booleans()):
        node["maximum"] = draw(numbers | st.lists(numbers, min_size=1, max_size=3))
    if draw(st.booleans()):
        node["enum"] = draw(st.lists(scalars, min_size=0, max_size=4))
    if draw(st.integers(0, 3)) == 0:
        node["option_weights"] = draw(st.lists(st.floats(0, 1), max_size=4))
    if draw(st.integers(0, 3)) == 0:
        node["math_cond"] = draw(st.sampled_from(["^ 2", "> 0", "/ 2", "/ 0", "^2", ">", "/ x", "%% 3"])
                                 | st.text(max_size=5))
    if draw(st.integers(0, 3)) == 0:
        node["depends_on"] = draw(names | st.lists(names, max_size=2))
    if draw(st.booleans()):
        node["automl_enabled"] = draw(st.booleans())
    if draw(st.integers(0, 4)) == 0:
        node["anyOf"] = [{"type": draw(st.sampled_from(KIND_WORDS))} for _ in range(draw(st.integers(1, 3)))]
    if draw(st.integers(0, 4)) == 0:
        node["popular"] = draw(st.booleans())
    if draw(st.integers(0, 4)) == 0:  # corrupt one field with arbitrary JSON
        node[draw(st.sampled_from(NODE_FIELDS))] = draw(json_values)
    return node


def collections_(children: Any) -> Any:
    return st.builds(
        lambda props, enabled: {"type": "collection", "properties": props,
                                **({"automl_enabled": enabled} if enabled is not None else {})},
        st.dictionaries(names, children, min_size=1, max_size=4),
        st.none() | st.booleans(),
    )


schema_nodes = st.recursive(leaf_nodes(), collections_, max_leaves=8)


@st.composite
def tao_schemas(draw: Any) -> dict[str, Any]:
    props = draw(st.dictionaries(names, schema_nodes, min_size=1, max_size=5))
    data: dict[str, Any] = {"type": "object", "properties": props}
    paths = list(_paths(props))
    if paths and draw(st.booleans()):
        data["automl_default_parameters"] = draw(st.lists(st.sampled_from(paths) | names, max_size=4))
    if paths and draw(st.booleans()):
        data["automl_disabled_parameters"] = draw(st.lists(st.sampled_from(paths) | names, max_size=3))
    if draw(st.booleans()):
        data["default"] = _defaults(props)
    return data


def _paths(props: dict[str, Any], prefix: str = "") -> Any:
    for k, v in props.items():
        path = f"{prefix}.{k}" if prefix else k
        yield path
        if isinstance(v, dict) and isinstance(v.get("properties"), dict):
            yield from _paths(v["properties"], path)


def _defaults(props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in props.items():
        if isinstance(v, dict) and isinstance(v.get("properties"), dict):
            out[k] = _defaults(v["properties"])
        elif isinstance(v, dict) and "default" in v:
            out[k] = v["default"]
    return out


def _only_automl_errors(fn: Any, *args: Any, allowed: type = AutoMLError, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except allowed:
        return None
    except AutoMLError as exc:  # an AutoMLError of the wrong family
        raise AssertionError(f"{type(exc).__name__} where {allowed.__name__} was expected: {exc}") from exc


# -- schema parsing and search-space building ---------------------------------------------

@FUZZ
@given(data=json_values)
def test_schema_garbage_only_schema_errors(data: Any) -> None:
    from tao_automl.schema import parse_schema

    _only_automl_errors(parse_schema, data, source="fuzz.json", allowed=SchemaGateError)
    if isinstance(data, dict):
        _only_automl_errors(parse_schema, {"properties": data}, source="fuzz.json", allowed=SchemaGateError)


@FUZZ
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_schema_file_garbage_only_schema_errors(tmp_path_factory: Any, text: str) -> None:
    from tao_automl.schema import load_schema

    p = tmp_path_factory.mktemp("s") / "train.schema.json"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    _only_automl_errors(load_schema, p, allowed=SchemaGateError)


@FUZZ_SLOW
@given(data=tao_schemas(), seed=st.integers(0, 2**16), pick=st.integers(0, 5))
def test_tao_dialect_schema_and_space(data: dict[str, Any], seed: int, pick: int) -> None:
    """Valid-looking TAO schemas: parse, build the space (defaults and explicit
    picks), sample, decode and enforce -- AutoMLError is the only way out."""
    from tao_automl.schema import parse_schema
    from tao_automl.search import build_search_space

    schema = _only_automl_errors(parse_schema, data, source="fuzz.schema.json")
    if schema is None:
        return
    template = data.get("default") or _defaults(data["properties"])
    space = _only_automl_errors(build_search_space, schema, template)
    leaves = sorted(schema.params)
    hps = [leaves[(seed + i) % len(leaves)] for i in range(min(pick, len(leaves)))] if leaves else []
    explicit = _only_automl_errors(build_search_space, schema, template, hyperparameters=hps) if hps else None
    for sp in (space, explicit):
        if sp is None or not sp.params:
            continue
        rng = random.Random(seed)
        point = sp.sample(rng)
        values = sp.decode(point)
        fixed, _notes = sp.enforce(values, train_sample_count=seed % 500 + 1, shard_count=1 + seed % 3)
        for p in sp.params:
            v = fixed.get(p.name)
            if p.options is not None and p.name in fixed:
                assert v in p.options
        from tao_automl.search import SearchSpace

        assert SearchSpace.from_dict(json.loads(json.dumps(sp.to_dict()))).names == sp.names


@FUZZ
@given(ranges=st.dictionaries(st.sampled_from(["train.lr", "model.hidden_size", "model.activation",
                                                "train.batch_size", "train.nope"]) | names,
                              json_values, max_size=3),
       hps=st.none() | st.lists(st.sampled_from(["train.lr", "model.hidden_size", "model.activation",
                                                  "train.batch_size", "train.seed"]) | names, max_size=3))
def test_custom_ranges_garbage(ranges: dict[str, Any], hps: list[str] | None) -> None:
    from tao_automl.search import build_search_space

    skill = _toy()
    _only_automl_errors(build_search_space, skill.schema("train"), skill.template("train"),
                        hyperparameters=hps, custom_ranges=ranges)


# -- override paths and spec building --------------------------------------------------------

path_chars = st.text(alphabet=string.ascii_letters + string.digits + "._[]\"' -\\", max_size=16)
valid_paths = st.lists(
    st.one_of(names.map(lambda n: f".{n}"), st.integers(0, 3).map(lambda i: f"[{i}]"),
              names.map(lambda n: f'["{n}.x"]')),
    min_size=1, max_size=4,
).map(lambda parts: "".join(parts).lstrip("."))


@FUZZ
@given(path=path_chars | valid_paths, value=json_values, spec=json_values)
def test_override_paths_only_spec_errors(path: str, value: Any, spec: Any) -> None:
    import copy

    from tao_automl.spec import apply_overrides, get_path, parse_path, set_path

    _only_automl_errors(parse_path, path, allowed=SpecError)
    target = copy.deepcopy(spec)
    _only_automl_errors(set_path, target, path, value, allowed=SpecError)
    _only_automl_errors(get_path, target, path, None, allowed=SpecError)
    if isinstance(spec, dict):
        _only_automl_errors(apply_overrides, spec, {path: value}, allowed=SpecError)


_TOY_CACHE: dict[str, Any] = {}


def _toy() -> Any:
    from tao_automl.skill import load_skill

    if "skill" not in _TOY_CACHE:
        _TOY_CACHE["skill"] = load_skill(TOY)
    return _TOY_CACHE["skill"]


toy_keys = st.sampled_from(["train.lr", "lr", "batch_size", "train.batch_size", "model.hidden_size",
                            "train.num_epochs", "dataset.train_path", "results_dir", "train",
                            "train.lr.x", "model[0]", "dataset.seed[2]", "a.b.c"])


@FUZZ
@given(overrides=st.dictionaries(toy_keys | path_chars | valid_paths, json_values, max_size=4),
       hps=st.dictionaries(toy_keys, scalars, max_size=3),
       uris=st.dictionaries(st.sampled_from(["train_datasets", "eval_dataset", "junk"]),
                            st.text(max_size=10) | st.lists(st.text(max_size=6), max_size=2), max_size=2),
       fmt=st.sampled_from(["yaml", "json", "toml"]))
def test_spec_building_only_spec_errors(overrides: dict[str, Any], hps: dict[str, Any], uris: dict[str, Any],
                                        fmt: str) -> None:
    from tao_automl.spec import SpecBuilder, SpecParamContext, dump_spec

    builder = SpecBuilder(_toy(), "train")
    built = _only_automl_errors(builder.build, overrides=overrides, hyperparameters=hps, dataset_uris=uris,
                                context=SpecParamContext(action="train", output_dir="/tmp/out"),
                                allowed=SpecError)
    if built is not None:
        _only_automl_errors(dump_spec, built.spec, fmt, allowed=SpecError)


# -- settings -------------------------------------------------------------------------------

SETTING_KEYS = ["algorithm", "metric", "direction", "max_recommendations", "max_epochs", "min_epochs",
                "reduction_factor", "population_size", "perturbation_interval", "max_concurrent", "seed",
                "session_id", "train_sample_count", "shard_count", "trial_timeout_s", "max_retries",
                "fail_fast_after", "baseline", "final_eval", "poll_interval_s", "grid_points",
                "checkpoint_selection", "wandb", "num_recommendations", "mode", "epoch_multiplier",
                "automl_algorithm", "grace_period", "quiet", "ray_address"]
setting_values = (json_values | st.sampled_from(["min", "max", "minimize", "MAX", "best", "last"])
                  | st.dictionaries(st.sampled_from(["enabled", "project", "mode", "tags", "dir", "x"]),
                                    json_values, max_size=3))


@FUZZ
@given(raw=st.dictionaries(st.sampled_from(SETTING_KEYS) | st.text(max_size=8), setting_values, max_size=6)
       | json_values)
def test_settings_only_settings_errors(raw: Any) -> None:
    from tao_automl.config.settings import parse_settings

    got = _only_automl_errors(parse_settings, raw, allowed=SettingsError)
    if got is not None:
        json.dumps(got.to_dict(), default=str)


@pytest.mark.parametrize("raw", [{"wandb": {"tags": "a"}}, {"direction": 5}, {"seed": math.nan},
                                 {"max_epochs": math.inf}, {"wandb": [1]}, {"session_id": 3}])
def test_settings_known_junk(raw: dict[str, Any]) -> None:
    from tao_automl.config.settings import parse_settings

    with pytest.raises(SettingsError):
        parse_settings(raw)


# -- constraints and skill_info ----------------------------------------------------------------

@FUZZ
@given(items=st.lists(st.dictionaries(st.sampled_from(["kind", "type", "param", "other", "of", "params",
                                                        "factor", "reason", "x"]),
                                      json_values | st.sampled_from(["multiple_of", "exclusive", "train.lr",
                                                                     "max_batch_for_samples"]),
                                      max_size=5) | json_values, max_size=3))
def test_constraints_garbage(items: list[Any]) -> None:
    from tao_automl.search import build_search_space, coerce_constraints

    cons = _only_automl_errors(coerce_constraints, items, source="fuzz")
    if cons is not None:
        skill = _toy()
        _only_automl_errors(build_search_space, skill.schema("train"), skill.template("train"), constraints=cons)


info_keys = st.sampled_from(["name", "network_arch", "automl_enabled", "actions", "data_sources", "spec_params",
                             "key_defaults", "spec_shorthand_keys", "spec_templates", "required_credentials",
                             "conditional_credentials", "container_image", "metric", "metric_direction",
                             "data_format", "extra_key"])


@FUZZ_SLOW
@given(patch=st.dictionaries(info_keys, json_values, max_size=3),
       action_patch=st.dictionaries(st.sampled_from(["command", "config_format", "execution", "inputs",
                                                     "outputs", "metric", "automl_default_parameters",
                                                     "container_image", "mode"]), json_values, max_size=2))
def test_skill_info_garbage_only_skill_errors(tmp_path_factory: Any, patch: dict[str, Any],
                                              action_patch: dict[str, Any]) -> None:
    import shutil

    import yaml

    from tao_automl.skill import load_skill

    root = tmp_path_factory.mktemp("skill") / "s"
    shutil.copytree(TOY, root)
    info_path = root / "references" / "skill_info.yaml"
    info = yaml.safe_load(info_path.read_text())
    info.update(patch)
    if isinstance(info.get("actions"), dict) and isinstance(info["actions"].get("train"), dict):
        info["actions"]["train"].update(action_patch)
    info_path.write_text(yaml.safe_dump(info, allow_unicode=True))
    skill = _only_automl_errors(load_skill, root)
    if skill is not None and skill.has_action("train"):
        _only_automl_errors(skill.template, "train")
        _only_automl_errors(skill.container_image, "train")
